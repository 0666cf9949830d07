// Runtime of the generated client-side bindings (protocols/generated/client/*.ts): a
// connection to a compositor driven from the Node event loop, proxies with typed event
// handlers, requests marshalled from JS values.
//
// Event loop: the display fd is watched by libuv (ffi/uv.ts FdWatch), never waited on.
// When it is readable: prepare_read (dispatching what is already queued until it
// succeeds), read_events, dispatch_pending: the handlers run on the main thread, inside
// the poll callback. Requests are buffered by libwayland and flushed once per turn of the
// loop (a microtask after the first request); a full socket (EAGAIN) makes the watch wait
// for writable as well, and the flush is retried then. libwayland-client before 1.23 has a
// fixed 4 KiB send buffer and ends the connection (EAGAIN, "Error sending request") when a
// request does not fit while the socket is still full, so `congested` tells callers to
// hold off sending until `drain`: that is the back-pressure (the window output skips guest
// frames meanwhile instead of queueing them).
//
// Failure: a protocol error or the compositor going away ends the connection; it emits
// `closed` once with the reason and never throws into the caller's loop. A handler that
// throws is reported as `handler-error` (or on stderr when nobody listens); dispatch goes on.
//
// Ownership: the Connection owns the wl_display (and so the socket) and every proxy made
// through it; close() destroys the proxies still alive and then disconnects. A proxy is
// destroyed by its destructor request (generated `destroy()` and friends), by
// `destroyProxy()` for objects the compositor ends (wl_callback after `done`), or at the
// connection's close. fds passed as request arguments stay the caller's: libwayland
// duplicates them while marshalling, so the caller may close them right after the call.
// fds received with events belong to the handler (close them).
import koffi from 'koffi';
import { EventEmitter } from 'node:events';
import { constants as osConstants } from 'node:os';
import { FdWatch, UV_READABLE, UV_WRITABLE } from '../ffi/uv.js';
import { errno, close } from '../ffi/libc.js';
import { layoutOf, wl_array } from '../ffi/wayland.js';
import {
  type Pointer,
  WL_MARSHAL_FLAG_DESTROY,
  wl_client_dispatcher_func_t,
  displayConnect,
  displayConnectToFd,
  displayDisconnect,
  displayGetFd,
  displayDispatchPending,
  displayPrepareRead,
  displayReadEvents,
  displayFlush,
  displayGetError,
  displayGetProtocolError,
  proxyMarshalArrayFlags,
  proxyAddDispatcher,
  proxyDestroy,
  proxyGetId,
  proxyGetVersion,
} from '../ffi/wayland-client.js';
import { fixedFromDouble, fixedToDouble, type WireInterface, type MessageInfo } from './runtime.js';

export type { WireInterface };

const ARG = 8; // sizeof(union wl_argument)
const ARRAY = layoutOf('wl_array');
const align8 = (n: number): number => (n + 7) & ~7;

/** One event of a generated proxy class: the handler's name and the classes of its new_id arguments by slot. */
export interface EventSpec {
  name: string;
  handler: string;
  newIds: Readonly<Record<number, () => ProxyClass>>;
}
export interface ProxyInit {
  connection: Connection;
  ptr: Pointer;
  version: number;
}
export interface ProxyClass<P extends Proxy = Proxy> {
  new (init: ProxyInit): P;
  readonly interface: WireInterface;
  readonly events: readonly EventSpec[];
}

/** Why a connection ended. */
export type CloseReason =
  | { kind: 'protocol-error'; interface: string; id: number; code: number; message: string }
  | { kind: 'gone'; errno: number; message: string }
  | { kind: 'closed'; message: string };

interface ConnectionEvents {
  closed: [CloseReason];
  'handler-error': [unknown];
  /** The socket took everything buffered again after being full (see `congested`). */
  drain: [];
}

const live = new Map<bigint, Proxy>();
let dispatcherPtr: Pointer | undefined;
function dispatcher(): Pointer {
  dispatcherPtr ??= koffi.register(onEvent, koffi.pointer(wl_client_dispatcher_func_t));
  return dispatcherPtr;
}

function decodeEvent(proxy: Proxy, msg: MessageInfo, spec: EventSpec, args: Pointer): unknown[] {
  return msg.slots.map((slot, k) => {
    const off = ARG * k;
    switch (slot.type) {
      case 'i':
      case 'h':
        return koffi.decode(args, off, 'int32_t');
      case 'u':
        return koffi.decode(args, off, 'uint32_t');
      case 'f':
        return fixedToDouble(koffi.decode(args, off, 'int32_t') as number);
      case 's':
        return koffi.decode(args, off, 'const char *') ?? null;
      case 'o': {
        const p = koffi.decode(args, off, 'void *') as Pointer;
        return p === null ? null : (live.get(koffi.address(p)) ?? null);
      }
      case 'n': {
        // libwayland made the proxy of an event's new object already; it is ours to wrap.
        const p = koffi.decode(args, off, 'void *') as Pointer;
        const cls = spec.newIds[k]?.();
        if (p === null || !cls) return null;
        return proxy.connection._adopt(cls, p, proxy.version);
      }
      case 'a': {
        const p = koffi.decode(args, off, 'void *') as Pointer;
        if (p === null) return new Uint8Array(0);
        const arr = koffi.decode(p, wl_array) as { size: number | bigint; data: Pointer };
        const size = Number(arr.size);
        return size === 0 ? new Uint8Array(0) : new Uint8Array(koffi.view(arr.data, size).slice(0));
      }
    }
    return undefined;
  });
}

function onEvent(_impl: Pointer, target: Pointer, opcode: number, _msg: Pointer, args: Pointer): number {
  const proxy = live.get(koffi.address(target));
  if (!proxy) return 0;
  const cls = proxy.constructor as ProxyClass;
  const spec = cls.events[opcode];
  const msg = cls.interface.events[opcode];
  try {
    if (!spec || !msg) throw new Error(`${proxy}: no event with opcode ${opcode}`);
    const values = decodeEvent(proxy, msg, spec, args);
    const handler = (proxy.handlers as Record<string, unknown>)[spec.handler];
    if (typeof handler === 'function') {
      (handler as (...a: unknown[]) => void).apply(proxy.handlers, values);
    } else {
      // Nobody wants it: an fd in it would leak.
      msg.slots.forEach((s, k) => {
        if (s.type === 'h') closeQuietly(values[k] as number);
      });
    }
  } catch (err) {
    proxy.connection._handlerError(err instanceof Error ? Object.assign(err, { message: `${proxy}.${spec?.name ?? opcode}: ${err.message}` }) : err);
  }
  return 0;
}

function closeQuietly(fd: number): void {
  try {
    if (fd >= 0) close(fd);
  } catch {
    // already gone: nothing to release
  }
}

// Outgoing argument arrays: wl_proxy_marshal_array_flags copies everything before it
// returns, so one scratch block serves all requests.
let scratchSize = 4096;
let scratch = koffi.alloc('uint8_t', scratchSize);
function scratchFor(size: number): { ptr: Pointer; buf: Buffer; address: bigint } {
  if (size > scratchSize) {
    koffi.free(scratch);
    scratchSize = Math.max(size, scratchSize * 2);
    scratch = koffi.alloc('uint8_t', scratchSize);
  }
  return { ptr: scratch, buf: Buffer.from(koffi.view(scratch, scratchSize)), address: koffi.address(scratch) };
}

function checkInt(v: unknown, lo: number, hi: number, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) throw new TypeError(`${what} must be an integer in ${lo}..${hi}, not ${String(v)}`);
  return v;
}

function encodeRequest(msg: MessageInfo, values: readonly unknown[], what: string): Pointer {
  if (values.length !== msg.slots.length) throw new TypeError(`${what}: ${values.length} values for signature '${msg.signature}'`);
  const extra = values.map((v) => (typeof v === 'string' ? align8(Buffer.byteLength(v) + 1) : v instanceof Uint8Array ? ARRAY.size + align8(v.length) : 0));
  const s = scratchFor(ARG * values.length + extra.reduce((a, b) => a + b, 0));
  let tail = ARG * values.length;
  msg.slots.forEach((slot, k) => {
    const v = values[k];
    const off = ARG * k;
    const arg = `${what} argument ${k + 1}`;
    s.buf.writeBigUInt64LE(0n, off);
    switch (slot.type) {
      case 'i':
      case 'h':
        s.buf.writeInt32LE(checkInt(v, -0x80000000, 0x7fffffff, arg), off);
        break;
      case 'u':
        s.buf.writeUInt32LE(checkInt(v, -0x80000000, 0xffffffff, arg) >>> 0, off);
        break;
      case 'f':
        if (typeof v !== 'number' || !Number.isFinite(v)) throw new TypeError(`${arg} must be a finite number`);
        s.buf.writeInt32LE(fixedFromDouble(v), off);
        break;
      case 's':
        if (v === null || v === undefined) {
          if (!slot.nullable) throw new TypeError(`${arg} must be a string`);
          break;
        }
        if (typeof v !== 'string' || v.includes('\0')) throw new TypeError(`${arg} must be a string without NUL`);
        s.buf.write(`${v}\0`, tail, 'utf8');
        s.buf.writeBigUInt64LE(s.address + BigInt(tail), off);
        tail += align8(Buffer.byteLength(v) + 1);
        break;
      case 'o':
        if (v === null || v === undefined) {
          if (!slot.nullable) throw new TypeError(`${arg} must be an object`);
          break;
        }
        if (!(v instanceof Proxy) || v.destroyed) throw new TypeError(`${arg} must be a live proxy`);
        s.buf.writeBigUInt64LE(v.address, off);
        break;
      case 'n':
        break; // libwayland fills in the new proxy
      case 'a': {
        if (!(v instanceof Uint8Array)) throw new TypeError(`${arg} must be a Uint8Array`);
        const arrOff = tail;
        tail += ARRAY.size;
        s.buf.writeBigUInt64LE(BigInt(v.length), arrOff + ARRAY.offsets['size']!);
        s.buf.writeBigUInt64LE(BigInt(v.length), arrOff + ARRAY.offsets['alloc']!);
        s.buf.writeBigUInt64LE(v.length ? s.address + BigInt(tail) : 0n, arrOff + ARRAY.offsets['data']!);
        s.buf.set(v, tail);
        tail += align8(v.length);
        s.buf.writeBigUInt64LE(s.address + BigInt(arrOff), off);
        break;
      }
    }
  });
  return s.ptr;
}

/** A client-side object (struct wl_proxy). Generated classes add the typed requests. */
export class Proxy<E extends object = object> {
  readonly connection: Connection;
  readonly ptr: Pointer;
  readonly address: bigint;
  readonly id: number;
  readonly version: number;
  /** The event handlers; events without a handler are dropped (fds in them closed). */
  handlers: Partial<E> = {};
  /** Free for the owner's use. */
  data: unknown;
  #destroyed = false;

  constructor(init: ProxyInit) {
    this.connection = init.connection;
    this.ptr = init.ptr;
    // A null pointer is a dead proxy: what a request on a failed display creates.
    this.address = init.ptr === null ? 0n : koffi.address(init.ptr);
    this.id = init.ptr === null ? 0 : proxyGetId(init.ptr);
    this.version = init.version;
    this.#destroyed = init.ptr === null;
  }

  get interfaceName(): string {
    return (this.constructor as ProxyClass).interface.name;
  }
  get destroyed(): boolean {
    return this.#destroyed;
  }
  /** Sets (merges) event handlers; returns the proxy. */
  on(handlers: Partial<E>): this {
    Object.assign(this.handlers, handlers);
    return this;
  }
  /** wl_proxy_destroy without a request: for objects the compositor ends (wl_callback) or that have no destructor. */
  destroyProxy(): void {
    if (this.#destroyed) return;
    this._forget();
    if (!this.connection.closed) proxyDestroy(this.ptr);
  }
  toString(): string {
    return `${this.interfaceName}@${this.id}`;
  }

  /** @internal */
  _forget(): void {
    this.#destroyed = true;
    live.delete(this.address);
  }

  #msg(opcode: number): { msg: MessageInfo; what: string } {
    const msg = (this.constructor as ProxyClass).interface.requests[opcode];
    if (!msg) throw new RangeError(`${this}: no request with opcode ${opcode}`);
    const what = `${this}.${msg.name}`;
    if (this.#destroyed) throw new Error(`${what}: the proxy was destroyed`);
    if (msg.since > this.version) throw new Error(`${what} needs version ${msg.since}; bound version ${this.version}`);
    return { msg, what };
  }

  /** Sends a request without a new object (generated methods call this). */
  protected request(opcode: number, values: readonly unknown[], destructor = false): void {
    const { msg, what } = this.#msg(opcode);
    if (this.connection.closed) {
      if (destructor) this._forget();
      return; // a dead connection swallows requests; `closed` already told why
    }
    const args = encodeRequest(msg, values, what);
    if (destructor) this._forget();
    proxyMarshalArrayFlags(this.ptr, opcode, null, 0, destructor ? WL_MARSHAL_FLAG_DESTROY : 0, args);
    this.connection._scheduleFlush();
  }

  /** Sends a request that creates an object of `cls` (version: the parent's unless given, as for wl_registry.bind). */
  protected requestNew<P extends Proxy>(opcode: number, cls: ProxyClass<P>, values: readonly unknown[], version = this.version): P {
    const { msg, what } = this.#msg(opcode);
    const v = Math.min(version, cls.interface.version);
    const args = encodeRequest(msg, values, what);
    const ptr = this.connection.closed ? null : proxyMarshalArrayFlags(this.ptr, opcode, cls.interface.ptr, v, 0, args);
    // Only a failed display returns no proxy: hand out a dead one so callers need no branch.
    if (ptr === null) return new cls({ connection: this.connection, ptr: null, version: v });
    this.connection._scheduleFlush();
    return this.connection._adopt(cls, ptr, v);
  }
}

/** A connection to a Wayland compositor, run by the Node event loop. */
export class Connection extends EventEmitter<ConnectionEvents> {
  readonly #display: Pointer;
  readonly fd: number;
  #watch: FdWatch | null = null;
  #closed = false;
  #flushQueued = false;
  #waitingWritable = false;
  /** Inside libwayland's dispatch: the display must not be freed under it. */
  #dispatching = false;
  #torndown = false;
  #watchClosed = false;
  /** Native proxies of a closed connection, destroyed right before the display. */
  #orphans: Pointer[] = [];

  private constructor(display: Pointer) {
    super();
    this.#display = display;
    this.fd = displayGetFd(display);
    this.#watch = new FdWatch(this.fd, UV_READABLE, {
      ready: (events, error) => this.#ready(events, error),
      error: (e) => this._handlerError(e),
    });
  }

  /** Connects to `name` (socket name or absolute path; null: $WAYLAND_DISPLAY). Throws a SysError naming the socket. */
  static connect(name: string | null = null): Connection {
    return new Connection(displayConnect(name));
  }
  /** Wraps a connected socket (the connection owns `fd` from now on). */
  static fromFd(fd: number): Connection {
    return new Connection(displayConnectToFd(fd));
  }

  get closed(): boolean {
    return this.#closed;
  }
  /** The socket is full: send nothing more until `drain` (libwayland would give up on the display). */
  get congested(): boolean {
    return this.#waitingWritable;
  }
  /** The wl_display as a proxy of `cls` (the generated WlDisplay); libwayland handles its own events. */
  display<P extends Proxy>(cls: ProxyClass<P>): P {
    return new cls({ connection: this, ptr: this.#display, version: 1 });
  }

  /** Proxies of this connection still alive with interface `iface` (leak checks: every wl_buffer not destroyed is one the compositor keeps). */
  liveProxies(iface: string): number {
    let n = 0;
    for (const p of live.values()) if (p.connection === this && !p.destroyed && p.interfaceName === iface) n++;
    return n;
  }

  /** Disconnects: destroys the proxies still alive, closes the socket. Emits `closed` (kind 'closed') if nothing ended it before. */
  close(message = 'closed by the client'): void {
    this.#end({ kind: 'closed', message });
  }

  /** @internal a proxy made by libwayland (new_id request or event), now routed to JS. */
  _adopt<P extends Proxy>(cls: ProxyClass<P>, ptr: Pointer, version: number): P {
    const p = new cls({ connection: this, ptr, version: Math.min(version, proxyGetVersion(ptr) || version) });
    proxyAddDispatcher(ptr, dispatcher(), null, null);
    live.set(p.address, p);
    return p;
  }
  /** @internal */
  _handlerError(err: unknown): void {
    if (this.listenerCount('handler-error') > 0) this.emit('handler-error', err);
    else process.stderr.write(`guestplane: wayland client handler failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  }
  /** @internal requests are flushed once per turn of the loop. */
  _scheduleFlush(): void {
    if (this.#flushQueued || this.#closed) return;
    this.#flushQueued = true;
    queueMicrotask(() => {
      this.#flushQueued = false;
      this.#flush();
    });
  }

  #ready(events: number, error: Error | null): void {
    if (this.#closed) return;
    // The poll fails on the socket (an error or hang-up the kernel reported first): the compositor is gone all the same.
    if (error) return this.#end({ kind: 'gone', errno: errno.EIO, message: `the compositor went away (poll: ${error.message})` });
    if (events & UV_WRITABLE) this.#flush();
    if (events & UV_READABLE) this.#read();
  }

  #read(): void {
    this.#dispatching = true;
    try {
      while (displayPrepareRead(this.#display) !== 0) {
        if (this.#dispatch() < 0) return this.#failed();
      }
      if (displayReadEvents(this.#display) < 0) return this.#failed();
      if (this.#dispatch() < 0) return this.#failed();
    } finally {
      this.#dispatching = false;
      this.#teardown(); // only once closed and the watch let go
    }
    this.#flush();
  }

  #dispatch(): number {
    // A handler may close the connection; nothing more is dispatched then.
    return this.#closed ? 0 : displayDispatchPending(this.#display);
  }

  #flush(): void {
    if (this.#closed) return;
    const r = displayFlush(this.#display);
    if (r.sent < 0 && r.errno !== errno.EAGAIN) return this.#failed();
    const full = r.sent < 0;
    if (full !== this.#waitingWritable) {
      this.#waitingWritable = full;
      this.#watch?.setEvents(full ? UV_READABLE | UV_WRITABLE : UV_READABLE);
      if (!full) this.emit('drain');
    }
  }

  /** Reads why libwayland gave up on the display. */
  #failed(): void {
    const e = displayGetError(this.#display);
    if (e === osConstants.errno.EPROTO) {
      const pe = displayGetProtocolError(this.#display);
      const iface = pe.iface === null ? 'unknown' : (koffi.decode(pe.iface, 'const char *') as string);
      return this.#end({
        kind: 'protocol-error', interface: iface, id: pe.id, code: pe.code,
        message: `the compositor sent a protocol error: ${iface}@${pe.id} code ${pe.code}`,
      });
    }
    this.#end({ kind: 'gone', errno: e, message: `the compositor went away (errno ${e})` });
  }

  #end(reason: CloseReason): void {
    if (this.#closed) return;
    this.#closed = true;
    // libuv must let go of the fd before it is closed (ffi/uv.ts): a number closed under a
    // live watch and reused by the next connection got that one EBADF from the poll.
    const w = this.#watch;
    this.#watch = null;
    // Every proxy is dead for JS at once; the native ones go with the display in teardown.
    for (const p of [...live.values()]) {
      if (p.connection !== this) continue;
      p._forget();
      this.#orphans.push(p.ptr);
    }
    void (w ? w.close() : Promise.resolve()).then(() => {
      this.#watchClosed = true;
      this.#teardown();
    });
    this.emit('closed', reason);
  }

  #teardown(): void {
    if (this.#torndown || this.#dispatching || !this.#watchClosed) return;
    this.#torndown = true;
    for (const ptr of this.#orphans) proxyDestroy(ptr);
    this.#orphans = [];
    displayDisconnect(this.#display);
  }
}
