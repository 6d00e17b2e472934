// Tickets for tests: HS256 JWTs (RFC 7519) signed with node:crypto's HMAC,
// as an application would mint them for mqlockd --ticket-key.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

function b64url(v) {
	return Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
}

/**
 * A signed ticket with `claims` ({sub, name, client, exp, locks?}); `exp`
 * defaults to an hour from now.
 */
export function mintTicket(key, claims) {
	const body = { exp: Math.floor(Date.now() / 1000) + 3600, ...claims };
	const head = b64url({ alg: 'HS256', typ: 'JWT' });
	const data = `${head}.${b64url(body)}`;
	const sig = crypto.createHmac('sha256', key).update(data).digest('base64url');
	return `${data}.${sig}`;
}

/** A random key written to DIR/ticket.key; returns {key, file}. */
export function ticketKey(dir) {
	const key = crypto.randomBytes(32).toString('hex');
	const file = path.join(dir, 'ticket.key');
	fs.writeFileSync(file, key + '\n', { mode: 0o600 });
	return { key, file };
}
