// Issue 6, host layers: a host "compositor" presents its own dma-bufs (udmabuf: a
// full-screen background below the guest, a panel above it) around an attached udmabuf
// guest. On vkms (1 primary, 8 overlays, 1 cursor, no zpos: overlays stack in creation
// order) every layer gets a plane, the writeback capture is pixel-exact, only-buffers-
// changed frames issue no TEST_ONLY, 'release' arrives for replaced buffers and never for
// one on screen, superseded frames are never committed, and nothing leaks.
import { describe, it, expect } from 'vitest';
import { cleanupAfterEach } from './helpers/cleanup.js';
import * as libc from '../../ffi/libc.js';
import * as drm from '../../ffi/drm.js';
import { udmabufCreate } from '../../ffi/dmabuf.js';
import { KmsDevice, findCardByDriver } from '../../plugin/kms/device.js';
import { Output, type PresentEvent, type HostLayer, type HostBufferRelease } from '../../plugin/output/output.js';
import { UdmabufSource } from '../../plugin/sources/udmabuf.js';
import { drawPattern } from '../../plugin/sources/pattern.js';
import type { Capture } from '../../plugin/kms/writeback.js';
import { fdSnapshot, readFramebuffers } from './helpers/debugfs.js';
import { nextPresent } from './helpers/faults.js';
import { TRANSFORM_NAMES, pictureSize, planeRotationFor, toBuffer, withYInvert, type Transform } from '../../plugin/transform.js';

process.env.GALLIUM_OVERRIDE_CPU_CAPS ??= 'sse4.1';

const cleanup = cleanupAfterEach();

const W = 1024;
const H = 768;
const XR24 = drm.fourcc('XR24');

/** A host compositor's buffer: memfd pages exported as a udmabuf dma-buf. */
class HostBuf {
  readonly stride: number;
  readonly fd: number;
  private readonly memfd: number;
  private readonly map: libc.Mapping;
  constructor(
    udmabufDev: number,
    readonly bufferId: number,
    readonly width: number,
    readonly height: number,
  ) {
    this.stride = Math.ceil((width * 4) / 64) * 64;
    const size = Math.ceil((this.stride * height) / 4096) * 4096;
    this.memfd = libc.memfdCreate(`host-buf-${bufferId}`, libc.MFD_ALLOW_SEALING);
    libc.ftruncate(this.memfd, size);
    libc.fcntl(this.memfd, libc.F_ADD_SEALS, libc.F_SEAL_SHRINK);
    this.map = libc.mmap(this.memfd, size, libc.PROT_READ | libc.PROT_WRITE, 0);
    this.fd = udmabufCreate(udmabufDev, this.memfd, 0, size);
  }
  /** Draws the numbered test pattern `n` (so every pixel is checkable). */
  draw(n: number): void {
    drawPattern({ bytes: this.map.bytes, offset: 0, width: this.width, height: this.height, stride: this.stride }, n);
  }
  get mapBytes(): Uint8Array {
    return this.map.bytes;
  }
  get buffer(): HostLayer['buffer'] {
    return { fd: this.fd, bufferId: this.bufferId, format: XR24, modifier: drm.DRM_FORMAT_MOD_LINEAR, width: this.width, height: this.height, stride: this.stride, offset: 0 };
  }
  close(): void {
    libc.close(this.fd);
    this.map.unmap();
    libc.close(this.memfd);
  }
}

function openVkms(): KmsDevice {
  const path = findCardByDriver('vkms');
  if (!path) throw new Error('no vkms card');
  const d = KmsDevice.open(path);
  cleanup.push(() => d.close());
  return d;
}

function udmabufDevice(): number {
  const fd = libc.open('/dev/udmabuf', libc.O_RDWR);
  cleanup.push(() => libc.close(fd));
  return fd;
}


interface Drawn {
  x: number;
  y: number;
  width: number;
  height: number;
  /** Pattern number drawn in it. */
  n: number;
}

/** Mismatching pixels of a capture against the patterns drawn bottom to top (outside `skip`). */
function mismatches(c: Capture, stack: Drawn[], skip?: Drawn): number {
  const ref = new Uint32Array(W * H);
  for (const d of stack) {
    const img = new Uint8Array(d.width * d.height * 4);
    drawPattern({ bytes: img, offset: 0, width: d.width, height: d.height, stride: d.width * 4 }, d.n);
    const px = new Uint32Array(img.buffer);
    for (let y = 0; y < d.height; y++) for (let x = 0; x < d.width; x++) ref[(d.y + y) * W + d.x + x] = px[y * d.width + x];
  }
  const a = new Uint32Array(c.pixels.buffer, c.pixels.byteOffset, c.pixels.byteLength / 4);
  let bad = 0;
  const skipped = (x: number, y: number) => !!skip && x >= skip.x && x < skip.x + skip.width && y >= skip.y && y < skip.y + skip.height;
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) if ((a[(y * c.stride) / 4 + x] & 0xffffff) !== (ref[y * W + x] & 0xffffff) && !skipped(x, y)) bad++;
  return bad;
}

const GUEST = { x: (W - 640) / 2, y: (H - 480) / 2, width: 640, height: 480 };
const PANEL = { x: 600, y: 500, width: 300, height: 200 }; // overlaps the guest's bottom-right corner

describe('host layers (Output.present) on vkms', { timeout: 120_000 }, () => {
  it('background, guest, panel: all on planes in order, pixel-exact, 0 TEST_ONLY when only buffers change, releases exact', async () => {
    const dev = openVkms();
    const udev = udmabufDevice();
    const out = new Output(dev, { connector: 'Virtual-1', mode: { width: W, height: H } });
    cleanup.push(() => out.close());
    const guest = new UdmabufSource({ width: 640, height: 480, buffers: 3 });
    cleanup.push(() => guest.close());
    const bgs = [new HostBuf(udev, 100, W, H), new HostBuf(udev, 101, W, H)];
    const panels = [new HostBuf(udev, 200, PANEL.width, PANEL.height), new HostBuf(udev, 201, PANEL.width, PANEL.height)];
    for (const b of [...bgs, ...panels]) cleanup.push(() => b.close());
    const errors: string[] = [];
    out.on('error', (e) => errors.push(`${e.cause}: ${e.message}`));
    out.enable();
    out.attach(guest, 'native');

    // What each host buffer shows, and which buffers each frame used.
    const drawnIn = new Map<number, number>();
    const frames = new Map<number, { bg: HostBuf; panel: HostBuf }>();
    const onScreenAtRelease: string[] = [];
    const releases: HostBufferRelease[] = [];
    out.on('release', (r) => {
      releases.push(r);
      // Never for a buffer still on screen, in flight, or in the newest frame.
      if (out.current?.hostBufferIds?.includes(r.bufferId)) onScreenAtRelease.push(`buffer ${r.bufferId} released while on screen (frame ${out.current.frameId})`);
      const newest = frames.get(Math.max(...frames.keys()));
      if (newest && (newest.bg.bufferId === r.bufferId || newest.panel.bufferId === r.bufferId)) onScreenAtRelease.push(`buffer ${r.bufferId} released while in the newest frame`);
    });
    const free = new Set<number>([100, 101, 200, 201]);
    out.on('release', (r) => free.add(r.bufferId));

    const show = (n: number) => {
      const k = n % 2;
      const bg = bgs[k];
      const panel = panels[k];
      // The compositor draws only into buffers the output has let go.
      expect(free.has(bg.bufferId) && free.has(panel.bufferId), `frame ${n}: buffers ${bg.bufferId}/${panel.bufferId} are free`).toBe(true);
      bg.draw(1000 + n);
      panel.draw(2000 + n);
      drawnIn.set(bg.bufferId, 1000 + n);
      drawnIn.set(panel.bufferId, 2000 + n);
      free.delete(bg.bufferId);
      free.delete(panel.bufferId);
      const gi = n % 3;
      guest.render(gi, n);
      guest.flip(gi, n);
      const id = out.present([
        { id: 'wallpaper', buffer: bg.buffer, dst: { x: 0, y: 0, width: W, height: H }, zIndex: -10 },
        { id: 'panel', buffer: panel.buffer, dst: PANEL, zIndex: 10 },
      ]);
      frames.set(id, { bg, panel });
      return id;
    };

    const first = show(1);
    const p1 = await nextPresent(out, (p) => p.frameId === first && p.frame === 1);
    const by = Object.fromEntries(p1.layers!.map((l) => [l.id, l]));
    console.log('layers:', p1.layers!.map((l) => `${l.id}→${l.how}${l.planeId ? ` ${l.planeType} ${l.planeId}` : ''} ${l.path}${l.zeroCopy ? ' zero-copy' : ''}${l.reason ? ` (${l.reason.code}: ${l.reason.message})` : ''}`).join(', '));
    expect(Object.keys(by).sort()).toEqual(['guest', 'panel', 'wallpaper']); // opaque full-screen wallpaper: no output background
    expect(by.wallpaper).toMatchObject({ how: 'plane', planeType: 'primary', path: 'scanout', zeroCopy: true });
    expect(by.guest).toMatchObject({ how: 'plane', planeType: 'overlay', path: 'scanout', zeroCopy: true });
    expect(by.panel).toMatchObject({ how: 'plane', path: 'scanout', zeroCopy: true });
    // No zpos: the panel must be on a plane created after the guest's (stacks above it).
    expect(by.panel.planeId!).toBeGreaterThan(by.guest.planeId!);
    expect(p1.path).toBe('scanout');
    expect(p1.zeroCopy).toBe(true);

    const tests0 = dev.counters.testOnly;
    const commits0 = dev.counters.commits;
    const presents: PresentEvent[] = [];
    out.on('present', (p) => presents.push(p));
    const captures: { frameId: number; guestFrame: number; bad: number }[] = [];
    const N = 60;
    for (let n = 2; n <= N; n++) {
      const id = show(n);
      const cap = n % 20 === 0 ? out.captureNext() : null;
      await nextPresent(out, (p) => p.frameId === id);
      if (cap) {
        const c = await cap;
        const f = frames.get(c.content!.frameId!)!;
        const stack: Drawn[] = [
          { x: 0, y: 0, width: W, height: H, n: drawnIn.get(f.bg.bufferId)! },
          { ...GUEST, n: c.content!.frame! },
          { ...PANEL, n: drawnIn.get(f.panel.bufferId)! },
        ];
        captures.push({ frameId: c.content!.frameId!, guestFrame: c.content!.frame!, bad: mismatches(c, stack) });
      }
    }
    await out.idle();
    const steadyTests = dev.counters.testOnly - tests0;
    const steadyCommits = dev.counters.commits - commits0;
    console.log(`steady: ${N - 1} frames, ${steadyCommits} commits, ${steadyTests} TEST_ONLY, ${releases.length} releases, captures ${JSON.stringify(captures)}, stats ${JSON.stringify(out.statsSnapshot().layers)}`);
    expect(errors).toEqual([]);
    expect(steadyTests).toBe(0);
    expect(presents.every((p) => p.allocation?.reused && p.layers!.every((l) => l.how === 'plane' && l.zeroCopy))).toBe(true);
    // One commit per frame (the captures add none: they ride on a frame's commit).
    expect(steadyCommits).toBe(N - 1);
    expect(captures).toHaveLength(3);
    for (const c of captures) expect(c.bad, `capture of frame ${c.frameId}`).toBe(0);
    expect(onScreenAtRelease).toEqual([]);
    // Each frame replaced both host buffers: each flip released the two it replaced.
    expect(releases.length).toBe(2 * (N - 1));
    // Imports: 4 host buffers + 3 guest buffers, once each.
    expect(out.statsSnapshot().imports).toBe(7);
  });

  it('frames presented faster than the refresh coalesce: only the newest is committed, the superseded ones are released at once', async () => {
    const dev = openVkms();
    const udev = udmabufDevice();
    const out = new Output(dev, { connector: 'Virtual-1', mode: { width: W, height: H } });
    cleanup.push(() => out.close());
    const bufs = [300, 301, 302].map((id) => new HostBuf(udev, id, W, H));
    for (const b of bufs) cleanup.push(() => b.close());
    bufs.forEach((b, i) => b.draw(i + 1));
    out.enable();
    const releases: number[] = [];
    out.on('release', (r) => releases.push(r.bufferId));
    const presents: PresentEvent[] = [];
    out.on('present', (p) => presents.push(p));
    const commits0 = dev.counters.commits;
    const ids = bufs.map((b) => out.present([{ id: 'wallpaper', buffer: b.buffer, dst: { x: 0, y: 0, width: W, height: H }, zIndex: -1 }]));
    // Superseded before any refresh ran: given back synchronously, never shown.
    expect(releases).toEqual([300, 301]);
    const cap = out.captureNext();
    await nextPresent(out, (p) => p.frameId === ids[2]);
    const c = await cap;
    await out.idle();
    expect(presents.map((p) => p.frameId)).toEqual([ids[2]]);
    expect(dev.counters.commits - commits0).toBe(1);
    expect(mismatches(c, [{ x: 0, y: 0, width: W, height: H, n: 3 }])).toBe(0);
    expect(releases).toEqual([300, 301]); // 302 is on screen
    // Taking the layer away releases it once the frame without it is on screen.
    const empty = out.present([]);
    expect(releases).toEqual([300, 301]);
    await nextPresent(out, (p) => p.frameId === empty);
    expect(releases).toEqual([300, 301, 302]);
  });

  it('a translucent panel has no plane on vkms (no alpha property): composed with the guest, says why, blends right', async () => {
    const dev = openVkms();
    const udev = udmabufDevice();
    const out = new Output(dev, { connector: 'Virtual-1', mode: { width: W, height: H } });
    cleanup.push(() => out.close());
    const guest = new UdmabufSource({ width: 640, height: 480, buffers: 2 });
    cleanup.push(() => guest.close());
    const bg = new HostBuf(udev, 400, W, H);
    const panel = new HostBuf(udev, 401, PANEL.width, PANEL.height);
    for (const b of [bg, panel]) cleanup.push(() => b.close());
    bg.draw(7);
    panel.draw(8);
    const errors: string[] = [];
    out.on('error', (e) => errors.push(`${e.cause}: ${e.message}`));
    out.enable();
    out.attach(guest, 'native');
    guest.render(0, 5);
    guest.flip(0, 5);
    const id = out.present([
      { id: 'wallpaper', buffer: bg.buffer, dst: { x: 0, y: 0, width: W, height: H }, zIndex: -1 },
      { id: 'panel', buffer: panel.buffer, dst: PANEL, zIndex: 1, alpha: 0.5 },
    ]);
    const cap = out.captureNext();
    // The first GPU composition builds its shaders (llvmpipe under TCG): seconds.
    const p = await nextPresent(out, (e) => e.frameId === id && e.frame === 5, 60_000).catch((e: Error) => {
      throw new Error(`${e.message}; errors: ${JSON.stringify(errors)}; current: ${JSON.stringify(out.current?.layers)}`);
    });
    const c = await cap;
    const by = Object.fromEntries(p.layers!.map((l) => [l.id, l]));
    console.log('translucent:', p.layers!.map((l) => `${l.id}→${l.how} ${l.path}${l.reason ? ` (${l.reason.code})` : ''}`).join(', '));
    expect(by.panel).toMatchObject({ how: 'composed', zeroCopy: false, reason: { code: 'alpha' } });
    expect(['gles', 'copy']).toContain(by.panel.path);
    // The guest lies under a composed layer: it cannot be on a plane above the composition.
    expect(by.guest.how).toBe('composed');
    // Pixels: outside the panel exact; inside it, 50% of the panel over what is below (±2 for rounding).
    const outside = mismatches(c, [{ x: 0, y: 0, width: W, height: H, n: 7 }, { ...GUEST, n: 5 }], { ...PANEL, n: 0 });
    const ref = new Uint8Array(W * H * 4);
    const put = (d: Drawn, blend: number) => {
      const img = new Uint8Array(d.width * d.height * 4);
      drawPattern({ bytes: img, offset: 0, width: d.width, height: d.height, stride: d.width * 4 }, d.n);
      for (let y = 0; y < d.height; y++)
        for (let x = 0; x < d.width; x++)
          for (let k = 0; k < 3; k++) {
            const o = ((d.y + y) * W + d.x + x) * 4 + k;
            ref[o] = Math.round(img[(y * d.width + x) * 4 + k] * blend + ref[o] * (1 - blend));
          }
    };
    put({ x: 0, y: 0, width: W, height: H, n: 7 }, 1);
    put({ ...GUEST, n: 5 }, 1);
    put({ ...PANEL, n: 8 }, 0.5);
    let off = 0;
    for (let y = PANEL.y; y < PANEL.y + PANEL.height; y++)
      for (let x = PANEL.x; x < PANEL.x + PANEL.width; x++)
        for (let k = 0; k < 3; k++) if (Math.abs(c.pixels[y * c.stride + x * 4 + k] - ref[(y * W + x) * 4 + k]) > 2) off++;
    console.log(`translucent panel: ${outside} px outside the panel differ from wallpaper+guest, ${off} channel values inside it off by > 2 from the 50% blend`);
    expect(errors).toEqual([]);
    expect(off).toBe(0);
    expect(outside).toBe(0);
  });

  it('transformed buffers (Y_INVERT, 90°, flipped-90 + Y_INVERT) are shown upright: on a plane with the rotation read back from the kernel, or composed by GLES or the CPU', async () => {
    const dev = openVkms();
    const udev = udmabufDevice();
    // A 480x320 picture; the 90° buffers hold it as 320x480.
    const PW = 480;
    const PH = 320;
    const SRC = { x: 16, y: 40, width: 400, height: 240 }; // a crop, in picture coordinates
    const DST = { x: 100, y: 60, width: 400, height: 240 }; // placed 1:1
    const want = new Uint8Array(PW * PH * 4);
    drawPattern({ bytes: want, offset: 0, width: PW, height: PH, stride: PW * 4 }, 9);
    const wantPx = new Uint32Array(want.buffer);
    const results: string[] = [];
    const cases: { transform: Transform; yInverted: boolean }[] = [
      { transform: 0, yInverted: true },
      { transform: 1, yInverted: false },
      { transform: 5, yInverted: true },
    ];
    for (const k of cases) {
      const stored = withYInvert(k.transform, k.yInverted);
      const b = pictureSize(k.transform, PW, PH); // the buffer's size
      const win = new HostBuf(udev, 500 + results.length, b.w, b.h);
      cleanup.push(() => win.close());
      // Store the picture as the client would: transform applied, then rows bottom-up.
      const px32 = new Uint32Array(win.mapBytes.buffer, win.mapBytes.byteOffset, win.mapBytes.byteLength / 4);
      for (let y = 0; y < PH; y++)
        for (let x = 0; x < PW; x++) {
          const [u, v] = toBuffer(stored, (x + 0.5) / PW, (y + 0.5) / PH);
          px32[Math.floor(v * b.h) * (win.stride / 4) + Math.floor(u * b.w)] = wantPx[y * PW + x]!;
        }
      for (const paths of [['scanout', 'gles', 'copy'], ['gles'], ['copy']] as const) {
        const what = `${TRANSFORM_NAMES[k.transform]}${k.yInverted ? '+y-invert' : ''} via ${paths.join('+')}`;
        const out = new Output(dev, { connector: 'Virtual-1', mode: { width: W, height: H }, paths });
        const errors: string[] = [];
        out.on('error', (e) => errors.push(`${e.cause}: ${e.message}`));
        try {
          out.enable();
          const id = out.present([{ id: 'win', buffer: { ...win.buffer, transform: k.transform, yInverted: k.yInverted }, src: SRC, dst: DST, zIndex: 1 }]);
          const cap = out.captureNext();
          const p = await nextPresent(out, (e) => e.frameId === id, 60_000);
          const c = await cap;
          const layer = p.layers!.find((l) => l.id === 'win')!;
          const a = new Uint32Array(c.pixels.buffer, c.pixels.byteOffset, c.pixels.byteLength / 4);
          let inside = 0;
          let outside = 0;
          for (let y = 0; y < H; y++) {
            for (let x = 0; x < W; x++) {
              const inWin = x >= DST.x && x < DST.x + DST.width && y >= DST.y && y < DST.y + DST.height;
              const exp = inWin ? wantPx[(SRC.y + y - DST.y) * PW + SRC.x + x - DST.x]! & 0xffffff : 0;
              if ((a[(y * c.stride) / 4 + x]! & 0xffffff) !== exp) inWin ? inside++ : outside++;
            }
          }
          results.push(`${what}: ${layer.how} ${layer.path}, ${inside} px wrong inside, ${outside} outside`);
          expect(errors, what).toEqual([]);
          expect({ inside, outside }, what).toEqual({ inside: 0, outside: 0 });
          if (paths[0] === 'scanout') {
            expect(layer, what).toMatchObject({ how: 'plane', path: 'scanout', zeroCopy: true });
            // The kernel's view of that plane: the rotation that undoes the stored transform.
            const ro = KmsDevice.open(dev.path, { master: false });
            try {
              const pl = ro.planes.find((x) => x.id === layer.planeId)!;
              const bits = planeRotationFor(stored, pl.rotations)!.reduce((v, n) => v | (1n << pl.props.enumValue('rotation', n)), 0n);
              expect(pl.props.get('rotation')?.value, what).toBe(bits);
            } finally {
              await ro.close();
            }
          } else {
            expect(layer, what).toMatchObject({ how: 'composed', path: paths[0], zeroCopy: false, reason: { code: 'forced' } });
          }
        } finally {
          await out.close();
        }
      }
    }
    console.log(`transformed host buffers: ${results.join('; ')}`);
  });

  it('no leaks: 300 frames with layers coming and going, buffers re-created under new generations, then close', async () => {
    const snap = fdSnapshot();
    const path = findCardByDriver('vkms')!;
    const dev = KmsDevice.open(path);
    const fbsBefore = readFramebuffers(path).length;
    const udev = libc.open('/dev/udmabuf', libc.O_RDWR);
    const out = new Output(dev, { connector: 'Virtual-1', mode: { width: W, height: H } });
    const guest = new UdmabufSource({ width: 640, height: 480, buffers: 3 });
    const errors: string[] = [];
    out.on('error', (e) => errors.push(`${e.cause}: ${e.message}`));
    out.enable();
    out.attach(guest, 'native');
    const bgs = [new HostBuf(udev, 1, W, H), new HostBuf(udev, 2, W, H)];
    let panel = new HostBuf(udev, 3, PANEL.width, PANEL.height);
    let panelGen = 0;
    const held = new Set<number>();
    out.on('release', (r) => held.delete(r.bufferId));
    let maxLive = 0;
    for (let n = 1; n <= 300; n++) {
      guest.render(n % 3, n);
      guest.flip(n % 3, n);
      const layers: HostLayer[] = [{ id: 'wallpaper', buffer: bgs[n % 2].buffer, dst: { x: 0, y: 0, width: W, height: H }, zIndex: -1 }];
      held.add(bgs[n % 2].bufferId);
      // Every 50 frames the panel's buffer is replaced by a new one under the same id.
      if (n % 50 === 0 && !held.has(3)) {
        panel.close();
        panel = new HostBuf(udev, 3, PANEL.width, PANEL.height);
        panelGen++;
      }
      if (n % 10 < 5) {
        layers.push({ id: 'panel', buffer: { ...(panel.buffer as object), generation: panelGen } as HostLayer['buffer'], dst: PANEL, zIndex: 1 });
        held.add(3);
      }
      const id = out.present(layers);
      if (n % 4 === 0) await nextPresent(out, (p) => (p.frameId ?? 0) >= id);
      else await new Promise((r) => setImmediate(r));
      maxLive = Math.max(maxLive, out.cache.liveFbIds().length);
    }
    await out.idle();
    const s = out.statsSnapshot();
    console.log(`leak test: ${s.framesPresented} presented, imports ${s.imports}, live FBs max ${maxLive}, kernel FBs ${readFramebuffers(path).length} (before ${fbsBefore}), errors ${JSON.stringify(errors)}`);
    expect(errors).toEqual([]);
    expect(maxLive).toBeLessThanOrEqual(8);
    await out.close();
    guest.close();
    for (const b of [...bgs, panel]) b.close();
    libc.close(udev);
    expect(readFramebuffers(path).length).toBe(fbsBefore);
    await dev.close();
    expect(snap.leakedSince()).toEqual([]);
  });
});
