// mqlock: the JavaScript client of mqlockd, for browsers and Node.js.
//
// It speaks protocol 1 of topics.md (the contract) over mqtt.js 5: one MQTT
// connection per page or process, with its own client id and secret session,
// a Last Will that names both, requests on the topic bound to its client id,
// and one handle per lock that turns the coordinator's events and owner
// messages into a few plain states:
//
//   pending   acquire sent, no answer yet
//   waiting   queued behind the holder
//   editing   held: the page may edit until it is told otherwise
//   lost      held, then taken away (idle, disconnect, admin, takeover), or
//             fenced locally after an idle warning whose deadline passed
//   released  given back by release() (or pagehide), or stopped waiting
//   dropped   removed from the queue without asking (admin purge, or gone
//             longer than the grace period)
//   busy      try-lock ({wait: false}) found the lock held
//   failed    the coordinator refused the acquire (event `error`)
//
// lost, released, dropped, busy and failed are final: take the lock again
// with a new lock() call. Being offline (broker unreachable or coordinator
// down) is a flag beside the state, not a state: a page keeps its place
// and its lock while offline, and learns what became of them when the lock
// service is back. While the broker is unreachable, a holder is `unsure`
// from the moment the coordinator could have revoked its lock.
//
// Time: every deadline in the protocol is the coordinator's wall clock. The
// client estimates the coordinator's clock from the `now` field of events
// and replies, so a page whose own clock is wrong still stops at the right
// moment.

import mqtt from 'mqtt';

// Node 18 has no global WebCrypto; browsers and Node 20+ do.
const webcrypto = globalThis.crypto ?? (await import('node:crypto')).webcrypto;

export const PROTOCOL = 1;

export const DEFAULTS = Object.freeze({
	prefix: 'locks',
	replyPrefix: 'replies/',
	// s. A frozen or vanished page is noticed by the broker 1.5 keepalives
	// (plus up to ~7 s of its scan) after its last packet; the coordinator
	// then waits its grace period. 10 s keeps that under 40 s with mqlockd's
	// default grace (README, "Failure modes").
	keepalive: 10,
	activityInterval: 5, // s; at most one activity request per interval
	reconnectPeriod: 1000, // ms between reconnect attempts
	clientIdPrefix: 'ed',
});

// What a coordinator means when its status message carries no timing
// settings (mqlockd before they were published): its documented defaults and
// the idle policy it had then.
export const COORDINATOR_DEFAULTS = Object.freeze({
	grace: 10000,
	idle_timeout: 600000,
	idle_warning: 60000,
	idle_policy: 'always',
	keepalive: 10,
	tickets: 'off',
});

const IN_BROWSER = typeof window !== 'undefined' && typeof document !== 'undefined';

const FINAL = new Set(['lost', 'released', 'dropped', 'busy', 'failed']);

const encoder = new TextEncoder();

// Longest setTimeout delay browsers and Node honour (about 24.8 days).
const MAX_TIMER_MS = 2 ** 31 - 1;

// How long clock samples count towards the offset estimate (ms).
const CLOCK_WINDOW_MS = 10 * 60 * 1000;
const CLOCK_SAMPLES = 16;

// After "I'm still here" the new deadline comes back in an owner message;
// the local fence waits this much longer while such an activity is unanswered.
const ACTIVITY_SLACK_MS = 1000;

// Touches less than this after an activity request (the events of one
// click) add nothing to it (ms).
const TOUCH_NEWS_MS = 250;

// While connected to an online coordinator its revocation is the normal
// way to learn of an idle loss; the local fence waits this much longer,
// for the cases where none comes (ms).
const FENCE_SLACK_MS = 500;

// A ticket function is asked again this long before its ticket expires.
const TICKET_REFRESH_MS = 30 * 1000;

function byteLength(s) {
	return encoder.encode(s).length;
}

// A lone surrogate has no UTF-8 form: TextEncoder would replace it by U+FFFD
// and the broker would see another name than the caller meant.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const BAD_TOPIC_CHAR = /[/+#\u0000-\u001F\u007F-\u009F\uFDD0-\uFDEF]/;

function hasNonCharacter(s) {
	for (const ch of s) {
		if ((ch.codePointAt(0) & 0xfffe) === 0xfffe) {
			return true;
		}
	}
	return false;
}

function nameProblem(name, what) {
	if (typeof name !== 'string') {
		return `${what} must be a string`;
	}
	const n = byteLength(name);
	if (n < 1 || n > 128) {
		return `${what} must be 1-128 bytes of UTF-8, not ${n}`;
	}
	if (LONE_SURROGATE.test(name)) {
		return `${what} is not valid Unicode`;
	}
	if (BAD_TOPIC_CHAR.test(name)) {
		return `${what} must not contain / + # or control characters`;
	}
	if (hasNonCharacter(name)) {
		return `${what} must not contain Unicode non-characters`;
	}
	return null;
}

/**
 * Why `id` is not a valid lock id (topics.md, "Names"), or null if it is.
 * @param {string} id
 * @returns {string|null}
 */
export function lockIdProblem(id) {
	const p = nameProblem(id, 'lock id');
	if (p) {
		return p;
	}
	if (id.startsWith('_') || id.startsWith('$')) {
		return 'lock id must not start with _ or $';
	}
	return null;
}

/**
 * Why `id` is not a valid client id, or null if it is.
 * @param {string} id
 * @returns {string|null}
 */
export function clientIdProblem(id) {
	const p = nameProblem(id, 'client id');
	if (p) {
		return p;
	}
	if (id.startsWith('$')) {
		return 'client id must not start with $';
	}
	return null;
}

/**
 * `bytes` random bytes from the platform's CSPRNG, as lowercase hex.
 * @param {number} bytes
 * @returns {string}
 */
export function randomHex(bytes) {
	const a = new Uint8Array(bytes);
	webcrypto.getRandomValues(a);
	let s = '';
	for (const b of a) {
		s += b.toString(16).padStart(2, '0');
	}
	return s;
}

/**
 * The claims of a ticket (a JWT), read without checking its signature:
 * only the coordinator can check it. Null if `ticket` is not a JWT.
 * @param {string} ticket
 * @returns {object|null}
 */
export function ticketClaims(ticket) {
	if (typeof ticket !== 'string') {
		return null;
	}
	const parts = ticket.split('.');
	if (parts.length !== 3 || !/^[A-Za-z0-9_-]+$/.test(parts[1])) {
		return null;
	}
	try {
		const b64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
		const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
		const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
		const v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
		return v !== null && typeof v === 'object' && !Array.isArray(v) ? v : null;
	} catch {
		return null;
	}
}

function parseJson(payload) {
	if (payload == null || payload.length === 0) {
		return null;
	}
	try {
		const v = JSON.parse(typeof payload === 'string' ? payload : new TextDecoder().decode(payload));
		return v !== null && typeof v === 'object' && !Array.isArray(v) ? v : null;
	} catch {
		return null;
	}
}

function isMs(v) {
	return Number.isSafeInteger(v) && v >= 0;
}

function positiveMs(v, fallback) {
	return Number.isSafeInteger(v) && v > 0 ? v : fallback;
}

// A few-line emitter that behaves the same in browsers and Node 18 (which
// has no CustomEvent). A listener that throws does not stop the others, nor
// the client's own bookkeeping: the error is rethrown on its own microtask.
class Emitter {
	#listeners = new Map();

	/**
	 * Call `fn(detail)` on every `type` event. Returns a function that
	 * removes the listener again.
	 */
	on(type, fn) {
		if (typeof fn !== 'function') {
			throw new TypeError('listener must be a function');
		}
		let set = this.#listeners.get(type);
		if (!set) {
			set = new Set();
			this.#listeners.set(type, set);
		}
		set.add(fn);
		return () => this.off(type, fn);
	}

	off(type, fn) {
		this.#listeners.get(type)?.delete(fn);
	}

	_emit(type, detail) {
		const set = this.#listeners.get(type);
		if (!set) {
			return;
		}
		for (const fn of [...set]) {
			try {
				fn(detail);
			} catch (err) {
				queueMicrotask(() => {
					throw err;
				});
			}
		}
	}
}

/**
 * One lock, as seen by one client. Create with client.lock(id).
 */
export class LockHandle extends Emitter {
	#client;
	#wait;
	#takeover;
	#state = 'pending';
	#token = null;
	#idleDeadline = null;
	#warning = null;
	#touchedSinceWarning = false;
	#position = null;
	#owner = null;
	#lost = null;
	#dropped = null;
	#error = null;
	#fenceTimer = null;
	#riskTimer = null;
	#unsure = false;
	#lastActivity = 0;
	#lastTouch = 0;
	#activityTimer = null;
	#staleUpTo;
	#resync = false;
	#ticketRetried = false;

	/** @internal */
	constructor(client, id, options, staleUpTo) {
		super();
		this.#client = client;
		this.#wait = options.wait !== false;
		this.#takeover = options.takeover === true;
		// Grants up to this token belong to an earlier handle of this lock
		// in this client and may still be on their way: never ours.
		this.#staleUpTo = staleUpTo;
		this.id = id;
	}

	/** 'pending' | 'waiting' | 'editing' | 'lost' | 'released' | 'dropped' | 'busy' | 'failed' */
	get state() {
		return this.#state;
	}

	/** True in the final states: lost, released, dropped, busy, failed. */
	get done() {
		return FINAL.has(this.#state);
	}

	/** True in state editing (also while offline or unsure). */
	get editing() {
		return this.#state === 'editing';
	}

	/**
	 * True while the broker has been unreachable for so long that the
	 * coordinator could have revoked the lock: keep the user's text, but do
	 * not save with this token until the answer after the reconnect.
	 */
	get unsure() {
		return this.#state === 'editing' && this.#unsure;
	}

	/** True while editing and sure of it: what a save with `token` needs. */
	get canSave() {
		return this.#state === 'editing' && !this.#unsure;
	}

	/** The fencing token while editing (and the lost one after lost), else null. */
	get token() {
		return this.#token;
	}

	/** Coordinator ms: when the holder loses the lock unless it shows activity; null unless editing. */
	get idleDeadline() {
		return this.#state === 'editing' ? this.#idleDeadline : null;
	}

	/** Coordinator ms: the deadline of the last idle-warning, until activity moves the deadline. */
	get warning() {
		return this.#state === 'editing' ? this.#warning : null;
	}

	/** 1-based place in the queue while waiting, else null. */
	get position() {
		return this.#state === 'waiting' ? this.#position : null;
	}

	/** The last owner message of this lock (topics.md), or null while the lock is free or unknown. */
	get owner() {
		return this.#owner;
	}

	/** The holder {client, user, uid?, connected} from the owner message, or null. */
	get holder() {
		return this.#owner?.owner ?? null;
	}

	/**
	 * True while waiting behind a holder with the same verified user id as
	 * this client's ticket: takeOver() would get the lock at once.
	 */
	get canTakeOver() {
		const h = this.holder;
		const uid = this.#client.uid;
		return (this.#state === 'waiting' || this.#state === 'pending') && uid !== null && h !== null &&
		    h.uid === uid && h.client !== this.#client.clientId;
	}

	/**
	 * {reason, message, token, local, afterReconnect} after lost, else null.
	 * `local`: this client fenced itself; `afterReconnect`: the revocation
	 * was not heard, the answer after a reconnect showed it.
	 */
	get lost() {
		return this.#lost;
	}

	/** {reason, message} after dropped, else null. */
	get dropped() {
		return this.#dropped;
	}

	/** {code, message} after failed, else null. */
	get error() {
		return this.#error;
	}

	/** True while the broker is unreachable or the coordinator is offline. */
	get offline() {
		return this.#client.offline;
	}

	/**
	 * Tell the coordinator the user is active. Cheap to call on every key
	 * press: at most one activity request goes out per activityInterval
	 * (the first at once, the last one of a burst at the end of the
	 * interval), and at once after an idle warning. Does nothing unless
	 * editing.
	 */
	touch() {
		if (this.#state !== 'editing' || this.#checkFence()) {
			return;
		}
		this.#lastTouch = Date.now();
		if (this.#warning !== null && !this.#touchedSinceWarning) {
			// Warned: the user answers now, not at the end of an interval.
			clearTimeout(this.#activityTimer);
			this.#activityTimer = null;
			this.#sendActivity();
			return;
		}
		if (this.#activityTimer) {
			return; // the trailing send of this interval is already due
		}
		const interval = this.#client.activityInterval * 1000;
		const due = this.#lastActivity + interval - Date.now();
		if (due <= 0) {
			this.#sendActivity();
		} else {
			this.#activityTimer = setTimeout(() => {
				this.#activityTimer = null;
				// Touches within a moment of the last send (the events of one
				// click) told the coordinator nothing new.
				if (this.#state === 'editing' && this.#lastTouch - this.#lastActivity >= TOUCH_NEWS_MS) {
					this.#sendActivity();
				}
			}, due);
		}
	}

	/**
	 * Give the lock back (or leave the queue). The handle ends in state
	 * released. Safe to call in any state. While the broker is unreachable
	 * the release goes out after the reconnect.
	 */
	release() {
		if (this.done) {
			return;
		}
		this.#client._send(this.id, 'release');
		this.#finish('released');
		this._emit('released', {});
		this.#changed();
	}

	/**
	 * Same user, other tab: ask for the lock with `takeover`. If the holder
	 * is verified with this client's user id, the coordinator revokes it
	 * (reason `takeover`) and grants the lock here at once; otherwise this is
	 * a plain acquire and the handle keeps waiting.
	 */
	takeOver() {
		if (this.#state !== 'waiting' && this.#state !== 'pending') {
			return;
		}
		this.#takeover = true;
		this._acquire(false);
	}

	/** A plain copy of what the handle knows, for logging and rendering. */
	snapshot() {
		return {
			id: this.id,
			state: this.#state,
			token: this.#token,
			idle_deadline: this.idleDeadline,
			warning: this.warning,
			position: this.position,
			holder: this.holder,
			owner: this.#owner,
			lost: this.#lost,
			dropped: this.#dropped,
			error: this.#error,
			offline: this.offline,
			unsure: this.unsure,
			canTakeOver: this.canTakeOver,
		};
	}

	// --- called by the client ---------------------------------------------

	/**
	 * @internal the acquire request for this handle; `resync` after a
	 * reconnect or a coordinator restart, when the answer tells whether the
	 * lock survived
	 */
	_acquire(resync = false) {
		const extra = {};
		if (!this.#wait) {
			extra.wait = false;
		}
		if (this.#takeover) {
			extra.takeover = true;
		}
		this.#resync = resync && this.#state === 'editing';
		this.#client._sendAcquire(this, extra);
	}

	/** @internal an event from P/_clients/<id>/events for this lock */
	_onEvent(ev) {
		const resync = this.#resync;
		if (ev.event === 'granted' || ev.event === 'queued' || ev.event === 'error') {
			this.#resync = false;
		}
		switch (ev.event) {
		case 'granted':
			this.#takeover = false;
			this.#onGranted(ev, resync);
			break;
		case 'queued':
			this.#takeover = false;
			this.#onQueued(ev, resync);
			break;
		case 'busy':
			if (this.#state === 'pending') {
				this.#finish('busy');
				this._emit('busy', {});
				this.#changed();
			}
			break;
		case 'revoked':
			if (this.#state === 'editing' && ev.token === this.#token) {
				this.#lose(typeof ev.reason === 'string' ? ev.reason : 'admin',
				    typeof ev.message === 'string' ? ev.message : '', false);
			}
			break;
		case 'dropped':
			if (this.#state === 'waiting' || this.#state === 'pending') {
				this.#dropped = {
					reason: typeof ev.reason === 'string' ? ev.reason : 'admin',
					message: typeof ev.message === 'string' ? ev.message : '',
				};
				this.#finish('dropped');
				this._emit('dropped', this.#dropped);
				this.#changed();
			}
			break;
		case 'idle-warning':
			if (this.#state === 'editing' && isMs(ev.deadline)) {
				this.#warning = ev.deadline;
				this.#touchedSinceWarning = false;
				this.#armFence();
				this._emit('idle-warning', { deadline: ev.deadline });
				this.#changed();
			}
			break;
		case 'error':
			this.#onError(ev, resync);
			break;
		default:
			break;
		}
	}

	/** @internal the retained owner message of this lock, or null when it is free */
	_onOwner(msg) {
		if (msg && msg.v !== PROTOCOL) {
			return;
		}
		this.#owner = msg && msg.owner !== undefined ? msg : null;
		// Activity is not answered: the new deadline shows in the owner
		// message. Only a later deadline for our own token counts, so that a
		// late message never shortens what the granted event said.
		if (this.#state === 'editing' && msg && msg.token === this.#token &&
		    msg.owner?.client === this.#client.clientId && isMs(msg.idle_deadline) &&
		    msg.idle_deadline > this.#idleDeadline) {
			this.#idleDeadline = msg.idle_deadline;
			this.#warning = null;
			this.#armFence();
			this._emit('editing', this.#editingDetail());
		} else if (this.#state === 'waiting') {
			this._emit('waiting', this.#waitingDetail());
		}
		this._emit('owner', this.#owner);
		this.#changed();
	}

	/** @internal the broker connection or the coordinator went away or came back */
	_onOffline(offline, reason) {
		if (this.done) {
			return;
		}
		this.#armFence();
		this.#armRisk();
		this._emit(offline ? 'offline' : 'online', { reason });
		this.#changed();
	}

	/** @internal re-check the deadlines (timers of hidden tabs run late, timings changed) */
	_checkFence() {
		this.#checkFence();
		this.#checkRisk();
	}

	/** @internal the coordinator's timing settings or our clock estimate changed */
	_rearm() {
		this.#armFence();
		this.#armRisk();
	}

	/** @internal the client is closing: stop timers without a word */
	_close() {
		if (!this.done) {
			this.#finish('released');
		}
	}

	// --- internals ----------------------------------------------------------

	#onGranted(ev, resync) {
		if (!isMs(ev.token) || !isMs(ev.idle_deadline) || ev.token <= this.#staleUpTo) {
			return;
		}
		switch (this.#state) {
		case 'pending':
		case 'waiting':
			this.#state = 'editing';
			this.#token = ev.token;
			this.#idleDeadline = ev.idle_deadline;
			this.#warning = null;
			this.#position = null;
			this.#unsure = false;
			// The grant starts the idle clock: it counts as the first activity.
			this.#lastActivity = Date.now();
			this.#armFence();
			this._emit('editing', this.#editingDetail());
			this.#changed();
			break;
		case 'editing':
			if (ev.token !== this.#token && resync) {
				// Re-sent acquire after a reconnect or a coordinator restart,
				// answered with a new grant: the old one was revoked while we
				// could not hear it, and whatever we typed since is stale.
				this.#lose('disconnect', 'the lock was lost while the connection was down', false, true);
				this.#client._send(this.id, 'release');
			} else if (ev.token > this.#token) {
				// The first grant was an answer meant for an earlier handle of
				// this lock that ended before it arrived; this one is ours.
				this.#token = ev.token;
				this.#idleDeadline = ev.idle_deadline;
				this.#warning = null;
				this.#unsure = false;
				this.#armFence();
				this._emit('editing', this.#editingDetail());
				this.#changed();
			} else if (ev.token === this.#token) {
				const wasUnsure = this.#unsure;
				this.#unsure = false;
				clearTimeout(this.#riskTimer);
				this.#riskTimer = null;
				if (ev.idle_deadline > this.#idleDeadline || wasUnsure) {
					this.#idleDeadline = Math.max(ev.idle_deadline, this.#idleDeadline);
					this.#warning = null;
					this.#armFence();
					this._emit('editing', this.#editingDetail());
					this.#changed();
				}
			}
			break;
		default:
			break;
		}
	}

	#onQueued(ev, resync) {
		if (!Number.isSafeInteger(ev.position) || ev.position < 1) {
			return;
		}
		switch (this.#state) {
		case 'pending':
		case 'waiting':
			this.#state = 'waiting';
			this.#position = ev.position;
			this._emit('waiting', this.#waitingDetail());
			this.#changed();
			break;
		case 'editing':
			if (resync) {
				// We held it, and the re-sent acquire put us in the queue.
				this.#lose('disconnect', 'the lock was lost while the connection was down', false, true);
				this.#client._send(this.id, 'release');
			}
			break;
		default:
			break;
		}
	}

	#onError(ev, resync) {
		const detail = {
			code: typeof ev.code === 'string' ? ev.code : 'internal',
			message: typeof ev.message === 'string' ? ev.message : '',
		};
		// An expired ticket: ask the ticket function for a fresh one, once.
		if (detail.code === 'ticket-expired' && !this.#ticketRetried && this.#client._canRefreshTicket()) {
			this.#ticketRetried = true;
			this.#client._invalidateTicket();
			this._acquire(resync);
			return;
		}
		if (this.#state === 'pending') {
			this.#error = detail;
			this.#finish('failed');
		}
		this._emit('error', detail);
		this.#changed();
	}

	#editingDetail() {
		return { token: this.#token, idle_deadline: this.#idleDeadline, uid: this.#client.uid };
	}

	#waitingDetail() {
		return {
			position: this.#position,
			holder: this.holder,
			owner: this.#owner,
			canTakeOver: this.canTakeOver,
		};
	}

	#sendActivity() {
		this.#lastActivity = Date.now();
		this.#touchedSinceWarning = this.#warning !== null;
		this.#client._send(this.id, 'activity');
		this.#armFence();
	}

	// The idle self-fence. The coordinator revokes an idle holder no earlier
	// than one warning period after its idle-warning (both idle policies),
	// so a holder that was not warned cannot have lost the lock for idleness.
	// A warned one stops at the warning's deadline, on the coordinator's
	// clock, unless the coordinator is known to be offline (it decides
	// nothing then, and moves passed deadlines on its return) or the broker
	// is unreachable (then #armRisk decides). Returns the coordinator time
	// to stop at, or null.
	#fenceAt() {
		if (this.#state !== 'editing' || this.#warning === null) {
			return null;
		}
		const c = this.#client;
		if (!c.connected || c.coordinatorOffline) {
			return null;
		}
		let at = Math.max(this.#warning, c._returnFloor()) + FENCE_SLACK_MS;
		if (this.#touchedSinceWarning) {
			at += ACTIVITY_SLACK_MS;
		}
		return at;
	}

	#armFence() {
		clearTimeout(this.#fenceTimer);
		this.#fenceTimer = null;
		const at = this.#fenceAt();
		if (at === null) {
			return;
		}
		const ms = Math.min(Math.max(at - this.#client.now(), 0), MAX_TIMER_MS);
		this.#fenceTimer = setTimeout(() => {
			this.#fenceTimer = null;
			this.#checkFence();
		}, ms);
	}

	// Returns true if the handle was fenced (now or before).
	#checkFence() {
		if (this.#state !== 'editing') {
			return true;
		}
		const at = this.#fenceAt();
		if (at === null) {
			return false;
		}
		const left = at - this.#client.now();
		if (left > 0) {
			if (this.#fenceTimer === null || left > MAX_TIMER_MS) {
				this.#armFence();
			}
			return false;
		}
		this.#lose('idle', 'the idle deadline passed after a warning', true);
		// Tell the coordinator too: if it has not revoked yet the lock goes
		// on to the next waiter sooner.
		this.#client._send(this.id, 'release');
		return true;
	}

	// While the broker is unreachable the coordinator may revoke: for the
	// disconnection one grace period after the broker noticed (no earlier
	// than the last packet we received), or for idleness one warning period
	// after a warning we may not have heard (never before the deadline).
	// From the earliest of these on, the handle is unsure until the answer
	// to the acquire re-sent after the reconnect. Local ms, or null.
	#riskAt() {
		const c = this.#client;
		if (this.#state !== 'editing' || c.connected) {
			return null;
		}
		const t = c.timing;
		const rx = c.lastReceived;
		let idle = this.#warning !== null ? c.toLocal(this.#warning) :
		    Math.max(c.toLocal(this.#idleDeadline), rx + t.idle_warning);
		if (!Number.isFinite(idle)) {
			idle = Infinity;
		}
		return Math.min(rx + t.grace, idle);
	}

	#armRisk() {
		clearTimeout(this.#riskTimer);
		this.#riskTimer = null;
		const at = this.#riskAt();
		if (at === null || this.#unsure) {
			return;
		}
		const ms = Math.min(Math.max(at - Date.now(), 0), MAX_TIMER_MS);
		this.#riskTimer = setTimeout(() => {
			this.#riskTimer = null;
			this.#checkRisk();
		}, ms);
	}

	#checkRisk() {
		const at = this.#riskAt();
		if (at === null || this.#unsure) {
			return;
		}
		if (Date.now() < at) {
			if (this.#riskTimer === null) {
				this.#armRisk();
			}
			return;
		}
		this.#unsure = true;
		this._emit('unsure', { token: this.#token });
		this.#changed();
	}

	#lose(reason, message, local, afterReconnect = false) {
		const token = this.#token;
		this.#lost = { reason, message, token, local, afterReconnect };
		this.#finish('lost');
		this._emit('lost', { ...this.#lost });
		this.#changed();
	}

	#finish(state) {
		this.#state = state;
		this.#warning = null;
		this.#position = null;
		this.#unsure = false;
		this.#takeover = false;
		clearTimeout(this.#fenceTimer);
		clearTimeout(this.#activityTimer);
		clearTimeout(this.#riskTimer);
		this.#fenceTimer = null;
		this.#activityTimer = null;
		this.#riskTimer = null;
		this.#client._forget(this);
	}

	#changed() {
		this._emit('change', this.snapshot());
	}
}

/**
 * One connection to the broker, on behalf of one page or process.
 * Create with connect().
 */
export class MqlockClient extends Emitter {
	#mqtt;
	#prefix;
	#replyPrefix;
	#handles = new Map();
	#endedTokens = new Map();
	#pendingReleases = new Set();
	#unackedReleases = new Map();
	#brokerUp = false;
	#coordinator = null;
	#timing = { ...COORDINATOR_DEFAULTS };
	#epoch = null;
	#returnedAt = null;
	#offline = true;
	#offlineReason = null;
	#closed = false;
	#lastRx = Date.now();
	#clock = [];
	#ticketSource = null;
	#ticket = null;
	#ticketClaims = null;
	#ticketPromise = null;
	#queries = new Map();
	#onPageHide = null;
	#onVisible = null;

	/** @internal */
	constructor(opts) {
		super();
		const url = opts.url;
		if (typeof url !== 'string' || url === '') {
			throw new TypeError('connect: url is required');
		}
		this.#prefix = opts.prefix ?? DEFAULTS.prefix;
		const pp = nameProblem(this.#prefix, 'prefix');
		if (pp) {
			throw new TypeError(`connect: ${pp}`);
		}
		this.#replyPrefix = opts.replyPrefix ?? DEFAULTS.replyPrefix;
		if (typeof this.#replyPrefix !== 'string' || /[+#]/.test(this.#replyPrefix)) {
			throw new TypeError('connect: replyPrefix must be a string without + or #');
		}
		this.user = opts.user ?? '';
		if (typeof this.user !== 'string' || byteLength(this.user) > 128) {
			throw new TypeError('connect: user must be a string of at most 128 bytes');
		}

		// A ticket names the client id it was made for: a fixed ticket sets
		// it, a ticket function is told which one to vouch for.
		if (opts.ticket !== undefined && opts.ticket !== null) {
			if (typeof opts.ticket === 'string') {
				this.#setTicket(opts.ticket);
			} else if (typeof opts.ticket !== 'function') {
				throw new TypeError('connect: ticket must be a string or a function returning one');
			}
			this.#ticketSource = opts.ticket;
		}
		const ticketClient = typeof this.#ticketClaims?.client === 'string' ? this.#ticketClaims.client : null;
		this.clientId = opts.clientId ?? ticketClient ??
		    `${opts.clientIdPrefix ?? DEFAULTS.clientIdPrefix}-${randomHex(8)}`;
		const cp = clientIdProblem(this.clientId);
		if (cp) {
			throw new TypeError(`connect: ${cp}`);
		}
		if (ticketClient !== null && ticketClient !== this.clientId) {
			throw new TypeError(`connect: the ticket is for client id ${ticketClient}, not ${this.clientId}`);
		}
		this.session = randomHex(16);
		this.conn = 1;
		this.keepalive = opts.keepalive ?? DEFAULTS.keepalive;
		this.activityInterval = opts.activityInterval ?? DEFAULTS.activityInterval;

		const mqttOptions = {
			...(opts.mqttOptions ?? {}),
			clientId: this.clientId,
			protocolVersion: 5,
			// Clean start with session expiry 0: the broker fires our will
			// whenever a connection ends without DISCONNECT (topics.md).
			clean: true,
			keepalive: this.keepalive,
			reconnectPeriod: opts.reconnectPeriod ?? DEFAULTS.reconnectPeriod,
			// We subscribe again ourselves on every connect, before any
			// request, so that no event of ours can slip past.
			resubscribe: false,
			// Requests carry the conn of the connection that sends them; one
			// queued while disconnected would reach the coordinator stale.
			// This client keeps what must survive a reconnect itself.
			queueQoSZero: false,
			will: this.#will(),
		};
		if (opts.username !== undefined) {
			mqttOptions.username = opts.username;
		}
		if (opts.password !== undefined) {
			mqttOptions.password = opts.password;
		}
		if (IN_BROWSER) {
			// Hidden tabs throttle main-thread timers to once a minute;
			// worker timers keep the keepalive going.
			mqttOptions.timerVariant = 'worker';
		}
		const mq = (opts.mqtt ?? mqtt).connect(url, mqttOptions);
		this.#mqtt = mq;
		mq.on('connect', () => this.#onConnect());
		mq.on('reconnect', () => {
			// The next CONNECT carries whatever options.will holds now.
			this.conn += 1;
			mq.options.will = this.#will();
		});
		mq.on('close', () => this.#onClose());
		mq.on('packetreceive', () => {
			this.#lastRx = Date.now();
		});
		mq.on('message', (topic, payload, packet) => this.#onMessage(topic, payload, packet));
		mq.on('error', (err) => this._emit('error', { code: 'mqtt', message: String(err?.message ?? err) }));

		if (IN_BROWSER && opts.releaseOnPageHide !== false) {
			this.#onPageHide = () => this.releaseAll();
			window.addEventListener('pagehide', this.#onPageHide);
		}
		if (IN_BROWSER) {
			// A hidden tab's timers may fire a minute late: check the
			// deadlines as soon as the user can see the page again.
			this.#onVisible = () => {
				if (document.visibilityState === 'visible') {
					for (const h of [...this.#handles.values()]) {
						h._checkFence();
					}
				}
			};
			document.addEventListener('visibilitychange', this.#onVisible);
		}
	}

	/** The mqtt.js client underneath (for diagnostics and tests). */
	get mqtt() {
		return this.#mqtt;
	}

	/** The topic prefix P. */
	get prefix() {
		return this.#prefix;
	}

	/** True while the broker connection is up. */
	get connected() {
		return this.#brokerUp;
	}

	/** The last coordinator status message, or null before the first one. */
	get coordinator() {
		return this.#coordinator;
	}

	/** True while connected to the broker and the coordinator's status says it is not online. */
	get coordinatorOffline() {
		return this.#brokerUp && this.#coordinator !== null && this.#coordinator.state !== 'online';
	}

	/** True while the broker is unreachable or the coordinator says offline. */
	get offline() {
		return this.#offline;
	}

	/**
	 * The coordinator's timing settings, from its status message (ms, and
	 * `keepalive` in s): {grace, idle_timeout, idle_warning, idle_policy,
	 * keepalive, tickets}. COORDINATOR_DEFAULTS until a status says more.
	 */
	get timing() {
		return this.#timing;
	}

	/** The user id (`sub`) of this client's ticket, unverified; null without a ticket. */
	get uid() {
		const sub = this.#ticketClaims?.sub;
		return typeof sub === 'string' ? sub : null;
	}

	/** Local ms (Date.now()) of the last packet received from the broker. */
	get lastReceived() {
		return this.#lastRx;
	}

	/**
	 * ms to add to Date.now() to get the coordinator's clock: the best
	 * estimate from the `now` of recent events and replies (0 before any).
	 */
	get clockOffset() {
		if (this.#clock.length === 0) {
			return 0;
		}
		// A message's `now` is older than its arrival by the time it spent
		// on the way, so each sample is at most the true offset: the largest
		// recent one is the best.
		const cut = Date.now() - CLOCK_WINDOW_MS;
		let best = -Infinity;
		for (const s of this.#clock) {
			if (s.at >= cut && s.offset > best) {
				best = s.offset;
			}
		}
		return best === -Infinity ? this.#clock.at(-1).offset : best;
	}

	/** The coordinator's clock now (ms), as well as this client can tell. */
	now() {
		return Date.now() + this.clockOffset;
	}

	/** A coordinator time (ms) on this machine's clock (Date.now() scale). */
	toLocal(coordinatorMs) {
		return coordinatorMs - this.clockOffset;
	}

	/**
	 * Ask for lock `id` and return its handle. While a handle for `id` is
	 * still live (pending, waiting or editing) the same handle is returned
	 * (with `takeover`, it also asks to take the lock over).
	 * `wait: false` is a try-lock: the handle ends in busy if someone else
	 * holds the lock. `takeover: true`: if this client's ticket names the
	 * same user as the holder's, the lock comes here at once (see
	 * LockHandle.takeOver). Throws TypeError for an invalid lock id.
	 * @param {string} id
	 * @param {{wait?: boolean, takeover?: boolean}} [options]
	 * @returns {LockHandle}
	 */
	lock(id, options = {}) {
		if (this.#closed) {
			throw new Error('mqlock: client is closed');
		}
		const p = lockIdProblem(id);
		if (p) {
			throw new TypeError(`mqlock: ${p}`);
		}
		const live = this.#handles.get(id);
		if (live) {
			if (options.takeover === true) {
				live.takeOver();
			}
			return live;
		}
		const h = new LockHandle(this, id, options, this.#endedTokens.get(id) ?? -1);
		this.#handles.set(id, h);
		// While disconnected, #onConnect subscribes and asks.
		if (this.#brokerUp) {
			this.#mqtt.subscribe(this.#topic(id, 'owner'), { qos: 1 });
			h._acquire();
		}
		return h;
	}

	/** The live handle of lock `id`, or undefined. */
	handle(id) {
		return this.#handles.get(id);
	}

	/** Activity on every lock this client edits (see LockHandle.touch). */
	touch() {
		for (const h of this.#handles.values()) {
			h.touch();
		}
	}

	/** Release every lock held or awaited. */
	releaseAll() {
		for (const h of [...this.#handles.values()]) {
			h.release();
		}
		// mqtt-packet writes on the next tick; during pagehide there may be
		// no next tick, so push the bytes to the socket now.
		this.#mqtt.stream?.uncork?.();
	}

	/**
	 * Ask the coordinator for the exact state of lock `id` (op `query`, an
	 * MQTT 5 request/response under replies/<client id>/). Resolves with the
	 * reply ({ok, lock, result: 'state', owner, token, since, idle_deadline,
	 * waiting, queue, now}, or {ok: false, code, message}); rejects after
	 * `timeout` ms without one, or when not connected.
	 * @param {string} id
	 * @param {{timeout?: number}} [options]
	 * @returns {Promise<object>}
	 */
	query(id, { timeout = 10000 } = {}) {
		const p = lockIdProblem(id);
		if (p) {
			return Promise.reject(new TypeError(`mqlock: ${p}`));
		}
		if (!this.#brokerUp) {
			return Promise.reject(new Error('mqlock: not connected'));
		}
		const corr = randomHex(8);
		return new Promise((resolve, reject) => {
			const timer = setTimeout(() => {
				this.#queries.delete(corr);
				reject(new Error(`mqlock: no reply to query ${id} within ${timeout} ms`));
			}, timeout);
			this.#queries.set(corr, (reply) => {
				clearTimeout(timer);
				this.#queries.delete(corr);
				resolve(reply);
			});
			const body = { op: 'query', client: this.clientId, lock: id };
			this.#mqtt.publish(this.#topic(id, 'request', this.clientId), JSON.stringify(body), {
				qos: 1,
				retain: false,
				properties: {
					responseTopic: `${this.#replyPrefix}${this.clientId}/q`,
					correlationData: encoder.encode(corr),
				},
			});
		});
	}

	/**
	 * Release every lock and disconnect normally (no will). Resolves when
	 * the connection is closed.
	 * @returns {Promise<void>}
	 */
	close() {
		if (this.#closed) {
			return Promise.resolve();
		}
		this.releaseAll();
		this.#closed = true;
		for (const h of [...this.#handles.values()]) {
			h._close();
		}
		if (this.#onPageHide) {
			window.removeEventListener('pagehide', this.#onPageHide);
		}
		if (this.#onVisible) {
			document.removeEventListener('visibilitychange', this.#onVisible);
		}
		return new Promise((resolve) => this.#mqtt.end(false, {}, () => resolve()));
	}

	// --- called by handles --------------------------------------------------

	/**
	 * @internal publish one request (topics.md, "Requests") on the request
	 * topic bound to our client id. While the broker is unreachable nothing
	 * is sent: a live handle asks again after the reconnect, and a release
	 * is kept and sent then, with the new connection's conn.
	 */
	_send(lockId, op, extra = {}) {
		if (!this.#brokerUp) {
			if (op === 'release') {
				this.#pendingReleases.add(lockId);
			}
			return;
		}
		const body = {
			op,
			client: this.clientId,
			session: this.session,
			conn: this.conn,
			user: this.user,
			...extra,
		};
		this.#mqtt.publish(this.#topic(lockId, 'request', this.clientId), JSON.stringify(body),
		    { qos: 1, retain: false }, op === 'release' ? this.#trackRelease(lockId) : undefined);
	}

	/** @internal an acquire, with a ticket when this client has one */
	_sendAcquire(handle, extra) {
		if (this.#ticketSource === null) {
			this._send(handle.id, 'acquire', extra);
			return;
		}
		const conn = this.conn;
		this.#getTicket().then((ticket) => {
			// Asked again since, or ended meanwhile: this one is moot.
			if (this.#handles.get(handle.id) === handle && this.conn === conn) {
				this._send(handle.id, 'acquire', { ...extra, ticket });
			}
		}, (err) => {
			this._emit('error', { code: 'ticket-fetch', message: String(err?.message ?? err), lock: handle.id });
			if (this.#handles.get(handle.id) === handle) {
				handle._onEvent({ event: 'error', lock: handle.id, code: 'ticket-fetch',
				    message: `no ticket: ${String(err?.message ?? err)}` });
			}
		});
	}

	/** @internal true if a fresh ticket can be asked for */
	_canRefreshTicket() {
		return typeof this.#ticketSource === 'function';
	}

	/** @internal the ticket was refused as expired: ask for another next time */
	_invalidateTicket() {
		this.#ticket = null;
	}

	/**
	 * @internal the coordinator time before which no deadline ends after it
	 * came back (topics.md, "After an outage"), or 0
	 */
	_returnFloor() {
		return this.#returnedAt === null ? 0 : this.#returnedAt + this.#timing.grace;
	}

	/** @internal a handle reached a final state */
	_forget(handle) {
		if (handle.token !== null && handle.token > (this.#endedTokens.get(handle.id) ?? -1)) {
			this.#endedTokens.set(handle.id, handle.token);
		}
		if (this.#handles.get(handle.id) === handle) {
			this.#handles.delete(handle.id);
			if (this.#brokerUp && !this.#closed) {
				this.#mqtt.unsubscribe(this.#topic(handle.id, 'owner'));
			}
		}
	}

	// --- internals ----------------------------------------------------------

	#topic(...levels) {
		return [this.#prefix, ...levels].join('/');
	}

	#will() {
		return {
			topic: this.#topic('_clients', this.clientId, 'will'),
			payload: JSON.stringify({ session: this.session, conn: this.conn }),
			qos: 1,
			retain: false,
		};
	}

	#setTicket(ticket) {
		if (typeof ticket !== 'string' || ticket === '' || byteLength(ticket) > 2048) {
			throw new TypeError('mqlock: a ticket must be a non-empty string of at most 2048 bytes');
		}
		this.#ticket = ticket;
		this.#ticketClaims = ticketClaims(ticket);
	}

	#getTicket() {
		const src = this.#ticketSource;
		if (typeof src === 'string') {
			return Promise.resolve(src);
		}
		const exp = this.#ticketClaims?.exp;
		const fresh = this.#ticket !== null &&
		    !(Number.isFinite(exp) && exp * 1000 - TICKET_REFRESH_MS <= this.now());
		if (fresh) {
			return Promise.resolve(this.#ticket);
		}
		if (!this.#ticketPromise) {
			this.#ticketPromise = Promise.resolve()
				.then(() => src({ clientId: this.clientId }))
				.then((t) => {
					this.#setTicket(t);
					const c = this.#ticketClaims?.client;
					if (typeof c === 'string' && c !== this.clientId) {
						throw new Error(`the ticket is for client id ${c}, not ${this.clientId}`);
					}
					return t;
				})
				.finally(() => {
					this.#ticketPromise = null;
				});
		}
		return this.#ticketPromise;
	}

	// A release that the broker has not acknowledged when the connection
	// ends may never have arrived: it is sent again after the reconnect
	// (a copy that did arrive makes the second one `ignored`).
	#trackRelease(lockId) {
		this.#unackedReleases.set(lockId, (this.#unackedReleases.get(lockId) ?? 0) + 1);
		return (err) => {
			const n = this.#unackedReleases.get(lockId);
			if (n === undefined) {
				return;
			}
			if (n <= 1) {
				this.#unackedReleases.delete(lockId);
			} else {
				this.#unackedReleases.set(lockId, n - 1);
			}
			if (err) {
				this.#pendingReleases.add(lockId);
			}
		};
	}

	#noteNow(now) {
		if (!isMs(now)) {
			return;
		}
		const at = Date.now();
		const before = this.clockOffset;
		this.#clock.push({ offset: now - at, at });
		if (this.#clock.length > CLOCK_SAMPLES) {
			this.#clock.shift();
		}
		if (Math.abs(this.clockOffset - before) > 250) {
			for (const h of this.#handles.values()) {
				h._rearm();
			}
		}
	}

	#onConnect() {
		this.#brokerUp = true;
		this.#lastRx = Date.now();
		// Subscriptions first: the broker handles one connection's packets in
		// order, so every answer to the requests below finds them in place.
		// Events are the coordinator's alone and never retained: retain
		// handling 2 asks the broker not to send a retained copy, and
		// #onMessage drops one if it comes anyway.
		this.#mqtt.subscribe(this.#topic('_clients', this.clientId, 'events'), { qos: 1, rh: 2 });
		const topics = [
			this.#topic('_coordinator', 'status'),
			`${this.#replyPrefix}${this.clientId}/#`,
			...[...this.#handles.keys()].map((id) => this.#topic(id, 'owner')),
		];
		this.#mqtt.subscribe(topics, { qos: 1 });
		for (const id of this.#pendingReleases) {
			this._send(id, 'release');
		}
		this.#pendingReleases.clear();
		this.#resendAcquires();
		this._emit('connect', { conn: this.conn });
		this.#updateOffline();
	}

	#onClose() {
		const wasUp = this.#brokerUp;
		this.#brokerUp = false;
		for (const id of this.#unackedReleases.keys()) {
			this.#pendingReleases.add(id);
		}
		this.#unackedReleases.clear();
		if (wasUp) {
			this._emit('disconnect', {});
		}
		this.#updateOffline();
	}

	#resendAcquires() {
		for (const h of this.#handles.values()) {
			h._acquire(true);
		}
	}

	#onMessage(topic, payload, packet) {
		const pre = this.#prefix + '/';
		const replies = `${this.#replyPrefix}${this.clientId}/`;
		if (topic.startsWith(replies)) {
			this.#onReply(payload, packet);
			return;
		}
		if (!topic.startsWith(pre)) {
			return;
		}
		const rest = topic.slice(pre.length);
		if (rest === `_clients/${this.clientId}/events`) {
			// Only the coordinator writes events, and never retained: a
			// retained one was put there by someone else.
			if (packet?.retain) {
				return;
			}
			const ev = parseJson(payload);
			if (!ev || typeof ev.event !== 'string') {
				return;
			}
			this.#noteNow(ev.now);
			const h = typeof ev.lock === 'string' ? this.#handles.get(ev.lock) : undefined;
			// Events of a lock without a live handle are ignored: every handle
			// that ends while the coordinator may still count it sends a
			// release, and the coordinator handles that release after
			// everything that produced these events.
			if (h) {
				h._onEvent(ev);
			} else if (ev.event === 'error') {
				this._emit('error', { code: ev.code, message: ev.message, lock: ev.lock ?? null });
			}
			return;
		}
		if (rest === '_coordinator/status') {
			this.#onStatus(parseJson(payload));
			return;
		}
		const slash = rest.indexOf('/');
		if (slash > 0 && rest.slice(slash + 1) === 'owner') {
			const h = this.#handles.get(rest.slice(0, slash));
			// An empty payload (a cleared owner message) means free.
			h?._onOwner(parseJson(payload));
		}
	}

	#onReply(payload, packet) {
		const corr = packet?.properties?.correlationData;
		if (!corr) {
			return;
		}
		const key = new TextDecoder().decode(corr);
		const done = this.#queries.get(key);
		const reply = parseJson(payload);
		if (done && reply) {
			this.#noteNow(reply.now);
			done(reply);
		}
	}

	#onStatus(st) {
		const wasOnline = this.#coordinator?.state === 'online';
		this.#coordinator = st;
		if (st && st.state === 'online') {
			this.#timing = {
				grace: positiveMs(st.grace, COORDINATOR_DEFAULTS.grace),
				idle_timeout: positiveMs(st.idle_timeout, COORDINATOR_DEFAULTS.idle_timeout),
				idle_warning: positiveMs(st.idle_warning, COORDINATOR_DEFAULTS.idle_warning),
				idle_policy: st.idle_policy === 'contended' || st.idle_policy === 'always'
				    ? st.idle_policy : COORDINATOR_DEFAULTS.idle_policy,
				keepalive: Number.isFinite(st.keepalive) && st.keepalive > 0 ? st.keepalive : COORDINATOR_DEFAULTS.keepalive,
				tickets: typeof st.tickets === 'string' ? st.tickets : COORDINATOR_DEFAULTS.tickets,
			};
		}
		this._emit('status', st);
		if (st && st.state === 'online' && Number.isSafeInteger(st.epoch)) {
			const prev = this.#epoch;
			this.#epoch = st.epoch;
			// Back after an outage: no deadline ends sooner than one grace
			// period after it returned (topics.md, "After an outage").
			if ((prev !== null && st.epoch !== prev) || (this.#coordinator && !wasOnline && prev !== null)) {
				this.#returnedAt = isMs(st.since) ? st.since : this.now();
			}
			// A coordinator that (re)started may have come back from an older
			// journal or lost requests we sent while it was down: ask again.
			// The first status after a connect needs nothing: #onConnect
			// already sent every acquire.
			if (prev !== null && st.epoch !== prev) {
				this.#resendAcquires();
			}
		}
		this.#updateOffline();
		for (const h of [...this.#handles.values()]) {
			h._rearm();
		}
	}

	#updateOffline() {
		const coordDown = this.#coordinator !== null && this.#coordinator.state !== 'online';
		const offline = !this.#brokerUp || coordDown;
		const reason = !this.#brokerUp ? 'broker' : 'coordinator';
		if (offline === this.#offline && (!offline || reason === this.#offlineReason)) {
			return;
		}
		this.#offline = offline;
		this.#offlineReason = offline ? reason : null;
		this._emit(offline ? 'offline' : 'online', { reason });
		for (const h of [...this.#handles.values()]) {
			h._onOffline(offline, reason);
		}
	}

	/** 'broker' or 'coordinator' while offline, else null. */
	get offlineReason() {
		return this.#offline ? this.#offlineReason ?? 'broker' : null;
	}
}

/**
 * Connect to the broker and return a client. Nothing is locked yet: call
 * client.lock(id).
 *
 * @param {object} options
 * @param {string} options.url  broker URL: ws://host:port in a browser, mqtt://host:port in Node
 * @param {string} [options.user]  the name others see (at most 128 bytes; a ticket's name wins)
 * @param {string} [options.clientId]  the MQTT client id (unique per live connection); default from the ticket, else random
 * @param {string|function} [options.ticket]  a ticket (JWT) for this client id, or a function ({clientId}) => ticket or Promise of one, asked again before expiry
 * @param {string} [options.prefix='locks']  mqlockd's --prefix
 * @param {string} [options.replyPrefix='replies/']  mqlockd's --reply-prefix
 * @param {number} [options.keepalive=10]  MQTT keepalive, s
 * @param {number} [options.activityInterval=5]  s between activity requests at most
 * @param {number} [options.reconnectPeriod=1000]  ms between reconnect attempts
 * @param {string} [options.clientIdPrefix='ed']  a random client id is this, '-' and 16 random hex digits
 * @param {string} [options.username]  broker username
 * @param {string} [options.password]  broker password
 * @param {boolean} [options.releaseOnPageHide=true]  browser only
 * @param {object} [options.mqttOptions]  more mqtt.js options (ours win on conflicts)
 * @param {object} [options.mqtt]  the mqtt.js module to use instead of the imported one
 * @returns {MqlockClient}
 */
export function connect(options) {
	return new MqlockClient(options ?? {});
}

export default {
	connect,
	lockIdProblem,
	clientIdProblem,
	randomHex,
	ticketClaims,
	DEFAULTS,
	COORDINATOR_DEFAULTS,
	PROTOCOL,
};
