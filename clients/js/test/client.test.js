// mqlock.js's own logic, with a stand-in for mqtt.js (test/fake-mqtt.js)
// playing the broker and the coordinator: topics, retained and cleared
// messages, the coordinator's clock and timings, when a holder fences itself
// or becomes unsure, releases across reconnects, tickets and take-over.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, lockIdProblem, clientIdProblem, ticketClaims, COORDINATOR_DEFAULTS } from '../mqlock.js';
import { fakeMqtt } from './fake-mqtt.js';
import { mintTicket } from './tickets.js';
import { sleep, waitFor, nextEvent } from './harness.js';

const MIN = 60 * 1000;

// A client on the stand-in, connected, with a coordinator online whose
// clock runs `skew` ms ahead of ours and whose status carries `timing`.
function setup({ skew = 0, timing = {}, epoch = 1, ...opts } = {}) {
	const mod = fakeMqtt();
	const client = connect({ url: 'mqtt://fake', user: 'Alice', mqtt: mod, ...opts });
	const mq = mod.last;
	const coord = {
		skew,
		now: () => Date.now() + coord.skew,
		status(extra = {}) {
			mq.deliver('locks/_coordinator/status', {
				state: 'online', version: 'test', protocol: 1, since: coord.now(), epoch,
				grace: 10000, idle_timeout: 600000, idle_warning: 60000, idle_policy: 'contended',
				keepalive: 10, tickets: 'off', ...timing, ...extra,
			}, { retain: true });
		},
		event(ev) {
			mq.deliver(`locks/_clients/${client.clientId}/events`, { now: coord.now(), ...ev });
		},
		grant(lock, token, { idle = 600000 } = {}) {
			coord.event({ event: 'granted', lock, token, idle_deadline: coord.now() + idle });
		},
		owner(lock, msg) {
			mq.deliver(`locks/${lock}/owner`, msg === null ? '' : { v: 1, lock, ...msg }, { retain: true });
		},
	};
	mq.up();
	coord.status();
	return { client, mq, coord };
}

test('names follow the topic rules: C1 controls and non-characters are refused', () => {
	assert.equal(lockIdProblem('doc-1'), null);
	for (const bad of ['a\u0085b', 'x\u009f', 'a\uFDD0', 'a\uFFFE', 'a\uFFFF', 'a\u{1FFFE}', 'a\u{10FFFF}']) {
		assert.notEqual(lockIdProblem(bad), null, JSON.stringify(bad));
		assert.notEqual(clientIdProblem(bad), null, JSON.stringify(bad));
	}
	assert.equal(lockIdProblem('a\uFDCF\uFDF0\u00A0'), null);
});

test('requests go to the topic bound to the client id; events with retain handling 2', async () => {
	const { client, mq, coord } = setup({ activityInterval: 0 });
	try {
		const h = client.lock('doc-1');
		const acq = mq.requests('acquire');
		assert.equal(acq.length, 1);
		assert.equal(acq[0].topic, `locks/doc-1/request/${client.clientId}`);
		assert.deepEqual(Object.keys(acq[0].json).sort(), ['client', 'conn', 'op', 'session', 'user']);
		const ev = mq.subscribed.find((s) => s.topic === `locks/_clients/${client.clientId}/events`);
		assert.equal(ev.opts.rh, 2);
		assert.ok(mq.subscribed.some((s) => s.topic === `replies/${client.clientId}/#`));
		coord.grant('doc-1', 7);
		assert.equal(h.state, 'editing');
		h.touch();
		h.release();
		assert.deepEqual(mq.requests().map((r) => [r.json.op, r.topic]), [
			['acquire', `locks/doc-1/request/${client.clientId}`],
			['activity', `locks/doc-1/request/${client.clientId}`],
			['release', `locks/doc-1/request/${client.clientId}`],
		]);
	} finally {
		await client.close();
	}
});

test('a retained event is ignored; a cleared owner message means free', async () => {
	const { client, mq, coord } = setup();
	try {
		const h = client.lock('doc-1');
		mq.deliver(`locks/_clients/${client.clientId}/events`,
		    { event: 'granted', lock: 'doc-1', token: 5, idle_deadline: coord.now() + MIN }, { retain: true });
		assert.equal(h.state, 'pending', 'a retained grant was acted on');
		coord.event({ event: 'queued', lock: 'doc-1', position: 1 });
		coord.owner('doc-1', { owner: { client: 'ed-b', user: 'Bob', uid: 'u-bob', connected: true }, token: 4,
		    since: coord.now(), idle_deadline: coord.now() + MIN, waiting: 1, queue: [] });
		assert.equal(h.holder.user, 'Bob');
		assert.equal(h.holder.uid, 'u-bob');
		const waiting = nextEvent(h, 'waiting');
		coord.owner('doc-1', null);
		await waiting;
		assert.equal(h.owner, null);
		assert.equal(h.holder, null);
	} finally {
		await client.close();
	}
});

test('dropped: a waiter removed from the queue ends dropped, with the reason', async () => {
	const { client, coord } = setup();
	try {
		const h = client.lock('doc-1');
		coord.event({ event: 'queued', lock: 'doc-1', position: 2 });
		const d = nextEvent(h, 'dropped');
		coord.event({ event: 'dropped', lock: 'doc-1', reason: 'admin', message: 'maintenance' });
		assert.deepEqual(await d, { reason: 'admin', message: 'maintenance' });
		assert.equal(h.state, 'dropped');
		assert.equal(h.done, true);
		assert.notEqual(client.lock('doc-1'), h, 'a new lock() queues anew');
	} finally {
		await client.close();
	}
});

test('timings come from the coordinator status; defaults without them', async () => {
	const mod = fakeMqtt();
	const client = connect({ url: 'mqtt://fake', mqtt: mod });
	try {
		assert.deepEqual(client.timing, COORDINATOR_DEFAULTS);
		mod.last.up();
		mod.last.deliver('locks/_coordinator/status', { state: 'online', version: 'x', protocol: 1, since: 1, epoch: 1 },
		    { retain: true });
		assert.deepEqual(client.timing, COORDINATOR_DEFAULTS, 'an older status: the old defaults');
		mod.last.deliver('locks/_coordinator/status', { state: 'online', version: 'x', protocol: 1, since: 1, epoch: 1,
			grace: 3000, idle_timeout: 20000, idle_warning: 5000, idle_policy: 'contended', keepalive: 4,
			tickets: 'required' }, { retain: true });
		assert.deepEqual(client.timing, { grace: 3000, idle_timeout: 20000, idle_warning: 5000,
			idle_policy: 'contended', keepalive: 4, tickets: 'required' });
	} finally {
		await client.close();
	}
});

for (const skew of [10 * MIN, -10 * MIN]) {
	test(`the idle fence follows the coordinator's clock (${skew > 0 ? 'page 10 min slow' : 'page 10 min fast'})`,
	    async () => {
		const { client, coord } = setup({ skew });
		try {
			const h = client.lock('doc-1');
			coord.grant('doc-1', 3);
			assert.ok(Math.abs(client.clockOffset - skew) < 100, `offset ${client.clockOffset}`);
			assert.ok(Math.abs(client.now() - coord.now()) < 100);
			const lost = nextEvent(h, 'lost', { timeout: 5000 });
			const deadline = coord.now() + 600;
			coord.event({ event: 'idle-warning', lock: 'doc-1', deadline });
			await sleep(300);
			assert.equal(h.state, 'editing', 'fenced before the deadline');
			const d = await lost;
			const late = coord.now() - deadline;
			assert.ok(late >= 0 && late < 1000, `fenced ${late} ms after the deadline`);
			assert.deepEqual([d.reason, d.local], ['idle', true]);
		} finally {
			await client.close();
		}
	});
}

test('without an idle warning a holder never fences itself, whatever the deadline', async () => {
	const { client, coord } = setup();
	try {
		const h = client.lock('doc-1');
		coord.grant('doc-1', 3, { idle: 200 });
		await sleep(600);
		h.touch();
		assert.equal(h.state, 'editing');
	} finally {
		await client.close();
	}
});

test('a warned holder touched after the warning waits for the new deadline a little longer', async () => {
	const { client, mq, coord } = setup();
	try {
		const h = client.lock('doc-1');
		coord.grant('doc-1', 3);
		const deadline = coord.now() + 300;
		coord.event({ event: 'idle-warning', lock: 'doc-1', deadline });
		h.touch();
		assert.equal(mq.requests('activity').length, 1, 'a warned holder sends activity at once');
		await sleep(500);
		assert.equal(h.state, 'editing', 'fenced while the activity was unanswered');
		coord.owner('doc-1', { owner: { client: client.clientId, user: 'Alice', connected: true }, token: 3,
		    since: coord.now(), idle_deadline: coord.now() + 20 * MIN, waiting: 1, queue: [] });
		assert.equal(h.warning, null);
		await sleep(1000);
		assert.equal(h.state, 'editing');
	} finally {
		await client.close();
	}
});

test('coordinator offline: no idle fence; back: no deadline before its return + grace', async () => {
	const { client, coord } = setup({ timing: { grace: 800 } });
	try {
		const h = client.lock('doc-1');
		coord.grant('doc-1', 3);
		coord.event({ event: 'idle-warning', lock: 'doc-1', deadline: coord.now() + 200 });
		coord.status({ state: 'offline' });
		assert.equal(client.coordinatorOffline, true);
		await sleep(500);
		h.touch(); // typing while it is down
		assert.equal(h.state, 'editing', 'cut off while the coordinator could not revoke');
		assert.equal(h.unsure, false);
		const back = coord.now();
		coord.status({ epoch: 2 });
		assert.equal(client.offline, false);
		const lost = nextEvent(h, 'lost', { timeout: 5000 });
		await sleep(400);
		assert.equal(h.state, 'editing', 'fenced before the return + grace');
		await lost;
		assert.ok(coord.now() - back >= 790);
	} finally {
		await client.close();
	}
});

test('broker unreachable: unsure once the coordinator could have revoked; sure again if the lock survived', async () => {
	const { client, mq, coord } = setup({ timing: { grace: 400 } });
	try {
		const h = client.lock('doc-1');
		coord.grant('doc-1', 3);
		const unsure = nextEvent(h, 'unsure', { timeout: 5000 });
		const cut = Date.now();
		mq.down();
		assert.equal(h.state, 'editing');
		assert.equal(h.canSave, true);
		await unsure;
		assert.ok(Date.now() - cut >= 380, 'unsure before the grace could have run out');
		assert.equal(h.state, 'editing', 'the user may keep typing');
		assert.equal(h.canSave, false);
		const before = mq.requests('acquire').length;
		mq.up();
		const resent = mq.requests('acquire').slice(before);
		assert.equal(resent.length, 1);
		assert.equal(resent[0].json.conn, 2);
		assert.equal(h.unsure, true, 'sure again before the answer');
		coord.grant('doc-1', 3);
		assert.equal(h.unsure, false);
		assert.equal(h.canSave, true);
		assert.equal(h.state, 'editing');
	} finally {
		await client.close();
	}
});

test('broker unreachable: the answer after the reconnect shows the lock gone', async () => {
	const { client, mq, coord } = setup({ timing: { grace: 100 } });
	try {
		const h = client.lock('doc-1');
		coord.grant('doc-1', 3);
		mq.down();
		await nextEvent(h, 'unsure');
		mq.up();
		const lost = nextEvent(h, 'lost');
		coord.event({ event: 'queued', lock: 'doc-1', position: 1 });
		const d = await lost;
		assert.deepEqual([d.reason, d.local, d.token], ['disconnect', false, 3]);
		assert.equal(mq.requests('release').at(-1).json.conn, 2, 'leaves the queue it was put in');
	} finally {
		await client.close();
	}
});

test('a release while disconnected, or not acknowledged, goes out after the reconnect with the new conn', async () => {
	const { client, mq, coord } = setup();
	try {
		const a = client.lock('doc-a');
		const b = client.lock('doc-b');
		coord.grant('doc-a', 1);
		coord.grant('doc-b', 2);
		mq.autoAck = false;
		a.release(); // published, never acknowledged
		mq.down();
		b.release(); // not published at all
		assert.equal(mq.requests('release').length, 1);
		mq.autoAck = true;
		mq.up();
		const again = mq.requests('release').slice(1);
		assert.deepEqual(again.map((r) => [r.json.lock ?? r.topic.split('/')[1], r.json.conn]).sort(),
		    [['doc-a', 2], ['doc-b', 2]]);
	} finally {
		await client.close();
	}
});

test('tickets: the client id comes from the ticket; acquire carries it; a mismatch is refused', async () => {
	const t = mintTicket('k', { sub: 'u-1', name: 'Alice A.', client: 'ed-ticket-1' });
	assert.equal(ticketClaims(t).sub, 'u-1');
	assert.equal(ticketClaims('not.a.jwt!'), null);
	const { client, mq } = setup({ ticket: t });
	try {
		assert.equal(client.clientId, 'ed-ticket-1');
		assert.equal(client.uid, 'u-1');
		client.lock('doc-1');
		await waitFor(() => mq.requests('acquire').length === 1, { what: 'acquire' });
		assert.equal(mq.requests('acquire')[0].json.ticket, t);
	} finally {
		await client.close();
	}
	assert.throws(() => connect({ url: 'mqtt://x', mqtt: fakeMqtt(), ticket: t, clientId: 'other' }), /ticket is for/);
	assert.throws(() => connect({ url: 'mqtt://x', mqtt: fakeMqtt(), ticket: 42 }), TypeError);
});

test('a ticket function is asked with the client id, again before expiry and after ticket-expired', async () => {
	const asked = [];
	let exp = Math.floor(Date.now() / 1000) + 3600;
	const source = async ({ clientId }) => {
		asked.push(clientId);
		return mintTicket('k', { sub: 'u-1', name: 'Alice', client: clientId, exp });
	};
	const { client, mq, coord } = setup({ ticket: source });
	try {
		const h = client.lock('doc-1');
		await waitFor(() => mq.requests('acquire').length === 1, { what: 'first acquire' });
		assert.deepEqual(asked, [client.clientId]);
		// Refused as expired (its clock says so): asked again, acquire again.
		exp = Math.floor(Date.now() / 1000) + 10;
		coord.event({ event: 'error', lock: 'doc-1', code: 'ticket-expired', message: 'expired' });
		await waitFor(() => mq.requests('acquire').length === 2, { what: 'second acquire' });
		assert.equal(asked.length, 2);
		assert.equal(h.state, 'pending');
		// Only once: then the acquire fails.
		coord.event({ event: 'error', lock: 'doc-1', code: 'ticket-expired', message: 'expired' });
		await waitFor(() => h.state === 'failed', { what: 'failed after the one retry' });
		// A ticket close to its expiry is replaced before the next acquire.
		const c2 = client.lock('doc-2');
		await waitFor(() => mq.requests('acquire').some((r) => r.topic.startsWith('locks/doc-2/')), { what: 'doc-2' });
		assert.equal(asked.length, 3);
		exp = Math.floor(Date.now() / 1000) + 3600;
		client.lock('doc-3');
		await waitFor(() => mq.requests('acquire').some((r) => r.topic.startsWith('locks/doc-3/')), { what: 'doc-3' });
		assert.equal(asked.length, 4, 'a ticket about to expire is not used again');
		assert.equal(c2.state, 'pending');
	} finally {
		await client.close();
	}
});

test('take-over: offered only behind the same verified user; asks with takeover; the old tab loses with reason takeover', async () => {
	const t = mintTicket('k', { sub: 'u-1', name: 'Alice', client: 'ed-tab-2' });
	const { client, mq, coord } = setup({ ticket: t });
	try {
		const h = client.lock('doc-1');
		coord.event({ event: 'queued', lock: 'doc-1', position: 1 });
		coord.owner('doc-1', { owner: { client: 'ed-tab-1', user: 'Alice', uid: 'u-2', connected: true }, token: 4,
		    since: coord.now(), idle_deadline: coord.now() + MIN, waiting: 1, queue: [] });
		assert.equal(h.canTakeOver, false, 'another user');
		coord.owner('doc-1', { owner: { client: 'ed-tab-1', user: 'Alice', uid: 'u-1', connected: true }, token: 4,
		    since: coord.now(), idle_deadline: coord.now() + MIN, waiting: 1, queue: [] });
		assert.equal(h.canTakeOver, true);
		h.takeOver();
		await waitFor(() => mq.requests('acquire').length === 2, { what: 'takeover acquire' });
		assert.equal(mq.requests('acquire')[1].json.takeover, true);
		assert.equal(mq.requests('acquire')[0].json.takeover, undefined);
		coord.grant('doc-1', 5);
		assert.equal(h.state, 'editing');
		const lost = nextEvent(h, 'lost');
		coord.event({ event: 'revoked', lock: 'doc-1', token: 5, reason: 'takeover' });
		assert.equal((await lost).reason, 'takeover');
	} finally {
		await client.close();
	}
});

test('query: a request/response under replies/<client id>/, answered by correlation', async () => {
	const { client, mq, coord } = setup({ skew: 5 * MIN });
	try {
		const q = client.query('doc-1');
		const req = mq.published.at(-1);
		assert.equal(req.topic, `locks/doc-1/request/${client.clientId}`);
		assert.deepEqual(req.json, { op: 'query', client: client.clientId, lock: 'doc-1' });
		assert.equal(req.opts.properties.responseTopic, `replies/${client.clientId}/q`);
		mq.deliver(`replies/${client.clientId}/q`, { ok: true, lock: 'doc-1', result: 'state', owner: null, token: null,
			since: 1, idle_deadline: null, waiting: 0, queue: [], now: coord.now() },
		{ properties: { correlationData: Buffer.from(req.opts.properties.correlationData) } });
		const r = await q;
		assert.equal(r.result, 'state');
		assert.ok(Math.abs(client.clockOffset - 5 * MIN) < 100, 'a reply sets the clock too');
		await assert.rejects(client.query('a/b'), TypeError);
	} finally {
		await client.close();
	}
});
