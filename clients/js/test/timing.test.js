// mqlock.js and time: activity debouncing, idle warnings and revocation
// under both idle policies, self-fencing at the warned deadline by the
// coordinator's clock, and a coordinator restart (new epoch).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '../mqlock.js';
import { withStack, nextEvent, observe, waitFor, sleep } from './harness.js';

async function run(opts, fn) {
	await withStack(opts, async (stack) => {
		const all = [];
		const open = (o) => {
			const c = connect(o);
			all.push(c);
			return c;
		};
		try {
			await fn(stack, open);
		} finally {
			await Promise.all(all.map((c) => c.close()));
		}
	});
}

function requests(obs, client, op) {
	return obs.messages.filter((m) => m.topic.endsWith(`/request/${client}`) && m.json?.op === op);
}

test('touch() sends at most one activity per interval, and the last one of a burst', async () => {
	await run({}, async (stack, open) => {
		const obs = await observe(stack.mqttUrl, ['locks/+/request/+']);
		try {
			const a = open({ url: stack.mqttUrl, user: 'Alice', activityInterval: 1 });
			const h = a.lock('doc-1');
			const first = await nextEvent(h, 'editing');
			// Touch every 20 ms for 3.5 s.
			const start = Date.now();
			while (Date.now() - start < 3500) {
				h.touch();
				await sleep(20);
			}
			const stopped = Date.now();
			// The trailing activity of the burst arrives after the touching
			// stopped, within one interval.
			await waitFor(() => requests(obs, a.clientId, 'activity').some((m) => m.at >= stopped),
			    { what: 'trailing activity' });
			await sleep(1500);
			const acts = requests(obs, a.clientId, 'activity');
			const span = (acts.at(-1).at - start) / 1000;
			assert.ok(acts.length >= 3, `${acts.length} activities`);
			assert.ok(acts.length <= Math.ceil(span) + 1, `${acts.length} activities in ${span} s`);
			for (let i = 1; i < acts.length; i++) {
				// Delivery to the observer can bunch two sends a little.
				const gap = acts[i].at - acts[i - 1].at;
				assert.ok(gap >= 800, `activities ${i - 1} and ${i} only ${gap} ms apart`);
			}
			// Each accepted activity moved the deadline; the handle saw it in
			// the owner message.
			await waitFor(() => h.idleDeadline > first.idle_deadline, { what: 'later idle deadline' });
			// Waiters and finished handles send nothing.
			const n = acts.length;
			h.release();
			h.touch();
			await sleep(300);
			assert.equal(requests(obs, a.clientId, 'activity').length, n);
		} finally {
			await obs.close();
		}
	});
});

test('idle: a warning, then revoked with reason idle, and the waiter gets the lock', async () => {
	await run({ idleTimeout: 3, idleWarning: 1.5 }, async (stack, open) => {
		const a = open({ url: stack.mqttUrl, user: 'Alice' });
		const b = open({ url: stack.mqttUrl, user: 'Bob' });
		const ha = a.lock('doc-1');
		const warned = nextEvent(ha, 'idle-warning', { timeout: 15000 });
		const lostEv = nextEvent(ha, 'lost', { timeout: 15000 });
		const ed = await nextEvent(ha, 'editing');
		const hb = b.lock('doc-1');
		await nextEvent(hb, 'waiting');
		const w = await warned;
		// Revocation no sooner than one warning period after the warning.
		assert.ok(w.deadline >= ed.idle_deadline && w.deadline - ed.idle_deadline < 1000,
		    `warning deadline ${w.deadline - ed.idle_deadline} ms after the idle deadline`);
		const lost = await lostEv;
		assert.equal(lost.reason, 'idle');
		assert.equal(lost.token, ed.token);
		// The grant may reach Bob before the revocation reaches Alice.
		await waitFor(() => hb.state === 'editing', { what: 'Bob editing' });
	});
});

test('activity after the warning moves the deadline and clears the warning', async () => {
	await run({ idleTimeout: 4, idleWarning: 3, idlePolicy: 'always' }, async (stack, open) => {
		const a = open({ url: stack.mqttUrl, user: 'Alice', activityInterval: 0.2 });
		const h = a.lock('doc-1');
		const warned = nextEvent(h, 'idle-warning');
		const ed = await nextEvent(h, 'editing');
		await warned;
		assert.equal(h.warning, ed.idle_deadline);
		const moved = nextEvent(h, 'editing', { pred: (d) => d.idle_deadline > ed.idle_deadline });
		h.touch();
		await moved;
		assert.equal(h.warning, null);
		assert.equal(h.state, 'editing');
	});
});

test('idle policy contended: nobody waits, no warning; a waiter arrives after the deadline, warned at once', async () => {
	await run({ idleTimeout: 1, idleWarning: 1 }, async (stack, open) => {
		const a = open({ url: stack.mqttUrl, user: 'Alice' });
		const b = open({ url: stack.mqttUrl, user: 'Bob' });
		const ha = a.lock('doc-1');
		const warnings = [];
		ha.on('idle-warning', (w) => warnings.push(w));
		const ed = await nextEvent(ha, 'editing');
		await waitFor(() => a.timing.idle_policy === 'contended', { what: 'the policy from the status' });
		await sleep(2000);
		assert.deepEqual(warnings, [], 'warned with nobody waiting');
		assert.equal(ha.state, 'editing');
		const warned = nextEvent(ha, 'idle-warning');
		const hb = b.lock('doc-1');
		const arrived = Date.now();
		const w = await warned;
		assert.ok(Date.now() - arrived < 1000, 'the warning comes at once');
		assert.ok(w.deadline > ed.idle_deadline);
		const lost = await nextEvent(ha, 'lost', { timeout: 5000 });
		assert.equal(lost.reason, 'idle');
		await waitFor(() => hb.state === 'editing', { what: 'Bob editing' });
	});
});

test('self-fencing: a warned holder stops at the deadline by the coordinator\'s clock, revocation or not', async () => {
	// The coordinator freezes after the warning (SIGSTOP) and its long
	// keepalive keeps the broker from noticing: no revocation, no offline.
	await run({ idleTimeout: 3, idleWarning: 1.5, idlePolicy: 'always', keepalive: 60 }, async (stack, open) => {
		const a = open({ url: stack.mqttUrl, user: 'Alice' });
		const h = a.lock('doc-1');
		const warned = nextEvent(h, 'idle-warning', { timeout: 15000 });
		const lostEv = nextEvent(h, 'lost', { timeout: 15000 });
		const ed = await nextEvent(h, 'editing');
		assert.ok(Math.abs(a.clockOffset) < 1000, `events carry the coordinator's now (offset ${a.clockOffset})`);
		const w = await warned;
		stack.mqlockd.kill('SIGSTOP');
		try {
			const lost = await lostEv;
			const late = Date.now() - w.deadline;
			assert.ok(late >= 0 && late < 2000, `fenced ${late} ms after the deadline`);
			assert.deepEqual(lost, { reason: 'idle', message: lost.message, token: ed.token, local: true,
				afterReconnect: false });
			assert.equal(h.editing, false);
		} finally {
			stack.mqlockd.kill('SIGCONT');
		}
	});
});

test('coordinator stopped: a warned holder keeps editing past the deadline', async () => {
	await run({ idleTimeout: 2, idleWarning: 1, idlePolicy: 'always' }, async (stack, open) => {
		const a = open({ url: stack.mqttUrl, user: 'Alice' });
		const h = a.lock('doc-1');
		const warned = nextEvent(h, 'idle-warning', { timeout: 15000 });
		const { token } = await nextEvent(h, 'editing');
		const w = await warned;
		const offline = nextEvent(h, 'offline');
		await stack.stopMqlockd('SIGTERM');
		assert.equal((await offline).reason, 'coordinator');
		while (Date.now() < w.deadline + 1500) {
			h.touch();
			await sleep(200);
		}
		assert.equal(h.state, 'editing', 'it cannot have revoked: it is down');
		const online = nextEvent(h, 'online');
		await stack.startMqlockd();
		await online;
		await waitFor(() => h.warning === null && h.idleDeadline > w.deadline, { what: 'a later deadline after the return' });
		assert.equal(h.token, token);
	});
});

test('a new coordinator epoch makes the client send acquire again; the lock is kept', async () => {
	await run({}, async (stack, open) => {
		const obs = await observe(stack.mqttUrl, ['locks/+/request/+']);
		try {
			const a = open({ url: stack.mqttUrl, user: 'Alice' });
			const b = open({ url: stack.mqttUrl, user: 'Bob' });
			const ha = a.lock('doc-1');
			const { token } = await nextEvent(ha, 'editing');
			const hb = b.lock('doc-1');
			await nextEvent(hb, 'waiting');
			const epoch = a.coordinator.epoch;
			const offline = nextEvent(ha, 'offline');
			await stack.stopMqlockd('SIGTERM');
			await offline;
			const before = Date.now();
			const online = nextEvent(ha, 'online');
			await stack.startMqlockd();
			await online;
			await waitFor(() => a.coordinator?.epoch > epoch, { what: 'new epoch seen by the client' });
			await waitFor(() => requests(obs, a.clientId, 'acquire').some((m) => m.at >= before) &&
			    requests(obs, b.clientId, 'acquire').some((m) => m.at >= before),
			    { what: 'acquire re-sent by both' });
			// Answered with the same grant and the same place.
			await sleep(300);
			assert.equal(ha.state, 'editing');
			assert.equal(ha.token, token);
			assert.equal(hb.state, 'waiting');
			assert.equal(hb.position, 1);
		} finally {
			await obs.close();
		}
	});
});
