// The seat session (wlroots' wlr_session): the KMS card and input devices opened through
// libseat — seatd, logind or libseat's builtin backend — so guestplane runs without root,
// and gives the screen up while another session (another VT, a greeter) has the seat.
//
// The seat provider makes us DRM master when it hands out the card and when the session
// comes back, drops master and revokes evdev fds when it goes. The session says both:
// 'disable' (stop committing, let input go; acknowledged to the provider once every
// handler has returned) and 'enable' (master is ours again: light the screen, reopen input).
//
// Ownership: the session owns the libseat handle, the listener memory and callbacks, and
// every device fd it opened until closeDevice() (which closes the fd) or close().
import { EventEmitter } from 'node:events';
import koffi from 'koffi';
import * as libc from '../../ffi/libc.js';
import { FdWatch, UV_READABLE } from '../../ffi/uv.js';
import * as ls from '../../ffi/libseat.js';

interface SessionEvents {
  /** The seat is ours (again): devices are usable, the card is DRM master. */
  enable: [];
  /** The seat is going away: stop using its devices now. Acknowledged after the handlers return. */
  disable: [];
  /** The seat provider failed (seatd gone, a dispatch error): said once per cause. */
  warning: [string];
}

export interface SessionOptions {
  /** How long open() waits for the seat to become active (default 10 s). */
  timeoutMs?: number;
}

/** What libseat logged lately (its log handler is process-wide): the reason behind a failed call. */
const recentLog: string[] = [];
let logCallback: koffi.IKoffiRegisteredCallback | null = null;
let logSink: ((message: string) => void) | null = null;

function installLogHandler(b: ls.LibseatBindings): void {
  if (logCallback) return;
  logCallback = koffi.register((_level: number, format: string, args: unknown) => {
    const buf = Buffer.alloc(512);
    const n = b.vsnprintf(buf, buf.length, format, args) as number;
    const message = buf.subarray(0, Math.max(0, Math.min(n, buf.length - 1))).toString('utf8');
    recentLog.push(message);
    if (recentLog.length > 8) recentLog.shift();
    logSink?.(message);
  }, koffi.pointer(ls.LogCallback));
  b.setLogHandler(logCallback);
  b.setLogLevel(ls.LIBSEAT_LOG_LEVEL_ERROR);
}

function lastLog(): string {
  return recentLog.length ? ` (libseat: ${recentLog.slice(-3).join('; ')})` : '';
}

export class SeatSession extends EventEmitter<SessionEvents> {
  readonly #b = ls.libseat();
  #seat: unknown = null;
  #listener: unknown = null;
  readonly #callbacks: koffi.IKoffiRegisteredCallback[] = [];
  #watch: FdWatch | null = null;
  /** fd → libseat device id */
  readonly #devices = new Map<number, { id: number; path: string }>();
  readonly #warned = new Set<string>();
  #active = false;
  #closed = false;
  #dispatching = false;
  #dispatchQueued = false;
  /** Enable/disable transitions seen (tests and diagnostics). */
  readonly counters = { enables: 0, disables: 0 };
  /** performance.now() when the seat last became active (how long the users took to be back). */
  enabledAt = 0;

  private constructor() {
    super();
    installLogHandler(this.#b);
    recentLog.length = 0;
    const enable = koffi.register(() => this.#onEnable(), koffi.pointer(ls.SeatCallback));
    const disable = koffi.register(() => this.#onDisable(), koffi.pointer(ls.SeatCallback));
    this.#callbacks.push(enable, disable);
    this.#listener = koffi.alloc(ls.libseat_seat_listener, 1);
    koffi.encode(this.#listener, ls.libseat_seat_listener, { enable_seat: enable, disable_seat: disable });
    this.#seat = this.#b.openSeat(this.#listener, null);
    if (!this.#seat) {
      const errno = koffi.errno();
      this.#free();
      throw new Error(
        `cannot open a seat: ${libc.errnoName(errno)}${lastLog()}; start seatd (and add the user to its group: seatd -g GROUP) or run in a logind session, or set LIBSEAT_BACKEND=builtin when running as root`,
      );
    }
    this.#watch = new FdWatch(this.#b.getFd(this.#seat) as number, UV_READABLE, {
      ready: (_ev, err) => (err ? this.#warn('poll', `seat: ${err.message}`) : this.#dispatch()),
      error: (e) => this.#warn('handler', `seat: a handler threw: ${(e as Error).message}`),
    });
    logSink = (m) => this.#warn(`log:${m}`, `seat: ${m}`);
  }

  /**
   * Opens the seat and waits until it is active (the enable event): at once on the active
   * VT, else once the user switches to this session's VT.
   */
  static async open(opts: SessionOptions = {}): Promise<SeatSession> {
    const s = new SeatSession();
    const timeoutMs = opts.timeoutMs ?? 10_000;
    // libseat may have read the enable event while opening: dispatch what it holds.
    s.#dispatch();
    if (s.#active) return s;
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`seat ${s.name} did not become active within ${timeoutMs / 1000} s: this session's VT is not in the foreground; switch to it (chvt), or stop the session that holds the seat`)), timeoutMs);
        s.once('enable', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    } catch (e) {
      await s.close();
      throw e;
    }
    return s;
  }

  get name(): string {
    return this.#seat ? ((this.#b.seatName(this.#seat) as string | null) ?? '?') : '?';
  }

  get active(): boolean {
    return this.#active;
  }

  /**
   * Opens a device node through the seat (a DRM card is handed over as DRM master). The fd
   * is the session's until closeDevice(fd).
   */
  openDevice(path: string): number {
    if (this.#closed) throw new Error(`cannot open ${path}: the seat session is closed`);
    const out = [-1];
    const id = this.#b.openDevice(this.#seat, path, out) as number;
    const errno = id < 0 ? koffi.errno() : 0;
    this.#dispatchSoon();
    if (id < 0) {
      const why = !this.#active ? '; the session is not active (another VT has the seat)' : errno === libc.errno.ENOENT ? '; not a device the seat hands out (DRM card or /dev/input/event*)' : '';
      throw Object.assign(new Error(`seat ${this.name} cannot open ${path}: ${libc.errnoName(errno)}${lastLog()}${why}`), { errno });
    }
    this.#devices.set(out[0], { id, path });
    return out[0];
  }

  /** Gives a device back to the seat and closes its fd. */
  closeDevice(fd: number): void {
    const d = this.#devices.get(fd);
    if (!d) return;
    this.#devices.delete(fd);
    // A disabled seat refuses requests; the fd is closed either way, which releases it.
    if ((this.#b.closeDevice(this.#seat, d.id) as number) < 0 && this.#active) this.#warn(`close:${d.path}`, `seat: closing ${d.path} failed: ${libc.errnoName(koffi.errno())}${lastLog()}`);
    libc.close(fd, d.path);
    this.#dispatchSoon();
  }

  /** Asks the seat to switch to another session (a VT number on a VT-bound seat). */
  switchSession(session: number): void {
    if ((this.#b.switchSession(this.#seat, session) as number) < 0) throw new Error(`seat ${this.name} cannot switch to session ${session}: ${libc.errnoName(koffi.errno())}${lastLog()}`);
    this.#dispatchSoon();
  }

  /** Device fds held (tests: nothing leaks across disable/enable). */
  get openDevices(): number {
    return this.#devices.size;
  }

  #onEnable(): void {
    this.enabledAt = performance.now();
    this.#active = true;
    this.counters.enables++;
    this.emit('enable');
  }

  #onDisable(): void {
    this.#active = false;
    this.counters.disables++;
    try {
      this.emit('disable');
    } finally {
      // Acknowledged only once every user has stopped: the provider may revoke after.
      if ((this.#b.disableSeat(this.#seat) as number) < 0) this.#warn('ack', `seat: acknowledging disable failed: ${libc.errnoName(koffi.errno())}${lastLog()}`);
    }
  }

  #dispatch(): void {
    if (!this.#seat || this.#dispatching) return;
    this.#dispatching = true;
    try {
      if ((this.#b.dispatch(this.#seat, 0) as number) < 0) {
        this.#warn('dispatch', `seat ${this.name}: the seat provider is gone (${libc.errnoName(koffi.errno())}${lastLog()}); the devices stay open, but session switches are no longer followed`);
        void this.#watch?.close();
        this.#watch = null;
      }
    } finally {
      this.#dispatching = false;
    }
  }

  /** libseat reads replies and events together: an event read during a request is dispatched here. */
  #dispatchSoon(): void {
    if (this.#dispatchQueued || this.#closed) return;
    this.#dispatchQueued = true;
    setImmediate(() => {
      this.#dispatchQueued = false;
      this.#dispatch();
    });
  }

  #warn(kind: string, message: string): void {
    if (this.#warned.has(kind)) return;
    this.#warned.add(kind);
    this.emit('warning', message);
  }

  /** Closes every device still open, then the seat. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const fd of [...this.#devices.keys()]) this.closeDevice(fd);
    await this.#watch?.close();
    this.#watch = null;
    this.#free();
  }

  #free(): void {
    if (this.#seat) this.#b.closeSeat(this.#seat);
    this.#seat = null;
    if (logSink && this.#callbacks.length) logSink = null;
    if (this.#listener) koffi.free(this.#listener);
    this.#listener = null;
    for (const cb of this.#callbacks.splice(0)) koffi.unregister(cb);
  }
}
