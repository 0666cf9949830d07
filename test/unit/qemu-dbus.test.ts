// The D-Bus connection (plugin/dbus/) against a real dbus-daemon, and the QEMU
// listener's handling of what QEMU may say. The real QEMU is in
// test/integration/qemu-dbus.test.ts; here a peer plays QEMU only to send what an
// unmodified QEMU never sends (a file that is not a dma-buf, lying sizes, unknown
// formats, unknown methods), which the rig cannot make it do.
import { describe, it, expect, afterEach } from 'vitest';
import fc from 'fast-check';
import { mkdtempSync, readdirSync, writeFileSync, openSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as libc from '../../ffi/libc.js';
import { DbusConnection, DbusError, DbusFd, type DbusArg, type DbusValue } from '../../plugin/dbus/connection.js';
import { decodeListenerCall, DMABUF2_IFACE, LISTENER_PATH, ListenerError, MAP_IFACE, MAX_DIMENSION } from '../../plugin/sources/qemu-dbus-protocol.js';
import { evdevToQnum } from '../../plugin/sources/qemu-dbus.js';
import { QemuDisplay } from '../../plugin/sources/qemu-display.js';
import { createServer, type Socket } from 'node:net';
import { dmabuf2Args, qemuPeer, type Dmabuf2, type QemuPeer } from '../integration/helpers/qemu-peer.js';
import { startSessionBus } from '../integration/helpers/qemu.js';

const fdCount = () => readdirSync('/proc/self/fd').length;
const later: (() => void)[] = [];
afterEach(() => {
  for (const f of later.splice(0).reverse()) f();
});

function bus(): string {
  const b = startSessionBus(mkdtempSync(join(tmpdir(), 'gpdbus-')));
  later.push(() => b.close());
  return b.address;
}

const until = async (pred: () => boolean, ms = 5000) => {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > ms) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('DbusConnection (our wire format on the event loop) with a real dbus-daemon', () => {
  it('calls the bus, reads variants and dicts, passes fds both ways, holds a reply, and leaks nothing', async () => {
    const address = bus();
    const fds0 = fdCount();
    const a = DbusConnection.connect(address, { busClient: true, name: 'A' });
    const b = DbusConnection.connect(address, { busClient: true, name: 'B' });
    await Promise.all([a.ready(), b.ready()]);
    const [props] = await a.call('org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus.Properties', 'GetAll', [{ type: 's', value: 'org.freedesktop.DBus' }]);
    expect(props).toBeInstanceOf(Map);
    expect(Array.isArray((props as Map<DbusValue, DbusValue>).get('Interfaces'))).toBe(true);

    const seen: { sig: string; args: DbusValue[]; fdFlags: number }[] = [];
    a.addObject('/t', (call) => {
      const fd = call.takeFd(call.args[0]);
      seen.push({ sig: call.signature, args: call.args, fdFlags: libc.fcntl(fd, libc.F_GETFD) });
      libc.close(fd);
      // Answered later, as QEMU's UpdateDMABUF is: the caller waits.
      setTimeout(() => call.reply([{ type: 'u', value: 7 }, { type: 'ay', value: Uint8Array.of(1, 2, 3) }, { type: 'x', value: -5n }]), 50);
    });
    const file = join(mkdtempSync(join(tmpdir(), 'gpfd-')), 'f');
    writeFileSync(file, 'x');
    const fd = openSync(file, 'r');
    const t0 = Date.now();
    const reply = await b.call(a.uniqueName(), '/t', 'test.T', 'Do', [{ type: 'h', value: fd }, { type: 's', value: 'é' }, { type: 't', value: 1n << 60n }, { type: 'b', value: true }, { type: 'i', value: -3 }]);
    closeSync(fd);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(45);
    expect(reply).toEqual([7, Buffer.from([1, 2, 3]), -5n]);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.sig).toBe('hstbi');
    expect(seen[0]!.args.slice(1)).toEqual(['é', 1n << 60n, true, -3]);
    expect(seen[0]!.fdFlags & 1).toBe(1); // FD_CLOEXEC on the fd we were given

    // An fd the handler does not take is closed after it returns.
    let passed: DbusFd | null = null;
    a.addObject('/u', (call) => {
      passed = call.args[0] as DbusFd;
      call.reply();
    });
    await b.call(a.uniqueName(), '/u', 'test.T', 'Do', [{ type: 'h', value: 0 }]);
    expect(passed).not.toBeNull();

    await expect(b.call(a.uniqueName(), '/nope', 'test.T', 'Do')).rejects.toThrow(DbusError);
    await expect(b.call(a.uniqueName(), '/nope', 'test.T', 'Do')).rejects.toThrow(/UnknownObject/);

    // A call held when the connection closes is dropped, not leaked; the caller gets an error.
    a.addObject('/hold', () => {});
    const pending = b.call(a.uniqueName(), '/hold', 'test.T', 'Do', [], 2000);
    await new Promise((r) => setTimeout(r, 50));
    a.close();
    await expect(pending).rejects.toThrow();
    b.close();
    await new Promise((r) => setTimeout(r, 20));
    expect(fdCount()).toBe(fds0);
  });

  it("an 'ay' argument is the handler's own copy: still intact after its message is freed and others came", async () => {
    const address = bus();
    const a = DbusConnection.connect(address, { busClient: true });
    const b = DbusConnection.connect(address, { busClient: true });
    later.push(() => (a.close(), b.close()));
    await Promise.all([a.ready(), b.ready()]);
    const kept: Buffer[] = [];
    a.addObject('/keep', (call) => {
      kept.push(call.args[0] as Buffer);
      call.reply();
    });
    for (let i = 0; i < 20; i++) await b.call(a.uniqueName(), '/keep', 't.T', 'K', [{ type: 'ay', value: Buffer.alloc(64 * 1024, i) }]);
    expect(kept.map((k) => [k.length, k[0], k[k.length - 1]])).toEqual(Array.from({ length: 20 }, (_, i) => [65536, i, i]));
  });

  it('a bus address that does not answer is an error naming it', () => {
    expect(() => DbusConnection.connect('unix:path=/nonexistent/bus', { busClient: true })).toThrow(/ENOENT/);
  });
});

async function fakeQemu(): Promise<QemuPeer> {
  const p = await qemuPeer();
  later.push(() => p.close());
  return p;
}

describe('QemuConsoleSource: what a misbehaving QEMU sends', () => {
  it('refuses a non-dma-buf fd, a stride that lies about the size, unknown pixman formats, short pixel data and unknown methods: clear errors, last good frame kept', async () => {
    const { src, call } = await fakeQemu();
    const fds0 = fdCount();
    const w = 64,
      h = 32;
    const px = Buffer.alloc(w * h * 4, 0x11);
    await call('Scanout', [
      { type: 'u', value: w },
      { type: 'u', value: h },
      { type: 'u', value: w * 4 },
      { type: 'u', value: 0x20020888 },
      { type: 'ay', value: px },
    ]);
    const good = src.query('primary');
    expect(good.state).toBe('ok');

    const file = join(mkdtempSync(join(tmpdir(), 'gpfd-')), 'f');
    writeFileSync(file, Buffer.alloc(4096));
    const notDmabuf = openSync(file, 'r');
    await expect(
      call('ScanoutDMABUF', [
        { type: 'h', value: notDmabuf },
        { type: 'u', value: w },
        { type: 'u', value: h },
        { type: 'u', value: w * 4 },
        { type: 'u', value: 0x34325258 },
        { type: 't', value: 0n },
        { type: 'b', value: false },
      ]),
    ).rejects.toThrow(/not a dma-buf/);
    closeSync(notDmabuf);
    await expect(call('Scanout', [{ type: 'u', value: w }, { type: 'u', value: h }, { type: 'u', value: w * 4 }, { type: 'u', value: 0x10020565 }, { type: 'ay', value: px }])).rejects.toThrow(/pixman 0x10020565.*not a format/);
    await expect(call('Scanout', [{ type: 'u', value: w }, { type: 'u', value: h }, { type: 'u', value: w * 4 }, { type: 'u', value: 0x20020888 }, { type: 'ay', value: px.subarray(0, 100) }])).rejects.toThrow(/100 bytes of pixels/);
    await expect(call('Scanout', [{ type: 'u', value: 1 << 20 }, { type: 'u', value: h }, { type: 'u', value: w * 4 }, { type: 'u', value: 0x20020888 }, { type: 'ay', value: px }])).rejects.toThrow(/width 1048576 is not within/);
    await expect(call('NewFancyThing', [])).rejects.toThrow(/unknown method/);
    await expect(call('UpdateDMABUF', [{ type: 'u', value: 1 }])).rejects.toThrow(/arguments 'u', expected 'iiii'/);
    await expect(call('CursorDefine', [{ type: 'i', value: 4 }, { type: 'i', value: 4 }, { type: 'i', value: 9 }, { type: 'i', value: 0 }, { type: 'ay', value: Buffer.alloc(64) }])).rejects.toThrow(/hotspot 9,0 is outside/);

    // The last good frame stays; every refused fd was closed; each kind warned once.
    const after = src.query('primary');
    expect(after.state === 'ok' && good.state === 'ok' && after.plane.bufferId === good.plane.bufferId).toBe(true);
    expect(fdCount()).toBe(fds0);
    expect(src.warnings.length).toBeGreaterThanOrEqual(6);
    expect(src.warnings.every((m) => m.includes('QEMU console 0'))).toBe(true);
  });

  it('Update copies only the damaged rectangle (clipped to the surface); Disable shows no signal', async () => {
    const { src, call } = await fakeQemu();
    const w = 8,
      h = 4;
    await call('Scanout', [{ type: 'u', value: w }, { type: 'u', value: h }, { type: 'u', value: w * 4 + 8 }, { type: 'u', value: 0x20020888 }, { type: 'ay', value: Buffer.alloc((w * 4 + 8) * h, 0) }]);
    // 2x2 at (6,2) of which only 2x2 fits; data rows of 16 bytes.
    await call('Update', [{ type: 'i', value: 6 }, { type: 'i', value: 2 }, { type: 'i', value: 4 }, { type: 'i', value: 4 }, { type: 'u', value: 16 }, { type: 'u', value: 0x20020888 }, { type: 'ay', value: Buffer.alloc(16 * 4, 0xab) }]);
    const q = src.query('primary');
    if (q.state !== 'ok') throw new Error('no plane');
    const v = src.cpuView(q.plane)!;
    const px = (x: number, y: number) => v.bytes[v.offset + y * q.plane.stride + x * 4];
    expect([px(5, 2), px(6, 2), px(7, 3), px(7, 1)]).toEqual([0, 0xab, 0xab, 0]);
    await call('Disable', []);
    expect(src.query('primary').state).toBe('disabled');
  });
});

describe('Unix.Map (QEMU 9.2+): the surface as a memfd, updates by rectangle', () => {
  const W = 16,
    H = 8;
  function memfdWith(bytes: Buffer): number {
    const fd = libc.memfdCreate('qemu-surface', libc.MFD_CLOEXEC | libc.MFD_ALLOW_SEALING);
    libc.pwrite(fd, bytes, 0);
    later.push(() => libc.close(fd));
    return fd;
  }
  const mapCall = (p: QemuPeer, member: string, args: DbusArg[]) => p.qemu.call(null, LISTENER_PATH, MAP_IFACE, member, args, 5000);
  const scanoutMap = (fd: number, offset = 64, stride = W * 4 + 16, width = W, height = H): DbusArg[] => [
    { type: 'h', value: fd },
    { type: 'u', value: offset },
    { type: 'u', value: width },
    { type: 'u', value: height },
    { type: 'u', value: stride },
    { type: 'u', value: 0x20020888 },
  ];
  const rect = (x: number, y: number, w: number, h: number): DbusArg[] => [x, y, w, h].map((value) => ({ type: 'i', value }) as DbusArg);

  it('is offered in Interfaces; ScanoutMap reads the surface, UpdateMap only its damaged rectangle', async () => {
    const p = await fakeQemu();
    const [props] = await p.qemu.call(null, LISTENER_PATH, 'org.freedesktop.DBus.Properties', 'GetAll', [{ type: 's', value: 'org.qemu.Display1.Listener' }]);
    expect((props as Map<DbusValue, DbusValue>).get('Interfaces')).toEqual([MAP_IFACE, DMABUF2_IFACE]);
    const stride = W * 4 + 16;
    const surface = Buffer.alloc(64 + stride * H, 0x11);
    const fd = memfdWith(surface);
    const fds0 = fdCount();
    await mapCall(p, 'ScanoutMap', scanoutMap(fd));
    expect(fdCount()).toBe(fds0 + 1); // the source keeps its own copy of the memfd
    const pixel = (x: number, y: number) => {
      const q = p.src.query('primary');
      if (q.state !== 'ok') throw new Error(q.state);
      const v = p.src.cpuView(q.plane)!;
      return v.bytes[v.offset + y * q.plane.stride + x * 4];
    };
    expect(pixel(W - 1, H - 1)).toBe(0x11);
    // QEMU draws everywhere, but says only (2,3) 4x2 changed: only that is read.
    libc.pwrite(fd, Buffer.alloc(stride * H, 0x77), 64);
    await mapCall(p, 'UpdateMap', rect(2, 3, 4, 2));
    expect([pixel(2, 3), pixel(5, 4), pixel(1, 3), pixel(6, 3), pixel(2, 5)]).toEqual([0x77, 0x77, 0x11, 0x11, 0x11]);
    // A damage rectangle reaching past the surface is cut to it.
    await mapCall(p, 'UpdateMap', rect(W - 2, H - 2, 100, 100));
    expect(pixel(W - 1, H - 1)).toBe(0x77);
    // Only through its own interface: as a Listener method it is unknown.
    await expect(p.call('ScanoutMap', scanoutMap(fd))).rejects.toThrow(/unknown method org.qemu.Display1.Listener.ScanoutMap/);
  });

  it('refuses a memfd that lies about its size, a pipe, and survives a memfd truncated under it (no SIGBUS: read, not mapped)', async () => {
    const p = await fakeQemu();
    const fds0 = fdCount();
    const small = memfdWith(Buffer.alloc(100));
    await expect(mapCall(p, 'ScanoutMap', scanoutMap(small))).rejects.toThrow(/needs \d+ bytes but the memfd has 100/);
    const [r, w] = libc.socketpair(libc.AF_UNIX, libc.SOCK_STREAM);
    await expect(mapCall(p, 'ScanoutMap', scanoutMap(r))).rejects.toThrow(/not a shared memory file/);
    libc.close(r);
    libc.close(w);
    const stride = W * 4;
    const fd = memfdWith(Buffer.alloc(stride * H, 0x22));
    await mapCall(p, 'ScanoutMap', scanoutMap(fd, 0, stride));
    const shown = p.src.query('primary');
    libc.ftruncate(fd, 16);
    await expect(mapCall(p, 'UpdateMap', rect(0, 0, W, H))).rejects.toThrow(/memfd is shorter than the surface/);
    const after = p.src.query('primary');
    expect(after.state === 'ok' && shown.state === 'ok' && after.plane.bufferId === shown.plane.bufferId).toBe(true);
    p.close();
    // The peer's two sockets are gone, the test's two memfds still open: nothing else.
    expect(fdCount()).toBe(fds0);
  });
});

describe('ScanoutDMABUF2 (QEMU 10.1+): planes, the shown rectangle, the backing size', () => {
  // No dma-buf can be made on the host (no /dev/udmabuf): what is shown is checked in the
  // rig (qemu-dbus-peer.test.ts); here every refusal, and that no fd of a refused call stays.
  const NV12 = 0x3231564e;
  const XR24 = 0x34325258;
  const memfd = (): number => {
    const fd = libc.memfdCreate('not-a-dmabuf', libc.MFD_CLOEXEC);
    libc.ftruncate(fd, 1 << 20);
    later.push(() => libc.close(fd));
    return fd;
  };
  const one = (fd: number, o: Partial<Dmabuf2> = {}): Dmabuf2 => ({ fds: [fd], x: 0, y: 0, width: 64, height: 32, offsets: [0], strides: [256], fourcc: XR24, backingWidth: 64, backingHeight: 32, ...o });

  it('is offered in Interfaces, taken only on its own interface, and every lie is refused naming the argument; fds stay flat, the last good frame stays', async () => {
    const p = await fakeQemu();
    const fd = memfd();
    await p.call('Scanout', [{ type: 'u', value: 8 }, { type: 'u', value: 8 }, { type: 'u', value: 32 }, { type: 'u', value: 0x20020888 }, { type: 'ay', value: Buffer.alloc(256, 1) }]);
    const good = p.src.query('primary');
    const other = memfd();
    const fds0 = fdCount();
    const refusals: [Partial<Dmabuf2>, RegExp][] = [
      [{}, /QEMU's ScanoutDMABUF2: the fd is not a dma-buf \(\/memfd:not-a-dmabuf/],
      [{ fds: [fd, other], offsets: [0, 8192], strides: [64, 64], fourcc: NV12 }, /NV12's 2 planes are in 2 separate buffers: guestplane takes a multi-plane format only from one dma-buf/],
      [{ fds: [fd], offsets: [0, 8192, 9000], strides: [64, 64, 64], fourcc: NV12 }, /NV12 has 2 plane\(s\), but QEMU described 3/],
      [{ fds: [fd], offsets: [0, 8192], strides: [256, 256] }, /XR24 has 1 plane\(s\), but QEMU described 2/],
      // One buffer for both planes: taken as far as the buffer check (a memfd is no dma-buf).
      [{ fds: [fd, fd], offsets: [0, 8192], strides: [64, 64], fourcc: NV12 }, /the fd is not a dma-buf/],
      [{ x: 8, width: 64 }, /rectangle 64x32\+8\+0 is not inside the 64x32 buffer/],
      [{ offsets: [0, 0] }, /2 offsets and 1 strides for 2 planes/],
      [{ numPlanes: 5, offsets: [0, 0, 0, 0, 0], strides: [1, 1, 1, 1, 1] }, /num_planes 5 is not within 1..4/],
      [{ fds: [fd, fd] }, /2 dma-buf fds for 1 planes/],
      [{ fds: [] }, /0 dma-buf fds for 1 planes/],
      [{ backingHeight: 0 }, /backing height 0 is not within/],
      [{ strides: [0] }, /plane 0 stride 0 is not within/],
    ];
    for (const [o, why] of refusals) await expect(p.scanoutDmabuf2(one(fd, o)), JSON.stringify(o)).rejects.toThrow(why);
    // As a method of org.qemu.Display1.Listener it is unknown (QEMU calls it on its own interface).
    await expect(p.call('ScanoutDMABUF2', dmabuf2Args(one(fd)))).rejects.toThrow(/unknown method org.qemu.Display1.Listener.ScanoutDMABUF2/);
    expect(fdCount()).toBe(fds0);
    const after = p.src.query('primary');
    expect(after.state === 'ok' && good.state === 'ok' && after.plane.bufferId === good.plane.bufferId).toBe(true);
  });
});

describe('decodeListenerCall (fuzzed)', () => {
  const members = ['ScanoutDMABUF', 'ScanoutDMABUF2', 'UpdateDMABUF', 'Scanout', 'Update', 'Disable', 'CursorDefine', 'MouseSet', 'ScanoutMap', 'UpdateMap', 'Other'];
  const value: fc.Arbitrary<DbusValue> = fc.oneof(
    fc.integer({ min: -(2 ** 31), max: 2 ** 32 - 1 }),
    fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
    fc.boolean(),
    fc.string(),
    fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
    fc.constant(new DbusFd(-1)),
    fc.array(fc.oneof(fc.integer({ min: -1, max: 20000 }), fc.constant(new DbusFd(-1)), fc.constant(new DbusFd(7))), { maxLength: 6 }),
  );
  it('throws only ListenerErrors, and what it accepts is within bounds', () => {
    fc.assert(
      fc.property(fc.constantFrom(...members), fc.constantFrom('huuuutb', 'ahuuuuauauuuuutb', 'iiii', 'uuuuay', 'iiiiuuay', '', 'iiiiay', 'iii', 'huuuuu', 'u'), fc.array(value, { maxLength: 14 }), (member, sig, args) => {
        try {
          const c = decodeListenerCall(member, sig, args);
          if ('width' in c) expect(c.width >= 1 && c.width <= MAX_DIMENSION).toBe(true);
          if (c.member === 'Scanout') expect(c.data.length).toBeGreaterThanOrEqual(c.stride * (c.height - 1) + c.width * 4);
          if (c.member === 'CursorDefine') expect(c.data.length).toBe(c.width * c.height * 4);
          if (c.member === 'ScanoutDMABUF2') {
            expect(c.x + c.width <= c.backingWidth && c.y + c.height <= c.backingHeight).toBe(true);
            expect(c.fds.length >= 1 && c.fds.length <= c.planes.length && c.planes.length <= 4).toBe(true);
            expect(c.fds.every((f) => f.fd >= 0) && c.planes.every((p) => p.stride >= 1 && p.offset >= 0)).toBe(true);
          }
        } catch (e) {
          if (!(e instanceof ListenerError)) throw e;
        }
      }),
      { numRuns: 3000 },
    );
  });
});

describe('evdev → QEMU key numbers', () => {
  it('maps the main block as XT set 1 and the extended keys with the 0x80 bit', () => {
    expect([30, 1, 28, 57, 88].map(evdevToQnum)).toEqual([0x1e, 0x01, 0x1c, 0x39, 0x58]);
    expect([97, 100, 103, 108, 111, 125].map(evdevToQnum)).toEqual([0x9d, 0xb8, 0xc8, 0xd0, 0xd3, 0xdb]);
    expect(evdevToQnum(0)).toBeUndefined();
    expect(evdevToQnum(240)).toBeUndefined();
  });
});

describe('QemuDisplay.connect: addresses that are not QEMU', () => {
  it('fd:N that is not a socket, or not open, is an error naming it (never taken as QEMU)', async () => {
    const fds0 = fdCount();
    const memfd = libc.memfdCreate('not-qemu', libc.MFD_CLOEXEC);
    later.push(() => libc.close(memfd));
    await expect(QemuDisplay.connect(`fd:${memfd}`)).rejects.toThrow(new RegExp(`fd ${memfd} is a file, not a socket connected to QEMU`));
    await expect(QemuDisplay.connect('fd:999')).rejects.toThrow(/no QEMU display at fd:999: cannot connect \(no such open fd\)/);
    expect(fdCount()).toBe(fds0 + 1);
  });

  it('a socket that accepts but never speaks D-Bus fails within the handshake bound, and leaves nothing open', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gpmute-'));
    const held: Socket[] = [];
    const server = createServer((c) => held.push(c)); // accepts, never writes
    await new Promise<void>((r) => server.listen(join(dir, 's'), r));
    later.push(() => (held.forEach((c) => c.destroy()), server.close()));
    const fds0 = fdCount();
    const t0 = Date.now();
    await expect(QemuDisplay.connect(`unix:path=${join(dir, 's')}`)).rejects.toThrow(/no D-Bus handshake within 5 s: the socket does not speak D-Bus/);
    expect(Date.now() - t0).toBeLessThan(9000);
    await new Promise((r) => setTimeout(r, 50));
    expect(fdCount()).toBeLessThanOrEqual(fds0 + held.length);
  }, 15_000);
});
