// Browser test helpers: a web root assembled by web/build.sh, Debian's
// Chromium through playwright-core (never a downloaded browser), demo pages
// and screenshots.
//
// Environment: MQLOCKD_BIN, MOSQUITTO_BIN (see clients/js/test/harness.js),
// CHROMIUM_BIN (default /usr/bin/chromium), MQLOCK_ARTIFACTS (default
// test-artifacts/browser in the repository).

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { repoRoot, withStack } from '../../clients/js/test/harness.js';

export { nextEvent, observe, sleep, waitFor } from '../../clients/js/test/harness.js';

export const artifacts = process.env.MQLOCK_ARTIFACTS || path.join(repoRoot, 'test-artifacts', 'browser');

const CHROMIUM_ARGS = [
	'--no-sandbox',
	'--disable-gpu',
	'--disable-background-networking',
	'--disable-component-update',
	'--disable-sync',
	'--no-first-run',
	'--disable-quic',
];

let webRootDir = null;

/** The demo's web root, built once per test process by web/build.sh. */
export function webRoot() {
	if (!webRootDir) {
		const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mqlock-www-'));
		// Started as root, mosquitto drops to the mosquitto user, which
		// must be able to read the web root.
		fs.chmodSync(dir, 0o755);
		webRootDir = path.join(dir, 'www');
		execFileSync('bash', [path.join(repoRoot, 'web', 'build.sh'), webRootDir], { stdio: ['ignore', 'ignore', 'inherit'] });
		process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
	}
	return webRootDir;
}

export function launch() {
	return chromium.launch({
		executablePath: process.env.CHROMIUM_BIN || '/usr/bin/chromium',
		headless: true,
		args: CHROMIUM_ARGS,
	});
}

/**
 * Save a screenshot of `page` as test-artifacts/browser/NAME.png and
 * return its path.
 */
export async function shot(page, name) {
	fs.mkdirSync(artifacts, { recursive: true });
	const file = path.join(artifacts, `${name}.png`);
	await page.screenshot({ path: file });
	return file;
}

/**
 * Run `fn({stack, browser, open})` with a fresh mosquitto + mqlockd (stack
 * options as in harness.startStack, plus the web root) and one Chromium.
 * open(user, query) opens the demo page in a context of its own (its own
 * storage, its own network switch) and waits until it asked for the lock.
 * Everything is stopped afterwards, and both logs are printed on failure.
 */
export async function withBrowser(opts, fn) {
	await withStack({ ...opts, webRoot: webRoot() }, async (stack) => {
		const browser = await launch();
		const pages = [];
		const open = async (user, query = {}) => {
			const context = await browser.newContext({ viewport: { width: 900, height: 680 } });
			// Keep every WebSocket the page opens, so a test can drop one.
			await context.addInitScript(() => {
				const Native = window.WebSocket;
				window.__sockets = [];
				window.WebSocket = class extends Native {
					constructor(...args) {
						super(...args);
						window.__sockets.push(this);
					}
				};
			});
			const page = await context.newPage();
			page.on('pageerror', (err) => process.stderr.write(`[${user}] page error: ${err.message}\n`));
			page.on('console', (m) => {
				if (m.type() === 'error' && !m.text().includes('ERR_INTERNET_DISCONNECTED')) {
					process.stderr.write(`[${user}] console: ${m.text()}\n`);
				}
			});
			const q = new URLSearchParams({ user, lock: 'doc-1', ...query });
			await page.goto(`${stack.httpUrl}/?${q}`);
			await page.waitForFunction(() => window.mqlockDemo?.handle, null, { timeout: 15000 });
			pages.push(page);
			return page;
		};
		try {
			await fn({ stack, browser, open });
		} finally {
			await browser.close();
		}
	});
}

/** Wait until the page's body shows state `state` (editing, waiting, lost...). */
export async function waitState(page, state, timeout = 15000) {
	await page.waitForSelector(`body[data-state="${state}"]`, { timeout });
}

/** The token the page shows while editing. */
export async function shownToken(page) {
	const text = await page.textContent('#lock-info');
	const m = /token (\d+)/.exec(text);
	return m ? Number(m[1]) : null;
}
