// The D-Bus wire format (plugin/dbus/wire.ts): what we write reads back the same, what
// a real dbus-daemon and QEMU accept is covered by qemu-dbus.test.ts and the rig; here
// the reader is fed every kind of malformed or hostile byte string and must answer with a
// DbusWireError (never another exception, never unbounded work).
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { DbusFd, DbusWireError, MESSAGE_TYPE, decodeBody, encodeMessage, messageLength, parseSignature, type DbusArg } from '../../plugin/dbus/wire.js';
import { decodeHeader, encodeEmptyReturn } from '../../plugin/dbus/header.js';

const LIMITS = { maxMessageBytes: 1 << 20 };

function roundTrip(args: DbusArg[]) {
  const { bytes, fds } = encodeMessage({ type: MESSAGE_TYPE.call, serial: 7, path: '/a/b', interface: 'x.Y', member: 'M', args });
  expect(messageLength(bytes, LIMITS)).toBe(bytes.length);
  const h = decodeHeader(bytes);
  expect(h).toMatchObject({ type: 1, serial: 7, path: '/a/b', interface: 'x.Y', member: 'M', unixFds: fds.length });
  return decodeBody(bytes, h, fds.map((f) => new DbusFd(f)), 1000);
}

describe('D-Bus wire format', () => {
  it('round-trips every basic type, byte arrays, string arrays, variants and a{sv}', () => {
    const values = roundTrip([
      { type: 'y', value: 255 },
      { type: 'b', value: true },
      { type: 'n', value: -2 },
      { type: 'q', value: 65535 },
      { type: 'i', value: -70000 },
      { type: 'u', value: 0xffffffff },
      { type: 'x', value: -(1n << 62n) },
      { type: 't', value: (1n << 64n) - 1n },
      { type: 'd', value: 0.5 },
      { type: 's', value: 'é€' },
      { type: 'o', value: '/org/qemu' },
      { type: 'g', value: 'a{sv}' },
      { type: 'h', value: 42 },
      { type: 'ay', value: Uint8Array.of(1, 2, 3) },
      { type: 'as', value: ['a', '', 'c'] },
      { type: 'v', value: { type: 'u', value: 9 } },
      { type: 'a{sv}', value: new Map<string, DbusArg>([['Interfaces', { type: 'v', value: { type: 'as', value: ['x'] } }]]) },
    ]);
    expect(values.slice(0, 12)).toEqual([255, true, -2, 65535, -70000, 0xffffffff, -(1n << 62n), (1n << 64n) - 1n, 0.5, 'é€', '/org/qemu', 'a{sv}']);
    expect((values[12] as DbusFd).fd).toBe(42);
    expect(values[13]).toEqual(Buffer.from([1, 2, 3]));
    expect(values[14]).toEqual(['a', '', 'c']);
    expect(values[15]).toBe(9);
    expect(values[16]).toEqual(new Map([['Interfaces', ['x']]]));
  });

  it('round-trips random argument lists (alignment after every type)', () => {
    const arg: fc.Arbitrary<DbusArg> = fc.oneof(
      fc.integer({ min: 0, max: 255 }).map((v) => ({ type: 'y', value: v }) as DbusArg),
      fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }).map((v) => ({ type: 'i', value: v }) as DbusArg),
      fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map((v) => ({ type: 't', value: v }) as DbusArg),
      fc.boolean().map((v) => ({ type: 'b', value: v }) as DbusArg),
      fc.string().map((v) => ({ type: 's', value: v.replace(/\0/g, '') }) as DbusArg),
      fc.uint8Array({ maxLength: 40 }).map((v) => ({ type: 'ay', value: v }) as DbusArg),
      fc.array(fc.string({ maxLength: 5 }).map((s) => s.replace(/\0/g, '')), { maxLength: 5 }).map((v) => ({ type: 'as', value: v }) as DbusArg),
    );
    fc.assert(
      fc.property(fc.array(arg, { maxLength: 12 }), (args) => {
        const back = roundTrip(args);
        const want = args.map((a) => (a.type === 'ay' ? Buffer.from(a.value) : a.value));
        expect(back).toEqual(want);
      }),
    );
  });

  it('the empty method return written directly is byte for byte what encodeMessage writes', () => {
    for (const [serial, replySerial] of [
      [1, 1],
      [0xffffffff, 7],
      [123456, 0xfffffffe],
    ] as const) {
      expect(encodeEmptyReturn(serial, replySerial)).toEqual(encodeMessage({ type: MESSAGE_TYPE.return, serial, replySerial }).bytes);
      expect(decodeHeader(encodeEmptyReturn(serial, replySerial))).toMatchObject({ type: MESSAGE_TYPE.return, serial, replySerial, signature: '', unixFds: 0, bodyLength: 0 });
    }
  });

  it('parses signatures and refuses invalid ones', () => {
    expect(parseSignature('huuuutb')).toHaveLength(7);
    expect(parseSignature('a{sv}as(iay)')).toHaveLength(3);
    for (const bad of ['a', '(', '()', 'a{vs}', 'a{sss}', '{sv}', 'z', 'a'.repeat(33) + 'y', '('.repeat(33) + 'y' + ')'.repeat(33)]) {
      expect(() => parseSignature(bad), bad).toThrow(DbusWireError);
    }
  });

  it('refuses malformed headers and bodies with DbusWireError only', () => {
    const { bytes } = encodeMessage({ type: MESSAGE_TYPE.call, serial: 3, path: '/p', member: 'M', args: [{ type: 's', value: 'hello' }, { type: 'ay', value: Uint8Array.of(1) }] });
    const h = decodeHeader(bytes);
    const broken = (f: (b: Buffer) => void) => {
      const b = Buffer.from(bytes);
      f(b);
      return b;
    };
    // A string length past the end; a non-NUL terminator; a boolean of 2; an fd index without fds.
    expect(() => decodeBody(broken((b) => b.writeUInt32LE(1e6, h.bodyOffset)), h, [], 100)).toThrow(DbusWireError);
    expect(() => decodeBody(broken((b) => (b[h.bodyOffset + 4 + 5] = 0x41)), h, [], 100)).toThrow(/NUL/);
    const withB = encodeMessage({ type: MESSAGE_TYPE.call, serial: 3, path: '/p', member: 'M', args: [{ type: 'b', value: true }] });
    const hb = decodeHeader(withB.bytes);
    withB.bytes.writeUInt32LE(2, hb.bodyOffset);
    expect(() => decodeBody(withB.bytes, hb, [], 100)).toThrow(/boolean 2/);
    const withH = encodeMessage({ type: MESSAGE_TYPE.call, serial: 3, path: '/p', member: 'M', args: [{ type: 'h', value: 5 }] });
    expect(() => decodeBody(withH.bytes, decodeHeader(withH.bytes), [], 100)).toThrow(/fd index 0 but the message carries 0/);
    expect(() => messageLength(broken((b) => (b[0] = 0x7a)), LIMITS)).toThrow(/byte order/);
    expect(() => messageLength(broken((b) => b.writeUInt32LE(1 << 24, 4)), LIMITS)).toThrow(/at most/);
    expect(() => decodeHeader(broken((b) => b.writeUInt32LE(0, 8)))).toThrow(/serial 0/);
  });

  it('bounds the work of one body: two million empty arrays stop at maxValues', () => {
    const n = 2_000_000;
    const body = Buffer.alloc(4 + n * 4); // 'aay': n zero-length byte arrays
    body.writeUInt32LE(n * 4, 0);
    const { bytes } = encodeMessage({ type: MESSAGE_TYPE.call, serial: 1, path: '/p', member: 'M', args: [{ type: 'ay', value: Uint8Array.of() }] });
    const h = { ...decodeHeader(bytes), signature: 'aay' };
    const msg = Buffer.concat([bytes.subarray(0, h.bodyOffset), body]);
    const hh = { ...h, bodyLength: body.length };
    expect(() => decodeBody(msg, hh, [], 4096)).toThrow(/more than 4096 values/);
    const t0 = performance.now();
    for (let i = 0; i < 10; i++) expect(() => decodeBody(msg, hh, [], 4096)).toThrow(DbusWireError);
    console.log(`a 2,000,000-value body refused after 4096 values (the connection's bound): ${((performance.now() - t0) / 10).toFixed(2)} ms each (warm)`);
  });

  it('never throws anything but DbusWireError on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 300 }), fc.constantFrom('l', 'B'), (raw, order) => {
        const b = Buffer.from(raw);
        b[0] = order.charCodeAt(0);
        b[3] = 1;
        try {
          const len = messageLength(b, LIMITS);
          if (len === null || len !== b.length) return;
          const h = decodeHeader(b);
          decodeBody(b, h, [], 1000);
        } catch (e) {
          if (!(e instanceof DbusWireError)) throw e;
        }
      }),
      { numRuns: 3000 },
    );
  });
});
