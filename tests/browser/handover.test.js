// Demo pages in headless Chromium: waiting with the holder's name and place,
// the hand-over when the holder's tab closes, and a queue of three.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withBrowser, waitState, shot, shownToken } from './lib.js';

const GRACE = 1;

test('the second page waits with the holder and its place; closing the first hands over', async () => {
	await withBrowser({ grace: GRACE }, async ({ open }) => {
		const alice = await open('Alice');
		await waitState(alice, 'editing');
		assert.equal(await alice.isEnabled('#editor'), true);
		// Keepalive on worker timers, so that a hidden tab stays connected.
		assert.equal(await alice.evaluate(() => window.mqlockDemo.client.mqtt.options.timerVariant), 'worker');
		assert.equal(await alice.evaluate(() => window.mqlockDemo.client.keepalive), 60);
		await alice.fill('#editor', 'Notes by Alice');
		await shot(alice, 'handover-1-alice-editing');

		const bob = await open('Bob');
		await waitState(bob, 'waiting');
		await bob.waitForSelector('#banner-waiting:has-text("Alice is editing — you are #1")');
		assert.equal(await bob.isDisabled('#editor'), true);
		assert.equal(await bob.isDisabled('#save'), true);
		assert.equal(await bob.isDisabled('#done'), true);
		assert.equal(await bob.isHidden('#banner-lost'), true);
		await shot(bob, 'handover-2-bob-waiting');

		// The tab goes away (pagehide releases; if it did not, the will
		// would): Bob edits within the grace period plus two seconds.
		const tokenAlice = await shownToken(alice);
		await alice.close();
		await waitState(bob, 'editing', (GRACE + 2) * 1000);
		assert.equal(await bob.isEnabled('#editor'), true);
		assert.equal(await bob.isEnabled('#save'), true);
		assert.equal(await bob.isHidden('#banner-waiting'), true);
		assert.ok((await shownToken(bob)) > tokenAlice);
		await shot(bob, 'handover-3-bob-editing');
	});
});

test('three pages queue and are served in order', async () => {
	await withBrowser({ grace: GRACE }, async ({ open }) => {
		const alice = await open('Alice');
		await waitState(alice, 'editing');
		const bob = await open('Bob');
		await bob.waitForSelector('#banner-waiting:has-text("Alice is editing — you are #1")');
		const carol = await open('Carol');
		await carol.waitForSelector('#banner-waiting:has-text("Alice is editing — you are #2")');
		await shot(carol, 'queue-1-carol-second');

		await alice.click('#done');
		await waitState(alice, 'released');
		await waitState(bob, 'editing');
		await carol.waitForSelector('#banner-waiting:has-text("Bob is editing — you are #1")');
		assert.equal(await carol.isDisabled('#editor'), true);
		await shot(carol, 'queue-2-carol-first');

		await bob.fill('#editor', 'Bob was here');
		await bob.click('#done');
		await waitState(carol, 'editing');
		assert.equal(await carol.isEnabled('#editor'), true);
		await shot(carol, 'queue-3-carol-editing');
	});
});
