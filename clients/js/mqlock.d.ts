// Types of mqlock.js, the JavaScript client of mqlockd (protocol 1, topics.md).

import type { MqttClient } from 'mqtt';

export declare const PROTOCOL: 1;

export declare const DEFAULTS: Readonly<{
	prefix: 'locks';
	replyPrefix: 'replies/';
	keepalive: number;
	activityInterval: number;
	reconnectPeriod: number;
	clientIdPrefix: string;
}>;

/** What a status message without timing settings means (an older mqlockd). */
export declare const COORDINATOR_DEFAULTS: Readonly<Timing>;

/** The coordinator's timing settings, from its status message. */
export interface Timing {
	/** ms a disconnected client keeps its locks and places (--grace). */
	grace: number;
	/** ms without activity before an idle holder may lose the lock (--idle-timeout). */
	idle_timeout: number;
	/** ms between the idle warning and the revocation (--idle-warning). */
	idle_warning: number;
	/** contended: idle holders are warned and revoked only while someone waits. */
	idle_policy: 'contended' | 'always';
	/** The coordinator's own MQTT keepalive, s. */
	keepalive: number;
	/** off, optional (--ticket-key) or required (--require-ticket). */
	tickets: 'off' | 'optional' | 'required' | string;
}

/** A ticket, or a function that fetches one for the client id (asked again before it expires). */
export type TicketSource = string | ((context: { clientId: string }) => string | Promise<string>);

export interface ConnectOptions {
	/** ws://host:port in a browser, mqtt://host:port in Node. */
	url: string;
	/** The name others see while this client holds or waits (at most 128 bytes); a verified ticket's name wins. */
	user?: string;
	/**
	 * The MQTT client id; it must be unique per live connection. Default: the
	 * ticket's `client` claim, else clientIdPrefix, '-' and 16 random hex digits.
	 */
	clientId?: string;
	/** The application's ticket (a JWT) for this client id, or a function that fetches one. */
	ticket?: TicketSource;
	/** mqlockd's --prefix. Default 'locks'. */
	prefix?: string;
	/** mqlockd's --reply-prefix. Default 'replies/'. */
	replyPrefix?: string;
	/** MQTT keepalive in seconds. Default 10. */
	keepalive?: number;
	/** At most one activity request per this many seconds. Default 5. */
	activityInterval?: number;
	/** ms between reconnect attempts. Default 1000. */
	reconnectPeriod?: number;
	/** A random client id is this, '-' and 16 random hex digits. Default 'ed'. */
	clientIdPrefix?: string;
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

export type LockState = 'pending' | 'waiting' | 'editing' | 'lost' | 'released' | 'dropped' | 'busy' | 'failed';

export type LostReason = 'idle' | 'disconnect' | 'admin' | 'takeover';

export interface Member {
	client: string;
	user: string;
	/** The application's user id, for clients verified by a ticket. */
	uid?: string;
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
	grace?: number;
	idle_timeout?: number;
	idle_warning?: number;
	idle_policy?: 'contended' | 'always';
	keepalive?: number;
	tickets?: 'off' | 'optional' | 'required';
	error?: string;
}

export interface EditingDetail {
	token: number;
	/** Coordinator ms */
	idle_deadline: number;
	/** This client's user id from its ticket, or null. */
	uid: string | null;
}

export interface WaitingDetail {
	/** 1 = next */
	position: number;
	holder: Member | null;
	owner: OwnerMessage | null;
	/** The holder is this client's own user (by ticket): takeOver() gets the lock at once. */
	canTakeOver: boolean;
}

export interface LostDetail {
	reason: LostReason;
	message: string;
	/** The token that was lost. */
	token: number | null;
	/** True when this client fenced itself (an idle warning's deadline passed). */
	local: boolean;
	/** True when the revocation was not heard: the answer after a reconnect showed it. */
	afterReconnect: boolean;
}

export interface DroppedDetail {
	/** disconnect: gone longer than the grace period or a roll call; admin: an operator purged the queue. */
	reason: 'disconnect' | 'admin';
	message: string;
}

/** The reply to query() (topics.md, "Checking a save"). */
export interface QueryReply {
	ok: boolean;
	lock?: string;
	result?: 'state';
	owner?: Member | null;
	token?: number | null;
	since?: number;
	idle_deadline?: number | null;
	waiting?: number;
	queue?: Member[];
	now?: number;
	code?: string;
	message?: string;
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
	dropped: DroppedDetail | null;
	error: ErrorDetail | null;
	offline: boolean;
	unsure: boolean;
	canTakeOver: boolean;
}

export interface LockEvents {
	editing: EditingDetail;
	waiting: WaitingDetail;
	lost: LostDetail;
	dropped: DroppedDetail;
	unsure: { token: number };
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
	/** True while the state is editing (also while offline or unsure). */
	readonly editing: boolean;
	/** Editing, but the broker has been unreachable long enough that the lock may be gone. */
	readonly unsure: boolean;
	/** Editing and sure of it: a save with `token` may go to the backend. */
	readonly canSave: boolean;
	readonly token: number | null;
	/** Coordinator ms. */
	readonly idleDeadline: number | null;
	/** Coordinator ms: the deadline of the last idle-warning, until activity moves it. */
	readonly warning: number | null;
	readonly position: number | null;
	/** The last owner message, or null while the lock is free. */
	readonly owner: OwnerMessage | null;
	readonly holder: Member | null;
	readonly canTakeOver: boolean;
	readonly lost: LostDetail | null;
	readonly dropped: DroppedDetail | null;
	readonly error: ErrorDetail | null;
	readonly offline: boolean;
	/** Activity: debounced to one request per activityInterval; only while editing. */
	touch(): void;
	/** Release the lock or leave the queue; the handle ends released. */
	release(): void;
	/** Ask for the lock with takeover (same user, other tab). */
	takeOver(): void;
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
	readonly activityInterval: number;
	readonly mqtt: MqttClient;
	readonly connected: boolean;
	readonly coordinator: CoordinatorStatus | null;
	/** Connected to the broker, and the coordinator's status is not online. */
	readonly coordinatorOffline: boolean;
	readonly offline: boolean;
	readonly offlineReason: 'broker' | 'coordinator' | null;
	readonly timing: Timing;
	/** The user id (sub) of this client's ticket, unverified; null without one. */
	readonly uid: string | null;
	/** Local ms of the last packet received from the broker. */
	readonly lastReceived: number;
	/** ms to add to Date.now() for the coordinator's clock. */
	readonly clockOffset: number;
	/** The coordinator's clock now, ms. */
	now(): number;
	/** A coordinator time on this machine's clock. */
	toLocal(coordinatorMs: number): number;
	/** Ask for a lock; returns the live handle of that lock if there is one. */
	lock(id: string, options?: { wait?: boolean; takeover?: boolean }): LockHandle;
	handle(id: string): LockHandle | undefined;
	/** touch() on every handle. */
	touch(): void;
	releaseAll(): void;
	/** The exact state of a lock, asked of the coordinator (MQTT 5 request/response). */
	query(id: string, options?: { timeout?: number }): Promise<QueryReply>;
	/** Release everything and disconnect normally (no will). */
	close(): Promise<void>;
}

export declare function connect(options: ConnectOptions): MqlockClient;
export declare function lockIdProblem(id: string): string | null;
export declare function clientIdProblem(id: string): string | null;
export declare function randomHex(bytes: number): string;
/** The claims of a JWT, read without checking the signature; null if it is not one. */
export declare function ticketClaims(ticket: string): Record<string, unknown> | null;

declare const _default: {
	connect: typeof connect;
	lockIdProblem: typeof lockIdProblem;
	clientIdProblem: typeof clientIdProblem;
	randomHex: typeof randomHex;
	ticketClaims: typeof ticketClaims;
	DEFAULTS: typeof DEFAULTS;
	COORDINATOR_DEFAULTS: typeof COORDINATOR_DEFAULTS;
	PROTOCOL: typeof PROTOCOL;
};
export default _default;
