// With the shipped defaults (mqlock.js keepalive 10 s, mqlockd --grace 10),
// the lock of a tab that goes silent reaches the next waiter within 40 s of
// the tab's last packet: 1.5 keepalives until mosquitto drops the
// connection, up to ~7 s of its keepalive scan, then the grace period.
// One tab is frozen (its page stops running), another loses its network.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withBrowser, waitView, waitState, observe, waitFor } from './lib.js';

const BOUND_MS = 40 * 1000;

// The last moment the page handed a packet to its WebSocket before `t`.
async function lastSendBefore(page, t) {
	return page.evaluate((before) => Math.max(...window.__sends.filter((x) => x <= before)), t);
}

test('a frozen tab and a tab without network lose their locks within 40 s of going silent', async () => {
	await withBrowser({ grace: 10 }, async ({ stack, open }) => {
		const obs = await observe(stack.mqttUrl, ['locks/_clients/+/events']);
		try {
			const alice = await open('Alice', { lock: 'doc-1' });
			const carol = await open('Carol', { lock: 'doc-2' });
			await waitView(alice, 'editing');
			await waitView(carol, 'editing');
			for (const page of [alice, carol]) {
				assert.equal(await page.evaluate(() => window.mqlockDemo.client.keepalive), 10);
			}
			const bob = await open('Bob', { lock: 'doc-1' });
			const dave = await open('Dave', { lock: 'doc-2' });
			await waitView(bob, 'waiting');
			await waitView(dave, 'waiting');
			const aliceId = await alice.evaluate(() => window.mqlockDemo.client.clientId);
			const carolId = await carol.evaluate(() => window.mqlockDemo.client.clientId);

			// Alice's page stops running scripts (a hung or frozen tab);
			// Carol's network goes away without a word.
			const cdp = await alice.context().newCDPSession(alice);
			await cdp.send('Debugger.enable');
			const frozenAt = Date.now();
			await cdp.send('Debugger.pause');
			const cutAt = Date.now();
			await carol.context().setOffline(true);
			const carolLast = await lastSendBefore(carol, cutAt);

			const handed = {};
			await Promise.all([
				waitState(bob, 'editing', BOUND_MS + 10000).then(() => {
					handed.alice = Date.now();
				}),
				waitState(dave, 'editing', BOUND_MS + 10000).then(() => {
					handed.dave = Date.now();
				}),
			]);
			await cdp.send('Debugger.resume');
			const aliceLast = await lastSendBefore(alice, frozenAt);

			const revoked = (id) => obs.messages.find((m) => m.topic === `locks/_clients/${id}/events` &&
			    m.json?.event === 'revoked');
			await waitFor(() => revoked(aliceId) && revoked(carolId), { what: 'both revocations' });
			assert.equal(revoked(aliceId).json.reason, 'disconnect');
			assert.equal(revoked(carolId).json.reason, 'disconnect');
			const silentA = handed.alice - aliceLast;
			const silentC = handed.dave - carolLast;
			process.stdout.write(`frozen tab: lock handed on ${(silentA / 1000).toFixed(1)} s after its last packet; ` +
			    `tab without network: ${(silentC / 1000).toFixed(1)} s\n`);
			assert.ok(silentA <= BOUND_MS, `frozen tab: ${silentA} ms`);
			assert.ok(silentC <= BOUND_MS, `tab without network: ${silentC} ms`);
		} finally {
			await obs.close();
		}
	});
});
