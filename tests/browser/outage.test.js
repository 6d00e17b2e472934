// Outages as the user sees them. The coordinator stopped while the holder
// types: no cut-off, the lock and the text survive. The holder's network
// drops while it types: it keeps typing, is told the truth (no connection,
// then that the lock may have passed on), and learns the outcome when the
// network is back, its text kept as a draft. A connection that comes back
// within the grace period keeps the lock and its token.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withBrowser, waitView, waitState, banner, shownToken, checkState, observe, waitFor, sleep } from './lib.js';

test('mqlockd stops while the holder types: no idle cut-off, and the lock is still held when it returns', async () => {
	await withBrowser({ grace: 1, idleTimeout: 4, idleWarning: 2 }, async ({ stack, open }) => {
		const alice = await open('Alice');
		await waitView(alice, 'editing');
		const token = await shownToken(alice);
		await alice.click('#editor');
		await alice.keyboard.type('Typed before. ');
		const bob = await open('Bob');
		await waitView(bob, 'waiting');

		await stack.stopMqlockd('SIGTERM');
		await waitFor(async () => (await banner(alice)).headline === 'The lock service is offline.',
		    { what: 'Alice told the service is offline' });
		await waitFor(async () => (await banner(bob)).headline === 'The lock service is offline.',
		    { what: 'Bob told the service is offline' });
		assert.match((await banner(alice)).detail, /^Keep typing: your lock is kept until the service is back/);
		assert.match((await banner(bob)).detail, /^Your place in line is kept until it is back\.$/);
		await checkState(alice, 'offline-coordinator-editing');
		await checkState(bob, 'offline-coordinator-waiting');
		const carol = await open('Carol');
		await waitView(carol, 'connecting');
		assert.equal((await banner(carol)).headline, 'The lock service is offline.');
		await checkState(carol, 'connecting-offline');

		// Typing for longer than the idle timeout while nobody can hear it.
		const start = Date.now();
		let typed = 'Typed before. ';
		for (let i = 0; Date.now() - start < 6000; i++) {
			await alice.keyboard.type(`${i} `);
			typed += `${i} `;
			assert.equal(await alice.getAttribute('mqlock-lock', 'state'), 'editing', `cut off after ${Date.now() - start} ms`);
			await sleep(1000);
		}

		await stack.startMqlockd();
		await waitFor(async () => (await banner(alice)).headline === 'You are editing.', { what: 'Alice online again' });
		assert.equal(await shownToken(alice), token);
		assert.equal(await alice.inputValue('#editor'), typed);
		await waitFor(async () => (await banner(bob)).headline === 'Alice is editing — you are next.',
		    { what: 'Bob waiting again' });
		await waitView(carol, 'waiting');
	});
});

test('the holder\'s network drops while it types: it keeps typing, is told the truth, and keeps its text', async () => {
	// Grace 6 s: the page notices the silence (3 s) well before the
	// coordinator could have revoked (6 s after the last packet it got).
	await withBrowser({ grace: 6 }, async ({ open }) => {
		// A short keepalive, so that the page notices the silence in 3 s.
		const alice = await open('Alice', { keepalive: '2' });
		await waitView(alice, 'editing');
		await alice.click('#editor');
		await alice.keyboard.type('Before the drop. ');
		const bob = await open('Bob');
		await waitView(bob, 'waiting');

		// No FIN, no close frame: the packets just stop.
		await alice.context().setOffline(true);
		await alice.keyboard.type('During the drop. ');
		await waitFor(async () => (await banner(alice)).headline === 'No connection to the lock service. Reconnecting…',
		    { timeout: 15000, what: 'Alice told there is no connection' });
		assert.equal((await banner(alice)).detail, 'Keep typing: your text is kept in this browser.');
		await checkState(alice, 'offline-broker');
		await waitView(alice, 'unsure', 30000);
		assert.match((await banner(alice)).detail, /The lock may have passed to someone else meanwhile, so saving waits/);
		assert.equal(await alice.isDisabled('#save'), true);
		await checkState(alice, 'unsure');
		await waitState(bob, 'editing', 30000);
		await alice.keyboard.type('More.');
		assert.equal(await alice.getAttribute('mqlock-lock', 'state'), 'editing', 'still typing locally');

		await alice.context().setOffline(false);
		await waitView(alice, 'lost', 30000);
		const b = await banner(alice);
		assert.equal(b.headline, 'You lost the lock.');
		assert.equal(b.detail, 'This page could not reach the lock service for a while, and meanwhile the lock passed on.');
		const typed = 'Before the drop. During the drop. More.';
		assert.equal(await alice.inputValue('#editor'), typed);
		assert.equal(await alice.evaluate(() => window.mqlockDemo.element.draft), typed);
		await checkState(alice, 'lost-unreachable');
		assert.equal(await bob.getAttribute('mqlock-lock', 'state'), 'editing');
	});
});

test('a page that reconnects within the grace period keeps the lock and its token', async () => {
	await withBrowser({ grace: 8 }, async ({ stack, open }) => {
		const obs = await observe(stack.mqttUrl, ['locks/_clients/+/will', 'locks/doc-1/owner']);
		try {
			const alice = await open('Alice');
			await waitView(alice, 'editing');
			const token = await shownToken(alice);
			const clientId = await alice.evaluate(() => window.mqlockDemo.client.clientId);
			await alice.fill('#editor', 'Typed before the drop');

			// Close the page's WebSocket: the broker fires the will, mqtt.js
			// reconnects a second later with conn 2 and asks again.
			await alice.evaluate(() => window.__sockets.at(-1).close());
			await waitFor(() => obs.messages.some((m) => m.topic === `locks/_clients/${clientId}/will` &&
			    m.json?.conn === 1), { what: 'will of connection 1' });
			await waitFor(() => alice.evaluate(() => window.mqlockDemo.client.conn === 2 && window.mqlockDemo.client.connected),
			    { timeout: 15000, what: 'connection 2' });
			await waitFor(() => {
				const owners = obs.messages.filter((m) => m.topic === 'locks/doc-1/owner');
				const i = owners.findIndex((m) => m.json?.owner?.connected === false);
				return i >= 0 && owners.slice(i + 1).some((m) => m.json?.owner?.client === clientId &&
				    m.json.owner.connected === true);
			}, { timeout: 15000, what: 'owner connected:false, then connected:true again' });

			await waitView(alice, 'editing');
			assert.equal(await shownToken(alice), token);
			assert.equal(await alice.inputValue('#editor'), 'Typed before the drop');
		} finally {
			await obs.close();
		}
	});
});
