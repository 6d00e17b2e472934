// <mqlock-lock>: a drop-in edit-lock banner for any page, on top of mqlock.js.
//
//   <mqlock-lock lock="doc-1" user="Alice">
//     <textarea name="body"></textarea>
//   </mqlock-lock>
//
// It takes the lock when it is put in the page, shows above the editor who
// edits and who waits, makes the editor read-only (not disabled: it stays
// focusable and readable) while the user waits, keeps what the user typed
// as a draft in sessionStorage through every turn of events, and says in
// plain words why things happen. The page keeps its editor and its saving:
// it listens to the element's events, saves with `token`, and calls
// saved() when a save went through. clients/js/README.md documents the
// attributes, properties, events, slots and CSS custom properties.
//
// `mqlock` and `mqtt` are bare module names: map them with an import map
// (web/demo does), or let a bundler resolve them.

import { connect, lockIdProblem } from 'mqlock';

const TAG = 'mqlock-lock';

// One connection per page and settings, shared by the elements using it.
const shared = new Map();

function sharedClient(opts) {
	const key = JSON.stringify([opts.url, opts.prefix ?? '', opts.user ?? '', opts.clientId ?? '', opts.ticketUrl ?? '']);
	let entry = shared.get(key);
	if (!entry) {
		const options = { url: opts.url, user: opts.user ?? '' };
		if (opts.prefix) {
			options.prefix = opts.prefix;
		}
		if (opts.clientId) {
			options.clientId = opts.clientId;
		}
		if (opts.ticketUrl) {
			options.ticket = ({ clientId }) => fetchTicket(opts.ticketUrl, clientId);
		}
		entry = { client: connect(options), users: 0, key };
		shared.set(key, entry);
	}
	entry.users += 1;
	return entry;
}

function unshare(entry) {
	entry.users -= 1;
	if (entry.users === 0) {
		shared.delete(entry.key);
		entry.client.close();
	}
}

// GET ticket-url?client=<id>: the application answers with the ticket, as
// JSON {"ticket": "..."} or as plain text.
async function fetchTicket(url, clientId) {
	const u = new URL(url, document.baseURI);
	u.searchParams.set('client', clientId);
	const r = await fetch(u, { credentials: 'same-origin', headers: { Accept: 'application/json, text/plain' } });
	if (!r.ok) {
		throw new Error(`ticket: HTTP ${r.status}`);
	}
	const text = (await r.text()).trim();
	if (text.startsWith('{')) {
		const j = JSON.parse(text);
		if (typeof j.ticket !== 'string') {
			throw new Error('ticket: the answer has no "ticket" string');
		}
		return j.ticket;
	}
	return text;
}

// --- words ------------------------------------------------------------------

function duration(ms) {
	const s = Math.max(0, Math.round(ms / 1000));
	if (s < 60) {
		return s === 1 ? '1 second' : `${s} seconds`;
	}
	const m = Math.round(s / 60);
	if (m < 60) {
		return m === 1 ? '1 minute' : `${m} minutes`;
	}
	const h = Math.floor(m / 60);
	const rest = m % 60;
	return `${h} h${rest ? ` ${rest} min` : ''}`;
}

// "for 12 min": short, for running text that is re-read often.
function shortDuration(ms) {
	const s = Math.max(0, ms / 1000);
	if (s < 60) {
		return 'less than a minute';
	}
	const m = Math.floor(s / 60);
	if (m < 60) {
		return `${m} min`;
	}
	const h = Math.floor(m / 60);
	return `${h} h${m % 60 ? ` ${m % 60} min` : ''}`;
}

function countdown(ms) {
	const s = Math.max(0, Math.ceil(ms / 1000));
	return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

function place(n) {
	return n === 1 ? 'you are next' : `you are number ${n} in line`;
}

function list(names) {
	if (names.length <= 1) {
		return names.join('');
	}
	return `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`;
}

const FAILED = {
	'ticket-expired': 'Your permission to edit has expired. Reload the page to get a new one.',
	'ticket-invalid': 'Your permission to edit could not be checked. Reload the page to try again.',
	'ticket-mismatch': 'Your permission to edit belongs to another page. Reload the page to try again.',
	'ticket-lock': 'You may not edit this document.',
	'ticket-required': 'Editing needs a sign-in that this page could not provide. Reload the page to try again.',
	'ticket-fetch': 'Reload the page to try again.',
	limit: 'Too many people are waiting, or too many requests came from this page. Try again in a moment.',
	'session-mismatch': 'The lock service did not recognise this page. Reload the page to try again.',
};

// --- styles -----------------------------------------------------------------

const STYLE = `
:host {
	display: block;
	font: var(--mqlock-font, inherit);
	color: var(--mqlock-fg, #1b2230);
}
:host([hidden]) { display: none; }
.banner {
	display: flex;
	flex-wrap: wrap;
	align-items: center;
	gap: 0.5rem 1rem;
	margin: 0 0 var(--mqlock-gap, 0.75rem);
	padding: 0.75rem 1rem;
	border: 1px solid var(--tone-border);
	border-left-width: 5px;
	border-radius: var(--mqlock-radius, 6px);
	background: var(--tone-bg);
	color: var(--tone-fg);
}
.text { flex: 1 1 18rem; min-width: 0; }
.headline { margin: 0; font-weight: 600; }
.detail, .note { margin: 0.2rem 0 0; }
.note[hidden], .detail:empty, [hidden] { display: none !important; }
.countdown { font-variant-numeric: tabular-nums; font-weight: 700; }
.actions {
	display: flex;
	flex-wrap: wrap;
	gap: 0.5rem;
	flex: 0 1 auto;
}
button {
	font: inherit;
	min-height: 2.5rem;
	padding: 0.4rem 0.9rem;
	border-radius: var(--mqlock-radius, 6px);
	border: 1px solid var(--mqlock-button-border, #5c6578);
	background: var(--mqlock-button-bg, #ffffff);
	color: var(--mqlock-button-fg, #1b2230);
	cursor: pointer;
}
button.primary {
	border-color: var(--mqlock-primary-bg, #1f4fbf);
	background: var(--mqlock-primary-bg, #1f4fbf);
	color: var(--mqlock-primary-fg, #ffffff);
}
button:focus-visible {
	outline: 3px solid var(--mqlock-focus, #1f4fbf);
	outline-offset: 2px;
}
.banner[data-tone="info"] {
	--tone-bg: var(--mqlock-info-bg, #eef3fd);
	--tone-border: var(--mqlock-info-border, #2f5fc4);
	--tone-fg: var(--mqlock-info-fg, #1b2230);
}
.banner[data-tone="ok"] {
	--tone-bg: var(--mqlock-ok-bg, #ebf6ee);
	--tone-border: var(--mqlock-ok-border, #2d7a45);
	--tone-fg: var(--mqlock-ok-fg, #1b2230);
}
.banner[data-tone="warn"] {
	--tone-bg: var(--mqlock-warn-bg, #fff5d6);
	--tone-border: var(--mqlock-warn-border, #9a6a00);
	--tone-fg: var(--mqlock-warn-fg, #1b2230);
}
.banner[data-tone="danger"] {
	--tone-bg: var(--mqlock-danger-bg, #fdeeee);
	--tone-border: var(--mqlock-danger-border, #b3261e);
	--tone-fg: var(--mqlock-danger-fg, #1b2230);
}
.banner[data-tone="muted"] {
	--tone-bg: var(--mqlock-muted-bg, #f0f1f4);
	--tone-border: var(--mqlock-muted-border, #6b7385);
	--tone-fg: var(--mqlock-muted-fg, #1b2230);
}
.sr-only {
	position: absolute;
	width: 1px;
	height: 1px;
	margin: -1px;
	padding: 0;
	overflow: hidden;
	clip: rect(0 0 0 0);
	white-space: nowrap;
	border: 0;
}
@media (max-width: 30rem) {
	.banner { padding: 0.7rem 0.75rem; }
	.actions { width: 100%; }
	.actions button { flex: 1 1 auto; }
}
`;

const TEMPLATE = `
<style>${STYLE}</style>
<section class="banner" part="banner" data-tone="muted" aria-label="Edit lock">
	<div class="text">
		<p class="headline" part="headline"></p>
		<p class="detail" part="detail"></p>
		<p class="note draft-note" part="note" hidden></p>
	</div>
	<div class="actions" part="actions">
		<button type="button" part="button" data-act="takeover" hidden>Edit here instead</button>
		<button type="button" part="button" data-act="still-here" hidden>I'm still here</button>
		<button type="button" part="button" data-act="done" hidden>Done editing</button>
		<button type="button" part="button" data-act="again" hidden>Wait for the lock again</button>
		<button type="button" part="button" data-act="notify" hidden>Notify me when it is my turn</button>
		<button type="button" part="button" data-act="stop" hidden>Stop waiting</button>
		<button type="button" part="button" data-act="copy" hidden>Copy my text</button>
		<button type="button" part="button" data-act="download" hidden>Download my text</button>
		<slot name="actions"></slot>
	</div>
</section>
<div class="sr-only" part="live" role="status" aria-live="polite" aria-atomic="true"></div>
<slot></slot>
`;

const EDITOR_SELECTOR = 'textarea, input:not([type]), input[type="text"], input[type="search"], [contenteditable]';

// Controls where the user may be typing something else: focus is not taken
// from them when the lock arrives.
function isTextEntry(el) {
	return !!el && (el.matches?.('textarea, input, select, [contenteditable]:not([contenteditable="false"])') ?? false);
}

/**
 * The <mqlock-lock> element. Attributes: lock (required), url, user, prefix,
 * client-id, ticket-url, for, notify. See clients/js/README.md.
 */
export class MqlockLockElement extends HTMLElement {
	static get observedAttributes() {
		return ['lock'];
	}

	#root;
	#els = {};
	#entry = null; // shared client entry, when the element made its client
	#client = null; // the client in use
	#ownClient = null; // a client set through the `client` property
	#handle = null;
	#offs = [];
	#handleOffs = [];
	#started = false;
	#state = 'idle';
	#view = 'connecting';
	#waited = false; // this handle waited before it got the lock
	#lastPosition = null;
	#takeoverFrom = false; // the next lock() asks for a take-over
	#restored = false;
	#stopReason = null; // 'done' or 'stop' for the released state
	#announced = new Set();
	#liveTimer = null;
	#ticker = null;
	#draftTimer = null;
	#baseTitle = null;
	#titleSet = null;
	#yourTurn = false;
	#problem = null;
	#docListeners = [];
	#dirty = false;
	#ticks = 0;
	#saidOffline = false;

	constructor() {
		super();
		this.#root = this.attachShadow({ mode: 'open' });
		this.#root.innerHTML = TEMPLATE;
		const $ = (sel) => this.#root.querySelector(sel);
		this.#els = {
			banner: $('.banner'),
			headline: $('.headline'),
			detail: $('.detail'),
			note: $('.draft-note'),
			live: $('[role="status"]'),
			buttons: Object.fromEntries([...this.#root.querySelectorAll('button[data-act]')]
				.map((b) => [b.dataset.act, b])),
		};
		this.#root.addEventListener('click', (e) => {
			const act = e.target.closest?.('button[data-act]')?.dataset.act;
			if (act) {
				this.#act(act);
			}
		});
	}

	// --- public API -----------------------------------------------------------

	/** The MqlockClient in use. Set it before the element is connected to use a client of your own. */
	get client() {
		return this.#client;
	}

	set client(c) {
		this.#ownClient = c ?? null;
		if (this.#started) {
			this.#stop();
			this.#start();
		}
	}

	/** The LockHandle of the current turn, or null. */
	get handle() {
		return this.#handle;
	}

	/** The handle's state: pending, waiting, editing, lost, released, dropped, busy, failed ('idle' before the start). */
	get state() {
		return this.#state;
	}

	/**
	 * What the banner shows: connecting, waiting, editing, idle-warning,
	 * unsure, lost, done, stopped, dropped, failed, invalid.
	 */
	get view() {
		return this.#view;
	}

	/** The fencing token while editing, else null. */
	get token() {
		return this.#handle?.editing ? this.#handle.token : null;
	}

	/** True while a save with `token` may go to the backend. */
	get canSave() {
		return !!this.#handle?.canSave;
	}

	/** The kept draft text (unsaved), or null. */
	get draft() {
		return this.#readDraft()?.text ?? null;
	}

	/** The editor element this lock guards, or null. */
	get editor() {
		const id = this.getAttribute('for');
		if (id) {
			return this.ownerDocument.getElementById(id);
		}
		return this.querySelector(EDITOR_SELECTOR);
	}

	/** Give the lock back (or leave the queue). */
	release() {
		this.#stopReason = this.#handle?.editing ? 'done' : 'stop';
		this.#handle?.release();
	}

	/** Ask for the lock again after lost, done, stopped, dropped or failed. */
	acquire() {
		if (this.#handle && !this.#handle.done) {
			return;
		}
		this.#lock();
	}

	/** Same user, other tab: take the lock over (see LockHandle.takeOver). */
	takeOver() {
		if (this.#handle && !this.#handle.done) {
			this.#handle.takeOver();
		} else {
			this.#takeoverFrom = true;
			this.#lock();
		}
	}

	/**
	 * The page saved the editor's text: forget the draft. Call it after the
	 * backend accepted a save.
	 */
	saved() {
		this.#clearDraft();
		this.#restored = false;
		this.#render();
	}

	/** Activity: the user is here (typing, pointer and focus call it already). */
	touch() {
		this.#handle?.touch();
	}

	// --- lifecycle ------------------------------------------------------------

	connectedCallback() {
		if (!this.#started) {
			// A microtask later, so that a page may still set `client`.
			queueMicrotask(() => {
				if (this.isConnected && !this.#started) {
					this.#start();
				}
			});
		}
	}

	disconnectedCallback() {
		// Moving the element in the page is not leaving it.
		queueMicrotask(() => {
			if (!this.isConnected && this.#started) {
				this.#stop();
			}
		});
	}

	attributeChangedCallback(name, oldValue, newValue) {
		if (name === 'lock' && this.#started && oldValue !== newValue) {
			this.#stop();
			this.#start();
		}
	}

	#start() {
		this.#started = true;
		this.#baseTitle = document.title;
		const lockId = this.getAttribute('lock') ?? '';
		this.#problem = lockIdProblem(lockId);
		this.#listenDocument();
		if (this.#problem) {
			this.#state = 'failed';
			this.#view = 'invalid';
			this.#render();
			return;
		}
		if (this.#ownClient) {
			this.#client = this.#ownClient;
		} else {
			this.#entry = sharedClient({
				url: this.getAttribute('url') || `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/`,
				user: this.getAttribute('user') ?? '',
				prefix: this.getAttribute('prefix') || undefined,
				clientId: this.getAttribute('client-id') || undefined,
				ticketUrl: this.getAttribute('ticket-url') || undefined,
			});
			this.#client = this.#entry.client;
		}
		const c = this.#client;
		this.#offs.push(c.on('offline', () => this.#onOffline()), c.on('online', () => this.#onOnline()),
		    c.on('status', () => this.#render()));
		this.#ticker = setInterval(() => this.#tick(), 250);
		this.#lock();
	}

	#stop() {
		this.#started = false;
		this.#handle?.release();
		this.#dropHandle();
		for (const off of this.#offs) {
			off();
		}
		this.#offs = [];
		for (const [target, type, fn, opts] of this.#docListeners) {
			target.removeEventListener(type, fn, opts);
		}
		this.#docListeners = [];
		clearInterval(this.#ticker);
		clearTimeout(this.#liveTimer);
		this.#flushDraft();
		if (this.#entry) {
			unshare(this.#entry);
			this.#entry = null;
		}
		this.#client = null;
		this.#setTitle(null);
	}

	#lock() {
		this.#dropHandle();
		const c = this.#client;
		if (!c) {
			return;
		}
		const lockId = this.getAttribute('lock');
		this.#waited = false;
		this.#lastPosition = null;
		this.#stopReason = null;
		this.#announced.clear();
		const takeover = this.#takeoverFrom;
		this.#takeoverFrom = false;
		const h = c.lock(lockId, takeover ? { takeover: true } : {});
		this.#handle = h;
		this.#handleOffs.push(h.on('change', () => this.#onChange()));
		this.#onChange();
	}

	#dropHandle() {
		for (const off of this.#handleOffs) {
			off();
		}
		this.#handleOffs = [];
		this.#handle = null;
	}

	#listenDocument() {
		const on = (target, type, fn, opts) => {
			target.addEventListener(type, fn, opts);
			this.#docListeners.push([target, type, fn, opts]);
		};
		// Activity: typing, pointer, focus anywhere in the page. touch() sends
		// at most one request per interval, so every event may call it.
		const activity = () => {
			if (this.#handle?.editing) {
				this.#handle.touch();
			}
		};
		for (const type of ['keydown', 'input', 'pointerdown', 'pointermove', 'wheel', 'focusin']) {
			on(document, type, activity, { passive: true, capture: true });
		}
		// "Your turn" stays in the title until the user does something here.
		const seen = () => {
			if (this.#yourTurn && document.visibilityState === 'visible') {
				this.#yourTurn = false;
				this.#updateTitle();
			}
		};
		for (const type of ['keydown', 'pointerdown']) {
			on(document, type, seen, { passive: true, capture: true });
		}
		// What the user types is their draft until the page saves it.
		on(document, 'input', (e) => {
			const ed = this.editor;
			if (ed && (e.target === ed || ed.contains?.(e.target))) {
				this.#scheduleDraft();
			}
		}, { capture: true });
		on(window, 'pagehide', () => this.#flushDraft());
		on(document, 'visibilitychange', () => {
			if (document.visibilityState === 'hidden') {
				this.#flushDraft();
			}
		});
		on(window, 'beforeunload', (e) => {
			this.#flushDraft();
			if (this.#readDraft()) {
				e.preventDefault();
				e.returnValue = '';
			}
		});
	}

	// --- state changes --------------------------------------------------------

	#onChange() {
		const h = this.#handle;
		if (!h) {
			return;
		}
		const prev = this.#state;
		const state = h.state;
		this.#state = state;
		const s = h.snapshot();
		if (state !== prev) {
			this.#onTransition(prev, state, s);
		} else if (state === 'waiting' && s.position !== this.#lastPosition && this.#lastPosition !== null) {
			this.#announce(`You are now ${s.position === 1 ? 'next in line' : `number ${s.position} in line`}.`);
		}
		if (state === 'waiting') {
			this.#lastPosition = s.position;
		}
		if (state === 'editing' && s.warning !== null) {
			this.#onWarning(s);
		}
		this.#render();
		this.#updateTitle();
		this.dispatchEvent(new CustomEvent('mqlock-change', { detail: this.#detail(), bubbles: true, composed: true }));
	}

	#onTransition(prev, state, s) {
		const ed = this.editor;
		switch (state) {
		case 'waiting':
			this.#waited = true;
			this.#setEditable(false);
			if (s.canTakeOver) {
				this.#announce('You are editing this document in another tab. Use "Edit here instead" to continue here.');
			} else {
				const who = s.holder?.user || 'Someone';
				this.#announce(`${s.holder ? `${who} is editing` : 'The lock is taken'}; ${place(s.position)}. ` +
				    'You can read the text while you wait.');
			}
			this.dispatchEvent(new CustomEvent('mqlock-waiting', { detail: this.#detail(), bubbles: true, composed: true }));
			break;
		case 'editing': {
			// The draft comes back before the page hears of the grant, so that
			// a page that loads the saved text knows not to.
			const draft = this.#readDraft();
			this.#restored = false;
			if (draft && ed) {
				this.#setText(draft.text);
				this.#restored = true;
			}
			this.#setEditable(true);
			if (ed && !(isTextEntry(document.activeElement) && document.activeElement !== ed &&
			    !this.contains(document.activeElement))) {
				ed.focus();
			}
			if (this.#waited) {
				this.#yourTurn = true;
				this.#announce('It is your turn: you can edit now.');
				this.#notify('Your turn to edit', `${this.getAttribute('lock')} is yours now.`);
			}
			this.dispatchEvent(new CustomEvent('mqlock-editing', {
				detail: { ...this.#detail(), draft: this.#restored ? draft.text : null },
				bubbles: true,
				composed: true,
			}));
			break;
		}
		case 'lost':
			this.#flushDraft(true);
			this.#setEditable(false);
			this.#announce(`${this.#lostHeadline(s.lost)} ${this.#readDraft() ? 'Your unsaved text is kept in this tab.' : ''}`);
			this.dispatchEvent(new CustomEvent('mqlock-lost', {
				detail: { ...this.#detail(), draft: this.draft },
				bubbles: true,
				composed: true,
			}));
			break;
		case 'released':
			if (prev === 'editing') {
				this.#flushDraft();
			}
			this.#setEditable(false);
			this.dispatchEvent(new CustomEvent('mqlock-released', { detail: this.#detail(), bubbles: true, composed: true }));
			break;
		case 'dropped':
			this.#setEditable(false);
			this.#announce('You were taken out of the line.');
			break;
		case 'failed':
		case 'busy':
			this.#setEditable(false);
			break;
		case 'pending':
			this.#setEditable(false);
			break;
		default:
			break;
		}
		this.#updateTitle();
	}

	// Countdown announcements: once when the warning comes, then at 15 and
	// 5 seconds, each only if the one before was not just as close.
	#onWarning(s) {
		const left = s.warning - this.#client.now();
		const key = `warn-${s.warning}`;
		if (!this.#announced.has(key)) {
			this.#announced.add(key);
			this.#announce(`Are you still there? ${this.#warningSentence(left, true)}`);
			this.#notify('Are you still there?', this.#warningSentence(left, true));
			for (const at of [15, 5]) {
				if (left <= (at + 3) * 1000) {
					this.#announced.add(`${key}-${at}`);
				}
			}
		}
	}

	// Four times a second during an idle warning (the countdown), once a
	// second otherwise (relative times).
	#tick() {
		const h = this.#handle;
		if (!h) {
			return;
		}
		this.#ticks = (this.#ticks + 1) % 4;
		if (!(h.editing && h.warning !== null) && this.#ticks !== 0) {
			return;
		}
		if (h.editing && h.warning !== null) {
			const left = h.warning - this.#client.now();
			const key = `warn-${h.warning}`;
			for (const at of [15, 5]) {
				if (left <= at * 1000 && left > 0 && !this.#announced.has(`${key}-${at}`)) {
					this.#announced.add(`${key}-${at}`);
					this.#announce(`${at} seconds left. Press "I'm still here" to keep the lock.`);
				}
			}
		}
		this.#render();
		this.#updateTitle();
	}

	#onOffline() {
		const c = this.#client;
		if (this.#handle && !this.#handle.done) {
			const editing = this.#handle.editing;
			this.#announce(c.offlineReason === 'coordinator'
				? `The lock service is offline. ${editing ? 'You can keep typing.' : 'Your place is kept.'}`
				: `No connection to the lock service. ${editing ? 'You can keep typing.' : 'Reconnecting.'}`);
			this.#saidOffline = true;
		}
		this.#render();
	}

	#onOnline() {
		if (this.#saidOffline && this.#handle && !this.#handle.done) {
			this.#announce('Connected to the lock service again.');
		}
		this.#saidOffline = false;
		this.#render();
	}

	// --- the editor -----------------------------------------------------------

	#setEditable(on) {
		const ed = this.editor;
		if (!ed) {
			return;
		}
		if ('readOnly' in ed && (ed.tagName === 'TEXTAREA' || ed.tagName === 'INPUT')) {
			ed.readOnly = !on;
			ed.disabled = false;
		} else {
			ed.contentEditable = on ? 'true' : 'false';
			if (!ed.hasAttribute('tabindex')) {
				ed.tabIndex = 0;
			}
		}
		if (on) {
			ed.removeAttribute('aria-readonly');
		} else {
			ed.setAttribute('aria-readonly', 'true');
		}
	}

	#getText() {
		const ed = this.editor;
		if (!ed) {
			return '';
		}
		return 'value' in ed && (ed.tagName === 'TEXTAREA' || ed.tagName === 'INPUT') ? ed.value : ed.textContent;
	}

	#setText(text) {
		const ed = this.editor;
		if (!ed) {
			return;
		}
		if ('value' in ed && (ed.tagName === 'TEXTAREA' || ed.tagName === 'INPUT')) {
			ed.value = text;
		} else {
			ed.textContent = text;
		}
	}

	// Focus must not fall to the page when the button it was on goes away:
	// it moves to the banner's main button, else the first one, else the
	// editor.
	#keepFocus(was) {
		if (!was || !was.hidden) {
			return;
		}
		const shown = [...this.#root.querySelectorAll('button[data-act]')].filter((b) => !b.hidden);
		(shown.find((b) => b.classList.contains('primary')) ?? shown[0] ?? this.editor)?.focus();
	}

	// --- drafts (sessionStorage: this tab, kept across reloads) ---------------

	#draftKey() {
		const prefix = this.#client?.prefix ?? this.getAttribute('prefix') ?? 'locks';
		return `mqlock-draft:${prefix}/${this.getAttribute('lock')}`;
	}

	#readDraft() {
		try {
			const v = JSON.parse(sessionStorage.getItem(this.#draftKey()));
			return v && typeof v.text === 'string' ? v : null;
		} catch {
			return null;
		}
	}

	#scheduleDraft() {
		this.#dirty = true;
		if (!this.#draftTimer) {
			this.#draftTimer = setTimeout(() => this.#flushDraft(), 300);
		}
	}

	// Keep the editor's text as the draft if the user typed since the last
	// save (`force`: also when only the kept draft differs from the editor).
	#flushDraft(force = false) {
		clearTimeout(this.#draftTimer);
		this.#draftTimer = null;
		if (!this.#dirty && !(force && this.#readDraft())) {
			return;
		}
		const text = this.#getText();
		try {
			sessionStorage.setItem(this.#draftKey(), JSON.stringify({ text, at: Date.now(), token: this.#handle?.token ?? null }));
		} catch {
			// storage full or denied: the text stays on screen
		}
		this.#dirty = false;
		this.#render();
	}

	#clearDraft() {
		clearTimeout(this.#draftTimer);
		this.#draftTimer = null;
		this.#dirty = false;
		try {
			sessionStorage.removeItem(this.#draftKey());
		} catch {
			// nothing kept
		}
	}

	async #copyDraft() {
		const text = this.draft ?? this.#getText();
		try {
			await navigator.clipboard.writeText(text);
			this.#announce('Your text was copied.');
		} catch {
			// No clipboard permission: select the text so that the user can copy it.
			const ed = this.editor;
			ed?.focus();
			ed?.select?.();
			this.#announce('Your text is selected: press Control+C or Command+C to copy it.');
		}
	}

	#downloadDraft() {
		const text = this.draft ?? this.#getText();
		const a = document.createElement('a');
		a.href = URL.createObjectURL(new Blob([text], { type: 'text/plain;charset=utf-8' }));
		a.download = `${this.getAttribute('lock')}-unsaved.txt`;
		document.body.append(a);
		a.click();
		a.remove();
		setTimeout(() => URL.revokeObjectURL(a.href), 60000);
	}

	// --- buttons --------------------------------------------------------------

	#act(act) {
		const h = this.#handle;
		switch (act) {
		case 'takeover':
			this.takeOver();
			break;
		case 'still-here':
			h?.touch();
			this.editor?.focus();
			break;
		case 'done': {
			const ev = new CustomEvent('mqlock-done', { detail: this.#detail(), bubbles: true, composed: true, cancelable: true });
			if (this.dispatchEvent(ev)) {
				this.release();
			}
			break;
		}
		case 'stop':
			this.release();
			break;
		case 'again':
			if (this.#view === 'lost' && h?.lost?.reason === 'takeover') {
				this.takeOver();
			} else {
				this.acquire();
			}
			break;
		case 'notify':
			Notification.requestPermission().then(() => this.#render());
			break;
		case 'copy':
			this.#copyDraft();
			break;
		case 'download':
			this.#downloadDraft();
			break;
		default:
			break;
		}
	}

	// --- announcements, title, notifications ----------------------------------

	#announce(text) {
		const live = this.#els.live;
		// Empty first, so that the same words are announced again.
		live.textContent = '';
		clearTimeout(this.#liveTimer);
		this.#liveTimer = setTimeout(() => {
			live.textContent = text.trim();
		}, 100);
	}

	#notify(title, body) {
		if (!this.hasAttribute('notify') || typeof Notification === 'undefined' ||
		    Notification.permission !== 'granted' || document.visibilityState === 'visible') {
			return;
		}
		try {
			const n = new Notification(title, { body, tag: `mqlock:${this.getAttribute('lock')}` });
			n.onclick = () => {
				window.focus();
				n.close();
			};
		} catch {
			// some browsers only allow notifications from a service worker
		}
	}

	#updateTitle() {
		const h = this.#handle;
		let prefix = null;
		if (h?.editing && h.warning !== null) {
			prefix = `${countdown(h.warning - this.#client.now())} left to keep the lock`;
		} else if (h?.editing && this.#yourTurn) {
			prefix = 'Your turn to edit';
		} else if (h?.state === 'lost') {
			prefix = 'Lock lost';
		}
		this.#setTitle(prefix);
	}

	#setTitle(prefix) {
		// The title is the page's while no prefix is shown, and a title the
		// page set meanwhile becomes the base.
		if (this.#titleSet === null || document.title !== this.#titleSet) {
			this.#baseTitle = document.title;
		}
		const want = prefix ? `${prefix} — ${this.#baseTitle}` : this.#baseTitle;
		if (want !== null && document.title !== want) {
			document.title = want;
		}
		this.#titleSet = prefix ? want : null;
	}

	// --- rendering ------------------------------------------------------------

	#detail() {
		const h = this.#handle;
		return {
			lock: this.getAttribute('lock'),
			state: this.#state,
			view: this.#view,
			token: this.token,
			canSave: this.canSave,
			offline: this.#client?.offlineReason ?? null,
			handle: h,
		};
	}

	#lostHeadline(lost) {
		if (lost?.reason === 'takeover') {
			return 'You are now editing this document in another tab.';
		}
		return 'You lost the lock.';
	}

	#lostDetail(lost) {
		const t = this.#client.timing;
		switch (lost?.reason) {
		case 'idle': {
			// The last owner message shows whether anyone took it.
			const o = this.#handle?.owner;
			const passed = !!o && (o.owner?.client !== this.#client.clientId || o.waiting > 0);
			return `There was no activity here for at least ${duration(t.idle_timeout)}` +
			    (passed ? ' while someone was waiting, so the lock passed on.' : ', so the lock was released.');
		}
		case 'disconnect':
			return lost.afterReconnect
				? 'This page could not reach the lock service for a while, and meanwhile the lock passed on.'
				: `This page lost its connection to the lock service for longer than ${duration(t.grace)}, so the lock passed on.`;
		case 'admin':
			return `An administrator took the lock${lost.message ? `: “${lost.message}”` : '.'}`;
		case 'takeover':
			return 'This tab is read-only now. Use "Edit here instead" to continue here.';
		default:
			return `The lock service ended your turn (${lost?.reason ?? 'unknown'}).`;
		}
	}

	#holderWords(s) {
		const c = this.#client;
		const o = s.owner;
		const holder = s.holder;
		if (!holder) {
			return { headline: `Waiting for the lock: ${place(s.position ?? 1)}.`, detail: '' };
		}
		const who = holder.user || 'Someone';
		const now = c.now();
		const bits = [];
		if (holder.connected === false) {
			bits.push(`${who}'s page lost its connection. If it is not back within ${duration(c.timing.grace)}, ` +
			    `the lock passes on.`);
		} else if (o && Number.isSafeInteger(o.since)) {
			let text = `Editing for ${shortDuration(now - o.since)}`;
			if (Number.isSafeInteger(o.idle_deadline)) {
				const idleFor = Math.min(now - (o.idle_deadline - c.timing.idle_timeout), now - o.since);
				if (idleFor >= 60 * 1000) {
					text += `, inactive for ${shortDuration(idleFor)}`;
				}
			}
			bits.push(`${text}.`);
		}
		bits.push('The text below is read-only until it is your turn.');
		return { headline: `${who} is editing — ${place(s.position ?? 1)}.`, detail: bits.join(' ') };
	}

	#waitersWords(s) {
		const o = s.owner;
		if (!o || o.owner?.client !== this.#client.clientId) {
			return '';
		}
		const n = Number.isSafeInteger(o.waiting) ? o.waiting : 0;
		if (n === 0) {
			return 'Nobody else is waiting.';
		}
		const uid = this.#client.uid;
		const names = (o.queue ?? []).slice(0, 3).map((m) =>
			(uid !== null && m.uid === uid ? 'you, in another tab' : m.user || 'someone'));
		const more = n - names.length;
		if (more > 0) {
			names.push(`${more} more`);
		}
		return `${n === 1 ? '1 person is' : `${n} people are`} waiting: ${list(names)}. ` +
		    'Click "Done editing" when you have saved.';
	}

	#warningSentence(left, long) {
		const o = this.#handle?.owner;
		const next = o?.queue?.[0];
		const name = next?.user || (o?.waiting ? 'the next person' : null);
		const when = long ? duration(left) : countdown(left);
		return name
			? `The lock passes to ${name} in ${when} unless you continue.`
			: `The lock will be released in ${when} unless you continue.`;
	}

	#render() {
		const focused = this.#root.activeElement;
		const els = this.#els;
		const b = els.buttons;
		const c = this.#client;
		const h = this.#handle;
		const s = h?.snapshot();
		const offline = c?.offlineReason ?? null;
		const draft = this.#readDraft();
		let tone = 'muted';
		let headline = '';
		let detail = '';
		let note = '';
		let countdownText = null;
		const show = new Set();
		let primary = null;
		let view;

		if (this.#problem) {
			view = 'invalid';
			tone = 'danger';
			headline = 'This document cannot be locked.';
			detail = `Its name is not a valid lock id: ${this.#problem}.`;
		} else if (!s || s.state === 'pending') {
			view = 'connecting';
			headline = offline === 'coordinator' ? 'The lock service is offline.' : 'Connecting to the lock service…';
			detail = offline === 'coordinator' ? 'This page asks for the lock as soon as it is back.' : '';
		} else if (s.state === 'waiting') {
			view = 'waiting';
			tone = 'info';
			if (s.canTakeOver) {
				headline = 'You are editing this document in another tab.';
				detail = 'Edit here instead, and the other tab stops editing; its unsaved text stays there.';
				show.add('takeover');
				primary = 'takeover';
			} else {
				({ headline, detail } = this.#holderWords(s));
			}
			show.add('stop');
			if (this.hasAttribute('notify') && typeof Notification !== 'undefined' &&
			    Notification.permission === 'default' && !s.canTakeOver) {
				show.add('notify');
			}
			if (draft) {
				note = 'Your unsaved text is kept, and comes back when it is your turn.';
				show.add('copy').add('download');
			}
			if (offline === 'coordinator') {
				tone = 'muted';
				headline = 'The lock service is offline.';
				detail = 'Your place in line is kept until it is back.';
			} else if (offline === 'broker') {
				tone = 'muted';
				headline = 'No connection to the lock service. Reconnecting…';
				detail = `Your place in line is kept if the connection is back within ${duration(c.timing.grace)}.`;
			}
		} else if (s.state === 'editing') {
			view = 'editing';
			tone = 'ok';
			headline = 'You are editing.';
			detail = this.#waitersWords(s);
			show.add('done');
			if (this.#restored && draft) {
				note = 'Your unsaved text from before is back in the editor. Check what others saved meanwhile before you save.';
			}
			if (s.warning !== null && !offline) {
				view = 'idle-warning';
				tone = 'warn';
				headline = 'Are you still there?';
				countdownText = this.#warningSentence(s.warning - c.now(), false);
				show.add('still-here');
				primary = 'still-here';
			}
			if (offline === 'coordinator') {
				tone = 'warn';
				headline = 'The lock service is offline.';
				detail = 'Keep typing: your lock is kept until the service is back, and your text is kept in this browser.';
			} else if (offline === 'broker' && !s.unsure) {
				tone = 'warn';
				headline = 'No connection to the lock service. Reconnecting…';
				detail = 'Keep typing: your text is kept in this browser.';
			} else if (s.unsure) {
				// Nothing can be saved now, so nothing can be finished.
				show.delete('done');
				view = 'unsure';
				tone = 'warn';
				headline = 'No connection to the lock service for a while.';
				detail = 'Keep typing: your text is kept in this browser. The lock may have passed to someone else ' +
				    'meanwhile, so saving waits until the connection is back.';
			}
		} else if (s.state === 'lost') {
			view = 'lost';
			// Taken over by the user's own other tab: news, not an alarm.
			tone = s.lost?.reason === 'takeover' ? 'info' : 'danger';
			headline = this.#lostHeadline(s.lost);
			detail = this.#lostDetail(s.lost);
			b.again.textContent = s.lost?.reason === 'takeover' ? 'Edit here instead' : 'Wait for the lock again';
			show.add('again');
			primary = 'again';
			if (draft) {
				note = 'Your unsaved text is kept in this tab, and comes back when you get the lock again.';
				show.add('copy').add('download');
			}
		} else if (s.state === 'released') {
			const done = this.#stopReason !== 'stop';
			view = done ? 'done' : 'stopped';
			headline = done ? 'You are done editing.' : 'You stopped waiting.';
			detail = done ? 'The lock went to the next person, if anyone was waiting.' : 'You are no longer in line.';
			b.again.textContent = done ? 'Edit again' : 'Wait again';
			show.add('again');
			primary = 'again';
			if (draft) {
				note = 'Your unsaved text is kept in this tab.';
				show.add('copy').add('download');
			}
		} else if (s.state === 'dropped') {
			view = 'dropped';
			tone = 'danger';
			headline = 'You were taken out of the line.';
			detail = s.dropped?.reason === 'admin'
				? `An administrator cleared the line${s.dropped.message ? `: “${s.dropped.message}”` : '.'}`
				: 'This page could not reach the lock service for too long.';
			b.again.textContent = 'Wait again';
			show.add('again');
			primary = 'again';
		} else {
			view = 'failed';
			tone = 'danger';
			// A ticket the site would not give is the site's answer, not the lock service's.
			headline = s.error?.code === 'ticket-fetch'
				? 'This page could not get your permission to edit.'
				: 'The lock service refused this page.';
			detail = FAILED[s.error?.code] ?? `It said: ${s.error?.code ?? 'unknown error'}${s.error?.message ? ` (${s.error.message})` : ''}.`;
			b.again.textContent = 'Try again';
			show.add('again');
			primary = 'again';
		}

		this.#view = view;
		this.setAttribute('view', view);
		this.setAttribute('state', this.#state);
		els.banner.dataset.tone = tone;
		if (els.headline.textContent !== headline) {
			els.headline.textContent = headline;
		}
		if (countdownText !== null) {
			// The countdown is re-written every second: a timer, not a live region.
			const t = this.#handle.warning - c.now();
			const words = countdownText.replace(countdown(t), '\u0000');
			const [before, after] = words.split('\u0000');
			els.detail.replaceChildren(before ?? '', Object.assign(document.createElement('span'), {
				className: 'countdown',
				textContent: countdown(t),
			}), after ?? '');
			els.detail.querySelector('.countdown').setAttribute('role', 'timer');
		} else if (els.detail.textContent !== detail || els.detail.querySelector('.countdown')) {
			els.detail.textContent = detail;
		}
		els.note.hidden = note === '';
		if (els.note.textContent !== note) {
			els.note.textContent = note;
		}
		for (const [act, btn] of Object.entries(b)) {
			btn.hidden = !show.has(act);
			const isPrimary = act === primary;
			btn.classList.toggle('primary', isPrimary);
			btn.setAttribute('part', isPrimary ? 'button primary-button' : 'button');
		}
		this.#keepFocus(focused);
	}
}

if (typeof customElements !== 'undefined' && !customElements.get(TAG)) {
	customElements.define(TAG, MqlockLockElement);
}

export default MqlockLockElement;
