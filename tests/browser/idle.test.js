// The idle timeout as the user sees it: "I'm still here", a countdown in
// the banner and the title that the live region announces sparingly, the
// lost notice that keeps the draft (Copy, Download), and the draft that
// survives "Wait for the lock again" while another user saves, coming back
// when the lock does; then the prompt before a tab with unsaved text closes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { withBrowser, waitView, waitState, banner, buttons, press, shownToken, checkState, recordLive,
	waitFor, sleep } from './lib.js';

const DRAFT = 'Half a sentence that was never';

test('idle: countdown in banner and title, few announcements, lost keeps the draft through "wait again"', async () => {
	await withBrowser({ grace: 1, idleTimeout: 18, idleWarning: 15 }, async ({ open }) => {
		const alice = await open('Alice', {}, { permissions: ['clipboard-read', 'clipboard-write'] });
		await waitView(alice, 'editing');
		const title = await alice.title();
		await alice.click('#editor');
		await alice.keyboard.type(DRAFT);
		// Bob: another user, in another tab of the same browser (the demo's
		// saved text is shared through localStorage).
		const bob = await open('Bob', {}, { context: alice.context() });
		await waitView(bob, 'waiting');

		// First warning: "I'm still here" keeps the lock.
		await waitView(alice, 'idle-warning', 15000);
		const token = await shownToken(alice);
		assert.equal((await banner(alice)).headline, 'Are you still there?');
		assert.match((await banner(alice)).detail, /^The lock passes to Bob in 0:1\d unless you continue\.$/);
		assert.match(await alice.title(), new RegExp(`^0:1\\d left to keep the lock — ${title}$`));
		await press(alice, 'I\'m still here');
		await waitView(alice, 'editing', 5000);
		assert.equal(await shownToken(alice), token);
		assert.equal(await alice.title(), title);

		// Second warning: nobody answers.
		const said = await recordLive(alice);
		await waitView(alice, 'idle-warning', 15000);
		const warnedAt = Date.now();
		await checkState(alice, 'idle-warning');
		await waitView(alice, 'lost', 25000);
		const lostAt = Date.now();
		await sleep(500);
		const during = (await said()).filter((a) => a.at >= warnedAt - 1000 && a.at <= lostAt + 500);
		assert.ok(during.length >= 2 && during.length <= 3,
		    `announcements in the countdown: ${JSON.stringify(during.map((a) => a.text))}`);
		assert.match(during[0].text, /^Are you still there\? The lock passes to Bob in 1\d seconds unless you continue\.$/);
		assert.ok(during.some((a) => a.text.startsWith('5 seconds left')), 'the 5 s mark is announced');

		// Lost: why, and the draft kept with ways to take it away.
		const lost = await banner(alice);
		assert.equal(lost.headline, 'You lost the lock.');
		assert.match(lost.detail, /^There was no activity here for/);
		assert.match(lost.note, /^Your unsaved text is kept in this tab/);
		assert.deepEqual(await buttons(alice), ['Wait for the lock again', 'Copy my text', 'Download my text']);
		assert.equal(await alice.inputValue('#editor'), DRAFT);
		assert.equal(await alice.getAttribute('#editor', 'readonly'), '');
		assert.equal(await alice.title(), `Lock lost — ${title}`);
		assert.equal(await alice.isDisabled('#save'), true);
		await checkState(alice, 'lost-idle');
		const download = alice.waitForEvent('download');
		await press(alice, 'Download my text');
		const file = await (await download).path();
		assert.equal(fs.readFileSync(file, 'utf8'), DRAFT);
		await press(alice, 'Copy my text');
		await waitFor(async () => (await alice.evaluate(() => navigator.clipboard.readText())) === DRAFT,
		    { what: 'the draft on the clipboard' });

		// Bob edits and saves meanwhile; Alice waits again and reads his text.
		await waitState(bob, 'editing');
		await bob.keyboard.type('Bob\'s version');
		await bob.click('#save');
		await press(alice, 'Wait for the lock again');
		await waitView(alice, 'waiting');
		assert.equal(await alice.inputValue('#editor'), 'Bob\'s version');
		assert.match((await banner(alice)).note, /^Your unsaved text is kept, and comes back when it is your turn\.$/);
		await checkState(alice, 'waiting-with-draft');
		await bob.focus('#editor');
		await bob.keyboard.press('Control+End');
		await bob.keyboard.type(', saved twice');
		await bob.click('#save');
		await waitFor(async () => (await alice.inputValue('#editor')) === 'Bob\'s version, saved twice',
		    { what: 'Alice reads Bob\'s second save' });

		// The lock comes back, and with it what Alice typed.
		await bob.evaluate(() => document.querySelector('mqlock-lock').release());
		await waitState(alice, 'editing');
		assert.equal(await alice.inputValue('#editor'), DRAFT);
		assert.match((await banner(alice)).note, /^Your unsaved text from before is back in the editor\./);
		assert.equal(await alice.evaluate(() => document.activeElement.id), 'editor');
		await checkState(alice, 'editing-draft-restored');

		// Unsaved text: closing the tab asks first.
		const dialog = new Promise((resolve) => alice.once('dialog', resolve));
		await alice.close({ runBeforeUnload: true });
		const d = await dialog;
		assert.equal(d.type(), 'beforeunload');
		await d.dismiss();
		await waitState(alice, 'editing');
		await alice.click('#save');
		assert.equal(await alice.evaluate(() => window.mqlockDemo.element.draft), null);
		let asked = false;
		alice.once('dialog', (x) => {
			asked = true;
			x.accept();
		});
		await alice.close({ runBeforeUnload: true });
		await waitFor(() => alice.isClosed(), { what: 'the saved tab closes' });
		assert.equal(asked, false, 'no prompt once saved');
	});
});
