// Issue 25 (items 1-2): the QEMU connection is untrusted input. A misbehaving QEMU
// (helpers/fake-qemu.ts, written from the protocol) on a private bus against the real
// `guestplane kiosk --qemu-dbus` process, one kiosk per class of misbehaviour:
//   1. what the kiosk holds before any QEMU came is "idle": the minimum over 1.5 s of
//      samples (a bus connection attempt, once a second while no QEMU is there, only adds);
//   2. a well-behaved QEMU shows a dma-buf frame (scanout) and a pixel frame (copy) and
//      exits: it must leave nothing but the output's own buffers (background and CPU
//      composition: OWN_BUFFERS, kept for the output's life) and, for RSS, the code of the
//      libraries loaded (the GL driver's is tens of MiB): RSS is compared from here on;
//   3. the hostile QEMU attaches, misbehaves, and exits;
//   4. fds (dma-bufs apart) and sockets back to idle, FBs to idle plus those, RSS
//      within a bound of step 2; the longest event-loop stall the kiosk printed meanwhile
//      printed and bounded; during floods stats lines kept coming and frames were presented;
//   5. SIGTERM: exit 0, "screen restored", the CRTC state as before the kiosk started.
// Bounds come from runs in the rig (TCG, 2 CPUs shared with a second rig): see each case.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as drm from '../../ffi/drm.js';
import { KmsDevice, findCardByDriver } from '../../plugin/kms/device.js';
import { screenState, type ScreenState } from './helpers/modeset.js';
import type { DbusArg } from '../../plugin/dbus/connection.js';
import { KioskProcess } from './helpers/kiosk-process.js';
import { readFramebuffers } from './helpers/debugfs.js';
import { FakeQemu, PIXMAN_X8R8G8B8, dmabufArgs, type FakeListener, type RawOut } from './helpers/fake-qemu.js';
import { GuestRam } from './helpers/guest-ram.js';
import { formatUsage, pollUntil, usageOf, type Usage } from './helpers/process-usage.js';
import { startSessionBus, type SessionBus } from './helpers/qemu.js';

const card = findCardByDriver('vkms');
const missing = !card || !existsSync('/dev/udmabuf');
const W = 640;
const H = 480;
const XR24 = drm.fourcc('XR24');
/** The fds the hostile QEMU sends undeclared are this memfd's copies: none may stay in the kiosk. */
const UNDECLARED = /gp-fake-undeclared/;

interface KioskStats {
  fps: number;
  paths: Record<string, number>;
  stallMs: number;
  t: number;
}

const statsOf = (lines: readonly string[]): KioskStats[] => lines.filter((l) => l.startsWith('{"stats"')).map((l) => (JSON.parse(l) as { stats: KioskStats }).stats);
/** The longest time between two consecutive stats lines, s. */
const gapBetween = (s: readonly KioskStats[]) => Math.max(0, ...s.slice(1).map((x, i) => x.t - s[i]!.t));
const framesIn = (s: readonly KioskStats[], path: string) => s.reduce((n, x) => n + (x.paths[path] ?? 0), 0);

/**
 * Longest event-loop stall allowed while QEMU lies, floods or hangs. D-Bus work comes in
 * 2 ms slices (4 ms when these were measured); the loop also runs copy-path frames, commits
 * and GC. Measured in the rig
 * (TCG, 2 CPUs shared with another rig): 160-950 ms (lying fds 174-295, oversized 177-242,
 * floods 185-950, hangs 160-553). Before the D-Bus rewrite (4efbffa) the issue measured
 * 36-108 s for these. Twice the worst measured.
 */
const STALL_BOUND_MS = 2000;
/**
 * The output's own buffers a QEMU's frames make it allocate, kept for the output's life:
 * the background (output/own-buffers.ts: where no opaque layer covers the screen, as
 * around a small surface) and the CPU composer's two (compose/composer.ts cpuBuffers).
 */
const OWN_BUFFERS = 3;
/**
 * Under TCG the kiosk works off about 120 Update calls a second while it presents 15 copy
 * frames a second (each costs ~60 ms there; D-Bus got a 4 ms slice per loop turn then, 2 ms
 * now): 20,000 took 171 s in the rig. 4,000 keep this file to a few minutes and still flood
 * for several seconds (4.9 s with 2 ms slices and the read-ahead).
 */
const FLOOD_UPDATES = 4_000;
const FLOOD_UNKNOWN = 5_000;

const AR24 = drm.fourcc('AR24');
const XB24 = drm.fourcc('XB24');
const AB24 = drm.fourcc('AB24');
const RG16 = drm.fourcc('RG16');
const DISTINCT_FORMATS = [XR24, AR24, XB24, AB24, RG16];

interface Shape {
  width: number;
  height: number;
  stride: number;
  fourcc: number;
  modifier?: bigint;
  y0Top?: boolean;
}

/** Unusual but well-formed descriptions (vkms: LINEAR only, 33 formats), and a few lies. */
const SHAPES: Shape[] = [
  { width: 640, height: 480, stride: 4096, fourcc: XR24 }, // padded stride
  { width: 333, height: 217, stride: 1344, fourcc: AR24 }, // odd size
  { width: 1, height: 1, stride: 64, fourcc: XB24 },
  { width: 1024, height: 768, stride: 4096, fourcc: AB24 },
  { width: 640, height: 480, stride: 1280, fourcc: RG16 },
  { width: 640, height: 480, stride: 1920, fourcc: drm.fourcc('RG24') },
  { width: 320, height: 240, stride: 2560, fourcc: drm.fourcc('XR48') },
  { width: 640, height: 480, stride: 2560, fourcc: drm.fourcc('AB30') }, // no plane takes it: composed
  { width: 640, height: 480, stride: 1280, fourcc: drm.fourcc('YUYV') }, // no plane takes it
  { width: 640, height: 480, stride: 2560, fourcc: XR24, modifier: 0x00ffffffffffffffn }, // DRM_FORMAT_MOD_INVALID (shown pixel-exact: qemu-dbus-peer.test.ts)
  { width: 640, height: 480, stride: 2560, fourcc: XR24, modifier: 0x0100000000000001n }, // I915_FORMAT_MOD_X_TILED
  { width: 640, height: 480, stride: 2560, fourcc: XR24, y0Top: true }, // GL's bottom-up rows
  { width: 640, height: 480, stride: 1024, fourcc: XR24 }, // lie: stride below width × 4
  { width: 4096, height: 4096, stride: 16384, fourcc: XR24 }, // lie: larger than the dma-buf
  { width: 640, height: 480, stride: 2560, fourcc: 0x20202020 }, // lie: no such format
  { width: 640, height: 480, stride: 2560, fourcc: XR24 },
];

/** Update rectangles on a 64x48 surface: clipped, empty, outside, negative, lying about their data. */
const ODD_UPDATES: { x: number; y: number; w: number; h: number; stride: number; len?: number }[] = [
  { x: -5, y: -5, w: 10, h: 10, stride: 40 },
  { x: 60, y: 44, w: 20, h: 20, stride: 80 },
  { x: 0, y: 0, w: 0, h: 0, stride: 0 },
  { x: 64, y: 48, w: 1, h: 1, stride: 4 },
  { x: 0, y: 0, w: 64, h: 48, stride: 256 },
  { x: 0, y: 0, w: 64, h: 48, stride: 256, len: 100 },
  { x: 0, y: 0, w: 64, h: 48, stride: 4 },
  { x: 2147483647, y: 2147483647, w: 2147483647, h: 2147483647, stride: 4, len: 4 },
  { x: 10, y: 10, w: 1, h: 1, stride: 4 },
  { x: 1, y: 1, w: 63, h: 47, stride: 252 },
];

let bus: SessionBus;
let ram: GuestRam;
let dev: KmsDevice;

/** One kiosk, warmed up by a well-behaved QEMU; `act` is the hostile part. */
class Case {
  readonly k: KioskProcess;
  idle!: Usage;
  #lostSeen = 0;
  readonly #fakes: FakeQemu[] = [];

  constructor(readonly name: string) {
    this.k = new KioskProcess(['--qemu-dbus', bus.address, '--no-input', '--mode', `${W}x${H}`, '--fit', 'native']);
  }

  get pid(): number {
    return this.k.child.pid!;
  }

  usage(): Usage {
    return usageOf(this.pid, card!, UNDECLARED);
  }

  /** A fake QEMU on the bus, answering the attach steps as `steps` say. */
  async start(steps: Partial<FakeQemu['steps']> = {}): Promise<FakeQemu> {
    const fake = await FakeQemu.start(bus.address, { width: W, height: H });
    this.#fakes.push(fake);
    Object.assign(fake.steps, steps);
    return fake;
  }

  /** A well-mannered fake QEMU on the bus and the listener the kiosk registers with it. */
  async attach(): Promise<{ fake: FakeQemu; l: FakeListener }> {
    const fake = await this.start();
    return { fake, l: await fake.nextListener() };
  }

  /** QEMU exits; resolves once the kiosk said it shows no signal. */
  async vanish(fake: FakeQemu): Promise<void> {
    const n = ++this.#lostSeen;
    fake.close();
    await this.k.waitLine(() => this.k.lines.filter((l) => l.includes('showing no signal until QEMU is back')).length >= n, 20_000);
  }

  /** The kiosk noticed a connection end it caused itself (a bound passed). */
  expectLost(): number {
    return ++this.#lostSeen;
  }

  /** What the kiosk holds now, the least over 1.5 s of samples (RSS: the last). */
  async settled(): Promise<Usage> {
    const samples: Usage[] = [];
    const end = Date.now() + 1500;
    while (Date.now() < end) {
      samples.push(this.usage());
      await new Promise((r) => setTimeout(r, 50));
    }
    const min = (f: (u: Usage) => number) => Math.min(...samples.map(f));
    return { fds: min((u) => u.fds), sockets: min((u) => u.sockets), dmabufs: min((u) => u.dmabufs), fbs: min((u) => u.fbs), rssMiB: samples.at(-1)!.rssMiB, marked: min((u) => u.marked) };
  }

  /** `composed`: also a frame no plane takes, so that the GL driver is loaded before RSS is compared. */
  async warmUp(composed: boolean): Promise<void> {
    await this.k.stats(() => true);
    this.idle = await this.settled();
    const { fake, l } = await this.attach();
    // A padded stride: were its FB left behind, debugfs would tell it from the output's own (2560).
    await showDmabuf(l, 0, W * 4 + 64);
    await this.k.stats((s) => (s.paths.scanout ?? 0) > 0);
    if (composed) {
      const fd = ram.dmabuf(0, W * 4 * H);
      try {
        await l.scanoutDmabuf(fd, { width: W, height: H, stride: W * 4, fourcc: drm.fourcc('AB30') });
      } finally {
        ram.drop(fd);
      }
      await l.updateDmabuf(W, H);
      await this.k.stats((s) => (s.paths.gles ?? 0) + (s.paths.copy ?? 0) > 0);
    }
    await l.scanoutPixels(1);
    await this.k.stats((s) => (s.paths.copy ?? 0) > 0);
    await this.vanish(fake);
    await this.expectIdle('a well-behaved QEMU', Infinity);
    this.warmRssMiB = (await this.settled()).rssMiB;
  }

  warmRssMiB = 0;

  /** After the last fake is gone: back to idle (fds, sockets, dma-bufs exact; FBs plus the output's own; RSS within `rssBoundMiB` of the warm kiosk). */
  async expectIdle(what: string, rssBoundMiB: number): Promise<Usage> {
    let u = this.usage();
    const i = this.idle;
    const fbs = i.fbs + OWN_BUFFERS;
    await pollUntil(() => {
      u = this.usage();
      return u.fds <= i.fds && u.sockets <= i.sockets && u.dmabufs <= i.dmabufs && u.fbs <= fbs;
    }, 15_000);
    const fbList = readFramebuffers(card!).map((f) => `${f.format} ${f.width}x${f.height}/${f.layers[0]?.pitch ?? '?'}`).join(', ');
    console.log(`${this.name}: after ${what}: ${formatUsage(u)} [${fbList}]; idle ${formatUsage(i)}${Number.isFinite(rssBoundMiB) ? `, RSS of the warm kiosk ${this.warmRssMiB.toFixed(1)} MiB` : ''}`);
    expect({ fds: u.fds, sockets: u.sockets, dmabufs: u.dmabufs, undeclared: u.marked }).toEqual({ fds: i.fds, sockets: i.sockets, dmabufs: i.dmabufs, undeclared: 0 });
    expect(u.fbs).toBeLessThanOrEqual(fbs);
    if (Number.isFinite(rssBoundMiB)) expect(u.rssMiB).toBeLessThan(this.warmRssMiB + rssBoundMiB);
    return u;
  }

  /** The kiosk's stats lines printed since line index `from`. */
  statsSince(from: number): KioskStats[] {
    return statsOf(this.k.lines.slice(from));
  }

  /** SIGTERM restores the screen. */
  async stop(before: ScreenState): Promise<void> {
    this.k.child.kill('SIGTERM');
    const ex = await this.k.exited;
    expect(ex.code).toBe(0);
    expect(this.k.lines.join('\n')).toMatch(/SIGTERM received; \d+ frames presented .*screen restored/);
    drm.setMaster(dev.fd);
    try {
      expect(screenState(dev)).toEqual(before);
    } finally {
      drm.dropMaster(dev.fd);
    }
  }

  async close(): Promise<void> {
    for (const f of this.#fakes) f.close();
    await this.k.kill();
  }
}

/** A dma-buf frame as QEMU sends a virtio-gpu blob scanout: ScanoutDMABUF, then UpdateDMABUF (answered once shown). */
async function showDmabuf(l: FakeListener, n: number, stride = W * 4): Promise<void> {
  const fd = ram.dmabuf((n % 4) * stride * H, stride * H);
  try {
    await l.scanoutDmabuf(fd, { width: W, height: H, stride, fourcc: XR24 });
  } finally {
    ram.drop(fd);
  }
  await l.updateDmabuf(W, H);
}

/** Runs one class: warm-up, `act`, QEMU gone, back to idle, SIGTERM. */
async function runCase(name: string, rssBoundMiB: number, act: (c: Case) => Promise<void>, composed = false): Promise<{ stalls: number[]; c: Case }> {
  drm.setMaster(dev.fd);
  const before = screenState(dev);
  drm.dropMaster(dev.fd);
  const c = new Case(name);
  try {
    await c.warmUp(composed);
    const from = c.k.lines.length;
    await act(c);
    await c.expectIdle('the hostile QEMU', rssBoundMiB);
    const stalls = c.statsSince(from).map((s) => s.stallMs);
    console.log(`${name}: ${stalls.length} stats lines, longest event-loop stall ${Math.max(...stalls).toFixed(0)} ms (per line: ${stalls.map((s) => s.toFixed(0)).join(' ')})`);
    await c.stop(before);
    return { stalls, c };
  } finally {
    await c.close();
  }
}

describe.skipIf(missing)('kiosk --qemu-dbus against a hostile QEMU (issue 25)', () => {
  beforeAll(() => {
    bus = startSessionBus(mkdtempSync(join(tmpdir(), 'gp-hostile-')));
    ram = new GuestRam(16 * 1024 * 1024);
    dev = KmsDevice.open(card!);
    drm.dropMaster(dev.fd);
  });
  afterAll(async () => {
    await dev?.close();
    ram?.close();
    bus?.close();
  });

  it('buffers of every shape, 400 distinct udmabufs and odd Update rectangles: nothing of them outlives the QEMU', async () => {
    // RSS: +15 to +22 MiB over the warm kiosk measured (V8 heap grown by 400 calls and frames).
    const { stalls } = await runCase('shapes', 48, async (c) => {
      const { fake, l } = await c.attach();
      // Unusual but well-formed (and a few lying) dma-buf descriptions: scanned out,
      // composed (GLES/CPU) or refused, each its own import.
      let shown = 0;
      let refused = 0;
      for (const [i, s] of SHAPES.entries()) {
        // 4 MiB at most: the 4096x4096 shape lies about a buffer that small.
        const fd = ram.dmabuf((i % 3) * 65536, Math.min(4 * 1024 * 1024, s.stride * s.height));
        try {
          await l.scanoutDmabuf(fd, s);
          await l.updateDmabuf(s.width, s.height);
          shown++;
        } catch {
          refused++;
        } finally {
          ram.drop(fd);
        }
      }
      // 400 distinct buffers sent as fast as the kiosk answers ScanoutDMABUF.
      for (let i = 0; i < 400; i++) {
        const w = 64 + (i % 7) * 8;
        const fd = ram.dmabuf((i % 200) * 65536, 65536);
        try {
          await l.scanoutDmabuf(fd, { width: w, height: 64, stride: w * 4 + (i % 3) * 64, fourcc: DISTINCT_FORMATS[i % DISTINCT_FORMATS.length]! });
        } finally {
          ram.drop(fd);
        }
        void l.updateDmabuf(w, 64).catch(() => {});
      }
      // Odd rectangles on a pixel surface.
      await l.scanoutPixels(3);
      let oddRefused = 0;
      for (const r of ODD_UPDATES) {
        const data = new Uint8Array(Math.max(0, r.len ?? r.stride * Math.max(0, r.h)));
        await l.call('Update', [{ type: 'i', value: r.x }, { type: 'i', value: r.y }, { type: 'i', value: r.w }, { type: 'i', value: r.h }, { type: 'u', value: r.stride }, { type: 'u', value: PIXMAN_X8R8G8B8 }, { type: 'ay', value: data }]).catch(() => oddRefused++);
      }
      console.log(`shapes: ${shown} shapes answered, ${refused} refused; odd updates refused ${oddRefused}/${ODD_UPDATES.length}; kiosk while attached: ${formatUsage(c.usage())}`);
      await c.vanish(fake);
    }, true);
    // Composing a shape no plane takes sets up GLES on the event loop (EGL is synchronous):
    // seconds under TCG, not QEMU's doing; bounded loosely here, tightly where QEMU floods.
    expect(Math.max(...stalls)).toBeLessThan(15_000);
  });

  it('fds a message does not declare are closed on arrival; a message cut off mid-way leaves nothing', async () => {
    // RSS: +0.3 MiB measured.
    const { stalls } = await runCase('undeclared fds', 32, async (c) => {
      const { fake, l } = await c.attach();
      await showDmabuf(l, 0);
      const extra = ram.memfd();
      const d = ram.dmabuf(0, W * 4 * H);
      const scan = l.message('ScanoutDMABUF', dmabufArgs(d, { width: W, height: H, stride: W * 4, fourcc: XR24 }));
      const out: RawOut[] = [];
      // 100 Disable calls, each with one fd its header does not declare (UNIX_FDS missing).
      for (let i = 0; i < 100; i++) out.push({ bytes: l.message('Disable').bytes, fds: [extra] });
      // UNIX_FDS 1 with 5 fds; UNIX_FDS 1 with none.
      out.push({ bytes: scan.bytes, fds: [d, extra, extra, extra, extra] });
      out.push({ bytes: l.message('ScanoutDMABUF', dmabufArgs(d, { width: W, height: H, stride: W * 4, fourcc: XR24 })).bytes, fds: [] });
      // Messages of 253 fds each (SCM_MAX_FD), none declared: 4,048 fds in all.
      for (let i = 0; i < 16; i++) out.push({ bytes: l.message('Disable').bytes, fds: new Array<number>(253).fill(extra) });
      await l.write(out);
      // The stream is ordered: once this is answered, every message above was read.
      await l.call('MouseSet', [{ type: 'i', value: 1 }, { type: 'i', value: 1 }, { type: 'i', value: 1 }]);
      const during = c.usage();
      console.log(`undeclared fds: after 118 lying messages, kiosk ${formatUsage(during)}`);
      expect(during.marked).toBe(0);
      // Still a QEMU display: the next good frame is taken.
      await showDmabuf(l, 1);
      // A ScanoutDMABUF cut off after its first 40 bytes (its fd came with them), then QEMU exits.
      const cut = l.message('ScanoutDMABUF', dmabufArgs(d, { width: W, height: H, stride: W * 4, fourcc: XR24 }));
      await l.writePart(cut, 40);
      ram.drop(d);
      await c.vanish(fake);
    });
    expect(Math.max(...stalls)).toBeLessThan(STALL_BOUND_MS);
  });

  it('oversized and mis-typed messages are refused unread or end the connection, without holding the loop', async () => {
    // RSS: below the warm kiosk measured; the bound is twice the largest message (a 32 MiB
    // buffer not yet collected is no leak).
    const { stalls } = await runCase('oversized', 64, async (c) => {
      const { fake, l } = await c.attach();
      await showDmabuf(l, 0);
      // Disable takes nothing: 1.75 million empty byte arrays (7 MiB), then 1 MiB of them,
      // then one 32 MiB byte array. Refused from the header's signature, the body unread.
      const emptyArrays = (n: number) => ({ type: 'aay', value: new Array<Uint8Array>(n).fill(new Uint8Array(0)) }) as unknown as DbusArg;
      const big = [l.message('Disable', [emptyArrays(1_835_008)]), l.message('Disable', [emptyArrays(262_144)]), l.message('UpdateDMABUF', [{ type: 'ay', value: new Uint8Array(32 * 1024 * 1024) }])];
      console.log(`oversized: messages of ${big.map((m) => (m.bytes.length / 2 ** 20).toFixed(1)).join(', ')} MiB`);
      await l.write(big);
      const refused = await l.call('MouseSet', [{ type: 'i', value: 1 }, { type: 'i', value: 1 }, { type: 'i', value: 1 }]).then(() => 'answered');
      expect(refused).toBe('answered');
      await showDmabuf(l, 1);
      // A header announcing 100 MiB (more than the 64 MiB bound): the connection is dropped.
      const huge = l.message('Disable');
      huge.bytes.writeUInt32LE(100 * 1024 * 1024, 4);
      const n = c.expectLost();
      await l.write([{ bytes: huge.bytes.subarray(0, 16), fds: [] }]);
      await c.k.waitLine(() => c.k.lines.filter((x) => x.includes('showing no signal until QEMU is back')).length >= n, 20_000);
      expect(c.k.lines.join('\n')).toMatch(/announced \(at most 67108864\)/);
      // QEMU is still on the bus: the kiosk attaches again and shows its next frame.
      const again = await fake.nextListener();
      await showDmabuf(again, 2);
      await c.vanish(fake);
    });
    expect(Math.max(...stalls)).toBeLessThan(STALL_BOUND_MS);
  });

  it('floods of tiny calls are worked off in slices: stats lines and frames keep coming', async () => {
    // RSS: +16 MiB measured (the heap grown while replies queued).
    const { stalls } = await runCase('floods', 48, async (c) => {
      const { fake, l } = await c.attach();
      await l.scanoutPixels(7);
      const update = (i: number) => l.tinyUpdate(i);
      const flood = async (what: string, minFramedShare: number, gen: Iterable<RawOut>) => {
        const from = c.k.lines.length;
        const t0 = performance.now();
        await l.write(gen);
        await l.call('MouseSet', [{ type: 'i', value: 1 }, { type: 'i', value: 1 }, { type: 'i', value: 1 }], 120_000);
        const s = c.statsSince(from);
        const ms = performance.now() - t0;
        console.log(`floods: ${what}: worked off in ${ms.toFixed(0)} ms; meanwhile ${s.length} stats lines (at most ${gapBetween(s).toFixed(2)} s apart), ${framesIn(s, 'copy')} copy frames presented, longest stall ${Math.max(0, ...s.map((x) => x.stallMs)).toFixed(0)} ms`);
        // Stats lines kept coming (at most 2 s apart: 1 s interval, slipping by the stalls) and
        // frames were presented while the flood was worked off, not only after it.
        expect(gapBetween(s)).toBeLessThan(2);
        const withFrames = s.slice(0, -1).filter((x) => (x.paths.copy ?? 0) > 0).length;
        console.log(`floods: ${what}: frames in ${withFrames} of the ${s.length - 1} seconds before the last`);
        // The first line's second began before the flood reached the kiosk: it may have none.
        expect(withFrames).toBeGreaterThanOrEqual(Math.floor((s.length - 1) * minFramedShare) - 1);
        return s;
      };
      await flood(`${FLOOD_UPDATES} Update calls written at once`, 1, (function* () {
        for (let i = 0; i < FLOOD_UPDATES; i++) yield update(i);
      })());
      await flood(`${FLOOD_UNKNOWN} calls of an unknown method (a good Update every 50)`, 0.5, (function* () {
        for (let i = 0; i < FLOOD_UNKNOWN; i++) yield i % 50 === 0 ? update(i) : l.message('NoSuchMethod', [{ type: 'u', value: i }]);
      })());
      await c.vanish(fake);
    });
    expect(Math.max(...stalls)).toBeLessThan(STALL_BOUND_MS);
  }, 240_000);

  it('a QEMU that hangs at each step of the attach delays only its own attach', async () => {
    // RSS: +2 MiB measured.
    const { stalls } = await runCase('hangs', 32, async (c) => {
      const from = c.k.lines.length;
      const step = async (what: string, pred: () => boolean, timeoutMs: number) => {
        const t0 = performance.now();
        const ok = await pollUntil(pred, timeoutMs);
        console.log(`hangs: ${what} after ${((performance.now() - t0) / 1000).toFixed(1)} s`);
        expect(ok, what).toBe(true);
      };
      // Each step's behaviour is switched once the kiosk is in it, so its retry meets the next one.
      const fake = await c.start({ vmGetAll: 'never', register: 'error' });
      await step('GetAll of the VM asked (never answered)', () => fake.counts.vmGetAll >= 1, 20_000);
      fake.steps.vmGetAll = 'answer';
      await step('the kiosk gave up on it, asked again and registered (refused)', () => fake.counts.register >= 1, 20_000);
      fake.steps.register = 'never';
      await step('registered again (never answered, the fd kept)', () => fake.counts.register >= 2, 20_000);
      fake.steps.register = 'no-handshake';
      await step('its call timed out; registered again (answered, no handshake)', () => fake.counts.register >= 3, 30_000);
      fake.steps.register = 'answer';
      const l = await fake.nextListener(30_000);
      console.log(`hangs: the handshake timed out; registered again and attached (calls ${JSON.stringify(fake.counts)})`);
      await showDmabuf(l, 0);
      const statsGap = gapBetween(c.statsSince(from));
      console.log(`hangs: longest gap between stats lines ${statsGap.toFixed(2)} s`);
      expect(statsGap).toBeLessThan(2);
      await c.vanish(fake);
    });
    expect(Math.max(...stalls)).toBeLessThan(STALL_BOUND_MS);
  });
});
