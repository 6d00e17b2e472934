// A stand-in for the mqtt.js module, for tests of mqlock.js's own logic
// without a broker: connect() returns a client that records what mqlock.js
// subscribes to and publishes, and lets the test play the broker and the
// coordinator (deliver messages, drop and restore the connection).
import { EventEmitter } from 'node:events';

export class FakeMqttClient extends EventEmitter {
	constructor(url, options) {
		super();
		this.url = url;
		this.options = options;
		this.connected = false;
		this.published = [];
		this.subscribed = [];
		this.unsubscribed = [];
		this.connects = 0;
		this.ended = false;
		this.stream = { uncork() {} };
		// publish callbacks not yet acknowledged, in order
		this.unacked = [];
		this.autoAck = true;
	}

	/** The broker accepts the connection (a reconnect raises mqlock's conn first). */
	up() {
		if (this.connects > 0) {
			this.emit('reconnect');
		}
		this.connects += 1;
		this.connected = true;
		this.emit('connect', {});
	}

	/** The connection ends (no DISCONNECT from us). */
	down() {
		this.connected = false;
		const cbs = this.unacked.splice(0);
		this.emit('close');
		for (const cb of cbs) {
			cb(new Error('connection closed'));
		}
	}

	/** Deliver a message as the broker would. */
	deliver(topic, payload, { retain = false, properties } = {}) {
		const buf = Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload));
		this.emit('packetreceive', { cmd: 'publish' });
		this.emit('message', topic, buf, { cmd: 'publish', topic, retain, properties });
	}

	subscribe(topics, opts) {
		for (const t of Array.isArray(topics) ? topics : [topics]) {
			this.subscribed.push({ topic: t, opts });
		}
	}

	unsubscribe(topic) {
		this.unsubscribed.push(topic);
	}

	publish(topic, payload, opts, cb) {
		let json = null;
		try {
			json = JSON.parse(payload);
		} catch {
			// keep the raw payload only
		}
		this.published.push({ topic, payload, json, opts, conn: json?.conn });
		if (cb) {
			if (this.autoAck) {
				queueMicrotask(() => cb(null));
			} else {
				this.unacked.push(cb);
			}
		}
	}

	end(force, opts, cb) {
		this.ended = true;
		this.connected = false;
		cb?.();
	}

	/** The requests published so far, as JSON, optionally of one op. */
	requests(op) {
		return this.published.filter((p) => p.json && (op === undefined || p.json.op === op));
	}
}

/** A module object with connect(), remembering the last client made. */
export function fakeMqtt() {
	const mod = {
		last: null,
		connect(url, options) {
			mod.last = new FakeMqttClient(url, options);
			return mod.last;
		},
	};
	return mod;
}
