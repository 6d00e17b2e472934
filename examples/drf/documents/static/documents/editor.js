// The document editor: the lock through <mqlock-lock> on mqlock.js, saves
// through the DRF API.
//
// The page gets everything mqlock.js needs from the server (the JSON in
// #mqlock-config, made by the mqlock_config template tag): the WebSocket URL
// (nginx, which lets only signed-in users through), this page's client id
// and its ticket, the document's lock id and the broker login for pages.
// <mqlock-lock> shows who edits and who waits, the idle warning and the lost
// notice, keeps the editor read-only unless this page holds the lock, and
// keeps unsaved text as a draft. Saves carry the lock's token in
// X-Mqlock-Token; the server admits them only from the current holder with
// the current token.
import { connect } from 'mqlock';
import 'mqlock/element';

const $ = (id) => document.getElementById(id);
const cfg = JSON.parse($('mqlock-config').textContent);
const api = JSON.parse($('document-api').textContent);
const csrf = document.querySelector('meta[name="csrf-token"]').content;
const title = $('title');
const body = $('body');

// The page's ticket, then fresh ones when it expires (for reconnects): the
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

// The element gets our client (with the broker login and the ticket)
// before it is in the page, and wraps the text.
const lock = document.createElement('mqlock-lock');
lock.client = client;
lock.setAttribute('lock', cfg.lock);
const slot = $('lock-ui');
lock.append(...slot.childNodes);
slot.append(lock);

let savedTitle = title.value;

async function load() {
	const r = await fetch(api, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
	if (r.ok) {
		const doc = await r.json();
		title.value = savedTitle = doc.title;
		body.value = doc.body;
		$('saved').textContent = doc.updated_by ? `Last saved by ${doc.updated_by}` : '';
	}
}

/** Save with the lock's token; resolves to {status, body}. */
async function save() {
	const token = lock.token;
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
		savedTitle = title.value;
		lock.saved();
		$('saved').textContent = `Saved with token ${json.mqlock_token}`;
	} else {
		$('saved').textContent = `Not saved: ${json?.detail ?? `HTTP ${r.status}`}`;
	}
	document.body.dataset.saved = String(r.status);
	return { status: r.status, body: json };
}

function render() {
	const editing = lock.canSave;
	document.body.dataset.state = lock.view;
	title.readOnly = !editing;
	$('save').disabled = !editing;
}

// The lock arrived: show the latest saved text unless a draft was put back.
lock.addEventListener('mqlock-editing', (e) => {
	if (e.detail.draft === null) {
		load();
	}
});
lock.addEventListener('mqlock-change', render);
// "Done editing": save first; keep the lock if that fails.
lock.addEventListener('mqlock-done', (e) => {
	if (lock.draft === null && title.value === savedTitle) {
		return;
	}
	e.preventDefault();
	save().then((r) => {
		if (r.status === 200) {
			lock.release();
		}
	});
});
title.addEventListener('input', () => lock.touch());
$('save').addEventListener('click', () => save());
render();

// For tests and the console.
window.drfdemo = { client, lock, save, load };
