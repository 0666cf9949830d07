// The client runtime (protocols/client-runtime.ts, generated/client/*) against real
// libwayland on both ends: our own server runtime (protocols/runtime.ts Display) in the
// same process, both driven by the Node event loop, neither blocking it. Covers binding
// through the registry, requests with every kind of argument (new objects, objects,
// fds, strings), events (with an fd), an async roundtrip, a handler that throws, a
// protocol error, the compositor going away, and back-pressure on a socket nobody reads.
import { describe, it, expect, afterEach } from 'vitest';
import { Socket } from 'node:net';
import * as libc from '../../ffi/libc.js';
import { useRuntimeDir } from '../integration/helpers/wayland-client.js';
import { Display, ProtocolViolation } from '../../protocols/runtime.js';
import * as S from '../../protocols/generated/wayland.js';
import { Connection, type CloseReason } from '../../protocols/client-runtime.js';
import * as C from '../../protocols/generated/client/wayland.js';
import { roundtrip, bindGlobals } from '../../protocols/client.js';

useRuntimeDir('gp-wlc-');

let display: Display | null = null;
let conn: Connection | null = null;
afterEach(async () => {
  conn?.close();
  conn = null;
  if (display) {
    await display.stop();
    display.destroy();
    display = null;
  }
});

interface ServerLog {
  surfaces: number;
  damage: number[][];
  poolSizes: number[];
  poolFdValid: boolean[];
}

function server(socket: string): ServerLog {
  const log: ServerLog = { surfaces: 0, damage: [], poolSizes: [], poolFdValid: [] };
  display = Display.create();
  display.addSocket(socket);
  S.WlCompositor.global(display, 4, (id) => {
    id.create({
      createSurface: (_r, sid) => {
        log.surfaces++;
        sid.create({
          damage: (_s, x, y, w, h) => {
            if (w < 0) throw new ProtocolViolation(_s, 7, `negative damage width ${w}`);
            log.damage.push([x, y, w, h]);
          },
          attach: () => {},
          commit: () => {},
          frame: () => {},
          setOpaqueRegion: () => {},
          setInputRegion: () => {},
          setBufferTransform: () => {},
          setBufferScale: () => {},
          damageBuffer: () => {},
          offset: () => {},
        });
      },
      createRegion: () => {
        throw new Error('create_region is not used here');
      },
    });
  });
  S.WlShm.global(display, 1, (id) => {
    const shm = id.create({
      createPool: (_r, pid, fd, size) => {
        log.poolSizes.push(size);
        log.poolFdValid.push(libc.fcntl(fd, 1 /* F_GETFD */) >= 0);
        libc.close(fd);
        pid.create({ createBuffer: () => {}, resize: () => {} });
      },
    });
    shm.sendFormat(S.WlShmFormat.ARGB8888);
    shm.sendFormat(S.WlShmFormat.XRGB8888);
  });
  display.start({ onError: () => {} });
  return log;
}

function closedReason(c: Connection): Promise<CloseReason> {
  return new Promise((resolve) => c.once('closed', resolve));
}

describe('client runtime against our server runtime (both libwayland, one Node loop)', () => {
  it('binds through the registry, sends requests with objects and fds, receives events, round-trips', async () => {
    const log = server('gp-client-a');
    conn = Connection.connect('gp-client-a');
    const globals = await bindGlobals(conn, { wl_compositor: [C.WlCompositor, 6], wl_shm: [C.WlShm, 1] });
    const compositor = globals.wl_compositor;
    const shm = globals.wl_shm;
    expect(compositor?.version).toBe(4); // capped at what the server offers
    const formats: number[] = [];
    shm!.on({ format: (f) => formats.push(f) });
    await roundtrip(conn);
    expect(formats).toEqual([S.WlShmFormat.ARGB8888, S.WlShmFormat.XRGB8888]);

    const surface = compositor!.createSurface();
    surface.damage(1, 2, 3, 4);
    const fd = libc.memfdCreate('gp-pool', 1);
    libc.ftruncate(fd, 4096);
    shm!.createPool(fd, 4096);
    libc.close(fd); // libwayland sent a duplicate
    await roundtrip(conn);
    expect(log.surfaces).toBe(1);
    expect(log.damage).toEqual([[1, 2, 3, 4]]);
    expect(log.poolSizes).toEqual([4096]);
    expect(log.poolFdValid).toEqual([true]);
    surface.destroy();
    expect(surface.destroyed).toBe(true);
    expect(() => surface.damage(0, 0, 1, 1)).toThrow(/wl_surface@\d+\.damage: the proxy was destroyed/);
  });

  it('rejects bad request arguments with a message naming the request', async () => {
    server('gp-client-b');
    conn = Connection.connect('gp-client-b');
    const { wl_compositor: compositor } = await bindGlobals(conn, { wl_compositor: [C.WlCompositor, 4] });
    const surface = compositor!.createSurface();
    expect(() => surface.damage(0, 0, 1.5, 1)).toThrow(/wl_surface@\d+\.damage argument 3 must be an integer/);
    expect(() => surface.attach(null, 0.5, 0)).toThrow(/wl_surface@\d+\.attach argument 2 must be an integer/);
  });

  it('a handler that throws is reported; dispatch goes on', async () => {
    server('gp-client-c');
    conn = Connection.connect('gp-client-c');
    const errors: unknown[] = [];
    conn.on('handler-error', (e) => errors.push(e));
    const registry = conn.display(C.WlDisplay).getRegistry();
    const seen: string[] = [];
    registry.on({
      global: (_n, iface) => {
        seen.push(iface);
        if (iface === 'wl_compositor') throw new Error('boom');
      },
    });
    await roundtrip(conn);
    expect(seen).toContain('wl_shm');
    expect(errors).toHaveLength(1);
    expect(String(errors[0])).toMatch(/wl_registry@\d+\.global: boom/);
    expect(conn.closed).toBe(false);
  });

  it('a protocol error ends the connection with a closed event naming object and code, never a throw', async () => {
    server('gp-client-d');
    conn = Connection.connect('gp-client-d');
    const { wl_compositor: compositor } = await bindGlobals(conn, { wl_compositor: [C.WlCompositor, 4] });
    const surface = compositor!.createSurface();
    const closed = closedReason(conn);
    surface.damage(0, 0, -1, 1);
    const reason = await closed;
    expect(reason).toMatchObject({ kind: 'protocol-error', interface: 'wl_surface', id: surface.id, code: 7 });
    expect(conn.closed).toBe(true);
    expect(() => surface.damage(0, 0, 1, 1)).toThrow(/destroyed/); // every proxy went with the connection
  });

  it('the compositor going away is a closed event of kind gone', async () => {
    server('gp-client-e');
    conn = Connection.connect('gp-client-e');
    await bindGlobals(conn, { wl_compositor: [C.WlCompositor, 4] });
    const closed = closedReason(conn);
    await display!.stop();
    display!.destroy();
    display = null;
    expect((await closed).kind).toBe('gone');
  });

  it('a full socket is waited out: congested until drain, nothing lost, the connection lives', async () => {
    const [mine, theirs] = libc.socketpair(1 /* AF_UNIX */, 1 /* SOCK_STREAM */);
    conn = Connection.fromFd(mine);
    const c = conn;
    const d = c.display(C.WlDisplay);
    const N = 60_000; // 12 bytes each: far beyond the socket buffer
    let sent = 0;
    let drains = 0;
    c.on('drain', () => drains++);
    // A producer that sends in small batches (each fits libwayland's 4 KiB buffer) and
    // holds off while the socket is full, as the window output does with guest frames.
    const produce = () => {
      while (sent < N && !c.congested) {
        for (let i = 0; i < 100; i++) d.sync();
        sent += 100;
        if (sent % 1000 === 0) break; // let the flush microtask run
      }
      if (sent < N && !c.closed) setImmediate(produce);
    };
    produce();
    // Nobody reads yet: the socket fills.
    for (let t = 0; t < 200 && !c.congested; t++) await new Promise((r) => setTimeout(r, 50));
    expect(c.congested).toBe(true);
    expect(sent).toBeLessThan(N);
    const peer = new Socket({ fd: theirs, readable: true, writable: false });
    let bytes = 0;
    await new Promise<void>((resolve) => {
      peer.on('data', (b: Buffer) => {
        bytes += b.length;
        if (bytes >= 12 * N) resolve();
      });
    });
    expect(bytes).toBe(12 * N);
    expect(drains).toBeGreaterThan(0);
    expect(c.closed).toBe(false);
    peer.destroy();
  });

  it('connecting to a socket where nobody listens names the socket', () => {
    expect(() => Connection.connect('gp-nobody-here')).toThrow(/wl_display_connect.*gp-nobody-here/);
  });
});
