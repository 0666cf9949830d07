// A real libwayland-server built from the generated bindings, serving real clients:
//  - wayland-info (Debian wayland-utils) connects over a socket in a temporary
//    XDG_RUNTIME_DIR while the server runs inside the Node event loop (a setInterval
//    keeps ticking all along), and must list our globals with their versions and the
//    events our bind handlers send;
//  - an in-process libwayland-client (koffi) drives a test protocol that has every
//    argument kind in both directions, new_id events, destructors, since checks,
//    protocol errors and handler failures, stepping client and server by hand.
import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import { useRuntimeDir } from '../integration/helpers/wayland-client.js';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import koffi from 'koffi';
import * as libc from '../../ffi/libc.js';
import { Display, Resource, NewId, VersionError, ProtocolViolation, type Client } from '../../protocols/runtime.js';
import { generate, parseProtocol } from '../../protocols/scanner.js';
import { WlCompositor, WlShm, WlShmFormat, WlOutput, WlOutputSubpixel, WlOutputTransform, WlOutputMode, WlSeat, WlSeatCapability } from '../../protocols/generated/wayland.js';
import { WpPresentation } from '../../protocols/generated/presentation_time.js';
import { XdgWmBase } from '../../protocols/generated/xdg_shell.js';
import { ZwpLinuxDmabufV1 } from '../../protocols/generated/linux_dmabuf_unstable_v1.js';

const root = resolve(import.meta.dirname, '../..');
const runtimeDir = useRuntimeDir('gp-wl-');

const notUsed = (what: string) => () => {
  throw new Error(`${what} is not used by this test`);
};

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string; code: number | string }> {
  return new Promise((resolvePromise) => {
    execFile(cmd, args, { env, timeout: 20_000 }, (err, stdout, stderr) => {
      resolvePromise({ stdout, stderr, code: err ? ((err as { code?: number | string }).code ?? 1) : 0 });
    });
  });
}

describe('server in the Node event loop, real client (wayland-info)', () => {
  it('wayland-info sees our globals, versions and events while the loop keeps ticking', async () => {
    const display = Display.create();
    const socket = 'gp-wayland-info';
    display.addSocket(socket);
    const bound: string[] = [];

    WlCompositor.global(display, 5, (id) => {
      bound.push('wl_compositor');
      id.create({ createSurface: notUsed('create_surface'), createRegion: notUsed('create_region') });
    });
    WlShm.global(display, 1, (id) => {
      bound.push('wl_shm');
      const shm = id.create({ createPool: notUsed('create_pool') });
      for (const f of [WlShmFormat.ARGB8888, WlShmFormat.XRGB8888, WlShmFormat.NV12]) shm.sendFormat(f);
    });
    WlOutput.global(display, 4, (id) => {
      bound.push('wl_output');
      const out = id.create({});
      out.sendGeometry(10, 20, 600, 340, WlOutputSubpixel.HORIZONTAL_RGB, 'Guestplane', 'Virtual-1', WlOutputTransform.NORMAL);
      out.sendMode(WlOutputMode.CURRENT | WlOutputMode.PREFERRED, 1920, 1080, 60000);
      if (out.version >= 2) out.sendScale(2);
      if (out.version >= 4) {
        out.sendName('GP-1');
        out.sendDescription('guestplane test output');
      }
      if (out.version >= 2) out.sendDone();
    });
    WlSeat.global(display, 7, (id) => {
      bound.push('wl_seat');
      const seat = id.create({ getPointer: notUsed('get_pointer'), getKeyboard: notUsed('get_keyboard'), getTouch: notUsed('get_touch') });
      seat.sendCapabilities(WlSeatCapability.POINTER);
      if (seat.version >= 2) seat.sendName('seat-gp');
    });
    WpPresentation.global(display, 1, (id) => {
      bound.push('wp_presentation');
      id.create({ feedback: notUsed('feedback') }).sendClockId(1);
    });
    XdgWmBase.global(display, 5, (id) => {
      id.create({ createPositioner: notUsed('create_positioner'), getXdgSurface: notUsed('get_xdg_surface'), pong: () => {} });
    });
    ZwpLinuxDmabufV1.global(display, 3, (id) => {
      bound.push('zwp_linux_dmabuf_v1');
      const dmabuf = id.create({ createParams: notUsed('create_params'), getDefaultFeedback: notUsed('feedback'), getSurfaceFeedback: notUsed('feedback') });
      dmabuf.sendFormat(0x34325258); // XR24
      dmabuf.sendModifier(0x34325258, 0, 0);
    });

    const errors: unknown[] = [];
    display.start({ onError: (e) => errors.push(e) });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 2);
    let result: Awaited<ReturnType<typeof run>>;
    let idleTicks: number;
    try {
      // Served from a background poll: timers keep firing while the server waits...
      await new Promise((r) => setTimeout(r, 100));
      idleTicks = ticks;
      // ...and while it serves a client in another process.
      result = await run('wayland-info', [], { ...process.env, XDG_RUNTIME_DIR: runtimeDir(), WAYLAND_DISPLAY: socket });
    } finally {
      clearInterval(timer);
      await display.stop();
      display.destroy();
    }
    const out = result.stdout;
    if (result.code === 'ENOENT') throw new Error('wayland-info is needed (apt-get install -y wayland-utils)');
    expect(result.code, `${result.stderr}\n${out}`).toBe(0);
    expect(errors).toEqual([]);
    // The Node loop kept running: a 2 ms interval fired all along.
    expect(idleTicks!).toBeGreaterThanOrEqual(5);
    expect(ticks).toBeGreaterThan(idleTicks!);

    const iface = (name: string, version: number) =>
      expect(out).toMatch(new RegExp(`interface: '${name}',\\s+version:\\s+${version},`));
    iface('wl_compositor', 5);
    iface('wl_shm', 1);
    iface('wl_output', 4);
    iface('wl_seat', 7);
    iface('wp_presentation', 1);
    iface('xdg_wm_base', 5);
    iface('zwp_linux_dmabuf_v1', 3);
    // What our bind handlers sent, as wayland-info printed it.
    // wl_shm formats: argb8888 and xrgb8888 are the special codes 0 and 1.
    expect(out).toMatch(/'wl_shm',[^\n]*\n\tformats \(fourcc\):\n(\t[^\n]*\n){3}/);
    expect(out).toMatch(/\t\s+0 = 'AR24'/);
    expect(out).toMatch(/\t\s+1 = 'XR24'/);
    expect(out).toMatch(/0x3231564e = 'NV12'/);
    expect(out).toMatch(/0x34325258 = 'XR24'; 0x0000000000000000 = LINEAR/);
    expect(out).toMatch(/name: GP-1/);
    expect(out).toMatch(/description: guestplane test output/);
    expect(out).toMatch(/make: 'Guestplane', model: 'Virtual-1'/);
    expect(out).toMatch(/width: 1920 px, height: 1080 px, refresh: 60\.000 Hz/);
    expect(out).toMatch(/scale: 2/);
    expect(out).toMatch(/name: seat-gp/);
    expect(out).toMatch(/capabilities: pointer/);
    expect(out).toMatch(/presentation clock id: 1 \(CLOCK_MONOTONIC\)/);
    // wayland-info binds the globals it prints details of (not wl_compositor / xdg_wm_base).
    expect([...bound].sort()).toEqual(['wl_output', 'wl_seat', 'wl_shm', 'wp_presentation', 'zwp_linux_dmabuf_v1']);
  }, 30_000);

  it('a display can be stopped and destroyed while the background poll waits', async () => {
    const display = Display.create();
    display.addSocketAuto();
    display.start();
    expect(display.running).toBe(true);
    await display.stop();
    expect(display.running).toBe(false);
    display.destroy();
    expect(display.destroyed).toBe(true);
  });

  it('a global above the interface version is refused', () => {
    const display = Display.create();
    try {
      expect(() => WlShm.global(display, 2, () => {})).toThrow(/version 2 is not within 1\.\.1/);
    } finally {
      display.destroy();
    }
  });
});

// ---------------------------------------------------------------------------------------
// In-process libwayland-client, for the round trip of every argument kind.

const TEST_XML = `<?xml version="1.0" encoding="UTF-8"?>
<protocol name="gp_test">
  <interface name="gp_test_manager" version="3">
    <enum name="flags" bitfield="true">
      <entry name="a" value="1"/><entry name="b" value="2"/><entry name="top" value="0x80000000"/>
    </enum>
    <enum name="error"><entry name="bad_value" value="7"/></enum>
    <request name="destroy" type="destructor"/>
    <request name="create_item">
      <arg name="id" type="new_id" interface="gp_test_item"/><arg name="label" type="string"/>
    </request>
    <request name="everything">
      <arg name="i" type="int"/><arg name="u" type="uint" enum="flags"/><arg name="f" type="fixed"/>
      <arg name="s" type="string"/><arg name="ns" type="string" allow-null="true"/>
      <arg name="o" type="object" interface="gp_test_item"/>
      <arg name="no" type="object" interface="gp_test_item" allow-null="true"/>
      <arg name="a" type="array"/><arg name="h" type="fd"/>
    </request>
    <request name="fail" since="2"><arg name="how" type="uint"/></request>
    <event name="everything">
      <arg name="i" type="int"/><arg name="u" type="uint" enum="flags"/><arg name="f" type="fixed"/>
      <arg name="s" type="string"/><arg name="ns" type="string" allow-null="true"/>
      <arg name="o" type="object" interface="gp_test_item"/>
      <arg name="no" type="object" interface="gp_test_item" allow-null="true"/>
      <arg name="a" type="array"/><arg name="h" type="fd"/>
    </event>
    <event name="spawn"><arg name="item" type="new_id" interface="gp_test_item"/><arg name="label" type="string"/></event>
    <event name="late" since="3"><arg name="x" type="int"/></event>
  </interface>
  <interface name="gp_test_item" version="3">
    <request name="destroy" type="destructor"/>
    <event name="hello"><arg name="label" type="string"/></event>
  </interface>
</protocol>
`;

/* eslint-disable @typescript-eslint/no-explicit-any */
type GpTest = any;

const lc = koffi.load('libwayland-client.so.0');
const ClientDispatcher = koffi.proto('int gp_client_dispatcher(const void *impl, void *proxy, uint32_t opcode, const void *msg, void *args)');
const wlc = {
  connect: lc.func('void *wl_display_connect(const char *name)'),
  disconnect: lc.func('void wl_display_disconnect(void *display)'),
  getFd: lc.func('int wl_display_get_fd(void *display)'),
  flush: lc.func('int wl_display_flush(void *display)'),
  prepareRead: lc.func('int wl_display_prepare_read(void *display)'),
  readEvents: lc.func('int wl_display_read_events(void *display)'),
  cancelRead: lc.func('void wl_display_cancel_read(void *display)'),
  dispatchPending: lc.func('int wl_display_dispatch_pending(void *display)'),
  getError: lc.func('int wl_display_get_error(void *display)'),
  getProtocolError: lc.func('uint32_t wl_display_get_protocol_error(void *display, _Out_ void **iface, _Out_ uint32_t *id)'),
  marshal: lc.func(
    'void *wl_proxy_marshal_array_flags(void *proxy, uint32_t opcode, const void *iface, uint32_t version, uint32_t flags, void *args)',
  ),
  addDispatcher: lc.func('int wl_proxy_add_dispatcher(void *proxy, gp_client_dispatcher *d, const void *impl, void *data)'),
  getId: lc.func('uint32_t wl_proxy_get_id(void *proxy)'),
  getClass: lc.func('const char *wl_proxy_get_class(void *proxy)'),
  getVersion: lc.func('uint32_t wl_proxy_get_version(void *proxy)'),
};
const WL_MARSHAL_FLAG_DESTROY = 1;

type Arg =
  | { i: number }
  | { u: number }
  | { f: number }
  | { s: string | null }
  | { o: unknown }
  | { n: 0 }
  | { a: Uint8Array }
  | { h: number };

interface ClientEvent {
  proxy: bigint;
  opcode: number;
  args: unknown[];
}

/** A libwayland-client connection stepped by hand, with one JS dispatcher for every proxy. */
class TestClient {
  readonly display: unknown;
  readonly events: ClientEvent[] = [];
  readonly proxies = new Map<bigint, { ptr: unknown; signatures: string[] }>();
  #cb: unknown;

  constructor(socket: string) {
    this.display = wlc.connect(socket);
    if (!this.display) throw new Error(`wl_display_connect(${socket}) failed`);
    this.#cb = koffi.register((_impl: unknown, proxy: unknown, opcode: number, _msg: unknown, args: unknown) => {
      const p = this.proxies.get(koffi.address(proxy));
      const sig = p?.signatures[opcode] ?? '';
      this.events.push({ proxy: koffi.address(proxy), opcode, args: decodeClientArgs(sig, args) });
      return 0;
    }, koffi.pointer(ClientDispatcher));
  }
  /** Registers a proxy whose events we decode with the given event signatures. */
  track(ptr: unknown, eventSignatures: string[]): bigint {
    const a = koffi.address(ptr);
    this.proxies.set(a, { ptr, signatures: eventSignatures });
    expect(wlc.addDispatcher(ptr, this.#cb, null, null)).toBe(0);
    return a;
  }
  marshal(proxy: unknown, opcode: number, iface: unknown, version: number, args: Arg[], flags = 0): unknown {
    const { buf, keep } = encodeClientArgs(args);
    const r = wlc.marshal(proxy, opcode, iface, version, flags, buf);
    keep.forEach((k) => koffi.free(k));
    return r;
  }
  /** Sends what is queued, reads what arrived, runs the dispatchers. */
  step(): void {
    wlc.flush(this.display);
    while (wlc.prepareRead(this.display) !== 0) wlc.dispatchPending(this.display);
    const [rev] = libc.poll([{ fd: wlc.getFd(this.display), events: libc.POLLIN }], 0);
    if (rev! & libc.POLLIN) wlc.readEvents(this.display);
    else wlc.cancelRead(this.display);
    wlc.dispatchPending(this.display);
  }
  get error(): number {
    return wlc.getError(this.display);
  }
  protocolError(): { code: number; id: number } {
    const ifaceOut = [null];
    const id = [0];
    const code = wlc.getProtocolError(this.display, ifaceOut, id);
    return { code, id: id[0]! };
  }
  close(): void {
    wlc.disconnect(this.display);
    koffi.unregister(this.#cb as never);
  }
}

function encodeClientArgs(args: Arg[]): { buf: Buffer; keep: unknown[] } {
  const buf = Buffer.alloc(8 * Math.max(args.length, 1));
  const keep: unknown[] = [];
  const nativeBytes = (bytes: Uint8Array): bigint => {
    const p = koffi.alloc('uint8_t', Math.max(bytes.length, 1));
    keep.push(p);
    if (bytes.length) new Uint8Array(koffi.view(p, bytes.length)).set(bytes);
    return koffi.address(p);
  };
  args.forEach((a, k) => {
    const off = 8 * k;
    if ('i' in a) buf.writeInt32LE(a.i, off);
    else if ('u' in a) buf.writeUInt32LE(a.u, off);
    else if ('f' in a) buf.writeInt32LE(Math.round(a.f * 256), off);
    else if ('h' in a) buf.writeInt32LE(a.h, off);
    else if ('n' in a) buf.writeBigUInt64LE(0n, off);
    else if ('s' in a) buf.writeBigUInt64LE(a.s === null ? 0n : nativeBytes(Buffer.from(`${a.s}\0`)), off);
    else if ('o' in a) buf.writeBigUInt64LE(a.o === null ? 0n : koffi.address(a.o), off);
    else if ('a' in a) {
      const arr = Buffer.alloc(24);
      arr.writeBigUInt64LE(BigInt(a.a.length), 0);
      arr.writeBigUInt64LE(BigInt(a.a.length), 8);
      arr.writeBigUInt64LE(nativeBytes(a.a), 16);
      buf.writeBigUInt64LE(nativeBytes(arr), off);
    }
  });
  return { buf, keep };
}

function decodeClientArgs(signature: string, args: unknown): unknown[] {
  const out: unknown[] = [];
  let k = 0;
  for (const ch of signature.replace(/^[0-9]+/, '').replace(/\?/g, '')) {
    const off = 8 * k++;
    switch (ch) {
      case 'i':
      case 'h':
        out.push(koffi.decode(args, off, 'int32_t'));
        break;
      case 'u':
        out.push(koffi.decode(args, off, 'uint32_t'));
        break;
      case 'f':
        out.push((koffi.decode(args, off, 'int32_t') as number) / 256);
        break;
      case 's':
        out.push(koffi.decode(args, off, 'const char *'));
        break;
      case 'o':
      case 'n': {
        const p = koffi.decode(args, off, 'void *');
        out.push(p === null ? null : p);
        break;
      }
      case 'a': {
        const p = koffi.decode(args, off, 'void *');
        const arr = koffi.decode(p, koffi.struct({ size: 'size_t', alloc: 'size_t', data: 'void *' })) as { size: number; data: unknown };
        out.push(Number(arr.size) ? Buffer.from(koffi.view(arr.data, Number(arr.size)).slice(0)) : Buffer.alloc(0));
        break;
      }
    }
  }
  return out;
}

function memfdWith(content: string): number {
  const fd = libc.memfdCreate('gp-test', 0);
  libc.write(fd, Buffer.from(content));
  return fd;
}
function readFd(fd: number): string {
  const buf = Buffer.alloc(64);
  const n = libc.pread(fd, buf, 0);
  return buf.subarray(0, n).toString();
}

describe('round trip of every argument kind with libwayland-client', () => {
  let gp: GpTest;
  let display: Display;
  let genDir: string;
  const socket = 'gp-roundtrip';
  let sockets = 0;
  let registryIface: unknown;

  beforeAll(async () => {
    // Generate the test protocol with our scanner and load it like a checked-in module.
    genDir = mkdtempSync(join(tmpdir(), 'gp-gen-'));
    mkdirSync(join(genDir, 'generated'));
    writeFileSync(join(genDir, 'runtime.ts'), `export * from ${JSON.stringify(join(root, 'protocols/runtime.ts'))};\n`);
    const protocol = parseProtocol(TEST_XML, 'gp_test.xml');
    writeFileSync(join(genDir, 'generated/gp_test.ts'), generate(protocol, { source: 'gp_test.xml', all: [protocol] }));
    gp = await import(pathToFileURL(join(genDir, 'generated/gp_test.ts')).href);
    registryIface = (await import('../../protocols/generated/wayland.js')).wl_registry_interface.ptr;
  });
  afterAll(() => {
    rmSync(genDir, { recursive: true, force: true });
  });
  afterEach(() => {
    if (display && !display.destroyed) display.destroy();
  });

  function setup(globalVersion: number, handlers: (log: string[]) => object) {
    display = Display.create();
    const socketName = `${socket}-${++sockets}`;
    display.addSocket(socketName);
    const log: string[] = [];
    const managers: Resource[] = [];
    const items: Resource[] = [];
    const bindVersions: number[] = [];
    gp.GpTestManager.global(display, globalVersion, (id: NewId<Resource>) => {
      bindVersions.push(id.version);
      managers.push(id.create(handlers(log) as never));
    });
    return { socketName, log, managers, items, bindVersions };
  }

  /** Connects, binds gp_test_manager at `version`, returns client + manager proxy. */
  function connect(socketName: string, version: number) {
    const client = new TestClient(socketName);
    const registry = client.marshal(client.display, 1, registryIface, 1, [{ n: 0 }]);
    const regId = client.track(registry, ['usu', 'u']);
    pump(client);
    const global = client.events.find((e) => e.proxy === regId && e.opcode === 0 && e.args[1] === 'gp_test_manager');
    expect(global, 'gp_test_manager is advertised').toBeDefined();
    const manager = client.marshal(registry, 0, gp.gp_test_manager_interface.ptr, version, [
      { u: global!.args[0] as number },
      { s: 'gp_test_manager' },
      { u: version },
      { n: 0 },
    ]);
    client.track(manager, gp.gp_test_manager_interface.events.map((m: { signature: string }) => m.signature));
    pump(client);
    return { client, manager, advertised: global!.args[2] as number };
  }

  function pump(client: TestClient, rounds = 4): void {
    for (let i = 0; i < rounds; i++) {
      client.step();
      display.dispatch();
      client.step();
    }
  }

  it('carries int, uint/bitfield, fixed, string, null string, object, null object, array and fd both ways', async () => {
    const received: unknown[][] = [];
    const serverItems: Resource[] = [];
    let clientRef: Client | undefined;
    const { socketName, managers, bindVersions } = setup(2, () => ({
      createItem(res: Resource, id: NewId<Resource>, label: string) {
        expect(id).toBeInstanceOf(NewId);
        expect(id.version).toBe(res.version);
        const item = id.create({}) as Resource & { sendHello(l: string): void };
        serverItems.push(item);
        item.sendHello(`hi ${label}`);
      },
      everything(_res: Resource, ...args: unknown[]) {
        received.push(args);
      },
      fail() {},
    }));
    const { client, manager, advertised } = connect(socketName, 2);
    expect(advertised).toBe(2);
    expect(bindVersions).toEqual([2]);
    expect(managers).toHaveLength(1);
    const mgr = managers[0]! as Resource & Record<string, (...a: unknown[]) => void>;
    expect(mgr).toBeInstanceOf(gp.GpTestManager);
    expect(mgr.version).toBe(2);
    clientRef = mgr.client;
    expect(clientRef.credentials().pid).toBe(process.pid);

    // new_id request: the server creates the item and answers on it.
    const itemProxy = client.marshal(manager, 1, gp.gp_test_item_interface.ptr, 2, [{ n: 0 }, { s: 'first ✓' }]);
    const itemAddr = client.track(itemProxy, ['s']);
    pump(client);
    expect(serverItems).toHaveLength(1);
    expect(serverItems[0]).toBeInstanceOf(gp.GpTestItem);
    expect(serverItems[0]!.id).toBe(wlc.getId(itemProxy));
    expect(client.events.find((e) => e.proxy === itemAddr)?.args).toEqual(['hi first ✓']);

    // Every kind, client -> server.
    const fd = memfdWith('payload-from-client');
    const bytes = Uint8Array.from({ length: 37 }, (_, i) => (i * 7) & 0xff);
    client.marshal(manager, 2, null, 2, [
      { i: -123456 },
      { u: 0x80000003 },
      { f: -2.75 },
      { s: 'héllo wörld' },
      { s: null },
      { o: itemProxy },
      { o: null },
      { a: bytes },
      { h: fd },
    ]);
    client.marshal(manager, 2, null, 2, [
      { i: 2147483647 },
      { u: 0 },
      { f: 1024.00390625 },
      { s: '' },
      { s: 'not null' },
      { o: itemProxy },
      { o: itemProxy },
      { a: new Uint8Array(0) },
      { h: fd },
    ]);
    libc.close(fd);
    pump(client);
    expect(received).toHaveLength(2);
    const [i, u, f, s, ns, o, no, a, h] = received[0]!;
    expect(i).toBe(-123456);
    expect(u).toBe(0x80000003);
    expect(u).toBe((gp.GpTestManagerFlags.TOP | gp.GpTestManagerFlags.A | gp.GpTestManagerFlags.B) >>> 0);
    expect(f).toBe(-2.75);
    expect(s).toBe('héllo wörld');
    expect(ns).toBeNull();
    expect(o).toBe(serverItems[0]);
    expect(no).toBeNull();
    expect(a).toBeInstanceOf(Uint8Array);
    expect(Array.from(a as Uint8Array)).toEqual(Array.from(bytes));
    expect(typeof h).toBe('number');
    expect(readFd(h as number)).toBe('payload-from-client');
    libc.close(h as number);
    const second = received[1]!;
    expect(second.slice(0, 7)).toEqual([2147483647, 0, 1024.00390625, '', 'not null', serverItems[0], serverItems[0]]);
    expect((second[7] as Uint8Array).length).toBe(0);
    libc.close(second[8] as number);

    // Every kind, server -> client.
    const sfd = memfdWith('payload-from-server');
    mgr.sendEverything(-7, gp.GpTestManagerFlags.B, 3.5, 'ünïcode', null, serverItems[0], null, Uint8Array.of(9, 8, 7), sfd);
    mgr.sendEverything(0, 0, -0.00390625, 'x', 'y', serverItems[0], serverItems[0], new Uint8Array(0), sfd);
    libc.close(sfd); // libwayland sent a duplicate
    pump(client);
    const evs = client.events.filter((e) => e.proxy === koffi.address(manager) && e.opcode === 0);
    expect(evs).toHaveLength(2);
    const [ei, eu, ef, es, ens, eo, eno, ea, eh] = evs[0]!.args;
    expect([ei, eu, ef, es, ens]).toEqual([-7, 2, 3.5, 'ünïcode', null]);
    expect(koffi.address(eo)).toBe(itemAddr);
    expect(eno).toBeNull();
    expect(Array.from(ea as Buffer)).toEqual([9, 8, 7]);
    expect(readFd(eh as number)).toBe('payload-from-server');
    libc.close(eh as number);
    const e2 = evs[1]!.args;
    expect(e2.slice(0, 5)).toEqual([0, 0, -0.00390625, 'x', 'y']);
    expect(koffi.address(e2[6])).toBe(itemAddr);
    expect((e2[7] as Buffer).length).toBe(0);
    libc.close(e2[8] as number);

    // new_id event: a server-made resource arrives as a new proxy of the right interface.
    const spawned = gp.GpTestItem.create(mgr.client, mgr.version, 0) as Resource;
    expect(spawned.id).toBeGreaterThanOrEqual(0xff000000);
    mgr.sendSpawn(spawned, 'spawned');
    pump(client);
    const spawn = client.events.find((e) => e.proxy === koffi.address(manager) && e.opcode === 1)!;
    expect(spawn.args[1]).toBe('spawned');
    expect(wlc.getClass(spawn.args[0])).toBe('gp_test_item');
    expect(wlc.getId(spawn.args[0])).toBe(spawned.id);
    expect(wlc.getVersion(spawn.args[0])).toBe(2);

    // since: an event newer than the resource's version throws, naming both versions.
    expect(() => mgr.sendLate(1)).toThrow(VersionError);
    expect(() => mgr.sendLate(1)).toThrow(/gp_test_manager@\d+\.late needs version 3; the client bound version 2/);
    // Wrong values are refused before they reach libwayland.
    expect(() => mgr.sendEverything(1.5, 0, 0, 's', null, serverItems[0], null, new Uint8Array(0), 0)).toThrow(/int32/);
    expect(() => mgr.sendEverything(1, 2 ** 32, 0, 's', null, serverItems[0], null, new Uint8Array(0), 0)).toThrow(/uint32/);
    expect(() => mgr.sendEverything(1, 0, 0, null, null, serverItems[0], null, new Uint8Array(0), 0)).toThrow(/string/);
    expect(() => mgr.sendEverything(1, 0, 0, 's', null, null, null, new Uint8Array(0), 0)).toThrow(/resource/);

    // Destructor request without a handler: the resource is destroyed, listeners run.
    let itemGone = false;
    serverItems[0]!.onDestroy(() => (itemGone = true));
    client.marshal(itemProxy, 0, null, 2, [], WL_MARSHAL_FLAG_DESTROY);
    pump(client);
    expect(itemGone).toBe(true);
    expect(serverItems[0]!.destroyed).toBe(true);
    expect(() => (serverItems[0] as Resource & { sendHello(l: string): void }).sendHello('late')).toThrow(/destroyed/);

    // The client leaving destroys its resources and the Client.
    let clientGone = false;
    let mgrGone = false;
    clientRef.onDestroy(() => (clientGone = true));
    mgr.onDestroy(() => (mgrGone = true));
    expect(client.error).toBe(0);
    client.close();
    for (let k = 0; k < 4; k++) display.dispatch();
    expect(clientGone).toBe(true);
    expect(mgrGone).toBe(true);
    expect(clientRef.destroyed).toBe(true);
    expect(spawned.destroyed).toBe(true);
  });

  it('a ProtocolViolation from a handler becomes that protocol error for the client', () => {
    const { socketName, managers } = setup(2, () => ({
      createItem: notUsed('create_item'),
      everything: notUsed('everything'),
      fail(res: Resource, how: number) {
        throw new ProtocolViolation(res, gp.GpTestManagerError.BAD_VALUE, `how=${how} is bad`);
      },
    }));
    const { client, manager } = connect(socketName, 2);
    client.marshal(manager, 3, null, 2, [{ u: 42 }]);
    pump(client);
    expect(client.error).not.toBe(0);
    expect(client.protocolError()).toEqual({ code: 7, id: managers[0]!.id });
    client.close();
  });

  it('a handler that throws disconnects the client and dispatch() rethrows the error', () => {
    const { socketName } = setup(2, () => ({
      createItem: notUsed('create_item'),
      everything: notUsed('everything'),
      fail() {
        throw new Error('boom');
      },
    }));
    const { client, manager } = connect(socketName, 2);
    client.marshal(manager, 3, null, 2, [{ u: 1 }]);
    client.step();
    expect(() => display.dispatch()).toThrow(/gp_test_manager@\d+\.fail: boom/);
    client.step();
    expect(client.error).not.toBe(0);
    expect(client.protocolError().code).toBe(3); // wl_display.error.implementation
    client.close();
  });

  it('destroying the display under a connected client: every destroy listener runs, and one that sends to a sibling object is safe', () => {
    // A compositor's surface going away releases its buffers (events to other objects of
    // the same client). Before clients were destroyed ahead of wl_display_destroy this
    // read a freed display and crashed the process (seen with weston-simple-dmabuf-egl
    // connected at close).
    const items: (Resource & { sendHello(l: string): void })[] = [];
    const { socketName } = setup(2, () => ({
      createItem(_res: Resource, id: NewId<Resource>) {
        items.push(id.create({}) as Resource & { sendHello(l: string): void });
      },
      everything: notUsed('everything'),
      fail() {},
    }));
    const { client, manager } = connect(socketName, 2);
    for (const label of ['a', 'b']) {
      const item = client.marshal(manager, 1, gp.gp_test_item_interface.ptr, 2, [{ n: 0 }, { s: label }]);
      client.track(item, ['s']);
    }
    pump(client);
    expect(items).toHaveLength(2);
    const [a, b] = items as [(typeof items)[0], (typeof items)[0]];
    const sent: string[] = [];
    let aGone = false;
    let bGone = false;
    // Whichever goes first tells the other.
    a.onDestroy(() => {
      aGone = true;
      if (!b.destroyed) (b.sendHello('a left'), sent.push('to b'));
    });
    b.onDestroy(() => {
      bGone = true;
      if (!a.destroyed) (a.sendHello('b left'), sent.push('to a'));
    });
    display.destroy();
    expect({ aGone, bGone }).toEqual({ aGone: true, bGone: true });
    expect(sent).toHaveLength(1);
    expect(a.client.destroyed).toBe(true);
    client.close();
  });

  it('libwayland enforces request since: version 1 may not send a since-2 request', () => {
    let failed = false;
    const { socketName } = setup(2, () => ({
      createItem: notUsed('create_item'),
      everything: notUsed('everything'),
      fail() {
        failed = true;
      },
    }));
    const { client, manager } = connect(socketName, 1);
    client.marshal(manager, 3, null, 1, [{ u: 1 }]);
    pump(client);
    expect(failed).toBe(false);
    expect(client.error).not.toBe(0);
    expect(client.protocolError().code).toBe(1); // wl_display.error.invalid_method
    client.close();
  });

});
