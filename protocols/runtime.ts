// Runtime of the generated protocol bindings (protocols/generated/*.ts): the wl_interface
// tables in native memory, resources, globals, clients, the display and its event loop.
//
// Dispatch: every resource this module creates gets the same wl_dispatcher_func_t (one
// koffi callback registered once per process) and the same destroy function. The
// dispatcher finds the JS resource by the wl_resource address, decodes the
// union wl_argument array by the message signature and calls the handler named in the
// generated class's request table. Events go out through wl_resource_post_event_array
// with the argument array built in a native scratch buffer.
import koffi from 'koffi';
import {
  type Pointer,
  addressOf,
  layoutOf,
  wl_array,
  wl_resource,
  wl_dispatcher_func_t,
  wl_resource_destroy_func_t,
  wl_global_bind_func_t,
  wl_notify_func_t,
  displayCreate,
  displayDestroy,
  displayDestroyClients,
  displayAddSocket,
  displayAddSocketAuto,
  displayAddSocketFd,
  displayGetEventLoop,
  displayFlushClients,
  displayNextSerial,
  displayGetSerial,
  eventLoopGetFd,
  eventLoopDispatch,
  driveEventLoop,
  type EventLoopDriver,
  globalCreate,
  globalDestroy,
  globalRemove,
  resourceCreate,
  resourceDestroy,
  resourceGetId,
  resourceSetDispatcher,
  resourcePostEventArray,
  resourcePostError,
  resourcePostNoMemory,
  clientCreate,
  clientDestroy,
  clientFlush,
  clientGetDisplay,
  clientGetCredentials,
  clientPostNoMemory,
  clientPostImplementationError,
  clientAddDestroyListener,
  type Credentials,
} from '../ffi/wayland.js';

// ---------------------------------------------------------------------------------------
// Native memory

interface Block {
  ptr: Pointer;
  address: bigint;
  buf: Buffer;
}
/** Memory that lives as long as the process (the tables, like C's static data). */
const permanent: Block[] = [];
function allocBlock(size: number, keep = true): Block {
  const ptr = koffi.alloc('uint8_t', Math.max(size, 8));
  const buf = Buffer.from(koffi.view(ptr, Math.max(size, 8)));
  buf.fill(0);
  const block = { ptr, address: koffi.address(ptr), buf };
  if (keep) permanent.push(block);
  return block;
}

const MSG = layoutOf('wl_message');
const IFACE = layoutOf('wl_interface');
const ARRAY = layoutOf('wl_array');
const LISTENER = layoutOf('wl_listener');
const PTR = 8;
const ARG = 8; // sizeof(union wl_argument)

// ---------------------------------------------------------------------------------------
// Protocol tables

export type SlotType = 'i' | 'u' | 'f' | 's' | 'o' | 'n' | 'a' | 'h';
export interface Slot {
  type: SlotType;
  nullable: boolean;
}
export interface MessageInfo {
  name: string;
  signature: string;
  since: number;
  /** One entry per union wl_argument (per signature letter). */
  slots: Slot[];
  /** Index into the protocol's types array (wayland-scanner's `<protocol>_types + N`). */
  typesIndex: number;
}
export interface ProtocolTables {
  name: string;
  /** Address and length of the native `const struct wl_interface *types[]`. */
  typesAddress: bigint;
  types: readonly (string | null)[];
}
/** One protocol interface: its native struct wl_interface and what the runtime needs of it. */
export interface WireInterface {
  readonly name: string;
  readonly version: number;
  /** const struct wl_interface * */
  readonly ptr: Pointer;
  readonly address: bigint;
  readonly requests: readonly MessageInfo[];
  readonly events: readonly MessageInfo[];
  readonly protocol: ProtocolTables;
}

/** [name, signature, typesIndex] */
export type MessageRow = readonly [string, string, number];
/** [name, version, requests, events] */
export type InterfaceRow = readonly [string, number, readonly MessageRow[], readonly MessageRow[]];
export interface ProtocolDescription {
  name: string;
  types: readonly (string | null)[];
  interfaces: readonly InterfaceRow[];
}

/** Parses a wl_message signature into its since version and argument slots. */
export function parseSignature(signature: string): { since: number; slots: Slot[] } {
  let i = 0;
  while (i < signature.length && signature[i]! >= '0' && signature[i]! <= '9') i++;
  const since = i > 0 ? Number(signature.slice(0, i)) : 1;
  const slots: Slot[] = [];
  let nullable = false;
  for (; i < signature.length; i++) {
    const ch = signature[i]!;
    if (ch === '?') {
      nullable = true;
      continue;
    }
    if (!'iufsonah'.includes(ch)) throw new Error(`bad signature ${signature}`);
    slots.push({ type: ch as SlotType, nullable });
    nullable = false;
  }
  return { since, slots };
}

/**
 * Builds a protocol's struct wl_interface / wl_message / types tables in native memory,
 * exactly as wayland-scanner's private-code lays them out. `externals` resolve interfaces
 * of other protocols named in `types`.
 */
export function defineProtocol(
  desc: ProtocolDescription,
  externals: readonly Readonly<Record<string, WireInterface>>[],
): { interfaces: Record<string, WireInterface> } {
  // Strings first: one pool for names and signatures.
  const strings = new Map<string, number>();
  let poolSize = 0;
  const addString = (s: string): void => {
    if (strings.has(s)) return;
    strings.set(s, poolSize);
    poolSize += Buffer.byteLength(s) + 1;
  };
  for (const [name, , reqs, evs] of desc.interfaces) {
    addString(name);
    for (const [n, sig] of [...reqs, ...evs]) {
      addString(n);
      addString(sig);
    }
  }
  const pool = allocBlock(poolSize);
  for (const [s, off] of strings) pool.buf.write(`${s}\0`, off, 'utf8');
  const str = (s: string): bigint => pool.address + BigInt(strings.get(s)!);

  // The layout is wayland-scanner's; the block is padded with NULLs so that a message
  // whose signature has more slots than its XML arguments (an untyped new_id is 'sun')
  // never reads past the end, as it can with the C tables.
  let typesEnd = desc.types.length;
  for (const [, , reqs, evs] of desc.interfaces) {
    for (const [, sig, idx] of [...reqs, ...evs]) typesEnd = Math.max(typesEnd, idx + parseSignature(sig).slots.length);
  }
  const typesBlock = allocBlock(PTR * typesEnd);
  const tables: ProtocolTables = { name: desc.name, typesAddress: typesBlock.address, types: desc.types };

  const interfaces: Record<string, WireInterface> = {};
  const blocks = new Map<string, Block>();
  for (const [name, version, reqs, evs] of desc.interfaces) {
    const block = allocBlock(IFACE.size);
    blocks.set(name, block);
    const info = (rows: readonly MessageRow[]): MessageInfo[] =>
      rows.map(([n, signature, typesIndex]) => ({ name: n, signature, typesIndex, ...parseSignature(signature) }));
    interfaces[name] = {
      name,
      version,
      ptr: block.ptr,
      address: block.address,
      requests: info(reqs),
      events: info(evs),
      protocol: tables,
    };
  }

  const resolveIface = (name: string): bigint => {
    const local = interfaces[name];
    if (local) return local.address;
    for (const ext of externals) {
      const e = ext[name];
      if (e) return e.address;
    }
    throw new Error(`protocol ${desc.name}: interface ${name} is not known (missing import?)`);
  };
  desc.types.forEach((t, i) => typesBlock.buf.writeBigUInt64LE(t === null ? 0n : resolveIface(t), PTR * i));

  const messages = (rows: readonly MessageRow[]): bigint => {
    if (rows.length === 0) return 0n;
    const b = allocBlock(MSG.size * rows.length);
    rows.forEach(([n, sig, typesIndex], i) => {
      const base = MSG.size * i;
      b.buf.writeBigUInt64LE(str(n), base + MSG.offsets['name']!);
      b.buf.writeBigUInt64LE(str(sig), base + MSG.offsets['signature']!);
      b.buf.writeBigUInt64LE(typesBlock.address + BigInt(PTR * typesIndex), base + MSG.offsets['types']!);
    });
    return b.address;
  };
  for (const [name, version, reqs, evs] of desc.interfaces) {
    const b = blocks.get(name)!.buf;
    b.writeBigUInt64LE(str(name), IFACE.offsets['name']!);
    b.writeInt32LE(version, IFACE.offsets['version']!);
    b.writeInt32LE(reqs.length, IFACE.offsets['method_count']!);
    b.writeBigUInt64LE(messages(reqs), IFACE.offsets['methods']!);
    b.writeInt32LE(evs.length, IFACE.offsets['event_count']!);
    b.writeBigUInt64LE(messages(evs), IFACE.offsets['events']!);
  }
  return { interfaces };
}

/** Reads a struct wl_interface back from native memory (for tests and diagnostics). */
export function readNativeInterface(address: bigint | Pointer): {
  name: string;
  version: number;
  requests: { name: string; signature: string; typesAddress: bigint; types: (string | null)[] }[];
  events: { name: string; signature: string; typesAddress: bigint; types: (string | null)[] }[];
} {
  const iface = typeof address === 'bigint' ? fromAddress(address) : address;
  const view = (p: Pointer, len: number) => Buffer.from(koffi.view(p, len));
  const ib = view(iface, IFACE.size);
  const cstr = (a: bigint): string => {
    addrCell.buf.writeBigUInt64LE(a, 0);
    return koffi.decode(addrCell.ptr, 0, 'const char *') as string;
  };
  const msgs = (countOff: string, ptrOff: string) => {
    const n = ib.readInt32LE(IFACE.offsets[countOff]!);
    const base = ib.readBigUInt64LE(IFACE.offsets[ptrOff]!);
    if (n === 0) return [];
    const mb = view(fromAddress(base), MSG.size * n);
    return Array.from({ length: n }, (_, i) => {
      const signature = cstr(mb.readBigUInt64LE(MSG.size * i + MSG.offsets['signature']!));
      const typesAddress = mb.readBigUInt64LE(MSG.size * i + MSG.offsets['types']!);
      const count = parseSignature(signature).slots.length;
      const tb = count ? view(fromAddress(typesAddress), PTR * count) : Buffer.alloc(0);
      const types = Array.from({ length: count }, (_, k) => {
        const t = tb.readBigUInt64LE(PTR * k);
        return t === 0n ? null : cstr(view(fromAddress(t), PTR).readBigUInt64LE(IFACE.offsets['name']!));
      });
      return { name: cstr(mb.readBigUInt64LE(MSG.size * i + MSG.offsets['name']!)), signature, typesAddress, types };
    });
  };
  return {
    name: cstr(ib.readBigUInt64LE(IFACE.offsets['name']!)),
    version: ib.readInt32LE(IFACE.offsets['version']!),
    requests: msgs('method_count', 'methods'),
    events: msgs('event_count', 'events'),
  };
}

// koffi has no "pointer from integer"; a one-pointer cell decoded as void * gives one.
const addrCell = allocBlock(PTR);
function fromAddress(a: bigint): Pointer {
  addrCell.buf.writeBigUInt64LE(a, 0);
  return koffi.decode(addrCell.ptr, 0, 'void *');
}

// ---------------------------------------------------------------------------------------
// wl_fixed_t (24.8), converted exactly as wayland-util.h does

const f64 = new Float64Array(1);
const i32 = new Int32Array(f64.buffer);
/** wl_fixed_from_double(): rounds to the nearest 1/256 (ties to even, as the C trick does). */
export function fixedFromDouble(d: number): number {
  f64[0] = d + 3 * 2 ** 43;
  return i32[0]!;
}
/** wl_fixed_to_double() */
export function fixedToDouble(f: number): number {
  return f / 256;
}

// ---------------------------------------------------------------------------------------
// Errors

/** Sending an event that the resource's version does not have. */
export class VersionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VersionError';
  }
}
/**
 * Thrown by a request handler to send a protocol error (wl_display.error with `code`) on
 * `resource` to its client, which libwayland then disconnects. Not reported as a bug.
 */
export class ProtocolViolation extends Error {
  readonly resource: Resource;
  readonly code: number;
  constructor(resource: Resource, code: number, message: string) {
    super(message);
    this.name = 'ProtocolViolation';
    this.resource = resource;
    this.code = code;
  }
}

// Errors thrown by handlers inside native callbacks; Display.dispatch() rethrows them.
let pendingErrors: unknown[] = [];
function takePendingErrors(): unknown[] {
  const e = pendingErrors;
  pendingErrors = [];
  return e;
}

// ---------------------------------------------------------------------------------------
// Process-wide callbacks (registered once, on first use)

let callbacks:
  | { dispatcher: Pointer; destroy: Pointer; bind: Pointer; clientDestroyed: Pointer; clientDestroyedAddress: bigint }
  | undefined;
function cb() {
  if (!callbacks) {
    const clientDestroyed = koffi.register(onClientDestroyed, koffi.pointer(wl_notify_func_t));
    callbacks = {
      dispatcher: koffi.register(onRequest, koffi.pointer(wl_dispatcher_func_t)),
      destroy: koffi.register(onResourceDestroyed, koffi.pointer(wl_resource_destroy_func_t)),
      bind: koffi.register(onBind, koffi.pointer(wl_global_bind_func_t)),
      clientDestroyed,
      clientDestroyedAddress: koffi.address(clientDestroyed),
    };
  }
  return callbacks;
}

const resources = new Map<bigint, Resource>();
const clients = new Map<bigint, Client>();
const displays = new Map<bigint, Display>();
const globals = new Map<bigint, Global<Resource>>();

function describe(r: Resource): string {
  return `${r.interfaceName}@${r.id}`;
}

function decodeArgs(res: Resource, msg: MessageInfo, spec: RequestSpec, args: Pointer): unknown[] {
  const out: unknown[] = [];
  msg.slots.forEach((slot, k) => {
    const off = ARG * k;
    switch (slot.type) {
      case 'i':
      case 'h':
        out.push(koffi.decode(args, off, 'int32_t'));
        break;
      case 'u':
        out.push(koffi.decode(args, off, 'uint32_t'));
        break;
      case 'f':
        out.push(fixedToDouble(koffi.decode(args, off, 'int32_t') as number));
        break;
      case 's':
        out.push(koffi.decode(args, off, 'const char *') ?? null);
        break;
      case 'o': {
        const p = koffi.decode(args, off, 'wl_resource *') as Pointer;
        out.push(p === null ? null : (resources.get(addressOf(p)) ?? foreignResource(p, res.client)));
        break;
      }
      case 'n': {
        const id = koffi.decode(args, off, 'uint32_t') as number;
        const cls = spec.newIds[k];
        // The new object inherits the parent's version, capped at its own interface's
        // (zwp_linux_buffer_params_v1 v4 makes wl_buffers, which only have version 1).
        const c = cls?.() as ResourceClass | undefined;
        out.push(c ? new NewId(c, res.client, id, Math.min(res.version, c.interface.version)) : id);
        break;
      }
      case 'a': {
        const p = koffi.decode(args, off, 'void *') as Pointer;
        if (p === null) {
          out.push(new Uint8Array(0));
          break;
        }
        const arr = koffi.decode(p, wl_array) as { size: number | bigint; data: Pointer };
        const size = Number(arr.size);
        out.push(size === 0 ? new Uint8Array(0) : new Uint8Array(koffi.view(arr.data, size).slice(0)));
        break;
      }
    }
  });
  return out;
}

function onRequest(_impl: Pointer, target: Pointer, opcode: number, _msg: Pointer, args: Pointer): number {
  const res = resources.get(addressOf(target));
  if (!res) return 0;
  const cls = res.constructor as ResourceClass;
  const spec = cls.requests[opcode];
  const msg = cls.interface.requests[opcode];
  try {
    if (!spec || !msg) throw new Error(`${describe(res)}: no request with opcode ${opcode}`);
    const values = decodeArgs(res, msg, spec, args);
    const handler = (res.handlers as Record<string, unknown>)[spec.handler];
    if (typeof handler === 'function') {
      (handler as (...a: unknown[]) => void).call(res.handlers, res, ...values);
    } else if (!spec.destructor) {
      throw new Error(`${describe(res)}.${spec.name}: no handler`);
    }
    if (spec.destructor && !res.destroyed) res.destroy();
  } catch (err) {
    if (err instanceof ProtocolViolation) {
      if (!err.resource.destroyed) resourcePostError(err.resource.ptr, err.code, err.message);
    } else {
      const what = `${describe(res)}.${spec?.name ?? opcode}`;
      pendingErrors.push(err instanceof Error ? Object.assign(err, { message: `${what}: ${err.message}` }) : err);
      if (!res.client.destroyed) clientPostImplementationError(res.client.ptr, `${what} failed in the compositor`);
    }
  }
  return 0;
}

function onResourceDestroyed(target: Pointer): void {
  const address = addressOf(target);
  const res = resources.get(address);
  if (!res) return;
  resources.delete(address);
  res._markDestroyed();
}

function onBind(client: Pointer, data: Pointer, version: number, id: number): void {
  const g = globals.get(addressOf(data));
  if (!g) return;
  const c = Client.from(client);
  try {
    g._bind(new NewId(g.cls, c, id, version));
  } catch (err) {
    pendingErrors.push(err);
    if (!c.destroyed) clientPostImplementationError(c.ptr, `binding ${g.cls.interface.name} failed in the compositor`);
  }
}

function onClientDestroyed(listener: Pointer, _data: Pointer): void {
  const address = addressOf(listener);
  for (const c of clients.values()) {
    if (c._listener.address === address) {
      c._markDestroyed();
      return;
    }
  }
}

// ---------------------------------------------------------------------------------------
// Client

/** A connected client (struct wl_client). One JS object per client, for its lifetime. */
export class Client {
  readonly ptr: Pointer;
  readonly address: bigint;
  /** @internal the wl_listener that tells us the client is gone */
  readonly _listener: Block;
  readonly #display: Display | undefined;
  #destroyed = false;
  #onDestroy: (() => void)[] = [];

  private constructor(ptr: Pointer) {
    this.ptr = ptr;
    this.address = addressOf(ptr);
    this.#display = displays.get(addressOf(clientGetDisplay(ptr)));
    this._listener = allocBlock(LISTENER.size, false);
    this._listener.buf.writeBigUInt64LE(cb().clientDestroyedAddress, LISTENER.offsets['notify']!);
    clientAddDestroyListener(ptr, this._listener.ptr);
  }

  /** The JS object for a struct wl_client *. */
  static from(ptr: Pointer): Client {
    const address = addressOf(ptr);
    let c = clients.get(address);
    if (!c) {
      c = new Client(ptr);
      clients.set(address, c);
    }
    return c;
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }
  /** The display this client is connected to (when it was made by this module). */
  get display(): Display | undefined {
    return this.#destroyed ? undefined : this.#display;
  }
  credentials(): Credentials {
    this.#alive('credentials');
    return clientGetCredentials(this.ptr);
  }
  flush(): void {
    if (!this.#destroyed) clientFlush(this.ptr);
  }
  postNoMemory(): void {
    if (!this.#destroyed) clientPostNoMemory(this.ptr);
  }
  /** wl_display.error(implementation): the compositor failed; the client is disconnected. */
  postImplementationError(message: string): void {
    if (!this.#destroyed) clientPostImplementationError(this.ptr, message);
  }
  /** Disconnects the client (wl_client_destroy). */
  destroy(): void {
    if (!this.#destroyed) clientDestroy(this.ptr);
  }
  onDestroy(listener: () => void): void {
    this.#onDestroy.push(listener);
  }
  #alive(what: string): void {
    if (this.#destroyed) throw new Error(`client ${this.address.toString(16)}: ${what} after the client was destroyed`);
  }
  /** @internal */
  _markDestroyed(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    clients.delete(this.address);
    // libwayland unlinked the listener before notifying; free it once we are off its stack.
    const block = this._listener;
    setImmediate(() => koffi.free(block.ptr));
    for (const l of this.#onDestroy) {
      try {
        l();
      } catch (err) {
        pendingErrors.push(err);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// Resources

/** Entry of a generated class's request table, by opcode. */
export interface RequestSpec {
  name: string;
  /** Method of the handlers object. */
  handler: string;
  destructor: boolean;
  /** Classes of the typed new_id arguments, by argument slot. */
  newIds: Readonly<Record<number, () => AnyResourceClass>>;
}

export interface ResourceInit {
  ptr: Pointer;
  address: bigint;
  id: number;
  version: number;
  client: Client;
  interfaceName: string;
}

/** Any generated resource class (its handlers type erased). */
export interface AnyResourceClass {
  readonly interface: WireInterface;
  readonly requests: readonly RequestSpec[];
  new (init: ResourceInit, handlers: never): Resource;
}

export type HandlersOf<R> = R extends Resource<infer H> ? H : never;

/** What every generated resource class has on its static side. */
export interface ResourceClass<R extends Resource = Resource> {
  readonly interface: WireInterface;
  readonly requests: readonly RequestSpec[];
  new (init: ResourceInit, handlers: HandlersOf<R>): R;
}

/**
 * A struct wl_resource made by this module (or, for an object argument this module did
 * not create, a plain wrapper of it). Generated classes add the typed event senders.
 */
export class Resource<H extends object = object> {
  readonly ptr: Pointer;
  readonly address: bigint;
  readonly id: number;
  readonly version: number;
  readonly client: Client;
  readonly interfaceName: string;
  /** The request handlers; may be replaced at any time. */
  handlers: H;
  /** Free for the compositor's own use. */
  data: unknown;
  #destroyed = false;
  #onDestroy: (() => void)[] = [];

  constructor(init: ResourceInit, handlers: H) {
    this.ptr = init.ptr;
    this.address = init.address;
    this.id = init.id;
    this.version = init.version;
    this.client = init.client;
    this.interfaceName = init.interfaceName;
    this.handlers = handlers;
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }
  /** Destroys the resource (wl_resource_destroy); destroy listeners run before this returns. */
  destroy(): void {
    if (!this.#destroyed) resourceDestroy(this.ptr);
  }
  /** Runs when the resource goes away: destroy(), a destructor request, or the client leaving. */
  onDestroy(listener: () => void): void {
    this.#onDestroy.push(listener);
  }
  /** Sends wl_display.error with `code` (an error enum of this interface) and disconnects the client. */
  postError(code: number, message: string): void {
    this.#alive('postError');
    resourcePostError(this.ptr, code, message);
  }
  postNoMemory(): void {
    this.#alive('postNoMemory');
    resourcePostNoMemory(this.ptr);
  }
  toString(): string {
    return describe(this);
  }

  #alive(what: string): void {
    if (this.#destroyed) throw new Error(`${describe(this)}: ${what} after the resource was destroyed`);
  }

  /** Sends event `opcode` with one value per signature slot (generated senders call this). */
  protected postEvent(opcode: number, values: readonly unknown[]): void {
    const cls = this.constructor as ResourceClass;
    const msg = cls.interface.events[opcode];
    if (!msg) throw new RangeError(`${describe(this)}: no event with opcode ${opcode}`);
    const what = `${describe(this)}.${msg.name}`;
    if (this.#destroyed) throw new Error(`${what}: the resource was destroyed`);
    if (msg.since > this.version) {
      throw new VersionError(`${what} needs version ${msg.since}; the client bound version ${this.version}`);
    }
    resourcePostEventArray(this.ptr, opcode, marshal(this, msg, values, what));
    const d = this.client.display;
    if (d) d._scheduleFlush();
  }

  /** @internal */
  _markDestroyed(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    for (const l of this.#onDestroy) {
      try {
        l();
      } catch (err) {
        pendingErrors.push(err);
      }
    }
  }
}

function foreignResource(ptr: Pointer, client: Client): Resource {
  // An object the runtime did not create (libwayland's own, or another library's).
  return new Resource(
    { ptr, address: addressOf(ptr), id: resourceGetId(ptr), version: 0, client, interfaceName: 'unknown' },
    {},
  );
}

// Scratch memory for outgoing argument arrays: wl_resource_post_event_array copies
// everything into the connection buffer before it returns, so one buffer serves all.
let scratch = allocBlock(4096, false);
function ensureScratch(size: number): Block {
  if (scratch.buf.length < size) {
    koffi.free(scratch.ptr);
    scratch = allocBlock(Math.max(size, scratch.buf.length * 2), false);
  }
  return scratch;
}
const align8 = (n: number): number => (n + 7) & ~7;

function marshal(res: Resource, msg: MessageInfo, values: readonly unknown[], what: string): Pointer {
  if (values.length !== msg.slots.length) {
    throw new TypeError(`${what}: ${values.length} values for signature '${msg.signature}'`);
  }
  let size = ARG * msg.slots.length;
  const bytes: (Buffer | Uint8Array | null)[] = [];
  msg.slots.forEach((slot, k) => {
    const v = values[k];
    if (slot.type === 's') {
      if (v === null || v === undefined) {
        if (!slot.nullable) throw new TypeError(`${what}: argument ${k} must be a string, not ${v}`);
        bytes.push(null);
        return;
      }
      if (typeof v !== 'string') throw new TypeError(`${what}: argument ${k} must be a string`);
      if (v.includes('\0')) throw new TypeError(`${what}: argument ${k} contains a NUL character`);
      const b = Buffer.from(`${v}\0`, 'utf8');
      bytes.push(b);
      size += align8(b.length);
    } else if (slot.type === 'a') {
      if (!(v instanceof Uint8Array)) throw new TypeError(`${what}: argument ${k} must be a Uint8Array`);
      bytes.push(v);
      size += ARRAY.size + align8(v.length);
    } else {
      bytes.push(null);
    }
  });
  const s = ensureScratch(size);
  const buf = s.buf;
  let tail = ARG * msg.slots.length;
  msg.slots.forEach((slot, k) => {
    const v = values[k];
    const off = ARG * k;
    buf.writeBigUInt64LE(0n, off);
    switch (slot.type) {
      case 'i':
      case 'h':
        if (typeof v !== 'number' || !Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) {
          throw new TypeError(`${what}: argument ${k} must be an int32, not ${String(v)}`);
        }
        buf.writeInt32LE(v, off);
        break;
      case 'u':
        // Negative int32 values are accepted as their uint32 bits: JS's `|` on flags with
        // bit 31 set (a bitfield enum's top entry) yields a negative number.
        if (typeof v !== 'number' || !Number.isInteger(v) || v < -0x80000000 || v > 0xffffffff) {
          throw new TypeError(`${what}: argument ${k} must be a uint32, not ${String(v)}`);
        }
        buf.writeUInt32LE(v >>> 0, off);
        break;
      case 'f':
        if (typeof v !== 'number' || !Number.isFinite(v)) throw new TypeError(`${what}: argument ${k} must be a number`);
        buf.writeInt32LE(fixedFromDouble(v), off);
        break;
      case 's': {
        const b = bytes[k];
        if (b) {
          buf.set(b, tail);
          buf.writeBigUInt64LE(s.address + BigInt(tail), off);
          tail += align8(b.length);
        }
        break;
      }
      case 'o':
      case 'n': {
        // Server side, a new_id event argument is the already created resource.
        if (v === null || v === undefined) {
          if (!slot.nullable) throw new TypeError(`${what}: argument ${k} must be a resource, not ${v}`);
          break;
        }
        if (!(v instanceof Resource)) throw new TypeError(`${what}: argument ${k} must be a Resource`);
        if (v.destroyed) throw new Error(`${what}: argument ${k} (${describe(v)}) was destroyed`);
        if (v.client !== res.client) throw new Error(`${what}: argument ${k} (${describe(v)}) belongs to another client`);
        buf.writeBigUInt64LE(v.address, off);
        break;
      }
      case 'a': {
        const b = bytes[k]!;
        const arrOff = tail;
        tail += ARRAY.size;
        buf.writeBigUInt64LE(BigInt(b.length), arrOff + ARRAY.offsets['size']!);
        buf.writeBigUInt64LE(BigInt(b.length), arrOff + ARRAY.offsets['alloc']!);
        buf.writeBigUInt64LE(b.length ? s.address + BigInt(tail) : 0n, arrOff + ARRAY.offsets['data']!);
        buf.set(b, tail);
        tail += align8(b.length);
        buf.writeBigUInt64LE(s.address + BigInt(arrOff), off);
        break;
      }
    }
  });
  return s.ptr;
}

/** Creates a resource of class `cls` for `client` and routes its requests to `handlers`. */
export function createResource<R extends Resource>(
  cls: ResourceClass<R>,
  client: Client,
  version: number,
  id: number,
  handlers: HandlersOf<R>,
): R {
  const iface = cls.interface;
  if (client.destroyed) throw new Error(`${iface.name}@${id}: the client was destroyed`);
  if (!Number.isInteger(version) || version < 1 || version > iface.version) {
    throw new RangeError(`${iface.name}@${id}: version ${version} is not within 1..${iface.version}`);
  }
  const ptr = resourceCreate(client.ptr, iface.ptr, version, id, iface.name);
  const { dispatcher, destroy } = cb();
  resourceSetDispatcher(ptr, dispatcher, null, null, destroy);
  const address = addressOf(ptr);
  const r = new cls({ ptr, address, id: resourceGetId(ptr), version, client, interfaceName: iface.name }, handlers);
  resources.set(address, r);
  return r;
}

/** A new_id argument (or a bind): the id the client chose, for `create()` to take. */
export class NewId<R extends Resource> {
  readonly cls: ResourceClass<R>;
  readonly client: Client;
  readonly id: number;
  /** Version of the new object: the parent's capped at its interface's (for a bind, the one the client asked for). */
  readonly version: number;
  constructor(cls: ResourceClass<R>, client: Client, id: number, version: number) {
    this.cls = cls;
    this.client = client;
    this.id = id;
    this.version = version;
  }
  create(handlers: HandlersOf<R>): R {
    return createResource(this.cls, this.client, this.version, this.id, handlers);
  }
}

// ---------------------------------------------------------------------------------------
// Globals

export class Global<R extends Resource> {
  readonly ptr: Pointer;
  readonly cls: ResourceClass<R>;
  readonly version: number;
  readonly display: Display;
  #bind: (id: NewId<R>) => void;
  #token: Block;
  #destroyed = false;

  /** @internal use the generated `Class.global(display, version, bind)` */
  constructor(cls: ResourceClass<R>, display: Display, version: number, bind: (id: NewId<R>) => void) {
    if (!Number.isInteger(version) || version < 1 || version > cls.interface.version) {
      throw new RangeError(`${cls.interface.name}: global version ${version} is not within 1..${cls.interface.version}`);
    }
    this.cls = cls;
    this.display = display;
    this.version = version;
    this.#bind = bind;
    this.#token = allocBlock(8, false);
    this.ptr = globalCreate(display.ptr, cls.interface.ptr, version, this.#token.ptr, cb().bind, cls.interface.name);
    globals.set(this.#token.address, this as unknown as Global<Resource>);
    display._globals.add(this as unknown as Global<Resource>);
  }
  get destroyed(): boolean {
    return this.#destroyed;
  }
  /** Withdraws the global from the registry; destroy it a little later (see wl_global_remove). */
  remove(): void {
    if (!this.#destroyed) globalRemove(this.ptr);
  }
  destroy(): void {
    if (this.#destroyed) return;
    globalDestroy(this.ptr);
    this._forget();
  }
  /** @internal */
  _forget(): void {
    this.#destroyed = true;
    globals.delete(this.#token.address);
    this.display._globals.delete(this as unknown as Global<Resource>);
    koffi.free(this.#token.ptr);
  }
  /** @internal */
  _bind(id: NewId<R>): void {
    this.#bind(id);
  }
}

export function createGlobal<R extends Resource>(
  cls: ResourceClass<R>,
  display: Display,
  version: number,
  bind: (id: NewId<R>) => void,
): Global<R> {
  return new Global(cls, display, version, bind);
}

// ---------------------------------------------------------------------------------------
// Display

export interface StartOptions {
  /** Errors of request handlers and of the loop; default: rethrown (uncaught). */
  onError?: (err: unknown) => void;
}

/** A wl_display, run inside the Node event loop. */
export class Display {
  readonly ptr: Pointer;
  readonly address: bigint;
  /** struct wl_event_loop * */
  readonly loop: Pointer;
  /** @internal */
  readonly _globals = new Set<Global<Resource>>();
  #driver: EventLoopDriver | undefined;
  #destroyed = false;
  #flushScheduled = false;

  private constructor() {
    this.ptr = displayCreate();
    this.address = addressOf(this.ptr);
    this.loop = displayGetEventLoop(this.ptr);
    displays.set(this.address, this);
  }
  static create(): Display {
    return new Display();
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }
  /** The event loop's epoll fd: readable when dispatch() has work. */
  get fd(): number {
    return eventLoopGetFd(this.loop);
  }
  /** Listens on $XDG_RUNTIME_DIR/`name`. */
  addSocket(name: string): void {
    displayAddSocket(this.ptr, name);
  }
  /** Listens on the first free $XDG_RUNTIME_DIR/wayland-N; returns the name. */
  addSocketAuto(): string {
    return displayAddSocketAuto(this.ptr);
  }
  addSocketFd(fd: number): void {
    displayAddSocketFd(this.ptr, fd);
  }
  /** Makes a client of one end of a connected socket pair (the display owns `fd`). */
  createClient(fd: number): Client {
    return Client.from(clientCreate(this.ptr, fd));
  }
  nextSerial(): number {
    return displayNextSerial(this.ptr);
  }
  get serial(): number {
    return displayGetSerial(this.ptr);
  }

  /**
   * Dispatches whatever is ready without blocking (timeout 0), then flushes the clients.
   * Throws the first error a request handler threw meanwhile.
   */
  dispatch(): void {
    this.#alive('dispatch');
    eventLoopDispatch(this.loop, 0);
    displayFlushClients(this.ptr);
    const errs = takePendingErrors();
    if (errs.length === 1) throw errs[0];
    if (errs.length > 1) throw new AggregateError(errs, `${errs.length} errors in Wayland request handlers`);
  }
  flush(): void {
    if (!this.#destroyed) displayFlushClients(this.ptr);
  }
  /** @internal events sent outside dispatch() go out on the next turn of the Node loop. */
  _scheduleFlush(): void {
    if (this.#flushScheduled || this.#destroyed) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      this.flush();
    });
  }

  /** Serves clients from the Node event loop (never blocking it) until stop() or destroy(). */
  start(opts: StartOptions = {}): void {
    this.#alive('start');
    if (this.#driver?.running) return;
    const onError =
      opts.onError ??
      ((err: unknown) => {
        queueMicrotask(() => {
          throw err;
        });
      });
    this.#driver = driveEventLoop(this.loop, () => this.dispatch(), onError);
  }
  get running(): boolean {
    return this.#driver?.running ?? false;
  }
  /** Stops serving; resolves once the background poll has returned. */
  stop(): Promise<void> {
    const d = this.#driver;
    if (!d) return Promise.resolve();
    d.stop();
    return d.stopped;
  }
  /** Stops serving, disconnects every client (destroy listeners run) and frees the display. */
  destroy(): void {
    if (this.#destroyed) return;
    this.#driver?.stop();
    // Clients first, while the display is whole: their destroy listeners may still send
    // events to the client's other objects (a surface going releases its buffers).
    // wl_display_destroy alone frees the display under live clients, and the next event
    // such a listener sent read the freed display (a crash, seen with weston clients).
    displayDestroyClients(this.ptr);
    this.#destroyed = true;
    displayDestroy(this.ptr);
    for (const g of [...this._globals]) g._forget();
    displays.delete(this.address);
    const errs = takePendingErrors();
    if (errs.length) throw errs.length === 1 ? errs[0] : new AggregateError(errs, 'errors while destroying the display');
  }
  #alive(what: string): void {
    if (this.#destroyed) throw new Error(`display: ${what} after destroy()`);
  }
}

// Referenced so a bundler keeps the opaque type registered for koffi.decode('wl_resource *').
void wl_resource;
