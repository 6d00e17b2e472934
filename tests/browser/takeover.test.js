// Same user, two tabs, with tickets from the application (the element
// fetches them from its ticket-url; here Playwright answers for the
// application): the second tab offers "Edit here instead" and takes the lock
// at once, the first keeps its unsaved text and can take it back; another
// user only waits. A page whose ticket cannot be fetched says so, and so
// does a page with an invalid lock id.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withBrowser, waitView, waitState, banner, buttons, press, shownToken, checkState, waitFor } from './lib.js';
import { mintTicket } from '../../clients/js/test/tickets.js';

// A browser context logged in as one application user.
async function loggedIn(browser, key, sub, name) {
	const context = await browser.newContext({ viewport: { width: 900, height: 680 } });
	const asked = [];
	await context.route('**/ticket?*', (route) => {
		const client = new URL(route.request().url()).searchParams.get('client');
		asked.push(client);
		route.fulfill({ contentType: 'application/json', body: JSON.stringify({ ticket: mintTicket(key, { sub, name, client }) }) });
	});
	return { context, asked };
}

test('same user in two tabs: "Edit here instead" moves the lock; another user waits; no ticket, no lock', async () => {
	await withBrowser({ grace: 1, tickets: true }, async ({ stack, browser, open }) => {
		const alice = await loggedIn(browser, stack.ticketKey, 'u-alice', 'Alice');
		const tab1 = await open('Alice', { 'ticket-url': '/ticket' }, { context: alice.context });
		await waitView(tab1, 'editing');
		const token1 = await shownToken(tab1);
		await tab1.click('#editor');
		await tab1.keyboard.type('Words typed in the first tab');
		const owner = await tab1.evaluate(() => window.mqlockDemo.handle.owner.owner);
		assert.deepEqual([owner.uid, owner.user], ['u-alice', 'Alice'], 'the ticket names the holder');

		const tab2 = await open('Alice', { 'ticket-url': '/ticket' }, { context: alice.context });
		await waitView(tab2, 'waiting');
		await waitFor(async () => (await banner(tab2)).headline === 'You are editing this document in another tab.',
		    { what: 'the take-over offer' });
		assert.deepEqual(await buttons(tab2), ['Edit here instead', 'Stop waiting']);
		await checkState(tab2, 'takeover-offer');
		assert.equal(alice.asked.length, 2);
		assert.notEqual(alice.asked[0], alice.asked[1], 'one client id, one ticket, per tab');

		const bob = await loggedIn(browser, stack.ticketKey, 'u-bob', 'Bob');
		const bobPage = await open('Bob', { 'ticket-url': '/ticket' }, { context: bob.context });
		await waitView(bobPage, 'waiting');
		assert.equal((await banner(bobPage)).headline, 'Alice is editing — you are number 2 in line.');
		assert.deepEqual(await buttons(bobPage), ['Notify me when it is my turn', 'Stop waiting']);

		await press(tab2, 'Edit here instead');
		await waitView(tab2, 'editing');
		assert.equal(await tab2.evaluate(() => document.activeElement.id), 'editor');
		assert.ok((await shownToken(tab2)) > token1);
		await waitView(tab1, 'lost');
		const b1 = await banner(tab1);
		assert.equal(b1.headline, 'You are now editing this document in another tab.');
		assert.match(b1.note, /^Your unsaved text is kept in this tab/);
		assert.deepEqual(await buttons(tab1), ['Edit here instead', 'Copy my text', 'Download my text']);
		assert.equal(await tab1.inputValue('#editor'), 'Words typed in the first tab');
		await checkState(tab1, 'lost-takeover');
		await waitFor(async () => (await banner(bobPage)).headline === 'Alice is editing — you are next.',
		    { what: 'Bob next' });

		// And back: the first tab takes over again, with its words.
		await press(tab1, 'Edit here instead');
		await waitState(tab1, 'editing');
		assert.equal(await tab1.inputValue('#editor'), 'Words typed in the first tab');
		await waitView(tab2, 'lost');
		assert.equal(await bobPage.getAttribute('mqlock-lock', 'state'), 'waiting');

		// A page whose ticket the application refuses says so.
		const context = await browser.newContext({ viewport: { width: 900, height: 680 } });
		await context.route('**/ticket?*', (route) => route.fulfill({ status: 403, body: 'not logged in' }));
		const page = await open('Mallory', { 'ticket-url': '/ticket' }, { context });
		await waitView(page, 'failed');
		assert.deepEqual(await banner(page), { headline: 'This page could not get your permission to edit.',
			detail: 'Reload the page to try again.', note: '' });
		assert.deepEqual(await buttons(page), ['Try again']);
		assert.equal(await page.getAttribute('#editor', 'readonly'), '');
		await checkState(page, 'failed');

		const bad = await open('Mallory', { lock: '_reserved' });
		await waitView(bad, 'invalid');
		assert.equal((await banner(bad)).headline, 'This document cannot be locked.');
		await checkState(bad, 'invalid');
	});
});
