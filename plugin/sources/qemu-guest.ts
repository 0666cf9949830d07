// A QEMU VM's console as one long-lived guest source, across QEMU restarts: what the
// kiosk and the multi-head config attach. It connects to the display (now and whenever
// the connection is lost), registers a listener on its console and forwards to that
// QemuConsoleSource; while there is none (QEMU not started yet, exited, restarting) it
// answers 'disabled', so the output shows "no signal" and the kiosk keeps running.
//
// Buffer ids, generations and frame numbers come from one counter space for all the
// connections, so a buffer of a new QEMU never takes the FB-cache entry of an old one.
// When a connection ends its buffers are gone with it ('buffers-gone'): the source lives
// on, so without that event the outputs would keep the old QEMU's FBs and mapped dma-bufs
// (up to their per-source bound) for as long as the kiosk runs (issue 25).
import { EventEmitter } from 'node:events';
import { CONNECT_TIMEOUT_MS, QemuDisplay } from './qemu-display.js';
import type { QemuButton, QemuConsoleSource, QemuIdSpace } from './qemu-dbus.js';
import type { TouchKind } from './qemu-dbus-protocol.js';
import type { CpuView, GuestPlaneInfo, GuestPlaneKind, GuestSource, GuestSourceEvents, PlaneQuery } from './source.js';

export interface QemuGuestOptions {
  /** D-Bus address of QEMU's display (see QemuDisplay.connect). */
  address: string;
  console?: number;
  /** Time between connection attempts while QEMU is away, ms (default 1000). */
  retryMs?: number;
  /** How long one attempt waits for the D-Bus handshake and the VM's answer, ms (default 5000). */
  connectTimeoutMs?: number;
  log?: (line: string) => void;
}

export type QemuGuestState = 'connecting' | 'attached' | 'waiting' | 'closed';

export class QemuGuest extends EventEmitter<GuestSourceEvents> implements GuestSource {
  readonly name: string;
  readonly changeEvents = true;
  readonly #opts: Required<Omit<QemuGuestOptions, 'log'>> & { log: (line: string) => void };
  readonly #ids: QemuIdSpace = { bufferId: 0, generation: 0, frame: 0 };
  #display: QemuDisplay | null = null;
  #inner: QemuConsoleSource | null = null;
  #state: QemuGuestState = 'connecting';
  #retry: NodeJS.Timeout | null = null;
  #lastFailure = '';
  #uiSize: { width: number; height: number } | null = null;
  #attachedWaiters: (() => void)[] = [];
  /** How many times a console was attached (1 = the first; more = reattached after QEMU came back). */
  attachments = 0;

  constructor(opts: QemuGuestOptions) {
    super();
    this.#opts = { retryMs: 1000, connectTimeoutMs: CONNECT_TIMEOUT_MS, ...opts, console: opts.console ?? 0, log: opts.log ?? (() => {}) }; // console: an explicit undefined means 0 too
    this.name = `QEMU ${opts.address} console ${this.#opts.console}`;
    void this.#connect();
  }

  get closed(): boolean {
    return this.#state === 'closed';
  }

  get state(): QemuGuestState {
    return this.#state;
  }

  /** The console source while attached. */
  get console(): QemuConsoleSource | null {
    return this.#inner;
  }

  /** Resolves once a console is attached (now, or when QEMU comes). */
  attached(): Promise<void> {
    if (this.#inner) return Promise.resolve();
    return new Promise((r) => this.#attachedWaiters.push(r));
  }

  async #connect(): Promise<void> {
    if (this.#state === 'closed') return;
    let display: QemuDisplay | null = null;
    try {
      display = await QemuDisplay.connect(this.#opts.address, { timeoutMs: this.#opts.connectTimeoutMs });
      const inner = await display.open(this.#opts.console, this.#ids);
      if (this.closed) {
        display.close();
        return;
      }
      this.#display = display;
      this.#inner = inner;
      this.#state = 'attached';
      this.#lastFailure = '';
      this.attachments++;
      inner.on('changed', this.#onChanged);
      inner.once('lost', this.#onLost);
      inner.onWarning = (m) => this.#opts.log(m);
      inner.version.onLearnt = (m) => this.#opts.log(`${this.name}: ${m}`);
      this.#opts.log(`${this.name}: attached (${inner.info.label || inner.info.type}, ${inner.info.width}x${inner.info.height}); ${inner.version.describe()}`);
      if (this.#uiSize) void inner.setUIInfo(this.#uiSize.width, this.#uiSize.height).catch((e: Error) => this.#opts.log(`${this.name}: SetUIInfo: ${e.message}`));
      for (const w of this.#attachedWaiters.splice(0)) w();
      this.emit('changed');
    } catch (e) {
      display?.close();
      const msg = (e as Error).message;
      // Said once per kind of failure, not every retry.
      if (msg !== this.#lastFailure) this.#opts.log(`${this.name}: ${msg}; showing no signal, retrying every ${this.#opts.retryMs} ms`);
      this.#lastFailure = msg;
      this.#state = 'waiting';
      this.#retry = setTimeout(() => void this.#connect(), this.#opts.retryMs);
    }
  }

  readonly #onChanged = () => this.emit('changed');

  readonly #onLost = (e: Error) => {
    this.#opts.log(`${this.name}: ${e.message}; showing no signal until QEMU is back`);
    this.#lastFailure = '';
    this.#drop();
    this.#state = 'waiting';
    this.emit('changed');
    this.#retry = setTimeout(() => void this.#connect(), this.#opts.retryMs);
  };

  #drop(): void {
    const had = this.#inner !== null;
    this.#inner?.off('changed', this.#onChanged);
    this.#inner?.off('lost', this.#onLost);
    this.#display?.close();
    this.#inner = null;
    this.#display = null;
    if (had) this.emit('buffers-gone');
  }

  query(kind: GuestPlaneKind): PlaneQuery {
    return this.#inner?.query(kind) ?? { state: 'disabled' };
  }

  exportDmabuf(plane: GuestPlaneInfo): number {
    if (!this.#inner) throw new Error(`${this.name}: QEMU is not attached`);
    return this.#inner.exportDmabuf(plane);
  }

  cpuView(plane: GuestPlaneInfo): CpuView | null {
    return this.#inner?.cpuView(plane) ?? null;
  }

  refused(plane: GuestPlaneInfo, cause: string, message: string): void {
    this.#inner?.refused(plane, cause, message);
  }

  frameShown(frame: number | undefined): void {
    this.#inner?.frameShown(frame);
  }

  /** The screen's size for the guest (SetUIInfo), sent now and on every reattachment. */
  setUISize(width: number, height: number): void {
    this.#uiSize = { width, height };
    if (this.#inner) void this.#inner.setUIInfo(width, height).catch((e: Error) => this.#opts.log(`${this.name}: SetUIInfo: ${e.message}`));
  }

  // Input, dropped while QEMU is away (there is no guest to take it).
  key(evdevCode: number, down: boolean): Promise<void> {
    return this.#inner?.key(evdevCode, down) ?? Promise.resolve();
  }
  button(button: QemuButton, down: boolean): Promise<void> {
    return this.#inner?.button(button, down) ?? Promise.resolve();
  }
  pointerTo(x: number, y: number, from?: { x: number; y: number }, rel?: { dx: number; dy: number }): Promise<void> {
    return this.#inner?.pointerTo(x, y, from, rel) ?? Promise.resolve();
  }
  touch(kind: TouchKind, slot: number, x: number, y: number): Promise<void> {
    return this.#inner?.touch(kind, slot, x, y) ?? Promise.resolve();
  }
  /** QEMU's Mouse.IsAbsolute (true while QEMU is away: nothing to capture the pointer for). */
  isAbsolute(): Promise<boolean> {
    return this.#inner?.isAbsolute() ?? Promise.resolve(true);
  }

  close(): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    if (this.#retry) clearTimeout(this.#retry);
    this.#drop();
  }
}
