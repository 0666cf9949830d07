// WindowOutput (plugin/window/window-output.ts) on a real desktop compositor on the host:
// Debian's Weston 10, headless backend with the pixman renderer, which offers no
// linux-dmabuf at all: so this covers the window's surfaces and configure, the wl_shm copy
// fallback (pattern frames of a CPU-visible guest plane copied into wl_shm buffers, reported
// per frame with why), pacing by wp_presentation feedback (one frame in flight, frameShown
// after each), "no signal" while the source is detached, and a clean close. The dma-buf
// path needs a DRM device: test/integration/window.test.ts runs it on Weston in the rig.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { useRuntimeDir } from '../integration/helpers/wayland-client.js';
import { Desktop } from '../../plugin/window/connection.js';
import { WindowOutput } from '../../plugin/window/window-output.js';
import { drawPattern } from '../../plugin/sources/pattern.js';
import type { GuestPlaneInfo, GuestSource, GuestSourceEvents, PlaneQuery, CpuView } from '../../plugin/sources/source.js';
import type { PresentEvent } from '../../plugin/output/types.js';

const haveWeston = spawnSync('weston', ['--version']).status === 0;
const runtimeDir = useRuntimeDir('gp-winout-');
const socket = 'gp-weston-headless';
let weston: ChildProcess | null = null;

beforeAll(async () => {
  if (!haveWeston) return;
  weston = spawn('weston', ['--backend=headless-backend.so', '--use-pixman', `--socket=${socket}`, '--idle-time=0', '--width=800', '--height=600', `--log=${join(runtimeDir(), 'weston.log')}`], { stdio: 'ignore', env: { ...process.env, XDG_RUNTIME_DIR: runtimeDir() } });
  const t0 = Date.now();
  while (!existsSync(join(runtimeDir(), socket)) && Date.now() - t0 < 15_000) await new Promise((r) => setTimeout(r, 100));
}, 20_000);
afterAll(() => {
  weston?.kill('SIGTERM');
});

/** A guest whose plane the CPU reads (a region, as mdpy's): the pattern, frame after frame. */
class RegionGuest extends EventEmitter<GuestSourceEvents> implements GuestSource {
  readonly name = 'region test guest';
  readonly changeEvents = true;
  readonly bytes: Uint8Array;
  frame = 0;
  shown: (number | undefined)[] = [];
  constructor(readonly width: number, readonly height: number) {
    super();
    this.bytes = new Uint8Array(width * 4 * height);
  }
  flip(): void {
    this.frame++;
    drawPattern({ bytes: this.bytes, offset: 0, width: this.width, height: this.height, stride: this.width * 4 }, this.frame);
    this.emit('changed');
  }
  query(kind: 'primary' | 'cursor'): PlaneQuery {
    if (kind === 'cursor' || this.frame === 0) return { state: 'disabled' };
    const plane: GuestPlaneInfo = {
      kind, bufferId: 0, transport: 'region', format: 0x34325258, modifier: 0n, width: this.width, height: this.height,
      stride: this.width * 4, offset: 0, size: this.bytes.length, x: 0, y: 0, hotX: -1, hotY: -1, generation: 0,
      frame: this.frame, flipTimeNs: process.hrtime.bigint(),
    };
    return { state: 'ok', plane };
  }
  exportDmabuf(): number {
    throw new Error('a region guest has no dma-buf');
  }
  cpuView(): CpuView {
    return { bytes: this.bytes, offset: 0 };
  }
  frameShown(frame: number | undefined): void {
    this.shown.push(frame);
  }
  close(): void {}
}

describe.skipIf(!haveWeston)('WindowOutput on Weston (headless, pixman: no linux-dmabuf)', () => {
  it('copies frames into wl_shm, one in flight, each ended by presentation feedback; no signal when detached', async () => {
    const log: string[] = [];
    const desktop = await Desktop.connect({ display: socket, log: (l) => log.push(l) });
    expect(log).toContain('guestplane window: no linux-dmabuf: every guest frame is copied into wl_shm buffers');
    const out = new WindowOutput(desktop, { title: 'gp unit', fit: 'fit' });
    const guest = new RegionGuest(320, 240);
    const presents: PresentEvent[] = [];
    out.on('present', (e) => presents.push(e));
    out.attach(guest);
    // The guest flips far faster than anything is presented: frames collapse, none queue.
    const timer = setInterval(() => guest.flip(), 2);
    await new Promise((r) => setTimeout(r, 1500));
    clearInterval(timer);
    await new Promise((r) => setTimeout(r, 200));
    const copies = presents.filter((p) => p.path === 'copy');
    expect(copies.length).toBeGreaterThan(5);
    expect(copies.length).toBeLessThan(guest.frame / 2);
    for (const p of copies) {
      expect(p.zeroCopy).toBe(false);
      expect(p.reason).toBe('the guest plane is no dma-buf'); // checked before the (missing) linux-dmabuf
      expect(p.timestampNs).toBeGreaterThan(0n);
    }
    for (let i = 1; i < copies.length; i++) expect(copies[i]!.frame!).toBeGreaterThan(copies[i - 1]!.frame!);
    // Each presented frame was answered to the guest, in order, once.
    expect(guest.shown).toEqual(copies.map((p) => p.frame));
    const s = out.statsSnapshot();
    expect(s.paths.copy).toBe(copies.length);
    expect(s.bytesCopied).toBe(copies.length * 320 * 240 * 4);
    expect([out.width, out.height]).toEqual([1024, 768]); // no size from the compositor and no guest picture yet at the first configure: the default
    out.detach();
    await new Promise((r) => setTimeout(r, 300));
    expect(presents.at(-1)!.path).toBe('no-signal');
    await out.close();
    desktop.close();
    expect(desktop.connection.closed).toBe(true);
  }, 15_000);

  it('a guest flip that changes no surface state sends only attach, damage and commit: transform, opaque region and viewport go again only when they change', async () => {
    const desktop = await Desktop.connect({ display: socket, log: () => {} });
    // Counts what reaches the desktop: the guest surface's and its viewport's requests (our proxies, spied on as made).
    const sent: string[] = [];
    const g = desktop.globals;
    const createSurface = g.compositor.createSurface.bind(g.compositor);
    const surfaces: ReturnType<typeof createSurface>[] = [];
    g.compositor.createSurface = () => {
      const sf = createSurface();
      surfaces.push(sf);
      const n = surfaces.length;
      const opaque = sf.setOpaqueRegion.bind(sf);
      const transform = sf.setBufferTransform.bind(sf);
      sf.setOpaqueRegion = (r) => (sent.push(`surface${n}.set_opaque_region`), opaque(r));
      sf.setBufferTransform = (t) => (sent.push(`surface${n}.set_buffer_transform ${t}`), transform(t));
      return sf;
    };
    const getViewport = g.viewporter!.getViewport.bind(g.viewporter!);
    g.viewporter!.getViewport = (sf) => {
      const v = getViewport(sf);
      const n = surfaces.indexOf(sf) + 1;
      const source = v.setSource.bind(v);
      v.setSource = (x, y, w, h) => (sent.push(`surface${n}.viewport.set_source ${w}x${h}`), source(x, y, w, h));
      return v;
    };
    const out = new WindowOutput(desktop, { title: 'gp unit state', fit: 'fit' });
    const presents: PresentEvent[] = [];
    out.on('present', (e) => presents.push(e));
    const flips = async (guest: RegionGuest, n: number) => {
      for (let i = 0; i < n; i++) {
        const before = presents.length;
        guest.flip();
        for (let t = 0; t < 100 && presents.length === before; t++) await new Promise((r) => setTimeout(r, 20));
      }
    };
    const wide = new RegionGuest(320, 240);
    out.attach(wide);
    await flips(wide, 4);
    const guestSurface = 'surface2'; // the parent is made first, then the guest's subsurface
    const ofGuest = () => sent.filter((l) => l.startsWith(`${guestSurface}.`));
    expect(ofGuest()).toEqual([`${guestSurface}.set_buffer_transform 0`, `${guestSurface}.set_opaque_region`, `${guestSurface}.viewport.set_source 320x240`]);
    // A guest of another shape (a mode change): the new state goes once, and is right on screen.
    const flat = new RegionGuest(320, 100);
    out.attach(flat);
    await flips(flat, 4);
    expect(ofGuest().slice(3)).toEqual([`${guestSurface}.set_opaque_region`, `${guestSurface}.viewport.set_source 320x100`]);
    expect(presents.filter((p) => p.path === 'copy').length).toBeGreaterThanOrEqual(8);
    expect(presents.at(-1)!.frame).toBe(4);
    await out.close();
    desktop.close();
  }, 15_000);

  it('paths [\'gles\'] (the CLI\'s --gles) where no blit is possible: the frame is refused, once, saying why; nothing is copied behind it', async () => {
    const desktop = await Desktop.connect({ display: socket, log: () => {} });
    const out = new WindowOutput(desktop, { title: 'gp unit gles', fit: 'fit', paths: ['gles'] });
    const guest = new RegionGuest(64, 48);
    const errors: string[] = [];
    const presents: PresentEvent[] = [];
    out.on('error', (e) => errors.push(`${e.cause}: ${e.message}`));
    out.on('present', (e) => presents.push(e));
    out.attach(guest);
    guest.flip();
    await new Promise((r) => setTimeout(r, 300));
    guest.flip();
    await new Promise((r) => setTimeout(r, 300));
    expect(errors).toEqual(['no-path: region test guest: frame not shown: the gles path was asked for (paths option); no GLES blit: the guest plane is no dma-buf, and the copy path is not among the paths asked for']);
    expect(presents.filter((p) => p.frame !== undefined)).toEqual([]);
    expect(out.statsSnapshot().bytesCopied).toBe(0);
    await out.close();
    desktop.close();
  }, 15_000);
});
