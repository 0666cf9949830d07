// Where a point of the output is in a client's surfaces. The kiosk shows the toplevel's
// root surface through the output's fit mode (geometry.ts placement(), as the planner and
// scene.ts place it), so the inverse of that placement takes a host pointer or touch point
// into the root's surface coordinates; the sub-surfaces sit at their tree positions in
// the same coordinates. Pure functions, unit-tested; the seat sends what they return.
import { placement, type FitMode, type Rect } from '../geometry.js';

export interface Point {
  x: number;
  y: number;
}

export interface Size {
  w: number;
  h: number;
}

/**
 * An output point (pixels, fractional) in the coordinates of a root surface of size
 * `size` shown with `fit` on an output of `out`. Not clamped: a point beside the picture
 * (letterbox) comes out negative or beyond the size, which is what a surface holding an
 * implicit grab (a button held, a touch point down) must be told.
 */
export function outputToSurface(fit: FitMode, size: Size, out: Size, p: Point): Point {
  const pl = placement(fit, size.w, size.h, out.w, out.h);
  return { x: pl.src.x + ((p.x - pl.dst.x) * pl.src.width) / pl.dst.width, y: pl.src.y + ((p.y - pl.dst.y) * pl.src.height) / pl.dst.height };
}

/** Whether a surface-local point is on a surface of `size` (the default input region: all of it). */
export function inside(p: Point, size: Size): boolean {
  return p.x >= 0 && p.y >= 0 && p.x < size.w && p.y < size.h;
}

/** One mapped surface of a tree at its offset from the root (subsurface.ts flattenTree). */
export interface Stacked<S> {
  surface: S;
  x: number;
  y: number;
  size: Size;
  /** Whether input at a point of the surface (its coordinates) finds it; default: inside its size. */
  accepts?(p: Point): boolean;
}

/**
 * The topmost surface of a tree (entries bottom first) under a point in root coordinates,
 * and the point in that surface's coordinates; null when the point is on none of them.
 */
export function pick<S>(entries: readonly Stacked<S>[], p: Point): { surface: S; x: number; y: number } | null {
  for (let i = entries.length - 1; i >= 0; i--) {
    const e = entries[i]!;
    const local = { x: p.x - e.x, y: p.y - e.y };
    if (e.accepts ? e.accepts(local) : inside(local, e.size)) return { surface: e.surface, ...local };
  }
  return null;
}

/** An output point clamped onto the output (a host pointer never leaves the screen). */
export function clampToOutput(p: Point, out: Size): Point {
  return { x: Math.min(Math.max(p.x, 0), out.w - 1), y: Math.min(Math.max(p.y, 0), out.h - 1) };
}

/**
 * The output as a rectangle in the coordinates of a root surface of `size` shown with
 * `fit` (the constraint area popups are kept in); the output itself without a size yet.
 */
export function outputArea(fit: FitMode, size: Size | null, out: Size): Rect {
  if (!size) return { x: 0, y: 0, width: out.w, height: out.h };
  const a = outputToSurface(fit, size, out, { x: 0, y: 0 });
  const b = outputToSurface(fit, size, out, { x: out.w, y: out.h });
  const x = Math.ceil(a.x);
  const y = Math.ceil(a.y);
  return { x, y, width: Math.max(1, Math.floor(b.x) - x), height: Math.max(1, Math.floor(b.y) - y) };
}
