// One D-Bus connection (our own wire format and transport: wire.ts, transport.ts), driven
// by Node's event loop. Nothing waits: a method call returns a promise with a timeout of
// its own (a peer that never answers delays only that call), and an incoming call can be
// answered later (QEMU's UpdateDMABUF is answered once the frame is on screen).
//
// An object may declare its methods' signatures: a call of another method, or with other
// arguments, is refused from its header alone, before a byte of its body is decoded.
//
// Ownership: the connection owns its transport (and through it the socket fd), every
// held incoming call until reply() or close(), and each fd that arrives in a message
// until a handler takes it with IncomingCall.takeFd(); fds not taken are closed when the
// handler returns.
import { EventEmitter } from 'node:events';
import * as libc from '../../ffi/libc.js';
import { DbusTransport, type RawMessage, type RefusedMessage, type TransportLimits } from './transport.js';
import { encodeEmptyReturn } from './header.js';
import { DbusFd, DbusWireError, FLAG_NO_REPLY_EXPECTED, MESSAGE_TYPE, decodeBody, encodeMessage, type DbusArg, type DbusValue, type MessageHeader, type OutgoingMessage } from './wire.js';

export { DbusFd, type DbusArg, type DbusValue } from './wire.js';

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
  /**
   * The handler holds this call and answers it soon: answers given in the same read slice
   * may wait (bounded) to leave in one write with its answer (DbusTransport.holdOutput).
   */
  answerSoon(): void;
  readonly answered: boolean;
}

/** `interface.member` → the argument signature a call must have. */
export type MethodTable = Readonly<Record<string, string>>;

interface Events {
  /** The connection ended (peer hung up, protocol error, a bound passed, or close()). */
  closed: [Error | null];
  /** A handler threw, or a message was refused: reported, never thrown into the loop. */
  error: [Error];
}

/** Bounds of one connection beyond the transport's (see README, "What guestplane assumes of QEMU"). */
export interface ConnectionLimits extends TransportLimits {
  /** Values decoded from one message. */
  maxValues: number;
  /** Our calls waiting for a reply at once. */
  maxPendingCalls: number;
  /** Incoming calls a handler holds unanswered at once. */
  maxHeldCalls: number;
}

export const DEFAULT_LIMITS: Omit<ConnectionLimits, keyof TransportLimits> = {
  maxValues: 4096,
  maxPendingCalls: 256,
  maxHeldCalls: 256,
};

export interface ConnectionOptions {
  name?: string;
  limits?: Partial<ConnectionLimits>;
}

interface Pending {
  resolve(v: DbusValue[]): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
  what: string;
}

interface CallAnswers {
  reply(call: IncomingCall, h: MessageHeader, args: DbusArg[]): void;
  fail(call: IncomingCall, h: MessageHeader, name: string, message: string): void;
  soon(): void;
}

/** An incoming method call (a class: a message a frame makes no closures). */
class Call implements IncomingCall {
  #answered = false;
  readonly #to: CallAnswers;
  readonly #h: MessageHeader;
  readonly interface: string;
  readonly args: DbusValue[];

  constructor(to: CallAnswers, h: MessageHeader, iface: string, args: DbusValue[]) {
    this.#to = to;
    this.#h = h;
    this.interface = iface;
    this.args = args;
  }

  get path(): string {
    return this.#h.path!;
  }

  get member(): string {
    return this.#h.member!;
  }

  get signature(): string {
    return this.#h.signature;
  }

  get answered(): boolean {
    return this.#answered;
  }

  takeFd(v: DbusValue | undefined): number {
    if (!(v instanceof DbusFd) || v.fd < 0) return -1;
    const fd = v.fd;
    v.fd = -1;
    return fd;
  }

  reply(args: DbusArg[] = []): void {
    if (this.#answered) return;
    this.#answered = true;
    this.#to.reply(this, this.#h, args);
  }

  fail(name: string, message: string): void {
    if (this.#answered) return;
    this.#answered = true;
    this.#to.fail(this, this.#h, name, message);
  }

  answerSoon(): void {
    if (!this.#answered) this.#to.soon();
  }
}

interface ObjectEntry {
  handler: (call: IncomingCall) => void;
  methods: MethodTable | null;
}

const DBUS = 'org.freedesktop.DBus';

/** The unix socket addresses in a D-Bus address (`unix:path=…;unix:abstract=…`), in order. */
export function parseAddress(address: string): { path: string; abstract: boolean }[] {
  const out: { path: string; abstract: boolean }[] = [];
  for (const part of address.split(';')) {
    if (!part) continue;
    const colon = part.indexOf(':');
    if (colon < 0) throw new Error(`D-Bus address '${address}': '${part}' has no transport (expected unix:path=…)`);
    const transport = part.slice(0, colon);
    const kv = new Map<string, string>();
    for (const pair of part.slice(colon + 1).split(',')) {
      const eq = pair.indexOf('=');
      if (eq > 0) kv.set(pair.slice(0, eq), decodeURIComponent(pair.slice(eq + 1)));
    }
    if (transport !== 'unix') continue;
    const path = kv.get('path');
    const abs = kv.get('abstract');
    if (path) out.push({ path, abstract: false });
    else if (abs) out.push({ path: abs, abstract: true });
  }
  if (!out.length) throw new Error(`D-Bus address '${address}' names no unix socket (expected unix:path=… or unix:abstract=…)`);
  return out;
}

export class DbusConnection extends EventEmitter<Events> {
  readonly name: string;
  readonly limits: ConnectionLimits;
  readonly #t: DbusTransport;
  #serial = 0;
  #uniqueName: string | null = null;
  readonly #pending = new Map<number, Pending>();
  readonly #objects = new Map<string, ObjectEntry>();
  readonly #held = new Set<IncomingCall>();
  #closed = false;

  private constructor(fd: number, name: string, role: 'client' | 'server', busClient: boolean, limits: Partial<ConnectionLimits>) {
    super();
    this.name = name;
    this.limits = { ...DEFAULT_LIMITS, ...limits } as ConnectionLimits;
    this.#t = new DbusTransport(
      fd,
      name,
      role,
      {
        running: () => {
          if (!busClient) this.#readyResolve?.();
        },
        message: (m) => this.#onMessage(m),
        refused: (r) => this.#onRefused(r),
        closed: (e) => this.#onClosed(e),
      },
      limits,
    );
    Object.assign(this.limits, this.#t.limits);
    this.#ready = new Promise<void>((resolve, reject) => {
      this.#readyResolve = resolve;
      this.#readyReject = reject;
    });
    this.#ready.catch(() => {});
    // Hello is the first message on a bus: queued now, ahead of any call.
    if (busClient) this.#hello();
  }

  #ready: Promise<void>;
  #readyResolve: (() => void) | null = null;
  #readyReject: ((e: Error) => void) | null = null;

  /** Resolves once the handshake is done (and, on a bus, Hello answered); rejects if the connection ends first. */
  ready(): Promise<void> {
    return this.#ready;
  }

  /**
   * Connects to a bus address (`unix:path=…`, as in DBUS_SESSION_BUS_ADDRESS). With
   * busClient the connection says Hello to a bus daemon; without, it is peer-to-peer.
   */
  static connect(address: string, opts: { busClient: boolean } & ConnectionOptions): DbusConnection {
    let last: Error | null = null;
    for (const a of parseAddress(address)) {
      const fd = libc.socket(libc.AF_UNIX, libc.SOCK_STREAM | libc.SOCK_NONBLOCK, 0, `D-Bus socket for ${address}`);
      try {
        if (!libc.connectUnix(fd, a.path, a.abstract, `D-Bus address ${address}`)) throw new libc.SysError('connect', `D-Bus address ${address} (the bus accepts no more connections)`, libc.errno.EAGAIN);
      } catch (e) {
        libc.close(fd);
        last = e as Error;
        continue;
      }
      return new DbusConnection(fd, opts.name ?? address, 'client', opts.busClient, opts.limits ?? {});
    }
    throw last ?? new Error(`cannot connect to ${address}`);
  }

  /**
   * A peer-to-peer connection over a connected socket; takes ownership of the fd. The
   * `server` side answers the authentication (QEMU is the server on a listener socket;
   * tests play QEMU with it).
   */
  static fromSocket(fd: number, name: string, opts: { server?: boolean } & Omit<ConnectionOptions, 'name'> = {}): DbusConnection {
    try {
      libc.fcntl(fd, libc.F_SETFL, libc.fcntl(fd, libc.F_GETFL, 0, name) | libc.O_NONBLOCK, name);
    } catch (e) {
      libc.close(fd);
      throw e;
    }
    return new DbusConnection(fd, name, opts.server ? 'server' : 'client', false, opts.limits ?? {});
  }

  /** The bus's name for this connection (bus clients, once Hello was answered). */
  uniqueName(): string | null {
    return this.#closed ? null : this.#uniqueName;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Counters of the transport (messages, refusals, fds closed on arrival, longest slice). */
  get stats(): Readonly<DbusTransport['stats']> {
    return this.#t.stats;
  }

  #hello(): void {
    this.call(DBUS, '/org/freedesktop/DBus', DBUS, 'Hello', [], this.limits.authTimeoutMs).then(
      ([n]) => {
        this.#uniqueName = typeof n === 'string' ? n : null;
        this.#readyResolve?.();
      },
      (e: Error) => this.close(new Error(`${this.name}: the bus did not answer Hello: ${e.message}`)),
    );
  }

  /** Calls a method; resolves with the reply's values, rejects with DbusError (also on timeout). */
  call(dest: string | null, path: string, iface: string, member: string, args: DbusArg[] = [], timeoutMs = 25000): Promise<DbusValue[]> {
    if (this.#closed) return Promise.reject(new Error(`D-Bus connection ${this.name} is closed`));
    const what = `${iface}.${member} on ${path}`;
    if (this.#pending.size >= this.limits.maxPendingCalls) {
      return Promise.reject(new DbusError('org.freedesktop.DBus.Error.LimitsExceeded', `${this.name}: ${this.#pending.size} calls already wait for an answer; ${what} not sent`));
    }
    const serial = this.#nextSerial();
    let encoded: { bytes: Buffer; fds: number[] };
    try {
      encoded = encodeMessage({ type: MESSAGE_TYPE.call, serial, path, interface: iface, member, destination: dest ?? undefined, args });
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(serial);
        reject(new DbusError('org.freedesktop.DBus.Error.NoReply', `${this.name}: no answer to ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(serial, { resolve, reject, timer, what });
      try {
        this.#t.send(encoded.bytes, encoded.fds);
      } catch (e) {
        clearTimeout(timer);
        this.#pending.delete(serial);
        reject(e);
      }
    });
  }

  /**
   * A method call that asks for no answer (NO_REPLY_EXPECTED): what GDBus sends for a call
   * made without a callback, as QEMU's ScanoutDMABUF, Disable and MouseSet are. The tests
   * and the bench play QEMU with it.
   */
  callNoReply(dest: string | null, path: string, iface: string, member: string, args: DbusArg[] = []): void {
    if (this.#closed) throw new Error(`D-Bus connection ${this.name} is closed`);
    this.#send({ type: MESSAGE_TYPE.call, flags: FLAG_NO_REPLY_EXPECTED, serial: this.#nextSerial(), path, interface: iface, member, destination: dest ?? undefined, args });
  }

  #nextSerial(): number {
    this.#serial = this.#serial >= 0xffffffff ? 1 : this.#serial + 1;
    return this.#serial;
  }

  /**
   * Serves method calls on an object path. With `methods`, only those (by interface and
   * member) with exactly those argument signatures reach the handler; anything else is
   * refused undecoded. Without, every call does (the handler checks).
   */
  addObject(path: string, handler: (call: IncomingCall) => void, methods: MethodTable | null = null): void {
    this.#objects.set(path, { handler, methods });
  }

  #send(m: OutgoingMessage): void {
    if (this.#closed) return;
    const { bytes, fds } = encodeMessage(m);
    this.#t.send(bytes, fds);
  }

  #error(to: { serial: number; flags: number; sender?: string }, name: string, message: string): void {
    if (to.flags & FLAG_NO_REPLY_EXPECTED) return;
    this.#send({ type: MESSAGE_TYPE.error, serial: this.#nextSerial(), replySerial: to.serial, destination: to.sender, errorName: name, args: [{ type: 's', value: message }] });
  }

  /** 'error' without a listener would throw (EventEmitter): a report nobody asked for is dropped. */
  #report(e: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', e);
  }

  #onRefused(r: RefusedMessage): void {
    const e = new Error(`${this.name}: refused a message: ${r.reason}`);
    this.#report(e);
    if (r.header?.type === MESSAGE_TYPE.call) this.#error(r.header, 'org.freedesktop.DBus.Error.InvalidArgs', r.reason);
  }

  #onMessage(m: RawMessage): void {
    const h = m.header;
    try {
      if (h.type === MESSAGE_TYPE.call) return this.#onCall(m);
      if (h.type === MESSAGE_TYPE.return || h.type === MESSAGE_TYPE.error) return this.#onReply(m);
      // Signals: none are subscribed to (the bus's NameAcquired arrives unasked).
    } finally {
      for (const f of m.fds) if (f.fd >= 0) libc.close(f.fd);
    }
  }

  #onReply(m: RawMessage): void {
    const p = this.#pending.get(m.header.replySerial!);
    if (!p) return; // timed out already, or never ours
    this.#pending.delete(m.header.replySerial!);
    clearTimeout(p.timer);
    let values: DbusValue[];
    try {
      values = decodeBody(m.bytes, m.header, m.fds, this.limits.maxValues);
    } catch (e) {
      return p.reject(new DbusError('org.freedesktop.DBus.Error.InvalidArgs', `${this.name}: the answer to ${p.what} cannot be read: ${(e as Error).message}`));
    }
    if (m.header.type === MESSAGE_TYPE.error) {
      const text = typeof values[0] === 'string' ? values[0] : '';
      return p.reject(new DbusError(m.header.errorName!, `${m.header.errorName}: ${text}`));
    }
    p.resolve(values);
  }

  #onCall(m: RawMessage): void {
    const h = m.header;
    const path = h.path!;
    const iface = h.interface ?? '';
    const member = h.member!;
    const obj = this.#objects.get(path);
    if (iface === 'org.freedesktop.DBus.Peer' && member === 'Ping') {
      if (!(h.flags & FLAG_NO_REPLY_EXPECTED)) this.#send({ type: MESSAGE_TYPE.return, serial: this.#nextSerial(), replySerial: h.serial, destination: h.sender });
      return;
    }
    if (!obj) return this.#error(h, 'org.freedesktop.DBus.Error.UnknownObject', `no object at ${path}`);
    if (obj.methods) {
      const want = obj.methods[`${iface}.${member}`];
      const refuse = (name: string, why: string) => {
        this.#report(new Error(`${this.name}: refused ${iface}.${member}: ${why}`));
        this.#error(h, name, why);
      };
      if (want === undefined) return refuse('org.freedesktop.DBus.Error.UnknownMethod', `unknown method ${iface}.${member} of ${path}`);
      if (want !== h.signature) return refuse('org.freedesktop.DBus.Error.InvalidArgs', `${iface}.${member}: arguments '${h.signature}', expected '${want}' (the body was not read)`);
    }
    if (this.#held.size >= this.limits.maxHeldCalls) {
      return this.#error(h, 'org.freedesktop.DBus.Error.LimitsExceeded', `${this.#held.size} calls are already waiting for an answer here`);
    }
    let args: DbusValue[];
    try {
      args = decodeBody(m.bytes, h, m.fds, this.limits.maxValues);
    } catch (e) {
      const msg = e instanceof DbusWireError ? e.message : String(e);
      this.#report(new Error(`${this.name}: ${iface}.${member}: cannot read the arguments: ${msg}`));
      return this.#error(h, 'org.freedesktop.DBus.Error.InvalidArgs', `cannot read the arguments: ${msg}`);
    }
    const call = this.#incoming(h, iface, args);
    try {
      obj.handler(call);
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      this.#report(err);
      if (!call.answered) call.fail('org.freedesktop.DBus.Error.Failed', err.message);
    }
  }

  #incoming(h: MessageHeader, iface: string, args: DbusValue[]): IncomingCall {
    const call = new Call(this.#answers, h, iface, args);
    this.#held.add(call);
    return call;
  }

  /** What a Call asks of its connection: one object per connection, not closures per call. */
  readonly #answers: CallAnswers = {
    reply: (call, h, args) => {
      this.#held.delete(call);
      if (h.flags & FLAG_NO_REPLY_EXPECTED || this.#closed) return;
      // The common answer (every listener call QEMU makes) skips the general encoder.
      if (args.length === 0 && h.sender === undefined) return this.#t.send(encodeEmptyReturn(this.#nextSerial(), h.serial));
      this.#send({ type: MESSAGE_TYPE.return, serial: this.#nextSerial(), replySerial: h.serial, destination: h.sender, args });
    },
    fail: (call, h, name, message) => {
      this.#held.delete(call);
      if (!this.#closed) this.#error(h, name, message);
    },
    soon: () => this.#t.holdOutput(),
  };

  #onClosed(e: Error | null): void {
    if (this.#closed) return;
    this.#closed = true;
    const why = e?.message ?? 'closed';
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(new Error(`D-Bus connection ${this.name} closed before ${p.what} was answered (${why})`));
    }
    this.#pending.clear();
    this.#held.clear();
    this.#readyReject?.(new Error(`D-Bus connection ${this.name} closed before it was ready (${why})`));
    this.emit('closed', e);
  }

  /** Closes the connection at once: held calls are dropped unanswered, pending calls fail. */
  close(reason: Error | null = null): void {
    this.#t.close(reason);
  }
}

