// Pages whose clocks are ten minutes off judge the idle deadline by the
// coordinator's clock (the `now` of its events): the countdown shows the
// true time left, and each page stops editing on its own within 2 s of the
// true deadline when no revocation comes (mqlockd frozen after the warning,
// with a keepalive long enough that the broker does not notice).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withBrowser, waitView, banner, waitFor } from './lib.js';

const TEN_MIN = 10 * 60 * 1000;

test('a page ten minutes fast and one ten minutes slow fence themselves at the true deadline', async () => {
	await withBrowser({ grace: 1, idleTimeout: 8, idleWarning: 4, keepalive: 60 }, async ({ stack, open }) => {
		const fast = await open('Alice', { lock: 'doc-1' }, { skew: TEN_MIN });
		const slow = await open('Carol', { lock: 'doc-2' }, { skew: -TEN_MIN });
		for (const [page, skew] of [[fast, TEN_MIN], [slow, -TEN_MIN]]) {
			const off = (await page.evaluate(() => Date.now())) - Date.now();
			assert.ok(Math.abs(off - skew) < 1000, `the page's clock is ${off} ms off`);
			await waitView(page, 'editing');
			await page.evaluate(() => document.querySelector('mqlock-lock').addEventListener('mqlock-lost', () => {
				window.__lostAt = performance.timeOrigin + performance.now();
			}));
		}
		// Waiters: the default idle policy warns only while someone waits.
		await open('Bob', { lock: 'doc-1' });
		await open('Dave', { lock: 'doc-2' });

		await waitView(fast, 'idle-warning', 15000);
		await waitView(slow, 'idle-warning', 15000);
		stack.mqlockd.kill('SIGSTOP');
		try {
			const deadline = {};
			for (const [name, page] of [['fast', fast], ['slow', slow]]) {
				deadline[name] = await page.evaluate(() => window.mqlockDemo.handle.warning);
				const left = deadline[name] - Date.now();
				const shown = /in (\d+):(\d\d) unless/.exec((await banner(page)).detail);
				assert.ok(shown, (await banner(page)).detail);
				const secs = Number(shown[1]) * 60 + Number(shown[2]);
				// Whole seconds, rounded up, redrawn four times a second.
				assert.ok(secs * 1000 - left > -500 && secs * 1000 - left < 1500,
				    `${name}: the countdown shows ${secs} s, ${left} ms are left`);
			}
			for (const [name, page] of [['fast', fast], ['slow', slow]]) {
				await waitView(page, 'lost', 15000);
				const lostAt = await waitFor(() => page.evaluate(() => window.__lostAt), { what: `${name} lost` });
				const late = lostAt - deadline[name];
				process.stdout.write(`${name} page fenced ${late.toFixed(0)} ms after the deadline\n`);
				assert.ok(late >= 0 && late <= 2000, `${name} page: ${late} ms after the deadline`);
				const lost = await page.evaluate(() => window.mqlockDemo.handle.lost);
				assert.deepEqual([lost.reason, lost.local], ['idle', true]);
			}
		} finally {
			stack.mqlockd.kill('SIGCONT');
		}
	});
});
