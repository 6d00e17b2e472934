// Types of mqlock-lock.js: the <mqlock-lock> element.

import type { LockHandle, LockState, MqlockClient } from './mqlock.js';

export type LockView =
	| 'connecting' | 'waiting' | 'editing' | 'idle-warning' | 'unsure'
	| 'lost' | 'done' | 'stopped' | 'dropped' | 'failed' | 'invalid';

export interface LockElementDetail {
	lock: string;
	state: LockState | 'idle';
	view: LockView;
	/** The fencing token while editing, else null. */
	token: number | null;
	canSave: boolean;
	offline: 'broker' | 'coordinator' | null;
	handle: LockHandle | null;
}

export interface LockElementEvents {
	'mqlock-change': CustomEvent<LockElementDetail>;
	'mqlock-waiting': CustomEvent<LockElementDetail>;
	/** draft: the text put back into the editor, or null (then load the saved text). */
	'mqlock-editing': CustomEvent<LockElementDetail & { draft: string | null }>;
	'mqlock-lost': CustomEvent<LockElementDetail & { draft: string | null }>;
	'mqlock-released': CustomEvent<LockElementDetail>;
	/** Cancelable: "Done editing" was pressed; preventDefault() keeps the lock. */
	'mqlock-done': CustomEvent<LockElementDetail>;
}

export declare class MqlockLockElement extends HTMLElement {
	/** The client in use; set it before the element is connected to use your own. */
	client: MqlockClient | null;
	readonly handle: LockHandle | null;
	readonly state: LockState | 'idle';
	readonly view: LockView;
	readonly token: number | null;
	readonly canSave: boolean;
	/** The kept unsaved text, or null. */
	readonly draft: string | null;
	readonly editor: HTMLElement | null;
	release(): void;
	acquire(): void;
	takeOver(): void;
	/** The page saved the editor's text: forget the draft. */
	saved(): void;
	touch(): void;
	addEventListener<K extends keyof LockElementEvents>(type: K,
		listener: (this: MqlockLockElement, ev: LockElementEvents[K]) => unknown,
		options?: boolean | AddEventListenerOptions): void;
	addEventListener(type: string, listener: EventListenerOrEventListenerObject,
		options?: boolean | AddEventListenerOptions): void;
}

declare global {
	interface HTMLElementTagNameMap {
		'mqlock-lock': MqlockLockElement;
	}
}

export default MqlockLockElement;
