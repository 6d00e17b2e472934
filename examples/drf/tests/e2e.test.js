// The example end to end in headless Chromium, through nginx: two signed-in
// users, a killed holder, the hand-over, a stale save refused, and an idle
// holder losing the lock after its warning.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { USERS, artifacts, repoRoot, request, withExample } from './stack.js';

const { chromium } = createRequire(path.join(repoRoot, 'tests', 'browser', 'package.json'))('playwright-core');

const GRACE = 2; // s, mqlockd --grace
const IDLE = 12; // s, --idle-timeout
const WARNING = 6; // s, --idle-warning
const FLAGS = ['--grace', String(GRACE), '--idle-timeout', String(IDLE), '--idle-warning', String(WARNING),
	'--keepalive', '2'];

const LAUNCH = {
	executablePath: process.env.CHROMIUM_BIN || '/usr/bin/chromium',
	headless: true,
	args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
		'--disable-sync', '--no-first-run', '--disable-quic'],
};

/**
 * A Chromium that can be killed like a crashed browser: {browser, kill()}.
 * kill() sends SIGKILL to its whole process group (browser, renderers,
 * network service), so its sockets close without a word.
 */
async function launch() {
	// By address: "localhost" needs a resolver entry a minimal machine may lack.
	const server = await chromium.launchServer({ ...LAUNCH, host: '127.0.0.1' });
	let browser;
	try {
		browser = await chromium.connect(server.wsEndpoint());
	} catch (err) {
		await server.kill().catch(() => {});
		throw err;
	}
	const pid = server.process().pid;
	return {
		browser,
		kill() {
			try {
				process.kill(-pid, 'SIGKILL');
			} catch {
				server.process().kill('SIGKILL');
			}
		},
		async close() {
			await browser.close().catch(() => {});
			await server.close().catch(() => {});
		},
	};
}

async function shot(page, name) {
	fs.mkdirSync(artifacts, { recursive: true });
	await page.screenshot({ path: path.join(artifacts, `drf-${name}.png`) });
}

/** A signed-in page of `user` on document 1's editor. */
async function editor(browser, ex, user) {
	const context = await browser.newContext({ viewport: { width: 900, height: 700 } });
	const page = await context.newPage();
	page.on('pageerror', (err) => process.stderr.write(`[${user}] page error: ${err.message}\n`));
	page.on('console', (m) => {
		if (m.type() === 'error' && !m.text().includes('409 (Conflict)')) {
			process.stderr.write(`[${user}] console: ${m.text()}\n`);
		}
	});
	await page.goto(`${ex.url}/accounts/login/?next=/documents/1/`);
	await page.fill('input[name=username]', user);
	await page.fill('input[name=password]', USERS[user].password);
	await Promise.all([page.waitForURL('**/documents/1/'), page.click('#sign-in')]);
	return page;
}

/** Wait until the page's <mqlock-lock> shows `view` (editing, waiting, lost...). */
function waitView(page, view, timeout = 15000) {
	return page.waitForSelector(`mqlock-lock[view="${view}"]`, { timeout, state: 'attached' });
}

/** The words of the lock's banner: {headline, detail}. */
function banner(page) {
	return page.evaluate(() => {
		const r = document.querySelector('mqlock-lock').shadowRoot;
		return { headline: r.querySelector('.headline').textContent, detail: r.querySelector('.detail').textContent };
	});
}

test('a killed holder hands over, its stale save is refused, an idle holder loses the lock', async () => {
	await withExample(FLAGS, async (ex) => {
		const chromeA = await launch();
		let chromeB;
		try {
			chromeB = await launch();
		} catch (err) {
			await chromeA.close();
			throw err;
		}
		const browserA = chromeA.browser;
		const browserB = chromeB.browser;
		try {
			// Alice edits and saves.
			const alice = await editor(browserA, ex, 'alice');
			await waitView(alice, 'editing');
			await alice.fill('#body', 'Alice was here');
			const saved = await alice.evaluate(() => window.drfdemo.save());
			assert.equal(saved.status, 200, JSON.stringify(saved.body));
			const aliceToken = await alice.evaluate(() => window.drfdemo.lock.token);
			assert.equal(saved.body.mqlock_token, aliceToken);
			await shot(alice, '1-alice-editing');

			// Bob waits, told who holds the document and where he stands.
			const bob = await editor(browserB, ex, 'bob');
			await waitView(bob, 'waiting');
			await bob.waitForFunction(() => window.drfdemo.lock.handle?.position === 1);
			assert.equal((await banner(bob)).headline, 'Alice is editing — you are next.');
			assert.equal(await bob.evaluate(() => document.getElementById('body').readOnly), true);
			assert.equal(await bob.isDisabled('#save'), true);
			await shot(bob, '2-bob-waiting');

			// Alice's browser is killed: no pagehide, no goodbye. The broker
			// sees the WebSocket (through nginx) close and fires her will; after
			// the grace period Bob has the lock.
			const cookieAlice = (await alice.context().cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
			const csrfAlice = await alice.evaluate(() => document.querySelector('meta[name="csrf-token"]').content);
			chromeA.kill();
			const killedAt = Date.now();
			await waitView(bob, 'editing', (GRACE + 15) * 1000);
			const handOver = (Date.now() - killedAt) / 1000;
			assert.ok(handOver <= GRACE + 15, `hand-over took ${handOver} s`);
			await bob.waitForFunction(() => document.getElementById('body').value === 'Alice was here');
			await bob.fill('#body', 'Bob rewrote it');
			const bobSave = await bob.evaluate(() => window.drfdemo.save());
			assert.equal(bobSave.status, 200, JSON.stringify(bobSave.body));
			const bobToken = await bob.evaluate(() => window.drfdemo.lock.token);
			assert.ok(bobToken > aliceToken);
			await shot(bob, '3-bob-editing');

			// What Alice's page would have sent, had it lived: refused, 409,
			// naming Bob; the document keeps Bob's text.
			const stale = await request(`${ex.url}/api/documents/1/`, {
				method: 'PUT',
				headers: {
					Cookie: cookieAlice,
					'X-CSRFToken': csrfAlice,
					'X-Mqlock-Token': String(aliceToken),
					'Content-Type': 'application/json',
				},
				body: JSON.stringify({ title: 'Quarterly report', body: 'Alice, too late' }),
			});
			assert.equal(stale.status, 409, stale.body);
			const refusal = JSON.parse(stale.body);
			assert.equal(refusal.code, 'not-holder');
			assert.equal(refusal.holder.user, 'Bob');
			const doc = JSON.parse((await request(`${ex.url}/api/documents/1/`, { headers: { Cookie: cookieAlice } })).body);
			assert.equal(doc.body, 'Bob rewrote it');
			assert.equal(doc.mqlock_token, bobToken);

			// Bob types, then goes idle while Carol waits: warning, then the
			// lock goes to Carol and Bob's page keeps his unsaved text.
			await bob.fill('#body', 'Bob rewrote it, and more (unsaved)');
			const carol = await editor(browserB, ex, 'carol');
			await waitView(carol, 'waiting');
			assert.equal((await banner(carol)).headline, 'Bob is editing — you are next.');
			await waitView(bob, 'idle-warning', (IDLE + 10) * 1000);
			assert.equal((await banner(bob)).headline, 'Are you still there?');
			await shot(bob, '4-bob-idle-warning');
			await waitView(bob, 'lost', (WARNING + 10) * 1000);
			assert.equal(await bob.evaluate(() => window.drfdemo.lock.handle.lost.reason), 'idle');
			assert.equal(await bob.inputValue('#body'), 'Bob rewrote it, and more (unsaved)');
			assert.equal(await bob.evaluate(() => document.getElementById('body').readOnly), true);
			assert.equal(await bob.evaluate(() => window.drfdemo.lock.draft), 'Bob rewrote it, and more (unsaved)');
			await shot(bob, '5-bob-lost');
			await waitView(carol, 'editing');
			await shot(carol, '6-carol-editing');
			// Bob's save from the lost page is refused too.
			const late = await bob.evaluate(async () => {
				const h = window.drfdemo.lock.handle;
				const r = await fetch(JSON.parse(document.getElementById('document-api').textContent), {
					method: 'PUT',
					credentials: 'same-origin',
					headers: {
						'Content-Type': 'application/json',
						'X-CSRFToken': document.querySelector('meta[name="csrf-token"]').content,
						'X-Mqlock-Token': String(h.token),
					},
					body: JSON.stringify({ title: 'Quarterly report', body: 'late' }),
				});
				return r.status;
			});
			assert.equal(late, 409);
		} finally {
			await chromeB.close();
			await chromeA.close();
		}
	});
});
