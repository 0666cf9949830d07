// CPU copy path: the last resort when neither a plane nor the GPU can take a buffer.
// Copies (and if needed scales, nearest-neighbour) 32-bit pixels into a dumb buffer.
import { toBuffer, type Transform } from '../transform.js';
import type { Rect } from '../geometry.js';

// The geometry it works in, re-exported for the callers that draw with it.
export { placement, rectKey, type FitMode, type Rect } from '../geometry.js';

export interface CpuImage {
  bytes: Uint8Array;
  offset: number;
  stride: number;
  width: number;
  height: number;
}

/** Bytes per pixel the copy path handles: every 32-bit RGB format copies as-is. */
export const CPU_BPP = 4;

/**
 * Copies `src` (rect `from`, in source pixels) into `dst` (rect `to`). Same size: one
 * row copy per line (TypedArray.set, a memmove). Different size: nearest neighbour.
 * `flipY` reflects `from` vertically (its last row lands on `to`'s first: a y-inverted
 * buffer). Returns the bytes written. Rectangles must already be clipped to both images.
 */
export function blit(src: CpuImage, from: Rect, dst: CpuImage, to: Rect, flipY = false): number {
  if (to.width <= 0 || to.height <= 0) return 0;
  // Source row for destination row y.
  const rowOf = (y: number, scaled: boolean) => {
    const r = scaled ? Math.min(from.height - 1, Math.floor(((y + 0.5) * from.height) / to.height)) : y;
    return from.y + (flipY ? from.height - 1 - r : r);
  };
  if (from.width === to.width && from.height === to.height) {
    const rowBytes = to.width * CPU_BPP;
    for (let y = 0; y < to.height; y++) {
      const s = src.offset + rowOf(y, false) * src.stride + from.x * CPU_BPP;
      const d = dst.offset + (to.y + y) * dst.stride + to.x * CPU_BPP;
      dst.bytes.set(src.bytes.subarray(s, s + rowBytes), d);
    }
    return rowBytes * to.height;
  }
  const xmap = new Int32Array(to.width);
  for (let x = 0; x < to.width; x++) xmap[x] = from.x + Math.min(from.width - 1, Math.floor(((x + 0.5) * from.width) / to.width));
  if ((src.offset | src.stride | dst.offset | dst.stride | src.bytes.byteOffset | dst.bytes.byteOffset) % 4 !== 0) {
    // The guest chose an unaligned offset or stride (the kernel allows it for linear
    // buffers): no 32-bit view fits, copy each pixel's 4 bytes instead of refusing.
    for (let y = 0; y < to.height; y++) {
      const srow = src.offset + rowOf(y, true) * src.stride;
      const drow = dst.offset + (to.y + y) * dst.stride + to.x * CPU_BPP;
      for (let x = 0; x < to.width; x++) {
        const s = srow + xmap[x] * CPU_BPP;
        dst.bytes.set(src.bytes.subarray(s, s + CPU_BPP), drow + x * CPU_BPP);
      }
    }
    return to.width * to.height * CPU_BPP;
  }
  const s32 = new Uint32Array(src.bytes.buffer, src.bytes.byteOffset, Math.floor(src.bytes.byteLength / 4));
  const d32 = new Uint32Array(dst.bytes.buffer, dst.bytes.byteOffset, Math.floor(dst.bytes.byteLength / 4));
  for (let y = 0; y < to.height; y++) {
    const srow = (src.offset + rowOf(y, true) * src.stride) / 4;
    const drow = (dst.offset + (to.y + y) * dst.stride) / 4 + to.x;
    for (let x = 0; x < to.width; x++) d32[drow + x] = s32[srow + xmap[x]];
  }
  return to.width * to.height * CPU_BPP;
}

/** Fills a rectangle of a 32-bit image with one pixel value. */
export function fill(dst: CpuImage, r: Rect, pixel: number): void {
  const d32 = new Uint32Array(dst.bytes.buffer, dst.bytes.byteOffset, Math.floor(dst.bytes.byteLength / 4));
  for (let y = r.y; y < r.y + r.height; y++) {
    const row = (dst.offset + y * dst.stride) / 4;
    d32.fill(pixel >>> 0, row + r.x, row + r.x + r.width);
  }
}

/**
 * Premultiplied "over" of an unscaled 32-bit ARGB image (AR24 as the guest's cursor is)
 * onto an XRGB image: what a cursor plane does, for when the cursor must be composed.
 * Rectangles must be clipped to both images and of equal size. Returns the bytes read.
 */
export function blendOver(src: CpuImage, from: Rect, dst: CpuImage, to: Rect, opts: { alpha?: number; opaque?: boolean; flipY?: boolean } = {}): number {
  if (to.width <= 0 || to.height <= 0) return 0;
  if (from.width !== to.width || from.height !== to.height) throw new RangeError('blendOver: scaled blending is not supported');
  const sb = src.bytes;
  const db = dst.bytes;
  // Plane alpha scales the premultiplied source (colour and alpha alike), as KMS and GLES do.
  const ga = opts.alpha ?? 1;
  const opaque = opts.opaque ?? false;
  for (let y = 0; y < to.height; y++) {
    const sy = from.y + (opts.flipY ? from.height - 1 - y : y);
    let s = src.offset + sy * src.stride + from.x * CPU_BPP;
    let d = dst.offset + (to.y + y) * dst.stride + to.x * CPU_BPP;
    for (let x = 0; x < to.width; x++, s += 4, d += 4) over(sb, s, db, d, ga, opaque);
  }
  return to.width * to.height * CPU_BPP;
}

/**
 * One pixel of premultiplied "over": source pixel at `s` onto the destination pixel at
 * `d`, plane alpha `ga` scaling the source (colour and alpha alike); `opaque` ignores the
 * source's alpha byte (an XR24 layer). The result is opaque.
 */
function over(sb: Uint8Array, s: number, db: Uint8Array, d: number, ga: number, opaque: boolean): void {
  const a0 = opaque ? 255 : sb[s + 3];
  if (a0 === 0) return;
  if (a0 === 255 && ga >= 1) {
    db[d] = sb[s];
    db[d + 1] = sb[s + 1];
    db[d + 2] = sb[s + 2];
  } else {
    const k = 255 - a0 * ga;
    db[d] = Math.min(255, Math.round(sb[s] * ga + (db[d] * k) / 255));
    db[d + 1] = Math.min(255, Math.round(sb[s + 1] * ga + (db[d + 1] * k) / 255));
    db[d + 2] = Math.min(255, Math.round(sb[s + 2] * ga + (db[d + 2] * k) / 255));
  }
  db[d + 3] = 255;
}

/**
 * Draws `from` (pixels of `src`, a buffer that holds its picture with transform `t`) onto
 * `to` in `dst` with `t` undone: nearest neighbour, any scale, clipped to `dst`. The path
 * for rotations and mirrors the row copies above do not cover. `blend`: premultiplied
 * "over" with plane alpha, as blendOver. Returns the bytes written.
 */
export function drawTransformed(src: CpuImage, from: Rect, dst: CpuImage, to: Rect, t: Transform, opts: { blend?: boolean; alpha?: number; opaque?: boolean } = {}): number {
  const x0 = Math.max(0, to.x);
  const y0 = Math.max(0, to.y);
  const x1 = Math.min(dst.width, to.x + to.width);
  const y1 = Math.min(dst.height, to.y + to.height);
  if (x1 <= x0 || y1 <= y0 || from.width <= 0 || from.height <= 0) return 0;
  // The transform is affine on the unit square: buffer (a, b) = c + u·du + v·dv.
  const [ca, cb] = toBuffer(t, 0, 0);
  const [ua, ub] = toBuffer(t, 1, 0);
  const [va, vb] = toBuffer(t, 0, 1);
  const sb = src.bytes;
  const db = dst.bytes;
  const ga = opts.alpha ?? 1;
  const opaque = opts.opaque ?? false;
  for (let y = y0; y < y1; y++) {
    const v = (y - to.y + 0.5) / to.height;
    const drow = dst.offset + y * dst.stride;
    for (let x = x0; x < x1; x++) {
      const u = (x - to.x + 0.5) / to.width;
      const a = ca + (ua - ca) * u + (va - ca) * v;
      const b = cb + (ub - cb) * u + (vb - cb) * v;
      const sx = from.x + Math.min(from.width - 1, Math.floor(a * from.width));
      const sy = from.y + Math.min(from.height - 1, Math.floor(b * from.height));
      const s = src.offset + sy * src.stride + sx * CPU_BPP;
      const d = drow + x * CPU_BPP;
      if (opts.blend) {
        over(sb, s, db, d, ga, opaque);
      } else {
        db[d] = sb[s];
        db[d + 1] = sb[s + 1];
        db[d + 2] = sb[s + 2];
        db[d + 3] = sb[s + 3];
      }
    }
  }
  return (x1 - x0) * (y1 - y0) * CPU_BPP;
}

/**
 * The part of `dst` (and the matching part of `src`, unscaled) inside a w×h image. With
 * `flipY` `src` is shown reflected, so rows cut from the top of `dst` come off the
 * bottom of `src`.
 */
export function clipUnscaled(src: Rect, dst: Rect, w: number, h: number, flipY = false): { src: Rect; dst: Rect } | null {
  const x0 = Math.max(0, dst.x);
  const y0 = Math.max(0, dst.y);
  const x1 = Math.min(w, dst.x + dst.width);
  const y1 = Math.min(h, dst.y + dst.height);
  if (x1 <= x0 || y1 <= y0) return null;
  const sy = flipY ? src.y + (dst.y + dst.height - y1) : src.y + (y0 - dst.y);
  return { src: { x: src.x + (x0 - dst.x), y: sy, width: x1 - x0, height: y1 - y0 }, dst: { x: x0, y: y0, width: x1 - x0, height: y1 - y0 } };
}
