// Browser test helpers: a web root assembled by web/build.sh, Debian's
// Chromium through playwright-core (never a downloaded browser), demo pages
// with their <mqlock-lock>, screenshots, axe-core scans and a record of what
// the page's live region announced.
//
// Environment: MQLOCKD_BIN, MOSQUITTO_BIN (see clients/js/test/harness.js),
// CHROMIUM_BIN (default /usr/bin/chromium), MQLOCK_ARTIFACTS (default
// test-artifacts/browser in the repository), MQLOCK_DOCS_SCREENSHOTS=1 to
// also write the state screenshots into docs/browser/.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';
import { repoRoot, withStack } from '../../clients/js/test/harness.js';

export { nextEvent, observe, sleep, waitFor } from '../../clients/js/test/harness.js';

export const artifacts = process.env.MQLOCK_ARTIFACTS || path.join(repoRoot, 'test-artifacts', 'browser');
export const docsShots = path.join(repoRoot, 'docs', 'browser');

const require = createRequire(import.meta.url);
const axeSource = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

const CHROMIUM_ARGS = [
	'--no-sandbox',
	'--disable-gpu',
	'--disable-background-networking',
	'--disable-component-update',
	'--disable-sync',
	'--no-first-run',
	'--disable-quic',
	// Pages served by route() count as public; their WebSocket to 127.0.0.1 must not be blocked.
	'--disable-features=LocalNetworkAccessChecks',
];

export const WIDE = { width: 1280, height: 720 };
export const NARROW = { width: 390, height: 844 };

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
 * Screenshots of one state at 1280 and 390 px (NAME-1280.png, NAME-390.png,
 * the page's top 720 px), kept in test-artifacts/browser and, with
 * MQLOCK_DOCS_SCREENSHOTS=1, in docs/browser. The viewport is restored.
 */
export async function stateShots(page, name) {
	const before = page.viewportSize();
	const dirs = [artifacts];
	if (process.env.MQLOCK_DOCS_SCREENSHOTS === '1') {
		dirs.push(docsShots);
	}
	for (const vp of [WIDE, NARROW]) {
		await page.setViewportSize(vp);
		// Layout settles within a frame; the countdown must not tick mid-shot.
		await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
		const buf = await page.screenshot({ clip: { x: 0, y: 0, width: vp.width, height: Math.min(vp.height, 720) } });
		for (const dir of dirs) {
			fs.mkdirSync(dir, { recursive: true });
			fs.writeFileSync(path.join(dir, `${name}-${vp.width}.png`), buf);
		}
	}
	await page.setViewportSize(before);
}

/**
 * Run axe-core on the page (WCAG 2.0/2.1 A and AA rules and best practices)
 * and return the violations of impact serious or critical, as
 * [{id, impact, help, nodes: [html...]}].
 */
export async function axeSerious(page) {
	if (!(await page.evaluate(() => typeof window.axe === 'object'))) {
		await page.addScriptTag({ content: axeSource });
	}
	const result = await page.evaluate(() => window.axe.run(document, {
		runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
		resultTypes: ['violations'],
	}));
	return result.violations
		.filter((v) => v.impact === 'serious' || v.impact === 'critical')
		.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.html) }));
}

/**
 * Start recording what the element's live region says: returns a function
 * that resolves to [{text, at}] (page time in ms, Date.now() of Node).
 */
export async function recordLive(page) {
	await page.evaluate(() => {
		const live = document.querySelector('mqlock-lock').shadowRoot.querySelector('[aria-live]');
		window.__live = [];
		new MutationObserver(() => {
			const text = live.textContent.trim();
			if (text !== '') {
				window.__live.push({ text, at: Date.now() });
			}
		}).observe(live, { childList: true, characterData: true, subtree: true });
	});
	return () => page.evaluate(() => window.__live.slice());
}

// mosquitto's http_dir answers each request after a few hundred ms (its
// WebSocket listener is served between the rounds of its main loop). Pages
// get the same files from the web root directly unless a test opens them
// with `viaBroker`; MQTT still goes over the broker's WebSocket.
const TYPES = { '.html': 'text/html', '.js': 'application/octet-stream', '.css': 'text/css' };
async function serveFromDisk(context, origin) {
	await context.route(`${origin}/**`, (route) => {
		const url = new URL(route.request().url());
		const name = url.pathname === '/' ? 'index.html' : path.basename(url.pathname);
		const file = path.join(webRoot(), name);
		if (route.request().method() !== 'GET' || !fs.existsSync(file)) {
			return route.fallback();
		}
		// Like mosquitto: no JavaScript type, so boot.js's loader is used as in production.
		return route.fulfill({ body: fs.readFileSync(file), contentType: TYPES[path.extname(name)] });
	});
}

/**
 * Run `fn({stack, browser, open})` with a fresh mosquitto + mqlockd (stack
 * options as in harness.startStack, plus the web root) and one Chromium.
 * open(user, query, options) opens the demo page in a context of its own
 * (its own storage, its own network switch; `options` are Playwright
 * context options, `skew` ms to set the page's Date off by, and `viaBroker`
 * to load the page from mosquitto's http_dir rather than from the web root
 * directly), or in `options.context`, and waits until the element asked for
 * the lock. Everything is stopped afterwards, and both
 * logs are printed on failure.
 */
export async function withBrowser(opts, fn) {
	await withStack({ ...opts, webRoot: webRoot() }, async (stack) => {
		const browser = await launch();
		const open = async (user, query = {}, { context: shared, skew = 0, viaBroker = false, ...contextOptions } = {}) => {
			let context = shared;
			if (!context) {
				context = await browser.newContext({ viewport: { width: 900, height: 680 }, ...contextOptions });
				if (!viaBroker) {
					await serveFromDisk(context, stack.httpUrl);
				}
				if (skew !== 0) {
					// The page's wall clock is `skew` ms off (Date only: the
					// worker timers and performance.timeOrigin keep the truth).
					await context.addInitScript((ms) => {
						const Real = Date;
						globalThis.Date = class extends Real {
							constructor(...args) {
								if (args.length === 0) {
									super(Real.now() + ms);
								} else {
									super(...args);
								}
							}

							static now() {
								return Real.now() + ms;
							}
						};
					}, skew);
				}
				// Keep every WebSocket the page opens and the times it sent
				// on them, so a test can drop one or date its last packet.
				await context.addInitScript(() => {
					const Native = window.WebSocket;
					window.__sockets = [];
					window.__sends = [];
					window.WebSocket = class extends Native {
						constructor(...args) {
							super(...args);
							window.__sockets.push(this);
						}

						send(data) {
							window.__sends.push(performance.timeOrigin + performance.now());
							return super.send(data);
						}
					};
				});
			}
			const page = await context.newPage();
			page.on('pageerror', (err) => process.stderr.write(`[${user}] page error: ${err.message}\n`));
			page.on('console', (m) => {
				if (m.type() === 'error' && !m.text().includes('ERR_INTERNET_DISCONNECTED')) {
					process.stderr.write(`[${user}] console: ${m.text()}\n`);
				}
			});
			const q = new URLSearchParams({ user, lock: 'doc-1', ...query });
			await page.goto(`${stack.httpUrl}/?${q}`);
			await page.waitForFunction(() => window.mqlockDemo && document.querySelector('mqlock-lock')?.hasAttribute('view'), null,
			    { timeout: 15000 });
			return page;
		};
		try {
			await fn({ stack, browser, open });
		} finally {
			await browser.close();
		}
	});
}

/** Wait until the page's element shows `view` (editing, waiting, lost, idle-warning...). */
export async function waitView(page, view, timeout = 15000) {
	await page.waitForSelector(`mqlock-lock[view="${view}"]`, { timeout, state: 'attached' });
}

/** Wait until the page's lock handle is in `state` (editing, waiting, lost...). */
export async function waitState(page, state, timeout = 15000) {
	await page.waitForSelector(`mqlock-lock[state="${state}"]`, { timeout, state: 'attached' });
}

/** The banner's words: {headline, detail, note} (note '' when hidden). */
export async function banner(page) {
	return page.evaluate(() => {
		const r = document.querySelector('mqlock-lock').shadowRoot;
		const note = r.querySelector('.draft-note');
		return {
			headline: r.querySelector('.headline').textContent,
			detail: r.querySelector('.detail').textContent,
			note: note.hidden ? '' : note.textContent,
		};
	});
}

/** The visible buttons of the banner, by their words. */
export async function buttons(page) {
	return page.evaluate(() => [...document.querySelector('mqlock-lock').shadowRoot
		.querySelectorAll('button[data-act]')].filter((b) => !b.hidden).map((b) => b.textContent));
}

/** Click the banner button with these words. */
export async function press(page, words) {
	await page.click(`mqlock-lock button[data-act]:visible:text-is("${words}")`);
}

/**
 * Screenshots of a state (see stateShots) and an axe-core scan of it that
 * must find nothing serious or critical.
 */
export async function checkState(page, name) {
	await stateShots(page, name);
	const bad = await axeSerious(page);
	if (bad.length > 0) {
		throw new Error(`axe-core in state ${name}: ${JSON.stringify(bad, null, 1)}`);
	}
}

/** The fencing token the page edits with, or null. */
export async function shownToken(page) {
	return page.evaluate(() => window.mqlockDemo.element.token);
}
