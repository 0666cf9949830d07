// GPU composition on real vkms: Mesa's GBM platform (kms_swrast) on the vkms card node,
// guest buffers from udmabuf, the composed target scanned out on the primary plane and
// checked pixel by pixel through the writeback connector against a CPU reference.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync, readdirSync, existsSync, statSync } from 'node:fs';
import { KmsDevice, findCardByDriver } from '../../plugin/kms/device.js';
import { WritebackCapture, type Capture } from '../../plugin/kms/writeback.js';
import { UdmabufSource } from '../../plugin/sources/udmabuf.js';
import { GlesCompositor, GlesImportError, type GlesImage, type GlesTarget } from '../../plugin/compose/gles.js';
import { blit, fill, type CpuImage, type Rect } from '../../plugin/compose/cpu.js';
import * as drm from '../../ffi/drm.js';
import * as libc from '../../ffi/libc.js';
import * as egl from '../../ffi/egl.js';
import * as gbm from '../../ffi/gbm.js';
import { lightFullScreen } from './helpers/modeset.js';

const XR24 = drm.fourcc('XR24');

// The rig runs QEMU 7.2 TCG with `-cpu max`: llvmpipe's AVX code for *linear* texture
// filtering dies there with SIGSEGV (any texture, any EGL platform; nearest is fine, and
// the same code runs on the host). Keeping llvmpipe to SSE4.1 avoids it. Mesa reads this
// once, when the first llvmpipe screen is made, so it must be set before any compositor.
process.env.GALLIUM_OVERRIDE_CPU_CAPS ??= 'sse4.1';

let dev: KmsDevice;
let comp: GlesCompositor;
const sources: UdmabufSource[] = [];

beforeAll(() => {
  const path = findCardByDriver('vkms');
  if (!path) throw new Error('no vkms card in the rig');
  dev = KmsDevice.open(path);
  const c = GlesCompositor.create(dev);
  if ('unavailable' in c) throw new Error(`GPU composition must be available in the rig, but: ${c.unavailable}`);
  comp = c;
});

afterAll(async () => {
  comp?.close();
  for (const s of sources.splice(0)) s.close();
  await dev?.close();
});

// ---- helpers -------------------------------------------------------------------------------

/** A guest buffer whose every pixel differs from its neighbours (sampling errors show). */
function guest(width: number, height: number, seed: number, xByte = 0x00): UdmabufSource {
  const src = new UdmabufSource({ width, height, buffers: 1 });
  sources.push(src);
  const px = src.pixels(0);
  const u32 = new Uint32Array(px.buffer, px.byteOffset, px.byteLength >> 2);
  const row = src.stride >> 2;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const r = (x * 7 + seed) & 0xff;
      const g = (y * 5 + seed * 3) & 0xff;
      const b = ((x ^ y) + seed * 11) & 0xff;
      u32[y * row + x] = ((xByte << 24) | (r << 16) | (g << 8) | b) >>> 0;
    }
  }
  src.flip(0);
  return src;
}

function cpuImage(src: UdmabufSource): CpuImage {
  return { bytes: src.pixels(0), offset: 0, stride: src.stride, width: src.width, height: src.height };
}

/** Imports a source's front buffer and closes our fd at once (EGL keeps what it needs). */
function importGuest(src: UdmabufSource): GlesImage {
  const q = src.query('primary');
  if (q.state !== 'ok') throw new Error(`guest not ready: ${q.state}`);
  const p = q.plane;
  const fd = src.exportDmabuf(p);
  try {
    return comp.importDmabuf({ fd, format: p.format, modifier: p.modifier, width: p.width, height: p.height, stride: p.stride, offset: p.offset });
  } finally {
    libc.close(fd, 'test dma-buf');
  }
}

function modeOf(w: number, h: number): drm.DrmModeInfo {
  const conn = dev.connectorByName('Virtual-1');
  const m = conn.modes.find((x) => x.hdisplay === w && x.vdisplay === h);
  if (!m) throw new Error(`Virtual-1 has no ${w}x${h} mode`);
  return m;
}

/** Shows `target` full-screen on the primary plane (modeset) and captures the frame. */
async function presentAndCapture(target: GlesTarget): Promise<Capture> {
  const crtc = dev.crtcs[0];
  const conn = dev.connectorByName('Virtual-1');
  const mode = modeOf(target.width, target.height);
  const primary = dev.planesFor(crtc, 'primary')[0];
  const blob = dev.createModeBlob(mode);
  const wb = new WritebackCapture(dev, crtc);
  try {
    const req = lightFullScreen(dev.request(), { conn, crtc, modeBlob: blob, primary, fbId: target.fbId, width: target.width, height: target.height });
    wb.attach(req, crtc, target.width, target.height);
    try {
      req.commit(drm.DRM_MODE_ATOMIC_ALLOW_MODESET);
    } catch (e) {
      wb.disarm();
      throw e;
    }
    return await wb.wait(10_000);
  } finally {
    wb.close();
    dev.destroyBlob(blob);
  }
}

function captureWords(cap: Capture): Uint32Array {
  const out = new Uint32Array(cap.width * cap.height);
  const src = new Uint32Array(cap.pixels.buffer, cap.pixels.byteOffset, cap.pixels.byteLength >> 2);
  for (let y = 0; y < cap.height; y++) out.set(src.subarray((y * cap.stride) >> 2, ((y * cap.stride) >> 2) + cap.width), y * cap.width);
  return out;
}

const hex = (v: number) => `0x${(v & 0xffffff).toString(16).padStart(6, '0')}`;

interface Region {
  name: string;
  contains(x: number, y: number): boolean;
}

/** Compares RGB (X ignored) where `where` says so; returns counts and the first misses. */
function compare(got: Uint32Array, want: Uint32Array, width: number, height: number, where: (x: number, y: number) => boolean) {
  let checked = 0;
  let bad = 0;
  const first: string[] = [];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (!where(x, y)) continue;
      checked++;
      const g = got[y * width + x] & 0xffffff;
      const w = want[y * width + x] & 0xffffff;
      if (g !== w) {
        bad++;
        if (first.length < 8) first.push(`(${x},${y}) got ${hex(g)} want ${hex(w)}`);
      }
    }
  }
  return { checked, bad, first };
}

function inRect(r: Rect): (x: number, y: number) => boolean {
  return (x, y) => x >= r.x && x < r.x + r.width && y >= r.y && y < r.y + r.height;
}

/**
 * Pixels of a nearest-scaled layer whose sample position lies well inside a source texel,
 * so float rounding in the GPU's interpolation cannot pick the neighbour.
 */
function safeSamples(src: Rect, dst: Rect, margin = 0.05): (x: number, y: number) => boolean {
  const ok = (p: number, s0: number, sw: number, d0: number, dw: number) => {
    const f = s0 + ((p - d0 + 0.5) * sw) / dw;
    const frac = f - Math.floor(f);
    return frac > margin && frac < 1 - margin;
  };
  const within = inRect(dst);
  return (x, y) => within(x, y) && ok(x, src.x, src.width, dst.x, dst.width) && ok(y, src.y, src.height, dst.y, dst.height);
}

/** KMS framebuffer ids from debugfs (all clients), parsed here to depend on no helper. */
function debugfsFramebuffers(cardPath: string): number[] {
  const rdev = statSync(cardPath).rdev;
  const minor = (rdev & 0xff) | ((rdev >> 12) & ~0xff);
  let file = `/sys/kernel/debug/dri/${minor}/framebuffer`;
  if (!existsSync(file)) {
    const base = '/sys/kernel/debug/dri';
    const dir = readdirSync(base).find((d) => existsSync(`${base}/${d}/name`) && readFileSync(`${base}/${d}/name`, 'utf8').startsWith('vkms'));
    if (!dir) throw new Error(`no debugfs framebuffer list for ${cardPath} (tried ${file})`);
    file = `${base}/${dir}/framebuffer`;
  }
  return [...readFileSync(file, 'utf8').matchAll(/^framebuffer\[(\d+)\]:/gm)].map((m) => Number(m[1])).sort((a, b) => a - b);
}

// ---- tests ---------------------------------------------------------------------------------

describe('GlesCompositor on vkms (kms_swrast)', () => {
  it('is available and reports what EGL/GLES offer', () => {
    const i = comp.info;
    console.log(
      [
        `GPU composition on ${i.devicePath} (private fd: ${i.privateFd}), GBM backend ${i.gbmBackend}, EGL driver ${i.driver}`,
        `EGL ${i.eglVersion} vendor ${i.eglVendor}`,
        `GL ${i.glVendor} | ${i.glRenderer} | ${i.glVersion} (context ES ${i.contextVersion}, surfaceless ${i.surfaceless}, software ${i.software})`,
        `EGL client extensions: ${i.clientExtensions.join(' ')}`,
        `EGL display extensions: ${i.eglExtensions.join(' ')}`,
        `dma-buf formats: ${[...(i.dmabufFormats?.entries() ?? [])].map(([f, m]) => `${drm.fourccName(f)}[${m.map((x) => drm.formatModifierName(x.modifier)).join(',')}]`).join(' ')}`,
        `GL extensions (${i.glExtensions.length}): ${i.glExtensions.join(' ')}`,
      ].join('\n'),
    );
    expect(i.eglExtensions).toEqual(expect.arrayContaining(['EGL_EXT_image_dma_buf_import', 'EGL_KHR_surfaceless_context']));
    expect(i.glExtensions).toContain('GL_OES_EGL_image');
    expect(i.privateFd).toBe(true);
    expect(comp.supportsFormat(XR24)).toBe(true);
  });

  it('composes two udmabuf layers (one scaled, nearest) and scans the result out, pixel-exact by writeback', async () => {
    const W = 640;
    const H = 480;
    const a = guest(320, 240, 1);
    const b = guest(160, 120, 2, 0xff);
    const imgA = importGuest(a);
    const imgB = importGuest(b);
    // kms_swrast cannot read foreign dma-bufs; the compositor must have noticed and said why.
    for (const img of [imgA, imgB]) {
      console.log(`udmabuf ${img.width}x${img.height}: ${img.path} path${img.uploadReason ? ` (${img.uploadReason})` : ''}`);
      if (comp.info.software) expect(img.path).toBe('upload');
      if (img.path === 'upload') expect(img.uploadReason).toMatch(/cannot read dma-bufs exported by another device/);
    }
    const target = comp.createTarget(W, H);
    try {
      const clear = [0x33, 0x66, 0x99] as const;
      const dstA: Rect = { x: 16, y: 24, width: 320, height: 240 }; // 1:1
      const srcB: Rect = { x: 10, y: 10, width: 100, height: 80 };
      const dstB: Rect = { x: 300, y: 200, width: 250, height: 200 }; // ×2.5, overlaps A
      const res = comp.compose(
        target,
        [
          { image: imgA, dst: dstA },
          { image: imgB, src: srcB, dst: dstB },
        ],
        { clear: [clear[0] / 255, clear[1] / 255, clear[2] / 255, 1], filter: 'nearest' },
      );
      console.log(`compose: ${res.layers} layers, ${res.uploadedBytes} bytes uploaded, ${res.ms.toFixed(1)} ms`);
      expect(res.layers).toBe(2);

      // CPU reference: clear, A copied 1:1, B scaled nearest on top (cpu.ts blit).
      const ref = new Uint32Array(W * H);
      const refImg: CpuImage = { bytes: new Uint8Array(ref.buffer), offset: 0, stride: W * 4, width: W, height: H };
      fill(refImg, { x: 0, y: 0, width: W, height: H }, (clear[0] << 16) | (clear[1] << 8) | clear[2]);
      blit(cpuImage(a), { x: 0, y: 0, width: 320, height: 240 }, refImg, dstA);
      blit(cpuImage(b), srcB, refImg, dstB);

      const inB = inRect(dstB);
      const exactRegion = (x: number, y: number) => !inB(x, y); // clear + A outside B
      const scaledSafe = safeSamples(srcB, dstB);

      // What GL wrote (glReadPixels), then what KMS scanned out (writeback).
      const gl = comp.readback(target);
      const cap = await presentAndCapture(target);
      expect(cap.width).toBe(W);
      const shown = captureWords(cap);
      for (const [name, got] of [
        ['glReadPixels', gl],
        ['writeback', shown],
      ] as const) {
        const exact = compare(got, ref, W, H, exactRegion);
        const scaled = compare(got, ref, W, H, scaledSafe);
        const scaledAll = compare(got, ref, W, H, inB);
        console.log(
          `${name}: 1:1+clear ${exact.checked - exact.bad}/${exact.checked} exact; scaled layer ${scaled.checked - scaled.bad}/${scaled.checked} safe samples exact ` +
            `(${scaledAll.checked - scaledAll.bad}/${scaledAll.checked} of all its pixels)`,
        );
        expect(exact.first, `${name}: 1:1 region`).toEqual([]);
        expect(exact.checked).toBe(W * H - dstB.width * dstB.height);
        expect(scaled.first, `${name}: scaled layer`).toEqual([]);
        expect(scaled.checked).toBeGreaterThan(dstB.width * dstB.height * 0.5);
      }
      // Spot checks that mean something to a reader: the clear colour, A's corner, B on top of A.
      expect(hex(shown[0])).toBe('0x336699');
      expect(hex(shown[24 * W + 16])).toBe(hex(ref[24 * W + 16]));
      const p = 210 * W + 310; // in A's rectangle and B's: B wins
      expect(inRect(dstA)(310, 210)).toBe(true);
      expect(hex(shown[p])).toBe(hex(ref[p]));
    } finally {
      target.close();
      imgA.close();
      imgB.close();
    }
  });

  it('samples a dma-buf of its own device zero-copy (EGLImage texture): 1:1 exact, linear upscale interpolates', async () => {
    // A target's dma-buf is "native" to kms_swrast (same device, not an import), so its
    // EGLImage texture is read in place: the zero-copy path a real GPU takes for guests.
    const src = guest(200, 100, 3);
    const up = importGuest(src);
    const t1 = comp.createTarget(256, 128);
    const t2 = comp.createTarget(640, 480);
    let own: GlesImage | null = null;
    try {
      comp.compose(t1, [{ image: up, dst: { x: 28, y: 14, width: 200, height: 100 } }], { clear: [1, 0, 0, 1] });
      const fd = t1.exportDmabuf();
      try {
        own = comp.importDmabuf({ fd, format: t1.format, modifier: t1.modifier, width: t1.width, height: t1.height, stride: t1.stride, offset: t1.offset });
      } finally {
        libc.close(fd, 'target dma-buf');
      }
      expect(own.path).toBe('dmabuf');
      const copySrc: Rect = { x: 20, y: 10, width: 216, height: 108 };
      const copyDst: Rect = { x: 100, y: 60, width: 216, height: 108 };
      const zoomSrc: Rect = { x: 40, y: 20, width: 64, height: 32 };
      const zoomDst: Rect = { x: 360, y: 300, width: 256, height: 128 }; // ×4, bilinear
      comp.compose(
        t2,
        [
          { image: own, src: copySrc, dst: copyDst },
          { image: own, src: zoomSrc, dst: zoomDst },
        ],
        { clear: [0, 0, 1, 1], filter: 'linear' },
      );
      const src1 = comp.readback(t1);
      const ref = new Uint32Array(640 * 480).fill(0xff0000ff);
      for (let y = 0; y < copyDst.height; y++) for (let x = 0; x < copyDst.width; x++) ref[(copyDst.y + y) * 640 + copyDst.x + x] = src1[(copySrc.y + y) * 256 + copySrc.x + x];
      const cap = await presentAndCapture(t2);
      const shown = captureWords(cap);
      const inZoom = inRect(zoomDst);
      const r = compare(shown, ref, 640, 480, (x, y) => !inZoom(x, y));
      console.log(`zero-copy sample: ${r.checked - r.bad}/${r.checked} exact outside the zoomed layer`);
      expect(r.first).toEqual([]);
      expect(r.checked).toBe(640 * 480 - zoomDst.width * zoomDst.height);
      // Bilinear: every channel lies within its 2x2 source neighbourhood (±1 for rounding),
      // and the interpolation really happened (values no source texel has).
      let outside = 0;
      let between = 0;
      const firstBad: string[] = [];
      for (let y = zoomDst.y; y < zoomDst.y + zoomDst.height; y++) {
        for (let x = zoomDst.x; x < zoomDst.x + zoomDst.width; x++) {
          const fx = zoomSrc.x + ((x - zoomDst.x + 0.5) * zoomSrc.width) / zoomDst.width - 0.5;
          const fy = zoomSrc.y + ((y - zoomDst.y + 0.5) * zoomSrc.height) / zoomDst.height - 0.5;
          const xs = [Math.floor(fx), Math.floor(fx) + 1].map((v) => Math.min(255, Math.max(0, v)));
          const ys = [Math.floor(fy), Math.floor(fy) + 1].map((v) => Math.min(127, Math.max(0, v)));
          const n = ys.flatMap((yy) => xs.map((xx) => src1[yy * 256 + xx]));
          const got = shown[y * 640 + x];
          let isBetween = false;
          for (const sh of [0, 8, 16]) {
            const c = n.map((v) => (v >> sh) & 0xff);
            const g = (got >> sh) & 0xff;
            if (g < Math.min(...c) - 1 || g > Math.max(...c) + 1) {
              outside++;
              if (firstBad.length < 5) firstBad.push(`(${x},${y}) ${hex(got)} vs ${n.map(hex).join(' ')}`);
            }
            if (!c.includes(g)) isBetween = true;
          }
          if (isBetween) between++;
        }
      }
      console.log(`linear ×4: ${outside} channel values outside their neighbourhood, ${between}/${zoomDst.width * zoomDst.height} pixels interpolated`);
      expect(firstBad).toEqual([]);
      expect(between).toBeGreaterThan((zoomDst.width * zoomDst.height) / 4);
    } finally {
      own?.close();
      t2.close();
      t1.close();
      up.close();
    }
  });

  it('blends a layer with plane alpha over what is below (premultiplied "over")', () => {
    const src = guest(64, 64, 4);
    const img = importGuest(src);
    const t = comp.createTarget(128, 128);
    try {
      comp.compose(t, [{ image: img, dst: { x: 32, y: 32, width: 64, height: 64 }, alpha: 0.5 }], { clear: [1, 1, 1, 1], filter: 'nearest' });
      const px = comp.readback(t);
      const g = cpuImage(src);
      const s32 = new Uint32Array(g.bytes.buffer, g.bytes.byteOffset, g.bytes.byteLength >> 2);
      let worst = 0;
      for (let y = 0; y < 64; y++) {
        for (let x = 0; x < 64; x++) {
          const s = s32[(y * g.stride) / 4 + x];
          const d = px[(32 + y) * 128 + 32 + x];
          for (const sh of [0, 8, 16]) {
            const want = ((s >> sh) & 0xff) * 0.5 + 255 * 0.5;
            worst = Math.max(worst, Math.abs(((d >> sh) & 0xff) - want));
          }
        }
      }
      expect(worst).toBeLessThanOrEqual(1);
      expect(px[0] & 0xffffff).toBe(0xffffff);
    } finally {
      t.close();
      img.close();
    }
  });

  it('refuses a format EGL cannot import, naming it and what EGL offers', () => {
    const src = guest(64, 64, 5);
    const q = src.query('primary');
    if (q.state !== 'ok') throw new Error('guest not ready');
    const fd = src.exportDmabuf(q.plane);
    try {
      let err: unknown;
      try {
        comp.importDmabuf({ fd, format: drm.fourcc('R1'), width: 64, height: 64, stride: 256 });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(GlesImportError);
      expect((err as GlesImportError).reason).toBe('unsupported-format');
      expect((err as Error).message).toMatch(/cannot import R1 \(0x[0-9a-f]{8}\) dma-bufs: eglQueryDmaBufFormatsEXT lists \d+ formats \(.*XR24.*\)/);
      console.log(`unsupported format: ${(err as Error).message}`);

      // A format EGL lists but a layout the dma-buf cannot hold: EGL's own error, by name.
      let err2: unknown;
      try {
        comp.importDmabuf({ fd, format: XR24, width: 64, height: 4096, stride: 256 }).close();
      } catch (e) {
        err2 = e;
      }
      console.log(`impossible layout: ${(err2 as Error | undefined)?.message}`);
      expect(err2).toBeInstanceOf(GlesImportError);
      expect((err2 as Error).message).toMatch(/eglCreateImageKHR\(dma-buf fd \d+ 64x4096 XR24 .*\) failed: EGL_BAD_[A-Z_]+|bytes, the layout needs/);

      // The raw binding names EGL's error too.
      expect(() =>
        egl.createImageKHR(
          // eslint-disable-next-line @typescript-eslint/no-explicit-any
          (comp as any).core.dpy,
          null,
          egl.EGL_LINUX_DMA_BUF_EXT,
          null,
          egl.dmabufImageAttribs({ width: 64, height: 64, format: drm.fourcc('R1'), planes: [{ fd, offset: 0, pitch: 256 }] }, true),
          'raw R1',
        ),
      ).toThrow(/eglCreateImageKHR\(raw R1\) failed: EGL_BAD_MATCH/);
    } finally {
      libc.close(fd, 'test dma-buf');
    }
  });

  it('works made current on a GBM window surface too (no surfaceless context)', () => {
    const c = GlesCompositor.create(dev, { surface: 'window' });
    if ('unavailable' in c) throw new Error(c.unavailable);
    try {
      expect(c.info.surfaceless).toBe(false);
      const t = c.createTarget(32, 32);
      // Two compositors alternate: each makes its own context current.
      comp.compose(comp.createTarget(32, 32), [], { clear: [0, 1, 0, 1] });
      c.compose(t, [], { clear: [0, 0, 1, 1] });
      expect(c.readback(t)[5] & 0xffffff).toBe(0x0000ff);
    } finally {
      c.close();
    }
    // comp's 32x32 target is freed by comp.close() in afterAll (counted here).
    expect(comp.counts.targets).toBe(1);
  });

  it('close() frees every KMS framebuffer it made (debugfs)', async () => {
    const before = debugfsFramebuffers(dev.path);
    const c = GlesCompositor.create(dev);
    if ('unavailable' in c) throw new Error(c.unavailable);
    const ring = c.createRing(640, 480, { count: 3 });
    const extra = c.createTarget(64, 64);
    const src = guest(64, 64, 6);
    const q = src.query('primary');
    if (q.state !== 'ok') throw new Error('guest not ready');
    const fd = src.exportDmabuf(q.plane);
    c.importDmabuf({ fd, format: XR24, width: 64, height: 64, stride: src.stride });
    libc.close(fd, 'test dma-buf');
    // One of them on screen while the compositor closes.
    const shown = ring.acquire();
    c.compose(shown, [], { clear: [0.5, 0.5, 0.5, 1] });
    await presentAndCapture(shown);
    ring.displayed(shown);
    const during = debugfsFramebuffers(dev.path);
    const ours = [...ring.targets.map((t) => t.fbId), extra.fbId];
    expect(during).toEqual(expect.arrayContaining(ours));
    expect(c.counts).toEqual({ images: 1, targets: 4 });
    c.close();
    const after = debugfsFramebuffers(dev.path);
    console.log(`KMS framebuffers: before ${JSON.stringify(before)}, with the compositor ${JSON.stringify(during)}, after close ${JSON.stringify(after)}`);
    expect(after.filter((id) => ours.includes(id))).toEqual([]);
    expect(after).toEqual(before);
    expect(ring.targets.every((t) => t.closed)).toBe(true);
  });
});

describe('ffi/gbm.ts and ffi/egl.ts on vkms', () => {
  it('allocates, exports and re-imports a bo; renders to a GBM window surface and locks its front buffer', () => {
    const fd = libc.open(dev.path, libc.O_RDWR);
    const g = gbm.createDevice(fd);
    let dpy: egl.EGLDisplay | null = null;
    try {
      expect(gbm.deviceGetBackendName(g)).toBe('drm');
      expect(gbm.deviceGetFd(g)).toBe(fd);
      const use = gbm.GBM_BO_USE_SCANOUT | gbm.GBM_BO_USE_RENDERING;
      expect(gbm.isFormatSupported(g, XR24, use)).toBe(true);
      const bo = gbm.boCreate(g, 100, 50, XR24, use | gbm.GBM_BO_USE_LINEAR);
      const info = gbm.boInfo(bo);
      expect(info).toMatchObject({ width: 100, height: 50, format: XR24 });
      expect(info.planes).toHaveLength(1);
      expect(info.planes[0].stride).toBeGreaterThanOrEqual(400);
      expect(info.planes[0].handle).toBeGreaterThan(0);
      expect(gbm.boGetBpp(bo)).toBe(32);
      const dfd = gbm.boGetFd(bo);
      try {
        const imp = gbm.boImportFdModifier(
          g,
          { width: 100, height: 50, format: XR24, fds: [dfd], strides: [info.planes[0].stride], offsets: [0], modifier: drm.DRM_FORMAT_MOD_INVALID },
          gbm.GBM_BO_USE_RENDERING,
        );
        // The same GEM object on the same fd: PRIME hands back the same handle.
        expect(gbm.boGetHandle(imp)).toBe(info.planes[0].handle);
        expect(gbm.boGetWidth(imp)).toBe(100);
        gbm.boDestroy(imp);
      } finally {
        libc.close(dfd, 'bo dma-buf');
      }
      gbm.boDestroy(bo);
      expect(() => gbm.boCreate(g, 0, 0, XR24, use)).toThrow(/^gbm_bo_create\(0x0 XR24 flags 0x5\) failed: E[A-Z]+/);

      // EGL on a window surface: configs, swap, lock/release of the front buffer.
      dpy = egl.getPlatformDisplay(egl.EGL_PLATFORM_GBM_KHR, g);
      egl.initialize(dpy);
      egl.bindAPI(egl.EGL_OPENGL_ES_API);
      const all = egl.getConfigs(dpy);
      const xr24 = all.filter((c) => egl.getConfigAttrib(dpy!, c, egl.EGL_NATIVE_VISUAL_ID) >>> 0 === XR24);
      expect(xr24.length).toBeGreaterThan(0);
      const cfg = egl
        .chooseConfig(dpy, egl.attribList([[egl.EGL_SURFACE_TYPE, egl.EGL_WINDOW_BIT], [egl.EGL_RENDERABLE_TYPE, egl.EGL_OPENGL_ES2_BIT], [egl.EGL_RED_SIZE, 8]]))
        .find((c) => egl.getConfigAttrib(dpy!, c, egl.EGL_NATIVE_VISUAL_ID) >>> 0 === XR24)!;
      const surf = gbm.surfaceCreate(g, 64, 48, XR24, use);
      const win = egl.createWindowSurface(dpy, cfg, surf);
      const ctx = egl.createContext(dpy, cfg, null, egl.attribList([[egl.EGL_CONTEXT_CLIENT_VERSION, 2]]));
      egl.makeCurrent(dpy, win, win, ctx);
      egl.glViewport(0, 0, 64, 48);
      egl.glClearColor(0, 1, 0, 1);
      egl.glClear(egl.GL_COLOR_BUFFER_BIT);
      egl.checkGl('glClear');
      egl.swapBuffers(dpy, win);
      const front = gbm.surfaceLockFrontBuffer(surf);
      expect(gbm.boInfo(front)).toMatchObject({ width: 64, height: 48, format: XR24 });
      gbm.surfaceReleaseBuffer(surf, front);
      expect(gbm.surfaceHasFreeBuffers(surf)).toBe(true);
      expect(() => gbm.surfaceLockFrontBuffer(surf)).toThrow(/gbm_surface_lock_front_buffer/);
      egl.makeCurrent(dpy, null, null, null);
      egl.destroySurface(dpy, win);
      egl.destroyContext(dpy, ctx);
      gbm.surfaceDestroy(surf);
    } finally {
      if (dpy) egl.terminate(dpy);
      gbm.deviceDestroy(g);
      libc.close(fd, 'gbm fd');
    }
  });
});
