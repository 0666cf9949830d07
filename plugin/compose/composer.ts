// Composition of the layers no plane took into one full-screen buffer for the primary
// plane: on the GPU (GLES) when allowed and possible, else on the CPU. Preference and
// permission come from the output's paths; every fallback says why.
//
// Ownership: the composer owns its GLES compositor (lazily created on first use), its
// target ring and the two CPU buffers; the FB cache it is given (the output's) owns the
// EGLImages, so they are reused across frames like the FBs and dropped with them.
import * as drm from '../../ffi/drm.js';
import type { KmsDevice } from '../kms/device.js';
import { DumbFramebuffer } from '../kms/dumb.js';
import type { FramebufferCache } from '../buffers/fb-cache.js';
import type { DmabufMaps } from './dmabuf-map.js';
import { GlesCompositor, type GlesImage, type GlesLayer, type GlesTarget, type TargetRing } from './gles.js';
import { blendOver, blit, clipUnscaled, drawTransformed, fill, rectKey, type Rect } from './cpu.js';
import { FLIPPED_180, NORMAL } from '../transform.js';
import { validatePlane } from '../buffers/validate.js';
import type { GuestPlaneInfo, GuestSource } from '../sources/source.js';

/** What one composed layer shows. */
export type ComposeInput =
  | { kind: 'solid'; id: string; pixel: number; dst: Rect }
  /** A dma-buf layer (a guest's plane, or a host layer's buffer through its adapter source); alpha 0..1, default 1. */
  | { kind: 'guest'; id: string; source: GuestSource; sourceId: number; plane: GuestPlaneInfo; src: Rect; dst: Rect; key: string; alpha?: number };

export interface Composed {
  key: string;
  fbId: number;
  path: 'gles' | 'copy';
  target?: GlesTarget;
  copyIndex?: number;
  /** Why GLES was not used, when it was allowed but failed. */
  fallback?: string;
  gles?: { uploadedBytes: number; composeMs: number; imagePath: 'dmabuf' | 'upload'; uploadReason: string | null };
  bytesCopied: number;
}

/** `layer`: the layer whose buffer no path could draw, when that is why. */
export type ComposeFailure = { cause: string; error: string; layer?: string };

export class Composer {
  /** undefined: not tried; a string: why GPU composition is unavailable. */
  private gles: GlesCompositor | string | undefined;
  private ring: TargetRing<GlesTarget> | null = null;
  private copyBuffers: DumbFramebuffer[] = [];
  /** The last composition: unchanged layers on screen are not composed again. */
  private last: Composed | null = null;

  constructor(
    private readonly dev: KmsDevice,
    private readonly width: number,
    private readonly height: number,
    private readonly cache: FramebufferCache,
    private readonly maps: DmabufMaps,
  ) {}

  /** A full-screen XR24 FB (one of the CPU buffers) to stand in for the composition in TEST_ONLY. */
  standIn(): number {
    return this.cpuBuffers()[0].fbId;
  }

  private cpuBuffers(): DumbFramebuffer[] {
    if (this.copyBuffers.length === 0) {
      for (let i = 0; i < 2; i++) this.copyBuffers.push(new DumbFramebuffer(this.dev.fd, this.width, this.height, drm.fourcc('XR24')));
    }
    return this.copyBuffers;
  }

  get glesInfo(): GlesCompositor['info'] | null {
    return this.gles instanceof GlesCompositor ? this.gles.info : null;
  }

  /**
   * Composes `layers` (bottom first). `onScreenFb` is the FB the primary shows now (its
   * buffer must not be drawn into). `allowGles`/`allowCopy`: the output's paths.
   */
  compose(layers: readonly ComposeInput[], onScreenFb: number, allowGles: boolean, allowCopy: boolean): Composed | ComposeFailure {
    const key = layers.map((l) => (l.kind === 'solid' ? `${l.id}:${l.pixel}:${rectKey(l.dst)}` : `${l.id}:${l.key}:${rectKey(l.src)}>${rectKey(l.dst)}@${l.alpha ?? 1}/${l.plane.transform ?? 0}`)).join(';');
    if (this.last && this.last.key === key && this.last.fbId === onScreenFb) {
      return { ...this.last, bytesCopied: 0, gles: this.last.gles && { ...this.last.gles, uploadedBytes: 0, composeMs: 0 } };
    }
    const r = this.composeAny(layers, key, onScreenFb, allowGles, allowCopy);
    if ('fbId' in r) this.last = r;
    return r;
  }

  private composeAny(layers: readonly ComposeInput[], key: string, onScreenFb: number, allowGles: boolean, allowCopy: boolean): Composed | ComposeFailure {
    const hasGuest = layers.some((l) => l.kind === 'guest');
    let fallback: string | undefined;
    if (allowGles && hasGuest) {
      const g = this.composeGles(layers, key);
      if ('fbId' in g) return g;
      fallback = g.error;
      if (!allowCopy) return g;
    }
    // Host-only content (a background colour) is drawn on the CPU whatever the paths say:
    // the paths govern guest pixels.
    if (!allowCopy && hasGuest) return { cause: 'no-path', error: 'neither GPU composition nor the CPU copy is among options.paths' };
    const c = this.composeCpu(layers, key, onScreenFb);
    if ('fbId' in c && fallback) c.fallback = fallback;
    return c;
  }

  private compositor(): GlesCompositor | string {
    if (this.gles === undefined) {
      const c = GlesCompositor.create(this.dev);
      this.gles = 'unavailable' in c ? c.unavailable : c;
    }
    return this.gles;
  }

  private composeGles(layers: readonly ComposeInput[], key: string): Composed | ComposeFailure {
    // Before the GPU is set up (seconds under TCG) for a frame it could not draw anyway.
    const region = layers.find((l) => l.kind === 'guest' && l.plane.transport !== 'dmabuf');
    if (region) return { cause: 'gles-no-dmabuf', error: `${region.id} is a region plane, not a dma-buf`, layer: region.id };
    const comp = this.compositor();
    if (typeof comp === 'string') return { cause: 'gles-unavailable', error: comp };
    let clear: [number, number, number, number] = [0, 0, 0, 1];
    const gl: GlesLayer[] = [];
    let imagePath: 'dmabuf' | 'upload' = 'dmabuf';
    let uploadReason: string | null = null;
    for (const [i, l] of layers.entries()) {
      if (l.kind === 'solid') {
        const full = l.dst.x <= 0 && l.dst.y <= 0 && l.dst.x + l.dst.width >= this.width && l.dst.y + l.dst.height >= this.height;
        if (i !== 0 || !full) return { cause: 'gles-solid', error: `solid layer ${l.id} is not a full-screen bottom layer` };
        clear = [((l.pixel >>> 16) & 0xff) / 255, ((l.pixel >>> 8) & 0xff) / 255, (l.pixel & 0xff) / 255, 1];
        continue;
      }
      const p = l.plane;
      const r = this.cache.image<GlesImage>('gles', l.source, p, (fd) =>
        comp.importDmabuf({ fd, format: p.format, modifier: p.modifier, width: p.width, height: p.height, stride: p.stride, offset: p.offset }),
      );
      if (!r.ok) return { cause: r.cause, error: r.message, layer: l.id };
      if (r.value.path === 'upload') {
        imagePath = 'upload';
        uploadReason = r.value.uploadReason;
      }
      gl.push({ image: r.value, src: l.src, dst: l.dst, alpha: l.alpha, transform: p.transform ?? NORMAL });
    }
    let target: GlesTarget;
    try {
      this.ring ??= comp.createRing(this.width, this.height, { count: 3 });
      target = this.ring.acquire();
    } catch (e) {
      return { cause: 'gles-target-failed', error: (e as Error).message };
    }
    try {
      const r = comp.compose(target, gl, { clear });
      return { key, fbId: target.fbId, path: 'gles', target, gles: { uploadedBytes: r.uploadedBytes, composeMs: r.ms, imagePath, uploadReason }, bytesCopied: 0 };
    } catch (e) {
      this.ring.release(target);
      return { cause: 'gles-compose-failed', error: (e as Error).message };
    }
  }

  private composeCpu(layers: readonly ComposeInput[], key: string, onScreenFb: number): Composed | ComposeFailure {
    const bufs = this.cpuBuffers();
    // The buffer not on screen (one commit in flight at most, so two suffice).
    const idx = bufs[0].fbId === onScreenFb ? 1 : 0;
    const target = bufs[idx];
    const dstImg = { bytes: target.bytes, offset: 0, stride: target.pitch, width: target.width, height: target.height };
    let bytes = 0;
    for (const l of layers) {
      if (l.kind === 'solid') {
        const c = clipUnscaled(l.dst, l.dst, this.width, this.height);
        if (!c) continue;
        // Only what an opaque guest layer will not cover: the borders around it.
        const hole = layers.find((x) => x.kind === 'guest' && !drm.formatInfo(x.plane.format)?.hasAlpha && (x.alpha ?? 1) >= 1 && inside(x.dst, c.dst));
        if (hole) fillAround(dstImg, c.dst, hole.dst, l.pixel);
        else fill(dstImg, c.dst, l.pixel);
        continue;
      }
      const p = l.plane;
      const acc = this.maps.access(l.source, l.sourceId, p);
      if ('error' in acc) return { cause: 'no-cpu-access', error: acc.error, layer: l.id };
      const v = validatePlane(p, acc.view.bytes.byteLength - acc.view.offset + p.offset);
      if (!v.ok) return { cause: v.cause, error: v.message, layer: l.id };
      if (v.format.cpp[0] !== 4) return { cause: 'copy-format', error: `the copy path handles 32-bit formats only, not ${v.format.code}`, layer: l.id };
      const srcImg = { bytes: acc.view.bytes, offset: acc.view.offset, stride: p.stride, width: p.width, height: p.height };
      acc.begin();
      try {
        const scaled = l.src.width !== l.dst.width || l.src.height !== l.dst.height;
        const alpha = l.alpha ?? 1;
        const t = p.transform ?? NORMAL;
        // Row copies cover normal and Y_INVERT; rotations and mirrors go pixel by pixel.
        const flipY = t === FLIPPED_180;
        if (t !== NORMAL && !flipY) {
          bytes += drawTransformed(srcImg, l.src, dstImg, l.dst, t, { blend: alpha < 1 || v.format.hasAlpha, alpha, opaque: !v.format.hasAlpha });
        } else if (alpha < 1) {
          if (scaled) return { cause: 'copy-alpha-scaled', error: `${l.id}: the CPU copy cannot blend a scaled layer with alpha ${alpha}; allow the gles path or do not scale it`, layer: l.id };
          const c = clipUnscaled(l.src, l.dst, this.width, this.height, flipY);
          if (c) bytes += blendOver(srcImg, c.src, dstImg, c.dst, { alpha, opaque: !v.format.hasAlpha, flipY });
        } else if (v.format.hasAlpha && !scaled) {
          const c = clipUnscaled(l.src, l.dst, this.width, this.height, flipY);
          if (c) bytes += blendOver(srcImg, c.src, dstImg, c.dst, { flipY });
        } else if (!scaled) {
          const c = clipUnscaled(l.src, l.dst, this.width, this.height, flipY);
          if (c) bytes += blit(srcImg, c.src, dstImg, c.dst, flipY);
        } else {
          bytes += blit(srcImg, l.src, dstImg, l.dst, flipY);
        }
      } finally {
        acc.end();
      }
    }
    return { key, fbId: target.fbId, path: 'copy', copyIndex: idx, bytesCopied: bytes };
  }

  /** The flip showing `c` completed (its GLES target is on screen, the previous one free). */
  displayed(c: Composed): void {
    if (c.target) this.ring?.displayed(c.target);
  }

  /** `c` will not be shown (its commit failed). */
  abandon(c: Composed): void {
    if (c.target) this.ring?.release(c.target);
  }

  /**
   * Forgets the GPU side (the GLES compositor, its targets and its private DRM fd); it is
   * made again when next needed. Called when a source goes: Mesa's kms_swrast keeps GEM
   * imports of dma-bufs it failed to read (measured: both mbochs buffers stayed alive,
   * attached to vkms, after their EGLImages were destroyed), and only closing its fd lets
   * them go — which matters, since an mbochs dma-buf outliving its mdev is a kernel
   * use-after-free.
   */
  dropGpu(): void {
    if (!(this.gles instanceof GlesCompositor)) return;
    this.cache.releaseImages(); // every EGLImage belongs to the compositor about to close
    this.gles.close({ keepOnScreen: true });
    this.gles = undefined;
    this.ring = null;
    this.last = null;
  }

  close(): void {
    if (this.gles instanceof GlesCompositor) {
      // CLOSEFB: a target still on screen stays lit until restore()/the next owner moves on.
      this.gles.close({ keepOnScreen: true });
    }
    this.gles = undefined;
    this.ring = null;
    this.last = null;
    for (const b of this.copyBuffers) b.close(true);
    this.copyBuffers = [];
  }
}

/** Whether `r` lies within `area`. */
function inside(r: Rect, area: Rect): boolean {
  return r.x >= area.x && r.y >= area.y && r.x + r.width <= area.x + area.width && r.y + r.height <= area.y + area.height;
}

/** Fills `area` except the rectangle `hole` inside it. */
function fillAround(img: { bytes: Uint8Array; offset: number; stride: number; width: number; height: number }, area: Rect, hole: Rect, px: number): void {
  fill(img, { x: area.x, y: area.y, width: area.width, height: hole.y - area.y }, px);
  fill(img, { x: area.x, y: hole.y + hole.height, width: area.width, height: area.y + area.height - hole.y - hole.height }, px);
  fill(img, { x: area.x, y: hole.y, width: hole.x - area.x, height: hole.height }, px);
  fill(img, { x: hole.x + hole.width, y: hole.y, width: area.x + area.width - hole.x - hole.width, height: hole.height }, px);
}
