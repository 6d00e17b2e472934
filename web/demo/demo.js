// The demo editor: one document, one <mqlock-lock> around its text area,
// and a "backend" in localStorage that refuses saves with an older token.
//
// URL query: user (default Guest), lock (default doc-1), ticket-url (the
// element fetches tickets there), and for tests and experiments keepalive
// and activity (seconds, see mqlock.js).
import { connect } from 'mqlock';
import 'mqlock/element';

const query = new URLSearchParams(location.search);
const user = (query.get('user') || 'Guest').slice(0, 64);
const lockId = query.get('lock') || 'doc-1';

const $ = (id) => document.getElementById(id);
const lockEl = $('lock');
const editor = $('editor');
const saveButton = $('save');

$('doc-name').textContent = lockId;
$('user-name').textContent = user;
document.title = `${lockId} — mqlock demo`;

// The element takes the lock a moment after it is in the page: set it up
// now. A client of our own only for the experiment options.
lockEl.setAttribute('lock', lockId);
lockEl.setAttribute('user', user);
if (query.get('ticket-url')) {
	lockEl.setAttribute('ticket-url', query.get('ticket-url'));
}
const number = (name) => {
	const v = Number(query.get(name));
	return query.has(name) && Number.isFinite(v) && v > 0 ? v : undefined;
};
if (number('keepalive') || number('activity')) {
	lockEl.client = connect({
		url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/`,
		user,
		keepalive: number('keepalive'),
		activityInterval: number('activity'),
	});
}

// --- the "backend": saved text in localStorage, fenced by the token ---------

const storeKey = `mqlock-demo/${lockId}`;

function loadSaved() {
	try {
		return JSON.parse(localStorage.getItem(storeKey)) || null;
	} catch {
		return null;
	}
}

function ago(ms) {
	const m = Math.floor(Math.max(0, Date.now() - ms) / 60000);
	if (m < 1) {
		return 'just now';
	}
	return m < 60 ? `${m} min ago` : `${Math.floor(m / 60)} h ago`;
}

function showSavedNote(text) {
	const doc = loadSaved();
	$('saved').textContent = text ?? (doc ? `Last saved by ${doc.user}, ${ago(doc.at)}.` : 'Not saved yet.');
}

function showSaved() {
	const doc = loadSaved();
	editor.value = doc ? doc.text : '';
	showSavedNote();
}

// A backend would do this check: a save with a token lower than the last
// one stored comes from someone who lost the lock since.
function save() {
	if (!lockEl.canSave) {
		return false;
	}
	const doc = loadSaved();
	if (doc && doc.token > lockEl.token) {
		showSavedNote('Not saved: someone else saved a newer version after you lost the lock.');
		return false;
	}
	localStorage.setItem(storeKey, JSON.stringify({ text: editor.value, token: lockEl.token, user, at: Date.now() }));
	lockEl.saved();
	showSavedNote('Saved.');
	return true;
}

// --- the lock ---------------------------------------------------------------

// The latest saved text when the lock arrives, unless the element brought
// back what the user typed before.
lockEl.addEventListener('mqlock-editing', (e) => {
	if (e.detail.draft === null) {
		showSaved();
	}
});
// Waiting: the latest saved text, read-only; a draft stays kept.
lockEl.addEventListener('mqlock-waiting', showSaved);
lockEl.addEventListener('mqlock-change', () => {
	saveButton.disabled = !lockEl.canSave;
});
// "Done editing" saves first; a refused save keeps the lock.
lockEl.addEventListener('mqlock-done', (e) => {
	if (!save()) {
		e.preventDefault();
	}
});
saveButton.addEventListener('click', save);

// Someone saved in another window of this browser: show it while reading.
window.addEventListener('storage', (e) => {
	if (e.key === storeKey && (lockEl.state === 'waiting' || lockEl.state === 'pending')) {
		showSaved();
	}
});
setInterval(() => {
	if (!/^Not saved|^Saved\.$/.test($('saved').textContent)) {
		showSavedNote();
	}
}, 30000);

showSaved();

// Back from the back-forward cache: the lock was released on pagehide.
window.addEventListener('pageshow', (e) => {
	if (e.persisted) {
		location.reload();
	}
});

// For the browser tests and the curious.
window.mqlockDemo = {
	element: lockEl,
	get client() {
		return lockEl.client;
	},
	get handle() {
		return lockEl.handle;
	},
};
