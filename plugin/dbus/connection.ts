// One D-Bus connection (sd-bus underneath), driven by Node's event loop: the bus fd is
// watched with uv_poll and sd_bus_process runs on the main thread whenever it is ready
// or its timeout passes. Nothing waits: a method call returns a promise, an incoming call
// can be answered later (QEMU's UpdateDMABUF is answered once the frame is on screen).
//
// sd-bus reads the authentication replies and refuses (EIO) a connection whose peer sends
// fds before the client has read them all; it pipelines AUTH, NEGOTIATE_UNIX_FD and BEGIN,
// so a server that sends an fd right after BEGIN can hit that. QEMU does not: its listener
// proxy first loads properties (a GetAll round trip), which needs us to be running.
//
// Ownership: the connection owns the sd_bus (and through it the socket fd), every held
// incoming call (a message reference until reply() or close()), and each fd that arrives
// in a message until a handler takes it with IncomingCall.takeFd(); fds not taken are
// closed when the handler returns.
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import koffi from 'koffi';
import * as libc from '../../ffi/libc.js';
import { FdWatch, UV_READABLE, UV_WRITABLE } from '../../ffi/uv.js';
import { registerHandler, sdbus, sd_bus_error, SD_BUS_MESSAGE_METHOD_ERROR } from '../../ffi/sdbus.js';

/** A value read from a message. 'h' arrives as DbusFd; 'ay' as a Buffer (a copy). */
export type DbusValue = number | bigint | string | boolean | Buffer | DbusFd | DbusValue[] | Map<DbusValue, DbusValue>;

/** A unix fd received in a message, owned by the connection until taken. */
export class DbusFd {
  constructor(public fd: number) {}
}

/** An argument to send: its D-Bus type and value. */
export type DbusArg =
  | { type: 'y' | 'n' | 'q' | 'i' | 'u'; value: number }
  | { type: 'b'; value: boolean }
  | { type: 'x' | 't'; value: bigint }
  | { type: 'd'; value: number }
  | { type: 's' | 'o' | 'g'; value: string }
  /** The fd stays the caller's: sd-bus sends a duplicate. */
  | { type: 'h'; value: number }
  | { type: 'ay'; value: Uint8Array };

export class DbusError extends Error {
  constructor(
    readonly dbusName: string,
    message: string,
  ) {
    super(message);
    this.name = 'DbusError';
  }
}

/** A method call that came in. Answer it once (now or later) with reply() or fail(). */
export interface IncomingCall {
  readonly path: string;
  readonly interface: string;
  readonly member: string;
  readonly signature: string;
  readonly args: DbusValue[];
  /** Takes ownership of a received fd (the caller closes it); -1 if it is not a DbusFd. */
  takeFd(v: DbusValue | undefined): number;
  reply(args?: DbusArg[]): void;
  fail(name: string, message: string): void;
  readonly answered: boolean;
}

interface Events {
  /** The connection ended (peer hung up, protocol error, or close()). */
  closed: [Error | null];
  /** A handler threw or a message could not be read: reported, never thrown into libsystemd. */
  error: [Error];
}

const UINT64_MAX = 0xffffffffffffffffn;
const POLLIN = 1;
const POLLOUT = 4;

function check(rc: number, what: string): number {
  if (rc < 0) throw new libc.SysError(what, 'sd-bus', -rc);
  return rc;
}

type Reader = (m: unknown) => DbusValue;

export class DbusConnection extends EventEmitter<Events> {
  readonly name: string;
  #bus: unknown;
  #watch: FdWatch | null = null;
  #watchEvents = 0;
  #timer: NodeJS.Timeout | null = null;
  #timerUntil = 0n;
  #processing = false;
  #again = false;
  #closed = false;
  readonly #slots = new Set<unknown>();
  readonly #callbacks: koffi.IKoffiRegisteredCallback[] = [];
  readonly #held = new Set<unknown>();

  private constructor(name: string, bus: unknown) {
    super();
    this.name = name;
    this.#bus = bus;
  }

  /**
   * Connects to a bus address (`unix:path=…`, as in DBUS_SESSION_BUS_ADDRESS). With
   * busClient the connection says Hello to a bus daemon; without, it is peer-to-peer.
   */
  static connect(address: string, opts: { busClient: boolean; name?: string }): DbusConnection {
    const b = sdbus();
    const out: unknown[] = [null];
    check(b.new(out) as number, 'sd_bus_new');
    const c = new DbusConnection(opts.name ?? address, out[0]);
    try {
      check(b.setAddress(out[0], address) as number, `sd_bus_set_address("${address}")`);
      c.#start(opts.busClient);
    } catch (e) {
      c.close();
      throw e;
    }
    return c;
  }

  /**
   * A peer-to-peer connection over a connected socket; takes ownership of the fd. The
   * `server` side answers the authentication (QEMU is the server on a listener socket;
   * tests play QEMU with it).
   */
  static fromSocket(fd: number, name: string, opts: { server?: boolean } = {}): DbusConnection {
    const b = sdbus();
    const out: unknown[] = [null];
    const rc = b.new(out) as number;
    if (rc < 0) {
      libc.close(fd);
      check(rc, 'sd_bus_new');
    }
    const c = new DbusConnection(name, out[0]);
    const set = b.setFd(out[0], fd, fd) as number;
    if (set < 0) {
      libc.close(fd);
      c.close();
      check(set, 'sd_bus_set_fd');
    }
    try {
      if (opts.server) check(b.setServer(out[0], 1, { bytes: [...randomBytes(16)] }) as number, 'sd_bus_set_server');
      c.#start(false);
    } catch (e) {
      c.close();
      throw e;
    }
    return c;
  }

  #start(busClient: boolean): void {
    const b = sdbus();
    check(b.setBusClient(this.#bus, busClient ? 1 : 0) as number, 'sd_bus_set_bus_client');
    check(b.negotiateFds(this.#bus, 1) as number, 'sd_bus_negotiate_fds');
    check(b.start(this.#bus) as number, `sd_bus_start(${this.name})`);
    const fd = check(b.getFd(this.#bus) as number, 'sd_bus_get_fd');
    this.#watchEvents = UV_READABLE;
    this.#watch = new FdWatch(fd, UV_READABLE, {
      ready: (_events, error) => {
        if (error) return this.#fail(error);
        this.#pump();
      },
      error: (e) => this.emit('error', e instanceof Error ? e : new Error(String(e))),
    });
    this.#pump();
  }

  /** The bus's name for this connection (bus clients, once Hello was answered). */
  uniqueName(): string | null {
    if (this.#closed) return null;
    const out: (string | null)[] = [null];
    return (sdbus().getUniqueName(this.#bus, out) as number) >= 0 ? out[0] : null;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Calls a method; resolves with the reply's values, rejects with DbusError. */
  call(dest: string | null, path: string, iface: string, member: string, args: DbusArg[] = [], timeoutMs = 25000): Promise<DbusValue[]> {
    if (this.#closed) return Promise.reject(new Error(`D-Bus connection ${this.name} is closed`));
    const b = sdbus();
    const out: unknown[] = [null];
    check(b.newMethodCall(this.#bus, out, dest, path, iface, member) as number, `new method call ${iface}.${member}`);
    const m = out[0];
    return new Promise((resolve, reject) => {
      let cb: koffi.IKoffiRegisteredCallback | null = null;
      const slot: unknown[] = [null];
      const done = (reply: unknown): number => {
        this.#slots.delete(slot[0]);
        b.slotUnref(slot[0]);
        if (cb) koffi.unregister(cb);
        try {
          const e = messageError(reply);
          if (e) reject(e);
          else resolve(readAll(reply));
        } catch (err) {
          reject(err);
        }
        return 1;
      };
      try {
        appendArgs(m, args);
        cb = registerHandler((reply) => done(reply));
        check(b.callAsync(this.#bus, slot, m, cb, null, BigInt(timeoutMs) * 1000n) as number, `call ${iface}.${member} on ${this.name}`);
        this.#slots.add(slot[0]);
      } catch (e) {
        if (cb) koffi.unregister(cb);
        reject(e);
      } finally {
        b.messageUnref(m);
      }
      this.#kick();
    });
  }

  /** Serves method calls on an object path (every interface; the handler checks which). */
  addObject(path: string, handler: (call: IncomingCall) => void): void {
    const b = sdbus();
    const cb = registerHandler((m) => {
      try {
        this.#dispatch(m, handler);
      } catch (e) {
        this.emit('error', e instanceof Error ? e : new Error(String(e)));
      }
      return 1;
    });
    this.#callbacks.push(cb);
    const slot: unknown[] = [null];
    check(b.addObject(this.#bus, slot, path, cb, null) as number, `sd_bus_add_object(${path})`);
    this.#slots.add(slot[0]);
  }

  #dispatch(m: unknown, handler: (call: IncomingCall) => void): void {
    const b = sdbus();
    const fds: DbusFd[] = [];
    let args: DbusValue[] = [];
    let readError: Error | null = null;
    try {
      args = readAll(m, fds);
    } catch (e) {
      readError = e instanceof Error ? e : new Error(String(e));
    }
    let answered = false;
    b.messageRef(m);
    this.#held.add(m);
    const finish = (reply: unknown): void => {
      if (answered) return;
      answered = true;
      if (!this.#held.delete(m)) return; // closed meanwhile
      if (reply) {
        b.send(this.#bus, reply, [0n]);
        b.messageUnref(reply);
      }
      b.messageUnref(m);
      this.#kick();
    };
    const call: IncomingCall = {
      path: (b.getPath(m) as string | null) ?? '',
      interface: (b.getInterface(m) as string | null) ?? '',
      member: (b.getMember(m) as string | null) ?? '',
      signature: (b.getSignature(m, 1) as string | null) ?? '',
      args,
      takeFd: (v) => {
        if (!(v instanceof DbusFd) || v.fd < 0) return -1;
        const fd = v.fd;
        v.fd = -1;
        return fd;
      },
      reply: (replyArgs = []) => {
        if (answered || this.#closed) return finish(null);
        const out: unknown[] = [null];
        if ((b.newMethodReturn(m, out) as number) < 0) return finish(null);
        try {
          appendArgs(out[0], replyArgs);
        } catch (e) {
          b.messageUnref(out[0]);
          finish(null);
          throw e;
        }
        finish(out[0]);
      },
      fail: (name, message) => {
        if (answered || this.#closed) return finish(null);
        const out: unknown[] = [null];
        if ((b.newMethodError(m, out, { name, message, _need_free: 0 }) as number) < 0) return finish(null);
        finish(out[0]);
      },
      get answered() {
        return answered;
      },
    };
    try {
      if (readError) call.fail('org.freedesktop.DBus.Error.InvalidArgs', `cannot read the arguments: ${readError.message}`);
      else handler(call);
    } finally {
      for (const f of fds) if (f.fd >= 0) libc.close(f.fd);
    }
  }

  /** Runs sd_bus_process until it has nothing to do, then re-arms the watch and timer. */
  #pump(): void {
    if (this.#closed) return;
    if (this.#processing) {
      this.#again = true;
      return;
    }
    this.#processing = true;
    const b = sdbus();
    try {
      do {
        this.#again = false;
        for (;;) {
          const r = b.process(this.#bus, null) as number;
          if (r < 0) return this.#fail(new libc.SysError('sd_bus_process', this.name, -r));
          if (this.#closed) return;
          if (r === 0) break;
        }
      } while (this.#again);
      if ((b.isOpen(this.#bus) as number) <= 0) return this.#fail(null);
      this.#rearm();
    } finally {
      this.#processing = false;
    }
  }

  #kickScheduled = false;
  /** Something was queued: write it out soon (coalesced). */
  #kick(): void {
    if (this.#closed || this.#kickScheduled) return;
    this.#kickScheduled = true;
    setImmediate(() => {
      this.#kickScheduled = false;
      this.#pump();
    });
  }

  #rearm(): void {
    const b = sdbus();
    const ev = b.getEvents(this.#bus) as number;
    if (ev < 0) return this.#fail(new libc.SysError('sd_bus_get_events', this.name, -ev));
    const want = (ev & POLLIN ? UV_READABLE : 0) | (ev & POLLOUT ? UV_WRITABLE : 0) || UV_READABLE;
    if (want !== this.#watchEvents && this.#watch) {
      this.#watch.setEvents(want);
      this.#watchEvents = want;
    }
    const t: (bigint | number)[] = [0n];
    const until = (b.getTimeout(this.#bus, t) as number) >= 0 ? BigInt(t[0]!) : UINT64_MAX;
    // A timer armed for an earlier deadline stays: it pumps and re-arms when it fires.
    // (Each call moves the deadline; re-arming per message cost ~10 % of a round trip.)
    if (until === UINT64_MAX || (this.#timer && this.#timerUntil <= until)) return;
    if (this.#timer) clearTimeout(this.#timer);
    const nowUs = process.hrtime.bigint() / 1000n;
    const ms = until > nowUs ? Number((until - nowUs + 999n) / 1000n) : 0;
    this.#timerUntil = until;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#pump();
    }, ms);
  }

  #fail(e: Error | null): void {
    if (this.#closed) return;
    this.close(e);
  }

  /** Closes the connection: held calls are dropped unanswered, every slot and callback freed. */
  close(reason: Error | null = null): void {
    if (this.#closed) return;
    this.#closed = true;
    const b = sdbus();
    if (this.#timer) clearTimeout(this.#timer);
    void this.#watch?.close();
    this.#watch = null;
    for (const m of this.#held) b.messageUnref(m);
    this.#held.clear();
    for (const s of this.#slots) b.slotUnref(s);
    this.#slots.clear();
    b.flushCloseUnref(this.#bus);
    this.#bus = null;
    for (const cb of this.#callbacks) koffi.unregister(cb);
    this.#callbacks.length = 0;
    this.emit('closed', reason);
  }
}

function messageError(m: unknown): DbusError | null {
  const b = sdbus();
  const t: number[] = [0];
  b.getType(m, t);
  if (t[0] !== SD_BUS_MESSAGE_METHOD_ERROR) return null;
  const p = b.getError(m);
  const e = p ? (koffi.decode(p, sd_bus_error) as { name: string | null; message: string | null }) : { name: null, message: null };
  return new DbusError(e.name ?? 'unknown', `${e.name ?? 'D-Bus error'}: ${e.message ?? ''}`);
}

const scratch = Buffer.alloc(8);

function appendArgs(m: unknown, args: DbusArg[]): void {
  const b = sdbus();
  for (const a of args) {
    let rc: number;
    if (a.type === 'ay') {
      rc = b.appendArray(m, 'y'.charCodeAt(0), a.value, a.value.byteLength) as number;
    } else if (a.type === 's' || a.type === 'o' || a.type === 'g') {
      rc = b.appendBasic(m, a.type.charCodeAt(0), Buffer.from(`${a.value}\0`, 'utf8')) as number;
    } else {
      scratch.fill(0);
      switch (a.type) {
        case 'y':
          scratch.writeUInt8(a.value);
          break;
        case 'n':
          scratch.writeInt16LE(a.value);
          break;
        case 'q':
          scratch.writeUInt16LE(a.value);
          break;
        case 'i':
        case 'h':
          scratch.writeInt32LE(a.value);
          break;
        case 'u':
          scratch.writeUInt32LE(a.value);
          break;
        case 'b':
          scratch.writeInt32LE(a.value ? 1 : 0);
          break;
        case 'x':
          scratch.writeBigInt64LE(a.value);
          break;
        case 't':
          scratch.writeBigUInt64LE(a.value);
          break;
        case 'd':
          scratch.writeDoubleLE(a.value);
          break;
      }
      rc = b.appendBasic(m, a.type.charCodeAt(0), scratch) as number;
    }
    check(rc, `append '${a.type}'`);
  }
}

/** Reads the whole body. Received fds are duplicated into `fds` (owned by the caller). */
export function readAll(m: unknown, fds: DbusFd[] = []): DbusValue[] {
  const out: DbusValue[] = [];
  for (;;) {
    const v = readValue(m, fds);
    if (v === undefined) return out;
    out.push(v);
  }
}

const readers: Record<string, Reader> = {
  y: () => scratch.readUInt8(0),
  b: () => scratch.readInt32LE(0) !== 0,
  n: () => scratch.readInt16LE(0),
  q: () => scratch.readUInt16LE(0),
  i: () => scratch.readInt32LE(0),
  u: () => scratch.readUInt32LE(0),
  x: () => scratch.readBigInt64LE(0),
  t: () => scratch.readBigUInt64LE(0),
  d: () => scratch.readDoubleLE(0),
};

function readValue(m: unknown, fds: DbusFd[]): DbusValue | undefined {
  const b = sdbus();
  const type: number[] = [0];
  const contents: (string | null)[] = [null];
  check(b.peekType(m, type, contents) as number, 'peek type');
  const t = String.fromCharCode(type[0] & 0xff);
  if (type[0] === 0) return undefined;
  const c = contents[0] ?? '';
  if (t === 'a' && 'ybnqiuxtd'.includes(c) && c.length === 1) {
    const ptr: unknown[] = [null];
    const size: (number | bigint)[] = [0];
    check(b.readArray(m, c.charCodeAt(0), ptr, size) as number, `read array of '${c}'`);
    const n = Number(size[0]);
    // koffi.view is the message's own memory (freed with the message): copy it out.
    const bytes = Buffer.allocUnsafe(n);
    if (n > 0) bytes.set(new Uint8Array(koffi.view(ptr[0], n) as ArrayBuffer));
    if (c === 'y') return bytes;
    const width = 'y'.includes(c) ? 1 : 'bnqiu'.includes(c) ? (c === 'n' || c === 'q' ? 2 : 4) : 8;
    const list: DbusValue[] = [];
    for (let o = 0; o + width <= n; o += width) {
      bytes.copy(scratch, 0, o, o + width);
      list.push(readers[c]!(m));
    }
    return list;
  }
  if (t === 'a' || t === 'v' || t === 'r' || t === 'e') {
    check(b.enterContainer(m, type[0], c) as number, `enter '${t}${c}'`);
    let v: DbusValue;
    if (t === 'v') v = readValue(m, fds) ?? [];
    else if (t === 'a' && c.startsWith('{')) {
      const map = new Map<DbusValue, DbusValue>();
      for (;;) {
        const e = readValue(m, fds);
        if (e === undefined) break;
        const [k, val] = e as DbusValue[];
        map.set(k!, val!);
      }
      v = map;
    } else v = readAll(m, fds);
    check(b.exitContainer(m) as number, `exit '${t}'`);
    return v;
  }
  if (t === 's' || t === 'o' || t === 'g') {
    const s = Buffer.alloc(8);
    check(b.readBasic(m, type[0], s) as number, `read '${t}'`);
    return koffi.decode(s, 'const char *') as string;
  }
  scratch.fill(0);
  check(b.readBasic(m, type[0], scratch) as number, `read '${t}'`);
  if (t === 'h') {
    // The message owns its fd; keep a duplicate of our own.
    const f = new DbusFd(libc.fcntl(scratch.readInt32LE(0), libc.F_DUPFD_CLOEXEC, 3, 'received fd'));
    fds.push(f);
    return f;
  }
  const r = readers[t];
  if (!r) throw new Error(`unsupported D-Bus type '${t}'`);
  return r(m);
}
