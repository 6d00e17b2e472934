// Demo pages and the idle timeout: the warning banner with its countdown,
// "I'm still here", and the revocation that hands the lock to the waiter
// while the idle page keeps its unsaved text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withBrowser, waitState, shot, shownToken } from './lib.js';

test('idle: warning with a countdown, revoked, the waiter gets it, the text stays', async () => {
	await withBrowser({ grace: 1, idleTimeout: 6, idleWarning: 4 }, async ({ open }) => {
		const alice = await open('Alice');
		await waitState(alice, 'editing');
		await alice.fill('#editor', 'Half a sentence that was never');
		const bob = await open('Bob');
		await bob.waitForSelector('#banner-waiting:has-text("Alice is editing — you are #1")');

		// From here on nobody touches Alice's page.
		await alice.waitForSelector('#banner-idle:visible', { timeout: 15000 });
		const countdown = await alice.textContent('#idle-countdown');
		assert.match(countdown, /^0:0[0-6]$/);
		await shot(alice, 'idle-1-alice-warning');

		await waitState(alice, 'lost', 15000);
		await alice.waitForSelector('#banner-lost:has-text("You lost the lock")');
		assert.match(await alice.textContent('#lost-reason'), /idle/);
		assert.equal(await alice.isHidden('#banner-idle'), true);
		assert.equal(await alice.inputValue('#editor'), 'Half a sentence that was never');
		assert.equal(await alice.getAttribute('#editor', 'readonly'), '');
		assert.equal(await alice.isDisabled('#save'), true);
		await shot(alice, 'idle-2-alice-lost');

		await waitState(bob, 'editing', 15000);
		await shot(bob, 'idle-3-bob-editing');
	});
});

test('"I\'m still here" moves the deadline and hides the warning', async () => {
	await withBrowser({ grace: 1, idleTimeout: 8, idleWarning: 6 }, async ({ open }) => {
		const alice = await open('Alice', { activity: '1' });
		await waitState(alice, 'editing');
		const before = await alice.textContent('#lock-info');
		const token = await shownToken(alice);
		await alice.waitForSelector('#banner-idle:visible', { timeout: 15000 });
		await alice.click('#still-here');
		await alice.waitForSelector('#banner-idle', { state: 'hidden', timeout: 10000 });
		assert.notEqual(await alice.textContent('#lock-info'), before, 'the deadline moved');
		assert.equal(await shownToken(alice), token);
		await waitState(alice, 'editing');
	});
});
