// The broker's WebSocket listener behind nginx: reachable only with a valid
// Django session, from this site's pages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { login, repoRoot, request, withExample } from './stack.js';

const mqtt = createRequire(path.join(repoRoot, 'clients', 'js', 'package.json'))('mqtt');

/** Local addresses (hex, as in /proc/net/tcp) listening on `port`. */
function listeners(port) {
	const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
	const out = [];
	for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
		if (!fs.existsSync(file)) {
			continue;
		}
		for (const line of fs.readFileSync(file, 'utf8').split('\n').slice(1)) {
			const f = line.trim().split(/\s+/);
			if (f.length > 3 && f[3] === '0A' && f[1].endsWith(`:${hexPort}`)) {
				out.push(f[1].split(':')[0]);
			}
		}
	}
	return out;
}

function mqttConnect(url, options) {
	return new Promise((resolve) => {
		const c = mqtt.connect(url, { protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 5000, ...options });
		c.once('connect', () => {
			c.end(true);
			resolve('connected');
		});
		c.once('error', (err) => {
			c.end(true);
			resolve(`refused: ${err.message}`);
		});
		// A refused WebSocket handshake ends in close without an error.
		c.once('close', () => {
			c.end(true);
			resolve('refused: closed');
		});
	});
}

test('the WebSocket listener refuses a connection without a Django session', async () => {
	await withExample([], async (ex) => {
		// The editor needs a signed-in user.
		const editorPage = await request(`${ex.url}/documents/1/`);
		assert.equal(editorPage.status, 302);
		assert.match(editorPage.headers.location, /accounts\/login/);

		const ws = `${ex.url}/mqtt`;
		assert.equal((await request(ws, { upgrade: true })).status, 401, 'no session');
		const forged = 'sessionid=0123456789abcdefghijklmnopqrstuv';
		assert.equal((await request(ws, { upgrade: true, headers: { Cookie: forged } })).status, 401, 'forged');

		const cookie = await login(ex.url, 'alice');
		const signedIn = await request(`${ex.url}/documents/1/`, { headers: { Cookie: cookie } });
		assert.equal(signedIn.status, 200);
		assert.match(signedIn.body, /id="mqlock-config"/);
		assert.equal((await request(ws, { upgrade: true, headers: { Cookie: cookie } })).status, 101, 'logged in');
		assert.equal((await request(ws, { upgrade: true, headers: { Cookie: cookie, Origin: ex.url } })).status, 101);
		// Another site's page, with the user's cookies.
		assert.equal((await request(ws, {
			upgrade: true, headers: { Cookie: cookie, Origin: 'http://evil.example' },
		})).status, 401, 'cross-site');

		// MQTT itself through nginx, with the page's broker login.
		const editors = fs.readFileSync(path.join(ex.runDir, 'broker', 'passwords', 'editors'), 'utf8').trim();
		const wsUrl = `ws://127.0.0.1:${ex.port}/mqtt`;
		assert.equal(await mqttConnect(wsUrl, { username: 'editors', password: editors, wsOptions: { headers: { Cookie: cookie } } }),
			'connected');
		assert.match(await mqttConnect(wsUrl, { username: 'editors', password: editors }), /^refused/);

		// Signed out: the same cookie no longer opens it.
		await request(`${ex.url}/accounts/logout/`, { headers: { Cookie: cookie } });
		assert.equal((await request(ws, { upgrade: true, headers: { Cookie: cookie } })).status, 401, 'logged out');

		// The broker's own WebSocket port listens on loopback only, and even
		// there wants the password (no anonymous clients).
		assert.deepEqual(listeners(ex.wsPort), ['0100007F']);
		assert.match(await mqttConnect(`ws://127.0.0.1:${ex.wsPort}`, {}), /^refused/);
	});
});
