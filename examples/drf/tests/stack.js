// The whole example (examples/drf/run.sh: mosquitto, mqlockd, gunicorn,
// nginx) on free loopback ports in a temporary run directory, for the
// Node tests in this directory.
//
// Environment: MQLOCKD_BIN (default build/mqlockd), MQLOCK_AUTH_PLUGIN
// (default build/src/broker/mqlock_auth.so), CHROMIUM_BIN (default
// /usr/bin/chromium), MQLOCK_ARTIFACTS (screenshots; default
// test-artifacts/browser). Needs `npm ci` in clients/js and tests/browser.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '../../..');
export const artifacts = process.env.MQLOCK_ARTIFACTS || path.join(repoRoot, 'test-artifacts', 'browser');

export const USERS = {
	alice: { name: 'Alice', password: 'alice-demo' },
	bob: { name: 'Bob', password: 'bob-demo' },
	carol: { name: 'Carol', password: 'carol-demo' },
};

export function sleep(ms) {
	return new Promise((r) => setTimeout(r, ms));
}

/** Wait until check() is truthy (polled every 50 ms); throw after `timeout` ms. */
export async function waitFor(check, { timeout = 15000, what = 'condition' } = {}) {
	const end = Date.now() + timeout;
	for (;;) {
		const v = await check();
		if (v) {
			return v;
		}
		if (Date.now() > end) {
			throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
		}
		await sleep(50);
	}
}

function freePort() {
	return new Promise((resolve, reject) => {
		const srv = net.createServer();
		srv.unref();
		srv.on('error', reject);
		srv.listen(0, '127.0.0.1', () => {
			const { port } = srv.address();
			srv.close(() => resolve(port));
		});
	});
}

/**
 * Start the example with mqlockd flags `mqlockdArgs`. Resolves once run.sh
 * says it is ready: {url, port, wsPort, brokerPort, dir, logs(), stop()}.
 */
export async function startExample(mqlockdArgs = []) {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mqlock-drf-'));
	const [port, brokerPort, coordPort, wsPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
	const env = {
		...process.env,
		DRFDEMO_RUN: path.join(dir, 'run'),
		DRFDEMO_PORT: String(port),
		DRFDEMO_BROKER_PORT: String(brokerPort),
		DRFDEMO_COORD_PORT: String(coordPort),
		DRFDEMO_WS_PORT: String(wsPort),
		MQLOCKD_BIN: process.env.MQLOCKD_BIN || path.join(repoRoot, 'build', 'mqlockd'),
		MQLOCK_AUTH_PLUGIN: process.env.MQLOCK_AUTH_PLUGIN ||
			path.join(repoRoot, 'build', 'src', 'broker', 'mqlock_auth.so'),
	};
	const out = fs.openSync(path.join(dir, 'run.sh.log'), 'a');
	// Its own process group, so that stop() (or our exit) ends all of it.
	const child = spawn('bash', [path.join(repoRoot, 'examples', 'drf', 'run.sh'), '--no-install', ...mqlockdArgs],
		{ env, stdio: ['ignore', out, out], detached: true });
	fs.closeSync(out);
	const killAll = () => {
		try {
			process.kill(-child.pid, 'SIGKILL');
		} catch {
			// gone
		}
	};
	process.on('exit', killAll);
	for (const sig of ['SIGINT', 'SIGTERM']) {
		process.once(sig, () => {
			killAll();
			process.exit(128 + os.constants.signals[sig]);
		});
	}
	const ex = {
		url: `http://127.0.0.1:${port}`,
		port,
		wsPort,
		brokerPort,
		dir,
		runDir: env.DRFDEMO_RUN,
		logs() {
			const read = (f) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '(none)\n');
			return ['run.sh.log', 'run/mqlockd.log', 'run/mosquitto.log', 'run/gunicorn.log', 'run/nginx/error.log']
				.map((f) => `---- ${f} ----\n${read(path.join(dir, f))}`)
				.join('');
		},
		async stop() {
			if (child.exitCode === null && child.signalCode === null) {
				process.kill(-child.pid, 'SIGTERM');
				const end = Date.now() + 10000;
				while (child.exitCode === null && child.signalCode === null && Date.now() < end) {
					await sleep(50);
				}
			}
			killAll();
			process.off('exit', killAll);
			fs.rmSync(dir, { recursive: true, force: true });
		},
	};
	try {
		await waitFor(() => {
			if (child.exitCode !== null) {
				throw new Error(`run.sh exited with ${child.exitCode}\n${ex.logs()}`);
			}
			return fs.readFileSync(path.join(dir, 'run.sh.log'), 'utf8').includes('drf: ready');
		}, { timeout: 60000, what: 'run.sh ready' });
	} catch (err) {
		await ex.stop();
		throw err;
	}
	return ex;
}

/** Run fn(example); print the logs if it throws; stop everything. */
export async function withExample(mqlockdArgs, fn) {
	const ex = await startExample(mqlockdArgs);
	try {
		return await fn(ex);
	} catch (err) {
		process.stderr.write(ex.logs());
		throw err;
	} finally {
		await ex.stop();
	}
}

/**
 * One plain HTTP request: {status, headers, body}. `upgrade: true` asks for
 * a WebSocket (MQTT subprotocol) and resolves with the handshake's status
 * (101 when the upgrade was accepted; the socket is closed at once).
 */
export function request(url, { method = 'GET', headers = {}, body = null, upgrade = false } = {}) {
	return new Promise((resolve, reject) => {
		const u = new URL(url);
		const h = { ...headers };
		if (upgrade) {
			Object.assign(h, {
				Connection: 'Upgrade',
				Upgrade: 'websocket',
				'Sec-WebSocket-Version': '13',
				'Sec-WebSocket-Key': Buffer.from('0123456789abcdef').toString('base64'),
				'Sec-WebSocket-Protocol': 'mqtt',
			});
		}
		const req = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method, headers: h });
		req.on('upgrade', (res, socket) => {
			socket.destroy();
			resolve({ status: res.statusCode, headers: res.headers, body: '' });
		});
		req.on('response', (res) => {
			let data = '';
			res.setEncoding('utf8');
			res.on('data', (c) => {
				data += c;
			});
			res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: data }));
		});
		req.on('error', reject);
		if (body !== null) {
			req.write(body);
		}
		req.end();
	});
}

/** Sign `user` in through the login form; returns the cookie header value. */
export async function login(baseUrl, user) {
	const page = await request(`${baseUrl}/accounts/login/`);
	const csrf = /name="csrfmiddlewaretoken" value="([^"]+)"/.exec(page.body)[1];
	const cookie = cookiesOf(page.headers).join('; ');
	const form = new URLSearchParams({ csrfmiddlewaretoken: csrf, username: user, password: USERS[user].password, next: '/' });
	const r = await request(`${baseUrl}/accounts/login/`, {
		method: 'POST',
		headers: { Cookie: cookie, 'Content-Type': 'application/x-www-form-urlencoded' },
		body: form.toString(),
	});
	if (r.status !== 302) {
		throw new Error(`login as ${user}: HTTP ${r.status}`);
	}
	return cookiesOf(r.headers).join('; ');
}

function cookiesOf(headers) {
	return (headers['set-cookie'] || []).map((c) => c.split(';')[0]);
}
