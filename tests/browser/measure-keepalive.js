// How long after a silent client's last packet mosquitto publishes its will,
// over WebSocket and TCP: the "+ up to ~7 s" of the browser timing bound
// (clients/js/README.md, "Browser timings"). Not a test: a measurement.
//
//   node tests/browser/measure-keepalive.js [KEEPALIVE_S] [CLIENTS] [ws|tcp]...
//   e.g. node tests/browser/measure-keepalive.js 10 24 ws
//
// Each client is a Node process running mqtt.js with a will; it prints the
// time of every packet it sends. After a random pause (so that the clients
// are stopped at every phase of their keepalive) it is frozen with SIGSTOP,
// and the will's arrival is timed against its last packet. Needs mosquitto
// (MOSQUITTO_BIN) and `npm ci` in clients/js.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, mosquittoBin, observe, sleep, waitFor } from '../../clients/js/test/harness.js';

if (process.argv[2] === '--client') {
	const { default: mqtt } = await import('mqtt');
	const [url, id, k] = process.argv.slice(3);
	const c = mqtt.connect(url, {
		clientId: id, protocolVersion: 5, keepalive: Number(k), reconnectPeriod: 0,
		will: { topic: `measure/will/${id}`, payload: 'gone', qos: 1 },
	});
	c.on('packetsend', () => process.stdout.write(`${Date.now()}\n`));
} else {
	const keepalive = Number(process.argv[2] ?? 10);
	const count = Number(process.argv[3] ?? 12);
	const kinds = process.argv.slice(4).length ? process.argv.slice(4) : ['ws', 'tcp'];
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mqlock-ka-'));
	const tcp = await freePort();
	const ws = await freePort();
	fs.writeFileSync(path.join(dir, 'm.conf'), [
		`listener ${tcp} 127.0.0.1`, 'socket_domain ipv4',
		`listener ${ws} 127.0.0.1`, 'protocol websockets', 'socket_domain ipv4',
		'allow_anonymous true', 'persistence false', '',
	].join('\n'));
	const broker = spawn(mosquittoBin(), ['-c', path.join(dir, 'm.conf')], { stdio: 'ignore' });
	const clients = [];
	try {
		await sleep(500);
		const obs = await observe(`mqtt://127.0.0.1:${tcp}`, ['measure/will/#']);
		for (const kind of kinds) {
			for (let i = 0; i < count; i++) {
				const id = `${kind}-${i}`;
				const url = kind === 'ws' ? `ws://127.0.0.1:${ws}` : `mqtt://127.0.0.1:${tcp}`;
				const child = spawn(process.execPath, [process.argv[1], '--client', url, id, String(keepalive)],
				    { stdio: ['ignore', 'pipe', 'inherit'] });
				const c = { id, kind, child, last: 0 };
				child.stdout.on('data', (d) => {
					c.last = Math.max(c.last, ...String(d).trim().split('\n').map(Number));
				});
				clients.push(c);
			}
		}
		await waitFor(() => clients.every((c) => c.last > 0), { timeout: 60000, what: 'every client connected' });
		await Promise.all(clients.map(async (c) => {
			await sleep(Math.random() * keepalive * 2000);
			c.lastBeforeStop = c.last;
			c.child.kill('SIGSTOP');
		}));
		const will = (c) => obs.messages.find((m) => m.topic === `measure/will/${c.id}`);
		await waitFor(() => clients.every(will), { timeout: (keepalive * 1.5 + 60) * 1000, what: 'every will' });
		for (const kind of kinds) {
			const after = clients.filter((c) => c.kind === kind)
				.map((c) => (will(c).at - c.lastBeforeStop) / 1000 - 1.5 * keepalive)
				.sort((a, b) => a - b);
			console.log(`${kind}: will 1.5 x ${keepalive} s + ${after[0].toFixed(1)} … ${after.at(-1).toFixed(1)} s ` +
			    `after the last packet (${after.length} clients; median + ${after[after.length >> 1].toFixed(1)} s)`);
		}
		await obs.close();
	} finally {
		for (const c of clients) {
			c.child.kill('SIGKILL');
		}
		broker.kill();
		fs.rmSync(dir, { recursive: true, force: true });
	}
}
