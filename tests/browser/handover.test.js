// The demo page's <mqlock-lock> in headless Chromium: who edits and who
// waits in plain words, a read-only waiting view the keyboard can reach,
// the hand-over when the holder's tab closes (focus and title move to the
// new editor), a queue of three served in order, and "Stop waiting".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withBrowser, waitView, waitState, banner, buttons, press, shownToken, checkState, recordLive,
	observe, waitFor } from './lib.js';

const GRACE = 1;

test('waiting shows who edits and the place, read-only but readable; the hand-over moves focus and title', async () => {
	await withBrowser({ grace: GRACE }, async ({ open }) => {
		// Served by mosquitto's http_dir, as docker/run-local.sh does.
		const alice = await open('Alice', {}, { viaBroker: true });
		await waitView(alice, 'editing');
		// Keepalive 10 s on worker timers, so that a hidden tab stays connected.
		assert.equal(await alice.evaluate(() => window.mqlockDemo.client.mqtt.options.timerVariant), 'worker');
		assert.equal(await alice.evaluate(() => window.mqlockDemo.client.keepalive), 10);
		assert.match((await banner(alice)).detail, /^Nobody else is waiting\.$/);
		await checkState(alice, 'editing');
		await alice.fill('#editor', 'Notes by Alice');
		await alice.click('#save');

		const bob = await open('Bob');
		await waitView(bob, 'waiting');
		const b = await banner(bob);
		assert.equal(b.headline, 'Alice is editing — you are next.');
		assert.match(b.detail, /^Editing for less than a minute\. The text below is read-only until it is your turn\.$/);
		assert.deepEqual(await buttons(bob), ['Notify me when it is my turn', 'Stop waiting']);
		// Read-only, not disabled: the keyboard reaches it, nothing changes.
		assert.equal(await bob.isDisabled('#editor'), false);
		assert.equal(await bob.getAttribute('#editor', 'aria-readonly'), 'true');
		await bob.focus('#editor');
		assert.equal(await bob.evaluate(() => document.activeElement.id), 'editor');
		await bob.keyboard.type('xyz');
		assert.equal(await bob.inputValue('#editor'), '');
		assert.equal(await bob.isDisabled('#save'), true);
		await checkState(bob, 'waiting');

		// The holder learns who waits.
		await waitFor(async () => (await banner(alice)).detail.startsWith('1 person is waiting: Bob.'),
		    { what: 'Alice sees Bob waiting' });
		await checkState(alice, 'editing-others-wait');

		// Focus is on the page (not in the editor) when the lock arrives.
		await bob.evaluate(() => document.activeElement.blur());
		const title = await bob.title();
		const tokenAlice = await shownToken(alice);
		await alice.close(); // pagehide releases; had it not, the will would
		await waitView(bob, 'editing', (GRACE + 2) * 1000);
		assert.equal(await bob.evaluate(() => document.activeElement.id), 'editor', 'focus moved into the editor');
		assert.equal(await bob.title(), `Your turn to edit — ${title}`);
		assert.equal(await bob.getAttribute('#editor', 'readonly'), null);
		assert.equal(await bob.isEnabled('#save'), true);
		assert.ok((await shownToken(bob)) > tokenAlice);
		// The title returns once the user does something.
		await bob.keyboard.type('Bob here. ');
		assert.equal(await bob.title(), title);
		assert.match(await bob.inputValue('#editor'), /^Bob here\. /);

		// An operator clears the queue: the waiter is told, and why.
		const dave = await open('Dave');
		await waitView(dave, 'waiting');
		await bob.evaluate(() => window.mqlockDemo.client.mqtt.publishAsync('locks/_admin/command',
		    JSON.stringify({ op: 'purge', lock: 'doc-1', reason: 'maintenance at noon' }), { qos: 1 }));
		await waitView(dave, 'dropped');
		assert.deepEqual(await banner(dave), { headline: 'You were taken out of the line.',
			detail: 'An administrator cleared the line: “maintenance at noon”', note: '' });
		assert.deepEqual(await buttons(dave), ['Wait again']);
		await checkState(dave, 'dropped');
		assert.equal(await bob.getAttribute('mqlock-lock', 'state'), 'editing');
	});
});

test('three pages queue in order; "Stop waiting" leaves the queue, "Wait again" joins at its end', async () => {
	await withBrowser({ grace: GRACE }, async ({ stack, open }) => {
		const obs = await observe(stack.mqttUrl, ['locks/doc-1/owner']);
		try {
			const alice = await open('Alice');
			await waitView(alice, 'editing');
			const bob = await open('Bob');
			await waitView(bob, 'waiting');
			const carol = await open('Carol');
			await waitView(carol, 'waiting');
			assert.equal((await banner(carol)).headline, 'Alice is editing — you are number 2 in line.');
			await waitFor(async () => (await banner(alice)).detail.startsWith('2 people are waiting: Bob and Carol.'),
			    { what: 'Alice sees both' });

			const carolId = await carol.evaluate(() => window.mqlockDemo.client.clientId);
			await press(carol, 'Stop waiting');
			await waitView(carol, 'stopped');
			assert.deepEqual(await buttons(carol), ['Wait again']);
			assert.equal(await carol.evaluate(() => document.activeElement?.shadowRoot ? 'host' : document.activeElement.tagName),
			    'host', 'focus stays on the banner, not the page');
			await checkState(carol, 'stopped');
			// The coordinator took her out: the owner message says so.
			await waitFor(() => {
				const last = obs.messages.at(-1)?.json;
				return last && last.waiting === 1 && !last.queue.some((m) => m.client === carolId);
			}, { what: 'Carol out of the queue' });
			await waitFor(async () => (await banner(alice)).detail.startsWith('1 person is waiting: Bob.'),
			    { what: 'Alice sees only Bob' });

			await press(carol, 'Wait again');
			await waitView(carol, 'waiting');
			assert.equal((await banner(carol)).headline, 'Alice is editing — you are number 2 in line.');
			const said = await recordLive(carol);

			await press(alice, 'Done editing');
			await waitView(alice, 'done');
			await checkState(alice, 'done');
			await waitState(bob, 'editing');
			await waitFor(async () => (await banner(carol)).headline === 'Bob is editing — you are next.',
			    { what: 'Carol next, behind Bob' });
			await waitFor(async () => (await said()).some((a) => a.text === 'You are now next in line.'),
			    { what: 'Carol told she is next' });

			await bob.fill('#editor', 'Bob was here');
			await press(bob, 'Done editing');
			await waitView(carol, 'editing');
			assert.equal(await carol.inputValue('#editor'), '', 'another browser: its own saved text');
		} finally {
			await obs.close();
		}
	});
});
