// The document editor: the lock through mqlock.js, saves through the DRF API.
//
// The page gets everything mqlock.js needs from the server (the JSON in
// #mqlock-config, made by the mqlock_config template tag): the WebSocket URL
// (nginx, which lets only logged-in users through), this page's client id
// and its ticket, the lock id of this document and the broker login for
// pages. Saves carry the lock's token in X-Mqlock-Token; the server admits
// them only from the current holder with the current token.
import { connect } from 'mqlock';

const $ = (id) => document.getElementById(id);
const cfg = JSON.parse($('mqlock-config').textContent);
const api = JSON.parse($('document-api').textContent);
const csrf = document.querySelector('meta[name="csrf-token"]').content;

const title = $('title');
const body = $('body');

const LOST_REASONS = {
	idle: 'because you were idle for too long.',
	disconnect: 'because your connection was gone longer than the grace period.',
	admin: 'because an administrator took it.',
	takeover: 'because you opened it in another tab.',
	'offline-expired': 'because the lock service could not be reached for too long.',
};

// The page's ticket, then fresh ones for reconnects after it expired: the
// server renews it for this page's client id only.
let firstTicket = cfg.ticket;
async function ticket() {
	if (firstTicket) {
		const t = firstTicket;
		firstTicket = null;
		return t;
	}
	const q = new URLSearchParams({ lock: cfg.lock, client: cfg.clientId });
	const r = await fetch(`/mqlock/config?${q}`, { credentials: 'same-origin' });
	if (!r.ok) {
		throw new Error(`ticket: HTTP ${r.status}`);
	}
	return (await r.json()).ticket;
}

const client = connect({
	url: cfg.url,
	clientId: cfg.clientId,
	ticket,
	user: cfg.user,
	prefix: cfg.prefix,
	...(cfg.username ? { username: cfg.username, password: cfg.password } : {}),
});

let handle = null;
let dirty = false;

function takeLock(options = {}) {
	handle = client.lock(cfg.lock, options);
	handle.on('change', render);
	handle.on('editing', onEditing);
	render();
}

// --- the document --------------------------------------------------------------

async function load() {
	const r = await fetch(api, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
	if (r.ok) {
		const doc = await r.json();
		title.value = doc.title;
		body.value = doc.body;
		$('saved').textContent = doc.updated_by ? `Last saved by ${doc.updated_by}` : '';
		dirty = false;
	}
}

function onEditing() {
	// Someone else may have saved while this page waited.
	if (!dirty) {
		load();
	}
	body.focus();
}

/** Save with the lock's token; resolves to {status, body}. */
async function save() {
	const token = handle && handle.token;
	const r = await fetch(api, {
		method: 'PUT',
		credentials: 'same-origin',
		headers: {
			'Content-Type': 'application/json',
			Accept: 'application/json',
			'X-CSRFToken': csrf,
			...(token !== null ? { 'X-Mqlock-Token': String(token) } : {}),
		},
		body: JSON.stringify({ title: title.value, body: body.value }),
	});
	const json = await r.json().catch(() => null);
	if (r.ok) {
		dirty = false;
		$('saved').textContent = `Saved with token ${json.mqlock_token}`;
	} else {
		$('saved').textContent = `Not saved: ${json?.detail ?? `HTTP ${r.status}`}`;
	}
	document.body.dataset.saved = String(r.status);
	return { status: r.status, body: json };
}

// --- the lock's state on screen ---------------------------------------------------

function countdown(ms) {
	const s = Math.max(0, Math.ceil(ms / 1000));
	return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

function statusText(s) {
	switch (s.state) {
	case 'pending':
		return 'Asking for the lock…';
	case 'waiting': {
		const who = s.holder ? (s.holder.user || 'Someone') : null;
		const place = s.position ? ` — you are #${s.position}` : '';
		if (!who) {
			return `Waiting for the lock${place}`;
		}
		if (s.holder.uid !== undefined && s.holder.uid === cfg.uid) {
			return `You are editing this in another tab${place}`;
		}
		return `${who} is editing${place}`;
	}
	case 'editing':
		return 'You are editing.';
	case 'lost':
		return 'You lost the lock.';
	case 'released':
		return 'You are done editing.';
	case 'failed':
		return `The lock service refused: ${s.error.code} ${s.error.message}`;
	default:
		return s.state;
	}
}

function render() {
	const s = handle.snapshot();
	document.body.dataset.state = s.state;
	document.body.dataset.offline = String(client.offline);
	$('status').textContent = statusText(s) + (client.offline && !handle.done ? ' (lock service offline)' : '');
	$('take-over').hidden = !handle.canTakeOver;
	$('banner-idle').hidden = !(s.state === 'editing' && s.warning);
	updateCountdown();
	$('banner-lost').hidden = s.state !== 'lost';
	if (s.state === 'lost') {
		$('lost-reason').textContent = LOST_REASONS[s.lost.reason] || `(${s.lost.reason}).`;
	}
	const editing = s.state === 'editing';
	// Lost: the text stays visible and selectable, but cannot change.
	title.disabled = !(editing || s.state === 'lost');
	body.disabled = !(editing || s.state === 'lost');
	title.readOnly = body.readOnly = s.state === 'lost';
	$('save').disabled = !editing;
	$('done').disabled = !editing;
}

function updateCountdown() {
	const w = handle && handle.warning;
	if (w) {
		$('idle-countdown').textContent = countdown(w - Date.now());
	}
}
setInterval(updateCountdown, 250);

// --- the user -------------------------------------------------------------------

for (const el of [title, body]) {
	el.addEventListener('input', () => {
		dirty = true;
		handle?.touch();
	});
}
$('still-here').addEventListener('click', () => handle?.touch());
$('take-over').addEventListener('click', () => handle?.takeOver());
$('save').addEventListener('click', () => save());
$('done').addEventListener('click', () => handle?.release());
for (const ev of ['connect', 'disconnect', 'offline', 'online']) {
	client.on(ev, () => handle && render());
}

takeLock();

// For tests and the console.
window.drfdemo = { client, get handle() { return handle; }, save, load };
