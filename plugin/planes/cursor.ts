// The guest's hardware cursor as a layer for the host's cursor plane.
//
// Position: a guest reports its cursor image's top-left (VFIO x_pos/y_pos, as cursor
// registers hold it) and the hotspot inside the image. When the guest picture is scaled
// (fit/fill), the pointer *tip* must land where the guest meant it, but the cursor image
// itself stays unscaled (cursor planes do not scale, and a pointer should not grow with
// the picture): so the tip is mapped through the placement and the image is hung from it
// by its hotspot. Virtualised host drivers (virtio-gpu, vmwgfx, qxl) also want the
// hotspot itself, as the HOTSPOT_X/Y plane properties, to drive their own pointer.
//
// Buffer: cursor planes often take only small LINEAR buffers up to (or exactly)
// DRM_CAP_CURSOR_WIDTH×HEIGHT. A guest buffer that fits is scanned out as it is; one that
// does not (too big, tiled, a region) is copied into a cursor-sized dumb buffer, once per
// cursor image (a move copies nothing).
//
// Ownership: owns two cursor-sized dumb buffers (so the one on screen is never drawn into).
import * as drm from '../../ffi/drm.js';
import type { KmsDevice } from '../kms/device.js';
import { DumbFramebuffer } from '../kms/dumb.js';
import type { FramebufferCache } from '../buffers/fb-cache.js';
import type { DmabufMaps } from '../compose/dmabuf-map.js';
import { blit, fill, type Rect } from '../compose/cpu.js';
import type { ComposeInput } from '../compose/composer.js';
import type { Layer } from './allocator.js';
import type { GuestPlaneInfo, GuestSource } from '../sources/source.js';
import { validatePlane } from '../buffers/validate.js';


export const CURSOR_Z = 1_000_000;

/** Host top-left of the cursor image for a guest cursor shown through `place`. */
export function cursorPosition(cur: Pick<GuestPlaneInfo, 'x' | 'y' | 'hotX' | 'hotY'>, place: { src: Rect; dst: Rect }): { x: number; y: number; hotX: number; hotY: number } {
  const hotX = cur.hotX < 0 ? 0 : cur.hotX;
  const hotY = cur.hotY < 0 ? 0 : cur.hotY;
  const tipX = place.dst.x + Math.round(((cur.x + hotX - place.src.x) * place.dst.width) / place.src.width);
  const tipY = place.dst.y + Math.round(((cur.y + hotY - place.src.y) * place.dst.height) / place.src.height);
  return { x: tipX - hotX, y: tipY - hotY, hotX, hotY };
}

export interface CursorFrame {
  layer: Layer;
  /** The same cursor for the composition (the guest's own buffer). */
  input: ComposeInput;
  hotX: number;
  hotY: number;
  /** The buffer went through the cursor-sized copy (and why). */
  copied: string | null;
}

export class CursorBuffers {
  private bufs: DumbFramebuffer[] = [];
  private shownKey = '';
  private shownIndex = -1;
  /** Bytes copied into cursor buffers so far. */
  bytesCopied = 0;

  constructor(private readonly dev: KmsDevice) {}

  get size(): { width: number; height: number } {
    return { width: this.dev.caps.cursorWidth, height: this.dev.caps.cursorHeight };
  }

  /**
   * The cursor layer for guest cursor `cur`. `scanout`: whether guest buffers may be
   * scanned out (options.paths); `onScreen`: FB ids on screen (not to be evicted).
   */
  frame(source: GuestSource, sourceId: number, cur: GuestPlaneInfo, place: { src: Rect; dst: Rect }, cache: FramebufferCache, maps: DmabufMaps, scanout: boolean, onScreen: ReadonlySet<number>): CursorFrame | { cause: string; error: string } {
    const v = validatePlane(cur, null);
    if (!v.ok) return { cause: v.cause, error: v.message };
    const pos = cursorPosition(cur, place);
    const src = { x: 0, y: 0, width: cur.width, height: cur.height };
    const dst = { x: pos.x, y: pos.y, width: cur.width, height: cur.height };
    const key = `${sourceId}/${cur.bufferId}/${cur.generation}/${cur.frame ?? ''}`;
    const input: ComposeInput = { kind: 'guest', id: 'cursor', source, sourceId, plane: cur, src, dst, key };
    const base = { id: 'cursor', zIndex: CURSOR_Z, cursor: true, src, dst };
    if (!scanout) return { layer: { ...base, buffer: null, noBufferReason: 'scanout is not among options.paths' }, input, hotX: pos.hotX, hotY: pos.hotY, copied: null };
    const { width: cw, height: ch } = this.size;
    const linear = cur.modifier === drm.DRM_FORMAT_MOD_LINEAR || cur.modifier === drm.DRM_FORMAT_MOD_INVALID;
    let why = '';
    if (cur.transport !== 'dmabuf') why = 'a region plane';
    else if (!this.dev.caps.prime.import) why = 'the device cannot import dma-bufs';
    else if (cur.width > cw || cur.height > ch) why = `${cur.width}x${cur.height} exceeds the cursor plane's ${cw}x${ch}`;
    else if (!linear) why = `modifier ${drm.formatModifierName(cur.modifier)} is not linear`;
    if (!why) {
      const fb = cache.get('guest-cursor', source, cur, onScreen);
      if (fb.ok) {
        const e = fb.entry;
        return { layer: { ...base, buffer: { fbId: e.fbId, format: e.format, modifier: e.modifier, width: e.width, height: e.height } }, input, hotX: pos.hotX, hotY: pos.hotY, copied: null };
      }
      why = `import failed: ${fb.message}`;
    }
    // Copy into a cursor-sized buffer, once per image.
    const copy = this.copy(source, sourceId, cur, maps, key);
    if ('error' in copy) return { layer: { ...base, buffer: null, noBufferReason: `${why}; and the copy failed: ${copy.error}` }, input, hotX: pos.hotX, hotY: pos.hotY, copied: null };
    const w = Math.min(cur.width, cw);
    const h = Math.min(cur.height, ch);
    return {
      layer: { ...base, hostBuffer: true, buffer: { fbId: copy.fbId, format: drm.fourcc('AR24'), modifier: drm.DRM_FORMAT_MOD_LINEAR, width: cw, height: ch }, src: { x: 0, y: 0, width: w, height: h }, dst: { ...dst, width: w, height: h } },
      input,
      hotX: Math.min(pos.hotX, w - 1),
      hotY: Math.min(pos.hotY, h - 1),
      copied: why,
    };
  }

  private copy(source: GuestSource, sourceId: number, cur: GuestPlaneInfo, maps: DmabufMaps, key: string): { fbId: number } | { error: string } {
    const { width: cw, height: ch } = this.size;
    if (this.bufs.length === 0) {
      for (let i = 0; i < 2; i++) this.bufs.push(new DumbFramebuffer(this.dev.fd, cw, ch, drm.fourcc('AR24')));
    }
    if (key === this.shownKey) return { fbId: this.bufs[this.shownIndex].fbId };
    const acc = maps.access(source, sourceId, cur);
    if ('error' in acc) return { error: acc.error };
    const v = validatePlane(cur, acc.view.bytes.byteLength - acc.view.offset + cur.offset);
    if (!v.ok) return { error: v.message };
    if (v.format.cpp[0] !== 4) return { error: `cursor format ${v.format.code} is not a 32-bit format` };
    const idx = this.shownIndex === 0 ? 1 : 0;
    const t = this.bufs[idx];
    const img = { bytes: t.bytes, offset: 0, stride: t.pitch, width: cw, height: ch };
    fill(img, { x: 0, y: 0, width: cw, height: ch }, 0);
    const w = Math.min(cur.width, cw);
    const h = Math.min(cur.height, ch);
    acc.begin();
    try {
      this.bytesCopied += blit({ bytes: acc.view.bytes, offset: acc.view.offset, stride: cur.stride, width: cur.width, height: cur.height }, { x: 0, y: 0, width: w, height: h }, img, { x: 0, y: 0, width: w, height: h });
    } finally {
      acc.end();
    }
    // Opaque formats (XR24) have no alpha to blend with: make the image opaque.
    if (!v.format.hasAlpha) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) t.bytes[y * t.pitch + x * 4 + 3] = 255;
    this.shownKey = key;
    this.shownIndex = idx;
    return { fbId: t.fbId };
  }

  close(): void {
    for (const b of this.bufs) b.close(true);
    this.bufs = [];
    this.shownKey = '';
    this.shownIndex = -1;
  }
}
