// Types of mqlock.js, the JavaScript client of mqlockd (protocol 1, topics.md).

import type { MqttClient } from 'mqtt';

export declare const PROTOCOL: 1;

export declare const DEFAULTS: Readonly<{
	prefix: 'locks';
	keepalive: number;
	grace: number;
	activityInterval: number;
	reconnectPeriod: number;
	clientIdPrefix: string;
}>;

export interface ConnectOptions {
	/** ws://host:port in a browser, mqtt://host:port in Node. */
	url: string;
	/** The name others see while this client holds or waits (at most 128 bytes). */
	user?: string;
	/** mqlockd's --prefix. Default 'locks'. */
	prefix?: string;
	/** MQTT keepalive in seconds. Default 60. */
	keepalive?: number;
	/** mqlockd's --grace in seconds: how long to keep editing while disconnected. Default 10. */
	grace?: number;
	/** At most one activity request per this many seconds. Default 5. */
	activityInterval?: number;
	/** ms between reconnect attempts. Default 1000. */
	reconnectPeriod?: number;
	/** The client id is this, '-' and 16 random hex digits. Default 'ed'. */
	clientIdPrefix?: string;
	/** A client id of your own; it must be unique per live connection. */
	clientId?: string;
	/** Broker username. */
	username?: string;
	/** Broker password. */
	password?: string;
	/** Browser only: release every lock on pagehide. Default true. */
	releaseOnPageHide?: boolean;
	/** More mqtt.js options; mqlock's own (client id, will, clean start, ...) win. */
	mqttOptions?: Record<string, unknown>;
	/** The mqtt.js module to use instead of the one mqlock.js imports. */
	mqtt?: { connect(url: string, options: object): MqttClient };
}

export type LockState = 'pending' | 'waiting' | 'editing' | 'lost' | 'released' | 'busy' | 'failed';

export type LostReason = 'idle' | 'disconnect' | 'admin' | 'offline-expired';

export interface Member {
	client: string;
	user: string;
	connected: boolean;
}

/** The retained P/<lock>/owner message (topics.md, "Owner messages"). */
export interface OwnerMessage {
	v: 1;
	lock: string;
	owner: Member | null;
	token: number | null;
	since: number;
	idle_deadline: number | null;
	waiting: number;
	queue: Member[];
}

/** The retained P/_coordinator/status message. */
export interface CoordinatorStatus {
	state: 'online' | 'offline';
	version: string;
	protocol: number;
	since: number;
	epoch: number;
}

export interface EditingDetail {
	token: number;
	/** ms since the epoch */
	idle_deadline: number;
}

export interface WaitingDetail {
	/** 1 = next */
	position: number;
	holder: Member | null;
	owner: OwnerMessage | null;
}

export interface LostDetail {
	reason: LostReason;
	message: string;
	/** The token that was lost. */
	token: number | null;
	/** True when this client fenced itself (idle deadline passed, or offline past the grace). */
	local: boolean;
}

export interface OfflineDetail {
	reason: 'broker' | 'coordinator';
}

export interface ErrorDetail {
	code: string;
	message: string;
}

export interface LockSnapshot {
	id: string;
	state: LockState;
	token: number | null;
	idle_deadline: number | null;
	warning: number | null;
	position: number | null;
	holder: Member | null;
	owner: OwnerMessage | null;
	lost: LostDetail | null;
	error: ErrorDetail | null;
	offline: boolean;
}

export interface LockEvents {
	editing: EditingDetail;
	waiting: WaitingDetail;
	lost: LostDetail;
	'idle-warning': { deadline: number };
	offline: OfflineDetail;
	online: OfflineDetail;
	owner: OwnerMessage | null;
	busy: Record<string, never>;
	released: Record<string, never>;
	error: ErrorDetail;
	change: LockSnapshot;
}

export interface ClientEvents {
	connect: { conn: number };
	disconnect: Record<string, never>;
	status: CoordinatorStatus | null;
	offline: OfflineDetail;
	online: OfflineDetail;
	error: ErrorDetail & { lock?: string | null };
}

declare class Emitter<E> {
	/** Call fn on every `type` event; returns a function that removes it. */
	on<K extends keyof E>(type: K, fn: (detail: E[K]) => void): () => void;
	off<K extends keyof E>(type: K, fn: (detail: E[K]) => void): void;
}

export declare class LockHandle extends Emitter<LockEvents> {
	readonly id: string;
	readonly state: LockState;
	/** True in the final states lost, released, busy and failed. */
	readonly done: boolean;
	/** True while the state is editing. */
	readonly editing: boolean;
	readonly token: number | null;
	readonly idleDeadline: number | null;
	/** The deadline of the last idle-warning, until activity moves it. */
	readonly warning: number | null;
	readonly position: number | null;
	readonly owner: OwnerMessage | null;
	readonly holder: Member | null;
	readonly lost: LostDetail | null;
	readonly error: ErrorDetail | null;
	readonly offline: boolean;
	/** Activity: debounced to one request per activityInterval; only while editing. */
	touch(): void;
	/** Release the lock or leave the queue; the handle ends released. */
	release(): void;
	snapshot(): LockSnapshot;
}

export declare class MqlockClient extends Emitter<ClientEvents> {
	readonly clientId: string;
	/** The secret session of this client's requests and will. */
	readonly session: string;
	/** Raised on every reconnect; sent in requests and the will. */
	readonly conn: number;
	readonly user: string;
	readonly prefix: string;
	readonly keepalive: number;
	readonly grace: number;
	readonly activityInterval: number;
	readonly mqtt: MqttClient;
	readonly connected: boolean;
	readonly coordinator: CoordinatorStatus | null;
	readonly offline: boolean;
	/** Ask for a lock; returns the live handle of that lock if there is one. */
	lock(id: string, options?: { wait?: boolean }): LockHandle;
	handle(id: string): LockHandle | undefined;
	/** touch() on every handle. */
	touch(): void;
	releaseAll(): void;
	/** Release everything and disconnect normally (no will). */
	close(): Promise<void>;
}

export declare function connect(options: ConnectOptions): MqlockClient;
export declare function lockIdProblem(id: string): string | null;
export declare function clientIdProblem(id: string): string | null;
export declare function randomHex(bytes: number): string;

declare const _default: {
	connect: typeof connect;
	lockIdProblem: typeof lockIdProblem;
	clientIdProblem: typeof clientIdProblem;
	randomHex: typeof randomHex;
	DEFAULTS: typeof DEFAULTS;
	PROTOCOL: typeof PROTOCOL;
};
export default _default;
