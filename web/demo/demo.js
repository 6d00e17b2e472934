// The demo editor: one document, one lock, the states of mqlock.js on screen.
//
// URL query: user (default Guest), lock (default doc-1), and for tests and
// experiments keepalive, grace and activity (seconds, see mqlock.js).
import { connect, lockIdProblem } from 'mqlock';

const query = new URLSearchParams(location.search);
const user = (query.get('user') || 'Guest').slice(0, 64);
const lockId = query.get('lock') || 'doc-1';

function seconds(name, fallback) {
	const v = Number(query.get(name));
	return query.has(name) && Number.isFinite(v) && v > 0 ? v : fallback;
}

const $ = (id) => document.getElementById(id);
const editor = $('editor');

const LOST_REASONS = {
	idle: 'because you were idle for too long.',
	disconnect: 'because your connection was gone longer than the grace period.',
	admin: 'because an administrator took it',
	'offline-expired': 'because the lock service could not be reached for too long.',
};

// --- the document: saved in this browser, fenced by the lock's token -------

const storeKey = `mqlock-demo/${lockId}`;
let dirty = false;

function loadSaved() {
	try {
		return JSON.parse(localStorage.getItem(storeKey)) || null;
	} catch {
		return null;
	}
}

function showSaved() {
	const doc = loadSaved();
	editor.value = doc ? doc.text : '';
	$('saved').textContent = doc ? `Saved by ${doc.user} with token ${doc.token}` : 'Not saved yet';
	dirty = false;
}

// A backend would do this check: a save with a token lower than the last
// one stored comes from someone who lost the lock since.
function save() {
	const h = handle;
	if (!h || !h.editing) {
		return false;
	}
	const doc = loadSaved();
	if (doc && doc.token > h.token) {
		$('saved').textContent = `Save refused: token ${h.token} is older than ${doc.token}`;
		return false;
	}
	localStorage.setItem(storeKey, JSON.stringify({ text: editor.value, token: h.token, user }));
	$('saved').textContent = `Saved with token ${h.token}`;
	dirty = false;
	return true;
}

// --- the lock ----------------------------------------------------------------

$('doc-name').textContent = lockId;
$('user-name').textContent = user;
document.title = `${lockId} — mqlock demo`;

const problem = lockIdProblem(lockId);
if (problem) {
	document.body.dataset.state = 'error';
	$('status').textContent = '';
	$('error-text').textContent = `Cannot edit "${lockId}": ${problem}.`;
	$('banner-error').hidden = false;
	throw new Error(problem);
}

const client = connect({
	url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/`,
	user,
	keepalive: seconds('keepalive', 60),
	grace: seconds('grace', 10),
	activityInterval: seconds('activity', 5),
});
$('client-id').textContent = `(${client.clientId})`;

let handle = null;

function takeLock() {
	handle = client.lock(lockId);
	handle.on('change', render);
	handle.on('editing', () => {
		if (!dirty) {
			showSaved();
		}
		editor.focus();
	});
	render();
}

client.on('connect', render);
client.on('disconnect', render);
client.on('status', render);
client.on('offline', render);
client.on('online', render);

showSaved();
takeLock();

// --- rendering ---------------------------------------------------------------

function clock(ms) {
	return new Date(ms).toLocaleTimeString();
}

function countdown(ms) {
	const s = Math.max(0, Math.ceil(ms / 1000));
	return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

function waitingText(s) {
	const who = s.holder ? (s.holder.user || 'Someone') : null;
	const place = s.position ? ` — you are #${s.position}` : '';
	if (!who) {
		return `Waiting for the lock${place}`;
	}
	let text = `${who} is editing${place}`;
	if (!s.holder.connected) {
		text += ` (${who}'s connection is gone; the lock is freed if they do not return)`;
	}
	return text;
}

function render() {
	const s = handle.snapshot();
	const state = s.state;
	document.body.dataset.state = state;
	document.body.dataset.offline = String(client.offline);

	$('status').textContent = client.connected
	    ? `Connected (connection ${client.conn})`
	    : client.conn > 1 || handle.state !== 'pending' ? 'Reconnecting…' : 'Connecting to the lock service…';

	const offline = client.offline && !handle.done;
	$('banner-offline').hidden = !offline;
	$('offline-text').textContent = client.connected
	    ? 'Your place is kept; this page carries on when it is back.'
	    : 'Reconnecting… Your place is kept for a short while.';

	$('banner-waiting').hidden = state !== 'waiting';
	if (state === 'waiting') {
		$('waiting-text').textContent = waitingText(s);
	}

	$('banner-idle').hidden = !(state === 'editing' && s.warning);
	updateCountdown();

	$('banner-lost').hidden = state !== 'lost';
	if (state === 'lost') {
		const why = LOST_REASONS[s.lost.reason] || `(${s.lost.reason}).`;
		$('lost-reason').textContent = s.lost.reason === 'admin'
		    ? `${why}${s.lost.message ? `: “${s.lost.message}”` : ''}.`
		    : why;
	}
	$('banner-released').hidden = state !== 'released';

	$('banner-error').hidden = !(state === 'failed' || state === 'busy');
	if (state === 'failed') {
		$('error-text').textContent = `The lock service refused: ${s.error.code} ${s.error.message}`;
	}

	// Waiting or asking: nothing to touch. Editing: everything. Lost: the
	// text stays visible and selectable, but cannot change.
	editor.disabled = !(state === 'editing' || state === 'lost');
	editor.readOnly = state === 'lost';
	$('save').disabled = state !== 'editing';
	$('done').disabled = state !== 'editing';

	$('lock-info').textContent = state === 'editing'
	    ? `You hold the lock · token ${s.token} · idle deadline ${clock(s.idle_deadline)}`
	    : state === 'pending' ? 'Asking for the lock…' : '';
}

function updateCountdown() {
	const w = handle && handle.warning;
	if (w) {
		$('idle-countdown').textContent = countdown(w - Date.now());
	}
}
setInterval(updateCountdown, 250);

// --- the user ----------------------------------------------------------------

// Activity: typing, pointer and focus. touch() sends at most one request per
// interval, so calling it on every event is fine.
function activity() {
	if (handle && handle.editing) {
		handle.touch();
	}
}
for (const type of ['keydown', 'input', 'pointerdown', 'pointermove', 'wheel', 'focusin']) {
	document.addEventListener(type, activity, { passive: true, capture: true });
}

editor.addEventListener('input', () => {
	dirty = true;
});

// Someone else saved in another window of this browser.
window.addEventListener('storage', (e) => {
	if (e.key === storeKey && handle.state !== 'editing' && !(handle.state === 'lost' && dirty)) {
		showSaved();
	}
});

$('still-here').addEventListener('click', () => handle.touch());
$('save').addEventListener('click', save);
$('done').addEventListener('click', () => {
	if (save()) {
		handle.release();
	}
});
$('relock').addEventListener('click', takeLock);
$('edit-again').addEventListener('click', () => {
	showSaved();
	takeLock();
});

// Back from the back-forward cache: the locks were released on pagehide.
window.addEventListener('pageshow', (e) => {
	if (e.persisted) {
		location.reload();
	}
});

// For the browser tests and the curious: the client and the current handle.
window.mqlockDemo = {
	client,
	get handle() {
		return handle;
	},
};
