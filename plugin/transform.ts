// Buffer transforms: how a buffer stores the picture it shows (wl_output.transform's
// eight rotations and mirrors, linux-dmabuf's Y_INVERT), and what undoes it: a KMS plane
// rotation for scanout, texture coordinates for GLES, pixel addressing for the CPU.
//
// A transform T says the buffer holds the picture *with T applied* (Wayland's
// wl_surface.set_buffer_transform); showing the picture applies the inverse. Maps here
// work on the unit square (coordinates relative to a rectangle, 0..1), so they are
// independent of sizes; 90° and 270° variants swap a rectangle's width and height.
//
// Picture → buffer, as Weston's weston_transformed_coord() has it (w, h: picture size):
//   normal (x, y)   90 (y, w-x)   180 (w-x, h-y)   270 (h-y, x)
//   flipped (w-x, y)   flipped-90 (y, x)   flipped-180 (x, h-y)   flipped-270 (h-y, w-x)
import type { Rect } from './geometry.js';

/** wl_output.transform values: 0 normal, 1 90, 2 180, 3 270, 4 flipped, 5–7 flipped-90/180/270. */
export type Transform = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7;

export const TRANSFORM_NAMES = ['normal', '90', '180', '270', 'flipped', 'flipped-90', 'flipped-180', 'flipped-270'] as const;
export const NORMAL: Transform = 0;
/** Y_INVERT: rows stored bottom-up. */
export const FLIPPED_180: Transform = 6;

export function isTransform(t: unknown): t is Transform {
  return Number.isInteger(t) && (t as number) >= 0 && (t as number) <= 7;
}

/** Whether T swaps width and height (a 90° or 270° rotation). */
function swapsAxes(t: Transform): boolean {
  return (t & 1) === 1;
}

type Map2 = (u: number, v: number) => [number, number];

/** Picture → buffer on the unit square. */
const TO_BUFFER: readonly Map2[] = [
  (u, v) => [u, v],
  (u, v) => [v, 1 - u],
  (u, v) => [1 - u, 1 - v],
  (u, v) => [1 - v, u],
  (u, v) => [1 - u, v],
  (u, v) => [v, u],
  (u, v) => [u, 1 - v],
  (u, v) => [1 - v, 1 - u],
];

/** Picture point (relative to the picture rectangle, 0..1) → buffer point (relative to the buffer rectangle). */
export function toBuffer(t: Transform, u: number, v: number): [number, number] {
  return TO_BUFFER[t]!(u, v);
}

// A transform is identified by where it sends two probe points (no two of the eight agree).
const PROBES: readonly [number, number][] = [
  [0.25, 0.125],
  [0.5, 0.75],
];
function identify(f: Map2): Transform {
  for (let t = 0; t < 8; t++) {
    if (PROBES.every(([u, v]) => sameP(TO_BUFFER[t]!(u, v), f(u, v)))) return t as Transform;
  }
  throw new Error('not a rectangle symmetry');
}
const sameP = (a: [number, number], b: [number, number]) => Math.abs(a[0] - b[0]) < 1e-9 && Math.abs(a[1] - b[1]) < 1e-9;

/** The transform of a buffer stored as `outer` applied to a picture stored with `inner` (inner first). */
export function compose(outer: Transform, inner: Transform): Transform {
  return identify((u, v) => {
    const [a, b] = TO_BUFFER[inner]!(u, v);
    return TO_BUFFER[outer]!(a, b);
  });
}

export function invert(t: Transform): Transform {
  for (let s = 0; s < 8; s++) if (compose(s as Transform, t) === NORMAL) return s as Transform;
  throw new Error('unreachable');
}

/**
 * A buffer's transform from what a client said: its buffer_transform, and linux-dmabuf's
 * Y_INVERT (the buffer's rows are stored bottom-up on top of that).
 */
export function withYInvert(t: Transform, yInverted: boolean): Transform {
  return yInverted ? compose(FLIPPED_180, t) : t;
}

/** Size of the picture a w×h buffer with transform T shows. */
export function pictureSize(t: Transform, bufferW: number, bufferH: number): { w: number; h: number } {
  return swapsAxes(t) ? { w: bufferH, h: bufferW } : { w: bufferW, h: bufferH };
}

/**
 * The buffer rectangle holding `r`, a rectangle of the picture (picture size pw×ph).
 * Planes and composers take source rectangles in buffer coordinates.
 */
export function bufferRect(t: Transform, r: Rect, pw: number, ph: number): Rect {
  if (t === NORMAL) return r;
  const [a0, b0] = toBuffer(t, r.x / pw, r.y / ph);
  const [a1, b1] = toBuffer(t, (r.x + r.width) / pw, (r.y + r.height) / ph);
  const b = pictureSize(t, pw, ph); // the buffer's size: swapping is its own inverse
  const x0 = Math.round(Math.min(a0, a1) * b.w);
  const y0 = Math.round(Math.min(b0, b1) * b.h);
  const x1 = Math.round(Math.max(a0, a1) * b.w);
  const y1 = Math.round(Math.max(b0, b1) * b.h);
  return { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
}

// KMS plane rotation (include/uapi/drm/drm_mode.h): ROTATE_<deg> turns the framebuffer's
// content counter-clockwise on screen; REFLECT_X / REFLECT_Y mirror it across the
// vertical / horizontal axis, before the rotation. As buffer → screen maps:
const ROTATE_NAMES = ['rotate-0', 'rotate-90', 'rotate-180', 'rotate-270'] as const;
const REFLECT_NAMES = ['', 'reflect-x', 'reflect-y'] as const;
const ROT_CCW: readonly Map2[] = [(u, v) => [u, v], (u, v) => [v, 1 - u], (u, v) => [1 - u, 1 - v], (u, v) => [1 - v, u]];
const REFLECT: readonly Map2[] = [(u, v) => [u, v], (u, v) => [1 - u, v], (u, v) => [u, 1 - v]];

/** (reflection, rotation) pairs, simplest first: one part before two, reflect-y before reflect-x. */
const CANDIDATES: readonly [number, number][] = [0, 2, 1]
  .flatMap((r) => [0, 1, 2, 3].map((k): [number, number] => [r, k]))
  .sort((a, b) => Number(a[0] > 0) + Number(a[1] > 0) - (Number(b[0] > 0) + Number(b[1] > 0)));

/**
 * The plane rotation (rotation property entry names) that shows a buffer stored with T
 * upright, among those the plane offers; null when it offers none that does. Prefers
 * the simplest form (a single rotation or reflection).
 */
export function planeRotationFor(t: Transform, offered: readonly string[]): string[] | null {
  if (t === NORMAL) return offered.length === 0 || offered.includes('rotate-0') ? ['rotate-0'] : null;
  // Screen = picture, so buffer → screen must be the inverse of picture → buffer.
  const want = invert(t);
  for (const [r, k] of CANDIDATES) {
    const m: Map2 = (u, v) => {
      const [a, b] = REFLECT[r]!(u, v);
      return ROT_CCW[k]!(a, b);
    };
    if (identify(m) !== want) continue;
    const names = [ROTATE_NAMES[k]!, ...(r ? [REFLECT_NAMES[r]!] : [])];
    if (names.every((n) => offered.includes(n))) return names;
  }
  return null;
}
