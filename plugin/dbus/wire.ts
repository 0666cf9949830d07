// The D-Bus wire format (the specification's "Message Protocol"): type signatures, the
// marshalling of values, and message headers, in both byte orders. Pure: bytes in, values
// out. Everything read here may come from a hostile peer (QEMU runs next to a guest), so
// every length, offset, signature, nesting depth and fd index is checked against the
// message and against WireLimits before it is used, and the work one message can cause is
// bounded (maxValues): a body whose signature does not fit the method is never decoded at
// all (the connection checks the header's signature first).
//
// Our own code, not sd-bus: libsystemd kept the fds of a message it dropped as invalid
// (a header that declares fewer fds than arrived), decoded bodies through one foreign
// call per value, and blocked in sd_bus_flush() while a peer had not finished
// authenticating.

/** A unix fd received in a message: the connection's until a handler takes it. */
export class DbusFd {
  constructor(public fd: number) {}
}

/** A value read from a message. 'h' is a DbusFd; 'ay' a Buffer (the message's own memory). */
export type DbusValue = number | bigint | string | boolean | Buffer | DbusFd | DbusValue[] | Map<DbusValue, DbusValue>;

/** An argument to send: its D-Bus type and value. */
export type DbusArg =
  | { type: 'y' | 'n' | 'q' | 'i' | 'u'; value: number }
  | { type: 'b'; value: boolean }
  | { type: 'x' | 't'; value: bigint }
  | { type: 'd'; value: number }
  | { type: 's' | 'o' | 'g'; value: string }
  /** The fd stays the caller's: a duplicate is sent. */
  | { type: 'h'; value: number }
  | { type: 'ay'; value: Uint8Array }
  | { type: 'as'; value: readonly string[] }
  | { type: 'v'; value: DbusArg }
  | { type: 'a{sv}'; value: ReadonlyMap<string, DbusArg> };

export class DbusWireError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DbusWireError';
  }
}

/** Bounds on what one message may make us hold or do. */
export interface WireLimits {
  /** Header + body bytes (the specification allows 128 MiB). */
  maxMessageBytes: number;
  /** Unix fds one message may carry. */
  maxFds: number;
  /** Values decoded from one body (a byte array counts as one). */
  maxValues: number;
}

export const SPEC_MAX_MESSAGE = 128 * 1024 * 1024;
const SPEC_MAX_ARRAY = 64 * 1024 * 1024;
const MAX_DEPTH = 64;

export const MESSAGE_TYPE = { call: 1, return: 2, error: 3, signal: 4 } as const;
export const FLAG_NO_REPLY_EXPECTED = 0x1;
export const FIELD = { path: 1, interface: 2, member: 3, errorName: 4, replySerial: 5, destination: 6, sender: 7, signature: 8, unixFds: 9 } as const;

// --- signatures ---

export type DbusType =
  | { code: 'y' | 'b' | 'n' | 'q' | 'i' | 'u' | 'x' | 't' | 'd' | 'h' | 's' | 'o' | 'g' | 'v' }
  | { code: 'a'; elem: DbusType }
  | { code: '('; fields: DbusType[] }
  | { code: '{'; key: DbusType; value: DbusType };

const BASIC = 'ybnqiuxtdhsog';
const ALIGN: Record<string, number> = { y: 1, b: 4, n: 2, q: 2, i: 4, u: 4, x: 8, t: 8, d: 8, h: 4, s: 4, o: 4, g: 1, v: 1, a: 4, '(': 8, '{': 8 };
const FIXED_SIZE: Record<string, number> = { y: 1, b: 4, n: 2, q: 2, i: 4, u: 4, x: 8, t: 8, d: 8, h: 4 };

const parsed = new Map<string, DbusType[]>();

/** Parses a signature into its complete types; throws DbusWireError on an invalid one. */
export function parseSignature(sig: string): DbusType[] {
  const hit = parsed.get(sig);
  if (hit) return hit;
  if (sig.length > 255) throw new DbusWireError(`signature of ${sig.length} characters (at most 255)`);
  const out: DbusType[] = [];
  let i = 0;
  const one = (arrays: number, structs: number): DbusType => {
    const c = sig[i++];
    if (c === undefined) throw new DbusWireError(`signature '${sig}' ends inside a type`);
    if (BASIC.includes(c) || c === 'v') return { code: c as 'y' };
    if (c === 'a') {
      if (arrays >= 32) throw new DbusWireError(`signature '${sig}' nests arrays deeper than 32`);
      if (sig[i] === '{') {
        i++;
        const key = one(arrays + 1, structs + 1);
        if (!BASIC.includes(key.code)) throw new DbusWireError(`signature '${sig}': a dict key must be a basic type`);
        const value = one(arrays + 1, structs + 1);
        if (sig[i++] !== '}') throw new DbusWireError(`signature '${sig}': a dict entry has exactly two types`);
        return { code: 'a', elem: { code: '{', key, value } };
      }
      return { code: 'a', elem: one(arrays + 1, structs) };
    }
    if (c === '(') {
      if (structs >= 32) throw new DbusWireError(`signature '${sig}' nests structs deeper than 32`);
      const fields: DbusType[] = [];
      while (sig[i] !== ')') {
        if (i >= sig.length) throw new DbusWireError(`signature '${sig}' has an unclosed struct`);
        fields.push(one(arrays, structs + 1));
      }
      i++;
      if (fields.length === 0) throw new DbusWireError(`signature '${sig}' has an empty struct`);
      return { code: '(', fields };
    }
    throw new DbusWireError(`signature '${sig}' has '${c}' where a type belongs`);
  };
  while (i < sig.length) out.push(one(0, 0));
  if (parsed.size < 512) parsed.set(sig, out);
  return out;
}

// --- writing ---

/** A growing little-endian buffer; offsets are from the message start (alignment). */
export class WireWriter {
  buf = Buffer.alloc(256);
  len = 0;
  /** Fds to send with the message (the caller's; the connection dups them when queueing). */
  readonly fds: number[] = [];

  #room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const b = Buffer.alloc(size);
    this.buf.copy(b, 0, 0, this.len);
    this.buf = b;
  }

  align(n: number): void {
    const pad = (n - (this.len % n)) % n;
    this.#room(pad);
    this.buf.fill(0, this.len, this.len + pad);
    this.len += pad;
  }

  u8(v: number): void {
    this.#room(1);
    this.buf.writeUInt8(v & 0xff, this.len);
    this.len += 1;
  }

  u32(v: number): void {
    this.align(4);
    this.#room(4);
    this.buf.writeUInt32LE(v >>> 0, this.len);
    this.len += 4;
  }

  bytes(b: Uint8Array): void {
    this.#room(b.byteLength);
    this.buf.set(b, this.len);
    this.len += b.byteLength;
  }

  string(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u32(b.length);
    this.bytes(b);
    this.u8(0);
  }

  signature(s: string): void {
    const b = Buffer.from(s, 'latin1');
    this.u8(b.length);
    this.bytes(b);
    this.u8(0);
  }

  /** A fixed-size number, already aligned. */
  #fixed(code: string, v: unknown): void {
    const size = FIXED_SIZE[code]!;
    this.#room(size);
    const at = this.len;
    this.len += size;
    switch (code) {
      case 'y':
        return void this.buf.writeUInt8(num(v) & 0xff, at);
      case 'b':
        return void this.buf.writeUInt32LE(v === true ? 1 : 0, at);
      case 'n':
        return void this.buf.writeInt16LE(num(v), at);
      case 'q':
        return void this.buf.writeUInt16LE(num(v), at);
      case 'i':
        return void this.buf.writeInt32LE(num(v), at);
      case 'u':
        return void this.buf.writeUInt32LE(num(v) >>> 0, at);
      case 'x':
        return void this.buf.writeBigInt64LE(BigInt(v as bigint), at);
      case 't':
        return void this.buf.writeBigUInt64LE(BigInt(v as bigint), at);
      case 'd':
        return void this.buf.writeDoubleLE(num(v), at);
    }
  }

  value(t: DbusType, v: unknown): void {
    this.align(ALIGN[t.code]!);
    if (t.code !== 'h' && FIXED_SIZE[t.code] !== undefined) return this.#fixed(t.code, v);
    switch (t.code) {
      case 'h':
        this.fds.push(num(v));
        return this.u32(this.fds.length - 1);
      case 's':
      case 'o':
        return this.string(String(v));
      case 'g':
        return this.signature(String(v));
      case 'v': {
        const a = v as DbusArg;
        const inner = parseSignature(a.type);
        if (inner.length !== 1) throw new DbusWireError(`a variant holds one complete type, not '${a.type}'`);
        this.signature(a.type);
        return this.value(inner[0]!, a.value);
      }
      case 'a': {
        this.u32(0);
        const lenAt = this.len - 4;
        this.align(ALIGN[t.elem.code]!);
        const start = this.len;
        if (t.elem.code === 'y' && v instanceof Uint8Array) this.bytes(v);
        else {
          const items: Iterable<unknown> = v instanceof Map ? [...v.entries()] : (v as Iterable<unknown>);
          for (const item of items) this.value(t.elem, item);
        }
        const n = this.len - start;
        if (n > SPEC_MAX_ARRAY) throw new DbusWireError(`array of ${n} bytes (at most ${SPEC_MAX_ARRAY})`);
        this.buf.writeUInt32LE(n, lenAt);
        return;
      }
      case '(': {
        const list = v as unknown[];
        t.fields.forEach((f, i) => this.value(f, list[i]));
        return;
      }
      case '{': {
        const [k, val] = v as [unknown, unknown];
        this.value(t.key, k);
        this.value(t.value, val);
        return;
      }
    }
  }
}

function num(v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new DbusWireError(`${String(v)} is not a number`);
  return v;
}

/** The signature of a list of arguments. */
export function signatureOf(args: readonly DbusArg[]): string {
  return args.map((a) => a.type).join('');
}

export interface OutgoingMessage {
  type: number;
  flags?: number;
  serial: number;
  path?: string;
  interface?: string;
  member?: string;
  errorName?: string;
  replySerial?: number;
  destination?: string;
  args?: readonly DbusArg[];
}

/** Encodes a message (little-endian). `fds` are the caller's fds the 'h' arguments name. */
export function encodeMessage(m: OutgoingMessage): { bytes: Buffer; fds: number[] } {
  const args = m.args ?? [];
  const sig = signatureOf(args);
  const body = new WireWriter();
  const types = parseSignature(sig);
  types.forEach((t, i) => body.value(t, args[i]!.value));

  const h = new WireWriter();
  h.u8(0x6c); // 'l'
  h.u8(m.type);
  h.u8(m.flags ?? 0);
  h.u8(1);
  h.u32(body.len);
  h.u32(m.serial);
  h.u32(0);
  const fieldsAt = h.len;
  const field = (code: number, t: 'o' | 's' | 'u' | 'g', v: string | number) => {
    h.align(8);
    h.u8(code);
    h.signature(t);
    h.value({ code: t }, v);
  };
  if (m.path !== undefined) field(FIELD.path, 'o', m.path);
  if (m.interface !== undefined) field(FIELD.interface, 's', m.interface);
  if (m.member !== undefined) field(FIELD.member, 's', m.member);
  if (m.errorName !== undefined) field(FIELD.errorName, 's', m.errorName);
  if (m.replySerial !== undefined) field(FIELD.replySerial, 'u', m.replySerial);
  if (m.destination !== undefined) field(FIELD.destination, 's', m.destination);
  if (sig) field(FIELD.signature, 'g', sig);
  if (body.fds.length) field(FIELD.unixFds, 'u', body.fds.length);
  h.buf.writeUInt32LE(h.len - fieldsAt, fieldsAt - 4);
  h.align(8);
  const total = h.len + body.len;
  if (total > SPEC_MAX_MESSAGE) throw new DbusWireError(`message of ${total} bytes (at most ${SPEC_MAX_MESSAGE})`);
  const bytes = Buffer.allocUnsafe(total);
  h.buf.copy(bytes, 0, 0, h.len);
  body.buf.copy(bytes, h.len, 0, body.len);
  return { bytes, fds: body.fds };
}

// --- reading ---

export interface MessageHeader {
  littleEndian: boolean;
  type: number;
  flags: number;
  serial: number;
  bodyLength: number;
  /** Where the body starts in the message's bytes (8-aligned). */
  bodyOffset: number;
  path?: string;
  interface?: string;
  member?: string;
  errorName?: string;
  replySerial?: number;
  destination?: string;
  sender?: string;
  signature: string;
  unixFds: number;
}

/**
 * The total size of the message starting at `b[0]` once 16 bytes are there (null before),
 * checked against the limit: a peer announcing more is refused before we buffer it.
 */
export function messageLength(b: Buffer, limits: Pick<WireLimits, 'maxMessageBytes'>): number | null {
  if (b.length < 16) return null;
  const le = b[0] === 0x6c;
  if (!le && b[0] !== 0x42) throw new DbusWireError(`byte order mark 0x${b[0]!.toString(16)} is neither 'l' nor 'B': not a D-Bus message`);
  if (b[3] !== 1) throw new DbusWireError(`protocol version ${b[3]} (only 1 exists)`);
  const body = le ? b.readUInt32LE(4) : b.readUInt32BE(4);
  const fields = le ? b.readUInt32LE(12) : b.readUInt32BE(12);
  const total = 16 + fields + ((8 - (fields % 8)) % 8) + body;
  if (total > limits.maxMessageBytes) throw new DbusWireError(`message of ${total} bytes announced (at most ${limits.maxMessageBytes})`);
  return total;
}

/** Reads values of known types from one message; every read is bounds-checked. */
export class WireReader {
  pos: number;
  #values = 0;
  #depth = 0;

  constructor(
    readonly b: Buffer,
    readonly le: boolean,
    start: number,
    readonly end: number,
    readonly fds: DbusFd[],
    readonly maxValues: number,
  ) {
    this.pos = start;
  }

  #need(n: number, what: string): void {
    if (n < 0 || this.pos + n > this.end) throw new DbusWireError(`${what} runs past the end of the message`);
  }

  align(n: number): void {
    const p = this.pos + ((n - (this.pos % n)) % n);
    if (p > this.end) throw new DbusWireError('padding runs past the end of the message');
    for (let i = this.pos; i < p; i++) if (this.b[i] !== 0) throw new DbusWireError('non-zero padding');
    this.pos = p;
  }

  u8(): number {
    this.#need(1, 'a byte');
    return this.b[this.pos++]!;
  }

  u32(): number {
    this.align(4);
    this.#need(4, 'a uint32');
    const v = this.le ? this.b.readUInt32LE(this.pos) : this.b.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  string(what: string): string {
    const n = this.u32();
    this.#need(n + 1, what);
    if (this.b[this.pos + n] !== 0) throw new DbusWireError(`${what} is not NUL-terminated`);
    const s = this.b.toString('utf8', this.pos, this.pos + n);
    this.pos += n + 1;
    return s;
  }

  signature(): string {
    const n = this.u8();
    this.#need(n + 1, 'a signature');
    if (this.b[this.pos + n] !== 0) throw new DbusWireError('a signature is not NUL-terminated');
    const s = this.b.toString('latin1', this.pos, this.pos + n);
    this.pos += n + 1;
    return s;
  }

  value(t: DbusType): DbusValue {
    if (++this.#values > this.maxValues) throw new DbusWireError(`more than ${this.maxValues} values in one message`);
    this.align(ALIGN[t.code]!);
    if (FIXED_SIZE[t.code] !== undefined) return this.#fixed(t.code);
    switch (t.code) {
      case 's':
      case 'o':
        return this.string(t.code === 's' ? 'a string' : 'an object path');
      case 'g':
        return this.signature();
      case 'v': {
        const sig = this.signature();
        const inner = parseSignature(sig);
        if (inner.length !== 1) throw new DbusWireError(`a variant's signature '${sig}' is not one complete type`);
        return this.#nested(() => this.value(inner[0]!));
      }
      case 'a': {
        const n = this.u32();
        if (n > SPEC_MAX_ARRAY) throw new DbusWireError(`array of ${n} bytes (at most ${SPEC_MAX_ARRAY})`);
        this.align(ALIGN[t.elem.code]!);
        this.#need(n, `an array of ${n} bytes`);
        const end = this.pos + n;
        if (t.elem.code === 'y') {
          const v = this.b.subarray(this.pos, end);
          this.pos = end;
          return v;
        }
        return this.#nested(() => {
          if (t.elem.code === '{') {
            const map = new Map<DbusValue, DbusValue>();
            while (this.pos < end) {
              const [k, v] = this.value(t.elem) as DbusValue[];
              map.set(k!, v!);
            }
            if (this.pos !== end) throw new DbusWireError('an array element runs past the array');
            return map;
          }
          const list: DbusValue[] = [];
          const fixed = t.elem.code !== 'h' && FIXED_SIZE[t.elem.code] !== undefined;
          while (this.pos < end) {
            if (fixed) {
              // Numbers in a row: no alignment between them, counted like any value.
              if (++this.#values > this.maxValues) throw new DbusWireError(`more than ${this.maxValues} values in one message`);
              list.push(this.#fixed(t.elem.code));
            } else list.push(this.value(t.elem));
          }
          if (this.pos !== end) throw new DbusWireError('an array element runs past the array');
          return list;
        });
      }
      case '(':
        return this.#nested(() => t.fields.map((f) => this.value(f)));
      case '{':
        return this.#nested(() => [this.value(t.key), this.value(t.value)]);
    }
    throw new DbusWireError(`type '${t.code}' cannot be read`);
  }

  #fixed(code: string): DbusValue {
    const size = FIXED_SIZE[code]!;
    this.#need(size, `a '${code}'`);
    const p = this.pos;
    this.pos += size;
    const b = this.b;
    const le = this.le;
    switch (code) {
      case 'y':
        return b[p]!;
      case 'b': {
        const v = le ? b.readUInt32LE(p) : b.readUInt32BE(p);
        if (v > 1) throw new DbusWireError(`boolean ${v} is neither 0 nor 1`);
        return v === 1;
      }
      case 'n':
        return le ? b.readInt16LE(p) : b.readInt16BE(p);
      case 'q':
        return le ? b.readUInt16LE(p) : b.readUInt16BE(p);
      case 'i':
        return le ? b.readInt32LE(p) : b.readInt32BE(p);
      case 'u':
        return le ? b.readUInt32LE(p) : b.readUInt32BE(p);
      case 'x':
        return le ? b.readBigInt64LE(p) : b.readBigInt64BE(p);
      case 't':
        return le ? b.readBigUInt64LE(p) : b.readBigUInt64BE(p);
      case 'd':
        return le ? b.readDoubleLE(p) : b.readDoubleBE(p);
      case 'h': {
        const i = le ? b.readUInt32LE(p) : b.readUInt32BE(p);
        const f = this.fds[i];
        if (!f) throw new DbusWireError(`fd index ${i} but the message carries ${this.fds.length} fds`);
        return f;
      }
    }
    throw new DbusWireError(`type '${code}' is not fixed-size`);
  }

  #nested<T>(f: () => T): T {
    if (++this.#depth > MAX_DEPTH) throw new DbusWireError(`values nested deeper than ${MAX_DEPTH}`);
    try {
      return f();
    } finally {
      this.#depth--;
    }
  }
}

/** Decodes a message's body by its header's signature (bounded by maxValues). */
export function decodeBody(b: Buffer, h: MessageHeader, fds: DbusFd[], maxValues: number): DbusValue[] {
  const types = parseSignature(h.signature);
  const r = new WireReader(b, h.littleEndian, h.bodyOffset, b.length, fds, maxValues);
  const out = types.map((t) => r.value(t));
  if (r.pos !== b.length) throw new DbusWireError(`${b.length - r.pos} bytes after the body's last value`);
  return out;
}
