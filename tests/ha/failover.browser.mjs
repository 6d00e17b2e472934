// The demo editor through a failover: three etcd members, two mqlockd on
// them (default lease), one mosquitto serving the page and MQTT over
// WebSocket, and two editor pages in headless Chromium on one document.
// The leader is killed while Alice edits and Bob waits: both pages come
// back (Alice editing with the same token, Bob waiting behind her) once the
// standby leads, within the bound, and nobody else ever holds the lock
// meanwhile; then Alice closes her page and Bob gets the lock from the new
// leader with a larger token.
//
// Environment: MQLOCKD_BIN, MOSQUITTO_BIN, ETCD_BIN (default /usr/bin/etcd),
// CHROMIUM_BIN (tests/browser/lib.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { launch, webRoot, waitView, banner, shownToken } from '../browser/lib.js';
import { freePort, mosquittoBin, mqlockdBin, observe, sleep, waitFor } from '../../clients/js/test/harness.js';

const LEASE_S = 5; // mqlockd's default --lease
const BOUND_MS = (LEASE_S + 3) * 1000;

function start(bin, args, log) {
	const out = fs.openSync(log, 'a');
	const child = spawn(bin, args, { stdio: ['ignore', out, out] });
	fs.closeSync(out);
	return child;
}

function stop(child, signal = 'SIGTERM') {
	return new Promise((resolve) => {
		if (child.exitCode !== null || child.signalCode !== null) {
			resolve();
			return;
		}
		child.once('exit', () => resolve());
		child.kill(signal);
	});
}

async function healthy(url) {
	try {
		const r = await fetch(`${url}/health`);
		return r.ok && (await r.json()).health === 'true';
	} catch {
		return false;
	}
}

test('the leader dies while Alice edits and Bob waits: both pages recover, nobody else holds the lock', async () => {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mqlock-ha-demo-'));
	fs.chmodSync(dir, 0o755);
	const children = [];
	const logs = [];
	let browser = null;
	let passed = false;
	try {
		// Three etcd members.
		const members = [];
		for (let i = 0; i < 3; i++) {
			members.push({ name: `m${i}`, client: await freePort(), peer: await freePort() });
		}
		const cluster = members.map((m) => `${m.name}=http://127.0.0.1:${m.peer}`).join(',');
		for (const m of members) {
			const log = path.join(dir, `etcd-${m.name}.log`);
			logs.push(log);
			children.push(start(process.env.ETCD_BIN || '/usr/bin/etcd', [
				'--name', m.name, '--data-dir', path.join(dir, `etcd-${m.name}`),
				'--listen-client-urls', `http://127.0.0.1:${m.client}`,
				'--advertise-client-urls', `http://127.0.0.1:${m.client}`,
				'--listen-peer-urls', `http://127.0.0.1:${m.peer}`,
				'--initial-advertise-peer-urls', `http://127.0.0.1:${m.peer}`,
				'--initial-cluster', cluster, '--initial-cluster-state', 'new',
				'--initial-cluster-token', 'mqlock-ha-demo'], log));
		}
		const endpoints = members.map((m) => `http://127.0.0.1:${m.client}`);
		for (const e of endpoints) {
			await waitFor(() => healthy(e), { timeout: 30000, what: `etcd ${e} healthy` });
		}

		// mosquitto: MQTT for mqlockd, WebSocket and the page for Chromium.
		const tcpPort = await freePort();
		const wsPort = await freePort();
		fs.writeFileSync(path.join(dir, 'mosquitto.conf'), [
			`listener ${tcpPort} 127.0.0.1`, 'socket_domain ipv4',
			`listener ${wsPort} 127.0.0.1`, 'protocol websockets', 'socket_domain ipv4',
			`http_dir ${webRoot()}`,
			'allow_anonymous true', 'set_tcp_nodelay true', 'max_queued_messages 0',
			'max_inflight_messages 100', 'persistence false', 'log_type all',
			process.getuid() === 0 ? 'user root' : '', ''].join('\n'));
		logs.push(path.join(dir, 'mosquitto.log'));
		children.push(start(mosquittoBin(), ['-c', path.join(dir, 'mosquitto.conf')], logs.at(-1)));
		const mqtt = `mqtt://127.0.0.1:${tcpPort}`;
		await waitFor(async () => {
			try {
				return (await fetch(`http://127.0.0.1:${wsPort}/`)).ok;
			} catch {
				return false;
			}
		}, { timeout: 10000, what: 'mosquitto serving the page' });
		const status = await observe(mqtt, ['locks/_coordinator/status']);
		const owners = await observe(mqtt, ['locks/doc-1/owner']);

		// Two mqlockd: ha-a first, so that it leads.
		const coords = {};
		for (const id of ['ha-a', 'ha-b']) {
			const log = path.join(dir, `mqlockd-${id}.log`);
			logs.push(log);
			coords[id] = start(mqlockdBin(), ['--broker', `tcp://127.0.0.1:${tcpPort}`,
				'--etcd', endpoints.join(','), '--etcd-id', id, '--grace', '2',
				'--keepalive', '2', '--log-level', 'debug'], log);
			children.push(coords[id]);
			if (id === 'ha-a') {
				await waitFor(() => status.messages.some((m) => m.json?.state === 'online'),
				    { timeout: 15000, what: 'ha-a online' });
			}
		}
		await waitFor(() => fs.readFileSync(logs.at(-1), 'utf8').includes('standing by: ha-a leads'),
		    { timeout: 15000, what: 'ha-b standing by' });
		const epoch0 = status.messages.filter((m) => m.json?.state === 'online').at(-1).json.epoch;

		browser = await launch();
		const open = async (user) => {
			const context = await browser.newContext({ viewport: { width: 900, height: 680 } });
			const page = await context.newPage();
			await page.goto(`http://127.0.0.1:${wsPort}/?user=${user}&lock=doc-1`);
			await page.waitForFunction(() => window.mqlockDemo && document.querySelector('mqlock-lock')?.hasAttribute('view'),
			    null, { timeout: 15000 });
			return page;
		};
		const alice = await open('Alice');
		await waitView(alice, 'editing');
		const token = await shownToken(alice);
		const aliceId = await alice.evaluate(() => window.mqlockDemo.client.clientId);
		await alice.click('#editor');
		await alice.keyboard.type('Typed before the failover. ');
		const bob = await open('Bob');
		await waitView(bob, 'waiting');
		// Bob's state, whatever happens from here on.
		await bob.evaluate(() => {
			window.__states = [];
			const el = document.querySelector('mqlock-lock');
			new MutationObserver(() => window.__states.push(el.getAttribute('state')))
				.observe(el, { attributes: true, attributeFilter: ['state'] });
		});
		const ownersBefore = owners.messages.length;

		const t0 = Date.now();
		await stop(coords['ha-a'], 'SIGKILL');
		await alice.keyboard.type('Typed during it. ');
		await waitFor(() => status.messages.some((m) => m.json?.state === 'online' && m.json.epoch > epoch0),
		    { timeout: 30000, what: 'ha-b online in a new epoch' });
		const online = status.messages.find((m) => m.json?.state === 'online' && m.json.epoch > epoch0);
		const onlineMs = online.at - t0;
		await waitFor(async () => (await banner(alice)).headline === 'You are editing.' &&
		    (await banner(bob)).headline === 'Alice is editing — you are next.' &&
		    owners.messages.length > ownersBefore,
		    { timeout: 30000, what: 'both pages back to editing and waiting' });
		const pagesMs = Date.now() - t0;
		process.stdout.write(`# failover: ha-b online after ${onlineMs} ms, both pages back after at most ` +
		    `${pagesMs} ms (bound ${BOUND_MS} ms)\n`);
		assert.ok(onlineMs <= BOUND_MS, `online after ${onlineMs} ms, bound ${BOUND_MS} ms`);
		assert.equal(await shownToken(alice), token);
		assert.equal(await alice.inputValue('#editor'), 'Typed before the failover. Typed during it. ');
		// Nobody but Alice held doc-1 at any time, and with her one token.
		const held = owners.messages.slice(ownersBefore).filter((m) => m.json?.owner);
		assert.ok(held.length > 0, 'the new leader republished the owner message');
		for (const m of held) {
			assert.equal(m.json.owner.client, aliceId);
			assert.equal(m.json.token, token);
		}
		assert.ok(!(await bob.evaluate(() => window.__states)).includes('editing'), 'Bob never edited meanwhile');

		// The new leader hands the lock on.
		await alice.context().close();
		await waitView(bob, 'editing', 15000);
		assert.ok((await shownToken(bob)) > token);
		await status.close();
		await owners.close();
		passed = true;
	} finally {
		if (browser) {
			await browser.close();
		}
		for (const c of children.reverse()) {
			await stop(c);
		}
		if (!passed) {
			for (const log of logs) {
				process.stderr.write(`---- ${log} ----\n${fs.existsSync(log) ? fs.readFileSync(log, 'utf8').slice(-6000) : '(none)'}\n`);
			}
		}
		fs.rmSync(dir, { recursive: true, force: true });
		await sleep(0);
	}
});
