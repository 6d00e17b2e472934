// mqlock.js against a real mosquitto and a real mqlockd: granting, queueing,
// hand-over, wills, reconnects, admin and try-lock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, lockIdProblem, clientIdProblem } from '../mqlock.js';
import { withStack, nextEvent, observe, waitFor } from './harness.js';
import { mintTicket } from './tickets.js';

const here = path.dirname(fileURLToPath(import.meta.url));

// Clients made by a test; closed (normal DISCONNECT) at its end.
function clients() {
	const all = [];
	return {
		connect(opts) {
			const c = connect(opts);
			all.push(c);
			return c;
		},
		async closeAll() {
			await Promise.all(all.map((c) => c.close()));
		},
	};
}

async function run(opts, fn) {
	await withStack(opts, async (stack) => {
		const cs = clients();
		try {
			await fn(stack, cs);
		} finally {
			await cs.closeAll();
		}
	});
}

test('lock ids and client ids follow topics.md', () => {
	assert.equal(lockIdProblem('doc-1'), null);
	assert.equal(lockIdProblem('é'.repeat(64)), null); // 128 bytes
	assert.match(lockIdProblem('é'.repeat(65)), /1-128 bytes/);
	assert.match(lockIdProblem(''), /1-128 bytes/);
	for (const bad of ['a/b', 'a+', '#', 'a\u0000b', 'tab\there', 'del\u007f', '_x', '$SYS', 'x\uD800']) {
		assert.notEqual(lockIdProblem(bad), null, JSON.stringify(bad));
	}
	assert.equal(clientIdProblem('_svc'), null);
	assert.notEqual(clientIdProblem('$x'), null);
	const c = connect({ url: 'mqtt://127.0.0.1:1', reconnectPeriod: 0 });
	try {
		assert.match(c.clientId, /^ed-[0-9a-f]{16}$/);
		assert.match(c.session, /^[0-9a-f]{32}$/);
		assert.throws(() => c.lock('a/b'), TypeError);
	} finally {
		c.close();
	}
});

test('lock -> editing with a token, deadline and owner message', async () => {
	await run({ idleTimeout: 600 }, async (stack, cs) => {
		const a = cs.connect({ url: stack.mqttUrl, user: 'Alice' });
		const h = a.lock('doc-1');
		const ed = await nextEvent(h, 'editing');
		assert.ok(Number.isSafeInteger(ed.token) && ed.token > 0);
		assert.ok(ed.idle_deadline > Date.now() + 500 * 1000);
		assert.equal(h.state, 'editing');
		assert.equal(h.token, ed.token);
		await waitFor(() => h.owner?.owner?.client === a.clientId, { what: 'owner message' });
		assert.equal(h.owner.owner.user, 'Alice');
		assert.equal(h.owner.token, ed.token);
		assert.equal(a.lock('doc-1'), h, 'a live handle is reused');
	});
});

test('a second client waits with its position and the holder; release hands over', async () => {
	await run({}, async (stack, cs) => {
		const a = cs.connect({ url: stack.mqttUrl, user: 'Alice' });
		const b = cs.connect({ url: stack.mqttUrl, user: 'Bob' });
		const c = cs.connect({ url: stack.mqttUrl, user: 'Carol' });
		const ha = a.lock('doc-1');
		const ta = (await nextEvent(ha, 'editing')).token;
		const hb = b.lock('doc-1');
		const wb = await nextEvent(hb, 'waiting', { pred: (d) => d.holder?.user === 'Alice' });
		assert.equal(wb.position, 1);
		assert.equal(hb.state, 'waiting');
		const hc = c.lock('doc-1');
		const wc = await nextEvent(hc, 'waiting', { pred: (d) => d.holder?.user === 'Alice' });
		assert.equal(wc.position, 2);

		ha.release();
		assert.equal(ha.state, 'released');
		const eb = await nextEvent(hb, 'editing');
		assert.ok(eb.token > ta, 'a new grant has a larger token');
		await waitFor(() => hc.position === 1 && hc.holder?.user === 'Bob', { what: 'Carol first, behind Bob' });

		hb.release();
		await nextEvent(hc, 'editing');
	});
});

test('the will of a killed process hands the lock on after the grace period', async () => {
	await run({ grace: 1 }, async (stack, cs) => {
		const child = spawn(process.execPath, [path.join(here, 'fixtures', 'holder.js'), stack.mqttUrl, 'doc-1', 'Zed'], {
			stdio: ['ignore', 'pipe', 'inherit'],
		});
		try {
			let out = '';
			child.stdout.on('data', (d) => {
				out += d;
			});
			await waitFor(() => out.includes('"state":"editing"'), { timeout: 15000, what: 'child editing' });
			const b = cs.connect({ url: stack.mqttUrl, user: 'Bob' });
			const hb = b.lock('doc-1');
			await nextEvent(hb, 'waiting', { pred: (d) => d.holder?.user === 'Zed' });
			child.kill('SIGKILL');
			// will, then grace (1 s): generous deadline, no speed assertion
			await nextEvent(hb, 'editing', { timeout: 20000 });
		} finally {
			child.kill('SIGKILL');
		}
	});
});

test('a reconnect within the grace period keeps the lock and its token', async () => {
	await run({ grace: 5 }, async (stack, cs) => {
		const obs = await observe(stack.mqttUrl, ['locks/_clients/+/will', 'locks/doc-1/owner']);
		try {
			const a = cs.connect({ url: stack.mqttUrl, user: 'Alice', reconnectPeriod: 200 });
			const h = a.lock('doc-1');
			const { token } = await nextEvent(h, 'editing');
			const lost = [];
			h.on('lost', (d) => lost.push(d));
			const reconnected = nextEvent(a, 'connect', { timeout: 15000 });
			// Drop the socket without DISCONNECT: the broker fires the will.
			a.mqtt.stream.destroy();
			const { conn } = await reconnected;
			assert.equal(conn, 2);
			await waitFor(() => obs.messages.some((m) => m.topic.endsWith('/will') &&
			    m.json?.session === a.session && m.json?.conn === 1), { what: 'will with conn 1' });
			// The coordinator marked us disconnected, then connected again.
			await waitFor(() => {
				const owners = obs.messages.filter((m) => m.topic === 'locks/doc-1/owner');
				const i = owners.findIndex((m) => m.json?.owner?.connected === false);
				return i >= 0 && owners.slice(i + 1).some((m) => m.json?.owner?.client === a.clientId &&
				    m.json.owner.connected === true && m.json.token === token);
			}, { what: 'owner connected:false then connected:true' });
			assert.equal(h.state, 'editing');
			assert.equal(h.token, token);
			assert.deepEqual(lost, []);
		} finally {
			await obs.close();
		}
	});
});

test('a connection gone past the grace period: the re-sent acquire shows the lock lost', async () => {
	await run({ grace: 1 }, async (stack, cs) => {
		const a = cs.connect({ url: stack.mqttUrl, user: 'Alice', reconnectPeriod: 5000 });
		const b = cs.connect({ url: stack.mqttUrl, user: 'Bob' });
		const ha = a.lock('doc-1');
		await nextEvent(ha, 'editing');
		const hb = b.lock('doc-1');
		await nextEvent(hb, 'waiting');
		const lost = nextEvent(ha, 'lost', { timeout: 30000 });
		a.mqtt.stream.destroy();
		await nextEvent(hb, 'editing', { timeout: 20000 });
		const d = await lost;
		assert.equal(d.reason, 'disconnect');
		assert.equal(d.local, false);
		assert.equal(ha.state, 'lost');
		// It left the queue it was put in again: Bob's owner message shows
		// nobody waiting.
		await waitFor(() => hb.owner?.owner?.client === b.clientId && hb.owner.waiting === 0,
		    { what: 'no waiter behind Bob' });
	});
});

test('broker unreachable past the grace period: unsure, then lost by the answer after the reconnect', async () => {
	await run({ grace: 1 }, async (stack, cs) => {
		const a = cs.connect({ url: stack.mqttUrl, user: 'Alice', reconnectPeriod: 4000 });
		const ha = a.lock('doc-1');
		await nextEvent(ha, 'editing');
		await waitFor(() => a.timing.grace === 1000, { what: 'grace from the status' });
		const offline = nextEvent(ha, 'offline');
		const unsure = nextEvent(ha, 'unsure', { timeout: 15000 });
		const lost = nextEvent(ha, 'lost', { timeout: 20000 });
		a.mqtt.stream.destroy();
		assert.equal((await offline).reason, 'broker');
		await unsure;
		assert.equal(ha.state, 'editing');
		assert.equal(ha.canSave, false);
		const d = await lost;
		assert.deepEqual([d.reason, d.local, d.afterReconnect], ['disconnect', false, true]);
	});
});

test('an admin break revokes with reason admin and its message', async () => {
	await run({}, async (stack, cs) => {
		const a = cs.connect({ url: stack.mqttUrl, user: 'Alice' });
		const h = a.lock('doc-1');
		const { token } = await nextEvent(h, 'editing');
		const lost = nextEvent(h, 'lost');
		await a.mqtt.publishAsync('locks/_admin/command',
		    JSON.stringify({ op: 'break', lock: 'doc-1', reason: 'stuck since Friday' }), { qos: 1 });
		const d = await lost;
		assert.equal(d.reason, 'admin');
		assert.equal(d.message, 'stuck since Friday');
		assert.equal(d.token, token);
		assert.equal(d.local, false);
	});
});

test('try-lock on a held lock ends busy; a second lock after release works', async () => {
	await run({}, async (stack, cs) => {
		const a = cs.connect({ url: stack.mqttUrl, user: 'Alice' });
		const b = cs.connect({ url: stack.mqttUrl, user: 'Bob' });
		const ha = a.lock('doc-1');
		const t1 = (await nextEvent(ha, 'editing')).token;
		const hb = b.lock('doc-1', { wait: false });
		await nextEvent(hb, 'busy');
		assert.equal(hb.state, 'busy');
		ha.release();
		const again = a.lock('doc-1');
		assert.notEqual(again, ha);
		const t2 = (await nextEvent(again, 'editing')).token;
		assert.ok(t2 > t1);
		// No stray answer of the first handle took the second one away.
		const lost = [];
		again.on('lost', (d) => lost.push(d));
		await new Promise((r) => setTimeout(r, 300));
		assert.equal(again.state, 'editing');
		assert.deepEqual(lost, []);
	});
});

test('query: the committed state of a lock, and the coordinator\'s clock', async () => {
	await run({}, async (stack, cs) => {
		const a = cs.connect({ url: stack.mqttUrl, user: 'Alice' });
		const b = cs.connect({ url: stack.mqttUrl, user: 'Bob' });
		const { token } = await nextEvent(a.lock('doc-1'), 'editing');
		await waitFor(() => b.connected, { what: 'Bob connected' });
		const r = await b.query('doc-1');
		assert.equal(r.ok, true);
		assert.equal(r.result, 'state');
		assert.equal(r.owner.client, a.clientId);
		assert.equal(r.token, token);
		assert.ok(Math.abs(r.now - Date.now()) < 2000);
		const free = await b.query('doc-2');
		assert.equal(free.owner, null);
	});
});

test('an admin purge drops the waiters: dropped, reason admin, with the message', async () => {
	await run({}, async (stack, cs) => {
		const a = cs.connect({ url: stack.mqttUrl, user: 'Alice' });
		const b = cs.connect({ url: stack.mqttUrl, user: 'Bob' });
		const ha = a.lock('doc-1');
		await nextEvent(ha, 'editing');
		const hb = b.lock('doc-1');
		await nextEvent(hb, 'waiting');
		const dropped = nextEvent(hb, 'dropped');
		await a.mqtt.publishAsync('locks/_admin/command',
		    JSON.stringify({ op: 'purge', lock: 'doc-1', reason: 'queue of ghosts' }), { qos: 1 });
		assert.deepEqual(await dropped, { reason: 'admin', message: 'queue of ghosts' });
		assert.equal(hb.state, 'dropped');
		assert.equal(ha.state, 'editing');
	});
});

// A ticket function as a page would have: the application mints a ticket
// for the client id the page uses.
function ticketsFor(key, sub, name, log = []) {
	return ({ clientId }) => {
		log.push(clientId);
		return mintTicket(key, { sub, name, client: clientId });
	};
}

test('tickets: verified holders show uid and name; the same user takes over, another user only waits', async () => {
	await run({ tickets: true }, async (stack, cs) => {
		const asked = [];
		const tab1 = cs.connect({ url: stack.mqttUrl, user: 'ignored', ticket: ticketsFor(stack.ticketKey, 'u-1', 'Alice A.', asked) });
		const tab2 = cs.connect({ url: stack.mqttUrl, ticket: ticketsFor(stack.ticketKey, 'u-1', 'Alice A.', asked) });
		const bob = cs.connect({ url: stack.mqttUrl, ticket: ticketsFor(stack.ticketKey, 'u-2', 'Bob B.') });
		const h1 = tab1.lock('doc-1');
		const { token } = await nextEvent(h1, 'editing');
		await waitFor(() => h1.owner?.owner?.uid === 'u-1', { what: 'uid in the owner message' });
		assert.equal(h1.owner.owner.user, 'Alice A.');
		assert.deepEqual(asked, [tab1.clientId]);
		assert.equal(tab1.timing.tickets, 'optional');

		const hb = bob.lock('doc-1', { takeover: true });
		await nextEvent(hb, 'waiting', { pred: (d) => d.holder?.uid === 'u-1' });
		assert.equal(hb.canTakeOver, false, 'another user');
		assert.equal(h1.state, 'editing', 'another user\'s takeover is a plain acquire');

		const h2 = tab2.lock('doc-1');
		const w2 = await nextEvent(h2, 'waiting', { pred: (d) => d.holder?.uid === 'u-1' });
		assert.equal(w2.canTakeOver, true);
		const lost = nextEvent(h1, 'lost');
		h2.takeOver();
		const ed2 = await nextEvent(h2, 'editing');
		assert.ok(ed2.token > token);
		assert.equal(ed2.uid, 'u-1');
		const d = await lost;
		assert.deepEqual([d.reason, d.local], ['takeover', false]);
		await waitFor(() => hb.holder?.client === tab2.clientId && hb.position === 1, { what: 'Bob still first, behind tab 2' });
	});
});

test('require-ticket: no ticket fails with ticket-required; an expired one is replaced once', async () => {
	await run({ tickets: true, requireTicket: true }, async (stack, cs) => {
		const none = cs.connect({ url: stack.mqttUrl, user: 'Nobody' });
		const hn = none.lock('doc-1');
		await nextEvent(hn, 'error');
		assert.equal(hn.state, 'failed');
		assert.equal(hn.error.code, 'ticket-required');

		let calls = 0;
		const c = cs.connect({
			url: stack.mqttUrl,
			ticket: ({ clientId }) => {
				calls += 1;
				const exp = Math.floor(Date.now() / 1000) + (calls === 1 ? -60 : 600);
				return mintTicket(stack.ticketKey, { sub: 'u-3', name: 'Carol', client: clientId, exp });
			},
		});
		const h = c.lock('doc-1');
		await nextEvent(h, 'editing');
		assert.equal(calls, 2);
		assert.equal(c.timing.tickets, 'required');
	});
});
