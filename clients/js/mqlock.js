// mqlock: the JavaScript client of mqlockd, for browsers and Node.js.
//
// It speaks protocol 1 of topics.md (the contract) over mqtt.js 5: one MQTT
// connection per page or process, with its own random client id and secret
// session, a Last Will that names both, and one handle per lock that turns
// the coordinator's events and owner messages into a few plain states:
//
//   pending   acquire sent, no answer yet
//   waiting   queued behind the holder
//   editing   held: the page may edit until it is told otherwise
//   lost      held, then taken away (idle, disconnect, admin) or fenced locally
//   released  given back by release() (or pagehide)
//   busy      try-lock ({wait: false}) found the lock held
//   failed    the coordinator refused the acquire (event `error`)
//
// lost, released, busy and failed are final: take the lock again with a new
// lock() call. Being offline (broker unreachable or coordinator down) is a
// flag beside the state, not a state: a page keeps its place while offline.

import mqtt from 'mqtt';

// Node 18 has no global WebCrypto; browsers and Node 20+ do.
const webcrypto = globalThis.crypto ?? (await import('node:crypto')).webcrypto;

export const PROTOCOL = 1;

export const DEFAULTS = Object.freeze({
	prefix: 'locks',
	keepalive: 60, // s; a browser tab must survive timer throttling
	grace: 10, // s; mqlockd's --grace, for local fencing while disconnected
	activityInterval: 5, // s; at most one activity request per interval
	reconnectPeriod: 1000, // ms between reconnect attempts
	clientIdPrefix: 'ed',
});

const IN_BROWSER = typeof window !== 'undefined' && typeof document !== 'undefined';

const FINAL = new Set(['lost', 'released', 'busy', 'failed']);

const encoder = new TextEncoder();

// Longest setTimeout delay browsers and Node honour (about 24.8 days).
const MAX_TIMER_MS = 2 ** 31 - 1;

function byteLength(s) {
	return encoder.encode(s).length;
}

// A lone surrogate has no UTF-8 form: TextEncoder would replace it by U+FFFD
// and the broker would see another name than the caller meant.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const BAD_TOPIC_CHAR = /[/+#\u0000-\u001F\u007F]/;

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
	#state = 'pending';
	#token = null;
	#idleDeadline = null;
	#warning = null;
	#position = null;
	#owner = null;
	#lost = null;
	#error = null;
	#fenceTimer = null;
	#lastActivity = 0;
	#activityTimer = null;
	#staleUpTo;
	#resync = false;

	/** @internal */
	constructor(client, id, wait, staleUpTo) {
		super();
		this.#client = client;
		this.#wait = wait;
		// Grants up to this token belong to an earlier handle of this lock
		// in this client and may still be on their way: never ours.
		this.#staleUpTo = staleUpTo;
		this.id = id;
	}

	/** 'pending' | 'waiting' | 'editing' | 'lost' | 'released' | 'busy' | 'failed' */
	get state() {
		return this.#state;
	}

	/** True in the final states: lost, released, busy, failed. */
	get done() {
		return FINAL.has(this.#state);
	}

	/** True while editing is allowed: state editing and the local deadline not passed. */
	get editing() {
		return this.#state === 'editing';
	}

	/** The fencing token while editing (and the lost one after lost), else null. */
	get token() {
		return this.#token;
	}

	/** ms: when the holder loses the lock unless it shows activity; null unless editing. */
	get idleDeadline() {
		return this.#state === 'editing' ? this.#idleDeadline : null;
	}

	/** ms: the deadline of the last idle-warning, until activity moves the deadline. */
	get warning() {
		return this.#state === 'editing' ? this.#warning : null;
	}

	/** 1-based place in the queue while waiting, else null. */
	get position() {
		return this.#state === 'waiting' ? this.#position : null;
	}

	/** The last owner message of this lock (topics.md), or null if none was seen. */
	get owner() {
		return this.#owner;
	}

	/** The holder {client, user, connected} from the owner message, or null. */
	get holder() {
		return this.#owner?.owner ?? null;
	}

	/** {reason, message, token, local} after lost, else null. */
	get lost() {
		return this.#lost;
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
	 * interval). Does nothing unless editing.
	 */
	touch() {
		if (this.#state !== 'editing' || this.#checkFence()) {
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
				if (this.#state === 'editing') {
					this.#sendActivity();
				}
			}, due);
		}
	}

	/**
	 * Give the lock back (or leave the queue). The handle ends in state
	 * released. Safe to call in any state.
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
			error: this.#error,
			offline: this.offline,
		};
	}

	// --- called by the client ---------------------------------------------

	/**
	 * @internal the acquire request for this handle; `resync` after a
	 * reconnect or a coordinator restart, when the answer tells whether the
	 * lock survived
	 */
	_acquire(resync = false) {
		const extra = this.#wait ? {} : { wait: false };
		this.#resync = resync && this.#state === 'editing';
		this.#client._send(this.id, 'acquire', extra);
	}

	/** @internal an event from P/_clients/<id>/events for this lock */
	_onEvent(ev) {
		const resync = this.#resync;
		if (ev.event === 'granted' || ev.event === 'queued' || ev.event === 'error') {
			this.#resync = false;
		}
		switch (ev.event) {
		case 'granted':
			this.#onGranted(ev, resync);
			break;
		case 'queued':
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
				this.#lose(ev.reason, typeof ev.message === 'string' ? ev.message : '', false);
			}
			break;
		case 'idle-warning':
			if (this.#state === 'editing' && isMs(ev.deadline)) {
				this.#warning = ev.deadline;
				this._emit('idle-warning', { deadline: ev.deadline });
				this.#changed();
			}
			break;
		case 'error':
			this.#onError(ev);
			break;
		default:
			break;
		}
	}

	/** @internal the retained owner message of this lock, or null when cleared */
	_onOwner(msg) {
		if (msg && msg.v !== PROTOCOL) {
			return;
		}
		this.#owner = msg;
		// Activity is not answered: the new deadline shows in the owner
		// message. Only a later deadline for our own token counts, so that a
		// late message never shortens what the granted event said.
		if (this.#state === 'editing' && msg && msg.token === this.#token &&
		    msg.owner?.client === this.#client.clientId && isMs(msg.idle_deadline) &&
		    msg.idle_deadline > this.#idleDeadline) {
			this.#idleDeadline = msg.idle_deadline;
			this.#warning = null;
			this.#armFence();
			this._emit('editing', { token: this.#token, idle_deadline: this.#idleDeadline });
		} else if (this.#state === 'waiting') {
			this._emit('waiting', this.#waitingDetail());
		}
		this._emit('owner', msg);
		this.#changed();
	}

	/** @internal the broker connection or the coordinator went away or came back */
	_onOffline(offline, reason) {
		if (this.done) {
			return;
		}
		this._emit(offline ? 'offline' : 'online', { reason });
		this.#changed();
	}

	/** @internal the broker connection has been gone longer than the grace hint */
	_onOfflineExpired() {
		if (this.#state === 'editing') {
			this.#lose('offline-expired', 'no connection to the lock service for longer than its grace period', true);
		}
	}

	/**
	 * @internal stop editing now if the idle deadline has passed (timers
	 * of hidden tabs run late)
	 */
	_checkFence() {
		this.#checkFence();
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
			// The grant starts the idle clock: it counts as the first activity.
			this.#lastActivity = Date.now();
			this.#armFence();
			this._emit('editing', { token: ev.token, idle_deadline: ev.idle_deadline });
			this.#changed();
			break;
		case 'editing':
			if (ev.token !== this.#token && resync) {
				// Re-sent acquire after a reconnect or a coordinator restart,
				// answered with a new grant: the old one was revoked while we
				// could not hear it, and whatever we typed since is stale.
				this.#lose('disconnect', 'the lock was lost while the connection was down', false);
				this.#client._send(this.id, 'release');
			} else if (ev.token > this.#token) {
				// The first grant was an answer meant for an earlier handle of
				// this lock that ended before it arrived; this one is ours.
				this.#token = ev.token;
				this.#idleDeadline = ev.idle_deadline;
				this.#warning = null;
				this.#armFence();
				this._emit('editing', { token: ev.token, idle_deadline: ev.idle_deadline });
				this.#changed();
			} else if (ev.token === this.#token && ev.idle_deadline > this.#idleDeadline) {
				this.#idleDeadline = ev.idle_deadline;
				this.#warning = null;
				this.#armFence();
				this._emit('editing', { token: ev.token, idle_deadline: ev.idle_deadline });
				this.#changed();
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
				this.#lose('disconnect', 'the lock was lost while the connection was down', false);
				this.#client._send(this.id, 'release');
			}
			break;
		default:
			break;
		}
	}

	#onError(ev) {
		const detail = {
			code: typeof ev.code === 'string' ? ev.code : 'internal',
			message: typeof ev.message === 'string' ? ev.message : '',
		};
		if (this.#state === 'pending') {
			this.#error = detail;
			this.#finish('failed');
		}
		this._emit('error', detail);
		this.#changed();
	}

	#waitingDetail() {
		return { position: this.#position, holder: this.holder, owner: this.#owner };
	}

	#sendActivity() {
		this.#lastActivity = Date.now();
		this.#client._send(this.id, 'activity');
	}

	// Self-fencing: stop editing at the idle deadline even if the revocation
	// never arrives (coordinator down, connection half-open, tab asleep).
	#armFence() {
		clearTimeout(this.#fenceTimer);
		const ms = Math.min(Math.max(this.#idleDeadline - Date.now(), 0), MAX_TIMER_MS);
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
		const left = this.#idleDeadline - Date.now();
		if (left > 0) {
			if (left > MAX_TIMER_MS || this.#fenceTimer === null) {
				this.#armFence();
			}
			return false;
		}
		this.#lose('idle', 'the idle deadline passed without activity', true);
		// Tell the coordinator too: if it has not revoked yet (clocks differ
		// or it is down) the lock goes on to the next waiter sooner.
		this.#client._send(this.id, 'release');
		return true;
	}

	#lose(reason, message, local) {
		const token = this.#token;
		this.#lost = { reason, message, token, local };
		this.#finish('lost');
		this._emit('lost', { reason, message, token, local });
		this.#changed();
	}

	#finish(state) {
		this.#state = state;
		this.#warning = null;
		this.#position = null;
		clearTimeout(this.#fenceTimer);
		clearTimeout(this.#activityTimer);
		this.#fenceTimer = null;
		this.#activityTimer = null;
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
	#handles = new Map();
	#endedTokens = new Map();
	#brokerUp = false;
	#coordinator = null;
	#epoch = null;
	#offline = true;
	#offlineTimer = null;
	#closed = false;
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
		this.user = opts.user ?? '';
		if (typeof this.user !== 'string' || byteLength(this.user) > 128) {
			throw new TypeError('connect: user must be a string of at most 128 bytes');
		}
		this.clientId = opts.clientId ?? `${opts.clientIdPrefix ?? DEFAULTS.clientIdPrefix}-${randomHex(8)}`;
		const cp = clientIdProblem(this.clientId);
		if (cp) {
			throw new TypeError(`connect: ${cp}`);
		}
		this.session = randomHex(16);
		this.conn = 1;
		this.keepalive = opts.keepalive ?? DEFAULTS.keepalive;
		this.grace = opts.grace ?? DEFAULTS.grace;
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
		mq.on('message', (topic, payload) => this.#onMessage(topic, payload));
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

	/** True while the broker is unreachable or the coordinator says offline. */
	get offline() {
		return this.#offline;
	}

	/**
	 * Ask for lock `id` and return its handle. While a handle for `id` is
	 * still live (pending, waiting or editing) the same handle is returned.
	 * `wait: false` is a try-lock: the handle ends in busy if someone else
	 * holds the lock. Throws TypeError for an invalid lock id.
	 * @param {string} id
	 * @param {{wait?: boolean}} [options]
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
			return live;
		}
		const h = new LockHandle(this, id, options.wait !== false, this.#endedTokens.get(id) ?? -1);
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
		clearTimeout(this.#offlineTimer);
		if (this.#onPageHide) {
			window.removeEventListener('pagehide', this.#onPageHide);
		}
		if (this.#onVisible) {
			document.removeEventListener('visibilitychange', this.#onVisible);
		}
		return new Promise((resolve) => this.#mqtt.end(false, {}, () => resolve()));
	}

	// --- called by handles --------------------------------------------------

	/** @internal publish one request (topics.md, "Requests") */
	_send(lockId, op, extra = {}) {
		const body = {
			op,
			client: this.clientId,
			session: this.session,
			conn: this.conn,
			user: this.user,
			...extra,
		};
		this.#mqtt.publish(this.#topic(lockId, 'request'), JSON.stringify(body), { qos: 1, retain: false });
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

	#onConnect() {
		this.#brokerUp = true;
		clearTimeout(this.#offlineTimer);
		this.#offlineTimer = null;
		// Subscriptions first: the broker handles one connection's packets in
		// order, so every answer to the requests below finds them in place.
		const topics = [
			this.#topic('_clients', this.clientId, 'events'),
			this.#topic('_coordinator', 'status'),
			...[...this.#handles.keys()].map((id) => this.#topic(id, 'owner')),
		];
		this.#mqtt.subscribe(topics, { qos: 1 });
		this.#resendAcquires();
		this._emit('connect', { conn: this.conn });
		this.#updateOffline();
	}

	#onClose() {
		const wasUp = this.#brokerUp;
		this.#brokerUp = false;
		if (wasUp) {
			this._emit('disconnect', {});
		}
		if (wasUp && !this.#closed && this.#offlineTimer === null) {
			// Past the coordinator's grace our locks are gone anyway; stop
			// editing rather than type into a lock someone else may have.
			this.#offlineTimer = setTimeout(() => {
				for (const h of [...this.#handles.values()]) {
					h._onOfflineExpired();
				}
			}, Math.min(this.grace * 1000, MAX_TIMER_MS));
		}
		this.#updateOffline();
	}

	#resendAcquires() {
		for (const h of this.#handles.values()) {
			h._acquire(true);
		}
	}

	#onMessage(topic, payload) {
		const pre = this.#prefix + '/';
		if (!topic.startsWith(pre)) {
			return;
		}
		const rest = topic.slice(pre.length);
		if (rest === `_clients/${this.clientId}/events`) {
			const ev = parseJson(payload);
			if (!ev || typeof ev.event !== 'string') {
				return;
			}
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
			h?._onOwner(parseJson(payload));
		}
	}

	#onStatus(st) {
		this.#coordinator = st;
		this._emit('status', st);
		if (st && st.state === 'online' && Number.isSafeInteger(st.epoch)) {
			const prev = this.#epoch;
			this.#epoch = st.epoch;
			// A coordinator that (re)started may have come back from an older
			// journal or lost requests we sent while it was down: ask again.
			// The first status after a connect needs nothing: #onConnect
			// already sent every acquire.
			if (prev !== null && st.epoch !== prev) {
				this.#resendAcquires();
			}
		}
		this.#updateOffline();
	}

	#updateOffline() {
		const coordDown = this.#coordinator !== null && this.#coordinator.state !== 'online';
		const offline = !this.#brokerUp || coordDown;
		if (offline === this.#offline) {
			return;
		}
		this.#offline = offline;
		const reason = !this.#brokerUp ? 'broker' : 'coordinator';
		this._emit(offline ? 'offline' : 'online', { reason });
		for (const h of [...this.#handles.values()]) {
			h._onOffline(offline, reason);
		}
	}
}

/**
 * Connect to the broker and return a client. Nothing is locked yet: call
 * client.lock(id).
 *
 * @param {object} options
 * @param {string} options.url  broker URL: ws://host:port in a browser, mqtt://host:port in Node
 * @param {string} [options.user]  the name others see (at most 128 bytes)
 * @param {string} [options.prefix='locks']  mqlockd's --prefix
 * @param {number} [options.keepalive=60]  MQTT keepalive, s
 * @param {number} [options.grace=10]  mqlockd's --grace, s: how long to keep editing while disconnected
 * @param {number} [options.activityInterval=5]  s between activity requests at most
 * @param {number} [options.reconnectPeriod=1000]  ms between reconnect attempts
 * @param {string} [options.clientIdPrefix='ed']  the client id is this, '-' and 16 random hex digits
 * @param {string} [options.clientId]  a client id of your own (must be unique per live connection)
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

export default { connect, lockIdProblem, clientIdProblem, randomHex, DEFAULTS, PROTOCOL };
