// Demo pages and the network: a page whose network drops loses the lock
// after keepalive + grace, and a page that reconnects within the grace
// period keeps it with the same token.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withBrowser, waitState, shot, shownToken, observe, waitFor } from './lib.js';

test('the holder\'s network drops: the waiter gets the lock after keepalive + grace', async () => {
	// Page keepalive 2 s: mosquitto drops it after 3 s of silence plus up to
	// ~6 s of its scan interval, then the will and mqlockd's grace (1 s).
	await withBrowser({ grace: 1 }, async ({ open }) => {
		const alice = await open('Alice', { keepalive: '2', grace: '1' });
		await waitState(alice, 'editing');
		await alice.fill('#editor', 'Unsaved words of Alice');
		const bob = await open('Bob');
		await bob.waitForSelector('#banner-waiting:has-text("Alice is editing — you are #1")');

		// No FIN, no close frame: the packets just stop.
		await alice.context().setOffline(true);
		await alice.waitForSelector('#banner-offline:visible', { timeout: 30000 });
		await shot(alice, 'network-1-alice-offline');
		await waitState(bob, 'editing', 30000);
		await shot(bob, 'network-2-bob-editing');

		// Alice stopped editing on her own once offline past the grace
		// period, and keeps her text.
		await waitState(alice, 'lost', 30000);
		assert.equal(await alice.inputValue('#editor'), 'Unsaved words of Alice');
		assert.equal(await alice.getAttribute('#editor', 'readonly'), '');
		await alice.context().setOffline(false);
		await alice.waitForSelector('#banner-offline', { state: 'hidden', timeout: 30000 });
		await waitState(alice, 'lost');
		await shot(alice, 'network-3-alice-lost');
		assert.equal(await bob.isEnabled('#editor'), true);
	});
});

test('a page that reconnects within the grace period keeps the lock and its token', async () => {
	await withBrowser({ grace: 8 }, async ({ stack, open }) => {
		const obs = await observe(stack.mqttUrl, ['locks/_clients/+/will', 'locks/doc-1/owner']);
		try {
			const alice = await open('Alice', { grace: '8' });
			await waitState(alice, 'editing');
			const token = await shownToken(alice);
			const clientId = await alice.evaluate(() => window.mqlockDemo.client.clientId);
			await alice.fill('#editor', 'Typed before the drop');

			// Close the page's WebSocket: the broker fires the will, mqtt.js
			// reconnects a second later with conn 2 and asks again.
			await alice.evaluate(() => window.__sockets.at(-1).close());
			await waitFor(() => obs.messages.some((m) => m.topic === `locks/_clients/${clientId}/will` &&
			    m.json?.conn === 1), { what: 'will of connection 1' });
			await alice.waitForSelector('#status:has-text("connection 2")', { timeout: 15000 });
			await waitFor(() => {
				const owners = obs.messages.filter((m) => m.topic === 'locks/doc-1/owner');
				const i = owners.findIndex((m) => m.json?.owner?.connected === false);
				return i >= 0 && owners.slice(i + 1).some((m) => m.json?.owner?.client === clientId &&
				    m.json.owner.connected === true);
			}, { timeout: 15000, what: 'owner connected:false, then connected:true again' });

			await waitState(alice, 'editing');
			assert.equal(await shownToken(alice), token);
			assert.equal(await alice.isHidden('#banner-lost'), true);
			assert.equal(await alice.isHidden('#banner-offline'), true);
			assert.equal(await alice.inputValue('#editor'), 'Typed before the drop');
			await shot(alice, 'reconnect-alice-kept-lock');
		} finally {
			await obs.close();
		}
	});
});
