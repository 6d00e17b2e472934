// Demo pages and the coordinator: the "lock service offline" banner while
// mqlockd is stopped, and the same lock once it is back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withBrowser, waitState, shot, shownToken } from './lib.js';

test('mqlockd stops: the offline banner; it returns: the lock is still held', async () => {
	await withBrowser({ grace: 1 }, async ({ stack, open }) => {
		const alice = await open('Alice');
		await waitState(alice, 'editing');
		const token = await shownToken(alice);
		const bob = await open('Bob');
		await waitState(bob, 'waiting');

		await stack.stopMqlockd('SIGTERM');
		for (const page of [alice, bob]) {
			await page.waitForSelector('#banner-offline:has-text("Lock service offline")', { timeout: 15000 });
		}
		// Offline is not lost: Alice keeps editing, Bob keeps his place.
		await waitState(alice, 'editing');
		await waitState(bob, 'waiting');
		assert.equal(await alice.isEnabled('#editor'), true);
		await shot(alice, 'offline-1-alice');
		await shot(bob, 'offline-2-bob');

		await stack.startMqlockd();
		for (const page of [alice, bob]) {
			await page.waitForSelector('#banner-offline', { state: 'hidden', timeout: 15000 });
		}
		await waitState(alice, 'editing');
		assert.equal(await shownToken(alice), token);
		await bob.waitForSelector('#banner-waiting:has-text("Alice is editing — you are #1")');
	});
});
