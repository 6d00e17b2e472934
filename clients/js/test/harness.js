// Test harness: a real mosquitto and a real mqlockd per test, on free
// 127.0.0.1 ports, in a temporary directory that is removed afterwards.
//
// Used by the tests of this package and by tests/browser. Binaries:
//   MQLOCKD_BIN    default: build/mqlockd of this repository
//   MOSQUITTO_BIN  default: mosquitto from PATH, else /usr/sbin/mosquitto

import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { ticketKey } from './tickets.js';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '../../..');

export function mqlockdBin() {
	return process.env.MQLOCKD_BIN || path.join(repoRoot, 'build', 'mqlockd');
}

export function mosquittoBin() {
	if (process.env.MOSQUITTO_BIN) {
		return process.env.MOSQUITTO_BIN;
	}
	try {
		return execFileSync('sh', ['-c', 'command -v mosquitto'], { encoding: 'utf8' }).trim() ||
		    '/usr/sbin/mosquitto';
	} catch {
		return '/usr/sbin/mosquitto';
	}
}

// Every child still alive when the test process exits is killed, so that a
// failed or interrupted test leaves no broker behind.
const children = new Set();
process.on('exit', () => {
	for (const c of children) {
		try {
			c.kill('SIGKILL');
		} catch {
			// already gone
		}
	}
});

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort() {
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

export function sleep(ms) {
	return new Promise((r) => setTimeout(r, ms));
}

/**
 * Wait until `check()` returns a truthy value (polled every 25 ms) and
 * return it; throw after `timeout` ms, naming `what`.
 */
export async function waitFor(check, { timeout = 10000, what = 'condition' } = {}) {
	const end = Date.now() + timeout;
	for (;;) {
		const v = await check();
		if (v) {
			return v;
		}
		if (Date.now() > end) {
			throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
		}
		await sleep(25);
	}
}

/**
 * Resolve with the detail of the next `type` event of `emitter` (a
 * LockHandle or MqlockClient) for which `pred(detail)` holds.
 */
export function nextEvent(emitter, type, { timeout = 10000, pred = () => true } = {}) {
	return new Promise((resolve, reject) => {
		const timer = setTimeout(() => {
			off();
			reject(new Error(`timed out after ${timeout} ms waiting for event ${type}`));
		}, timeout);
		const off = emitter.on(type, (d) => {
			if (pred(d)) {
				clearTimeout(timer);
				off();
				resolve(d);
			}
		});
	});
}

function portOpen(port) {
	return new Promise((resolve) => {
		const s = net.connect({ host: '127.0.0.1', port });
		s.once('connect', () => {
			s.destroy();
			resolve(true);
		});
		s.once('error', () => resolve(false));
	});
}

function exited(child) {
	return child.exitCode !== null || child.signalCode !== null;
}

function waitExit(child, ms) {
	if (exited(child)) {
		return Promise.resolve(true);
	}
	return new Promise((resolve) => {
		const t = setTimeout(() => resolve(false), ms);
		child.once('exit', () => {
			clearTimeout(t);
			resolve(true);
		});
	});
}

async function stopChild(child, signal = 'SIGTERM') {
	if (!child || exited(child)) {
		children.delete(child);
		return;
	}
	child.kill(signal);
	if (!(await waitExit(child, 5000))) {
		child.kill('SIGKILL');
		await waitExit(child, 5000);
	}
	children.delete(child);
}

function spawnLogged(bin, args, logFile, cwd) {
	const fd = fs.openSync(logFile, 'a');
	const child = spawn(bin, args, { cwd, stdio: ['ignore', fd, fd] });
	fs.closeSync(fd);
	children.add(child);
	child.on('exit', () => children.delete(child));
	return child;
}

/**
 * An mqtt.js client that records every message on `filters`:
 * {messages: [{topic, json, retain, at}], client, close()}.
 */
export async function observe(url, filters) {
	const client = mqtt.connect(url, {
		clientId: `obs-${Math.random().toString(16).slice(2, 10)}`,
		protocolVersion: 5,
		reconnectPeriod: 200,
	});
	const messages = [];
	client.on('message', (topic, payload, packet) => {
		let json = null;
		try {
			json = JSON.parse(payload.toString());
		} catch {
			// not JSON: keep the topic only
		}
		messages.push({ topic, json, retain: packet.retain, at: Date.now() });
	});
	await new Promise((resolve, reject) => {
		client.once('connect', resolve);
		client.once('error', reject);
	});
	await client.subscribeAsync(filters, { qos: 1 });
	return {
		client,
		messages,
		close: () => client.endAsync(true),
	};
}

/**
 * Start mosquitto and mqlockd. Options:
 *   grace, idleTimeout, idleWarning, keepalive (mqlockd, seconds)
 *   idlePolicy: 'always' or 'contended' (mqlockd's default)
 *   tickets: true for mqlockd --ticket-key with a fresh key (stack.ticketKey);
 *     requireTicket: also --require-ticket
 *   webRoot: also open a websockets listener serving this directory
 * Returns the stack; call stack.stop() in a finally block.
 */
export async function startStack(opts = {}) {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mqlock-js-'));
	let ticketKeyValue = null;
	const tcpPort = await freePort();
	const wsPort = opts.webRoot ? await freePort() : null;
	const conf = [
		`listener ${tcpPort} 127.0.0.1`,
		'socket_domain ipv4',
	];
	if (wsPort) {
		conf.push(
			`listener ${wsPort} 127.0.0.1`,
			'protocol websockets',
			'socket_domain ipv4',
			`http_dir ${opts.webRoot}`,
		);
	}
	conf.push(
		'allow_anonymous true',
		'set_tcp_nodelay true',
		'max_queued_messages 0',
		'max_inflight_messages 100',
		'persistence false',
		'log_type all',
		'log_timestamp_format %H:%M:%S',
		'',
	);
	fs.writeFileSync(path.join(dir, 'mosquitto.conf'), conf.join('\n'));
	if (opts.tickets) {
		const { key, file } = ticketKey(dir);
		opts = { ...opts, ticketKeyFile: file };
		ticketKeyValue = key;
	}
	const brokerLog = path.join(dir, 'mosquitto.log');
	const mqlockdLog = path.join(dir, 'mqlockd.log');
	const stack = {
		dir,
		tcpPort,
		wsPort,
		mqttUrl: `mqtt://127.0.0.1:${tcpPort}`,
		wsUrl: wsPort ? `ws://127.0.0.1:${wsPort}` : null,
		httpUrl: wsPort ? `http://127.0.0.1:${wsPort}` : null,
		broker: null,
		mqlockd: null,
		/** The ticket key mqlockd checks tickets with (option tickets). */
		ticketKey: ticketKeyValue,
		watcher: null,
		opts,
		/** The last retained coordinator status seen, or null. */
		get status() {
			const m = this.watcher?.messages.at(-1);
			return m ? m.json : null;
		},
		/** The epoch of every online status seen, in order. */
		get epochs() {
			return (this.watcher?.messages ?? [])
				.filter((m) => m.json?.state === 'online')
				.map((m) => m.json.epoch);
		},
	};

	stack.startMqlockd = async () => {
		const seen = stack.epochs.length;
		const args = [
			'--broker', `tcp://127.0.0.1:${tcpPort}`,
			'--db', path.join(dir, 'mqlock.db'),
			'--grace', String(opts.grace ?? 1),
			'--idle-timeout', String(opts.idleTimeout ?? 600),
			'--idle-warning', String(opts.idleWarning ?? 60),
			'--keepalive', String(opts.keepalive ?? 2),
			'--log-level', 'debug',
		];
		if (opts.idlePolicy) {
			args.push('--idle-policy', opts.idlePolicy);
		}
		if (opts.ticketKeyFile) {
			args.push('--ticket-key', opts.ticketKeyFile);
		}
		if (opts.requireTicket) {
			args.push('--require-ticket');
		}
		stack.mqlockd = spawnLogged(mqlockdBin(), args, mqlockdLog, dir);
		await waitFor(() => {
			if (exited(stack.mqlockd)) {
				throw new Error(`mqlockd exited (${stack.mqlockd.exitCode ?? stack.mqlockd.signalCode})\n${stack.logs()}`);
			}
			return stack.epochs.length > seen && stack.status?.state === 'online';
		}, { timeout: 15000, what: 'mqlockd online (retained status)' });
		return stack.status;
	};

	stack.stopMqlockd = async (signal = 'SIGTERM') => {
		await stopChild(stack.mqlockd, signal);
	};

	stack.logs = () => {
		const read = (f) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '(none)');
		return `---- mqlockd log ----\n${read(mqlockdLog)}\n---- mosquitto log ----\n${read(brokerLog)}\n`;
	};

	stack.stop = async () => {
		await stack.watcher?.close().catch(() => {});
		await stopChild(stack.mqlockd, 'SIGTERM');
		await stopChild(stack.broker, 'SIGTERM');
		fs.rmSync(dir, { recursive: true, force: true });
	};

	try {
		stack.broker = spawnLogged(mosquittoBin(), ['-c', path.join(dir, 'mosquitto.conf')], brokerLog, dir);
		await waitFor(async () => {
			if (exited(stack.broker)) {
				throw new Error(`mosquitto exited\n${stack.logs()}`);
			}
			return (await portOpen(tcpPort)) && (!wsPort || (await portOpen(wsPort)));
		}, { timeout: 10000, what: 'mosquitto listening' });
		stack.watcher = await observe(stack.mqttUrl, ['locks/_coordinator/status']);
		await stack.startMqlockd();
	} catch (err) {
		await stack.stop();
		throw err;
	}
	return stack;
}

/**
 * Run `fn(stack)` with a fresh stack; print both logs if it throws, and
 * stop everything in any case.
 */
export async function withStack(opts, fn) {
	const stack = await startStack(opts);
	try {
		return await fn(stack);
	} catch (err) {
		process.stderr.write(stack.logs());
		throw err;
	} finally {
		await stack.stop();
	}
}
