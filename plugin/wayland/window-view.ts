// The part of a toplevel's root surface that is its window: the window geometry
// (xdg_surface.set_window_geometry) clipped to the surface, or the whole surface without
// one. The kiosk places this rectangle on the output (fit mode), not the buffer: what a
// toolkit draws outside it (client-side shadows) is cropped off, and sub-surfaces, popups,
// the pointer and the popups' constraint area follow the same placement. Pure functions.
import type { FitMode, Rect } from '../geometry.js';
import { outputArea, outputToSurface, type Point, type Size } from './input-map.js';

/** The window rectangle in surface coordinates; null when the surface has no size (unmapped). */
export function windowView(size: Size | null, geometry: Rect | null): Rect | null {
  if (!size) return null;
  const full = { x: 0, y: 0, width: size.w, height: size.h };
  if (!geometry) return full;
  const x0 = Math.max(0, geometry.x);
  const y0 = Math.max(0, geometry.y);
  const x1 = Math.min(size.w, geometry.x + geometry.width);
  const y1 = Math.min(size.h, geometry.y + geometry.height);
  return x1 > x0 && y1 > y0 ? { x: x0, y: y0, width: x1 - x0, height: y1 - y0 } : full;
}

/** An output point in root surface coordinates, the window `view` shown with `fit`. */
export function outputToView(fit: FitMode, view: Rect, out: Size, p: Point): Point {
  const q = outputToSurface(fit, { w: view.width, h: view.height }, out, p);
  return { x: q.x + view.x, y: q.y + view.y };
}

/** The output as a rectangle in root surface coordinates (the popups' constraint area). */
export function outputInView(fit: FitMode, view: Rect | null, out: Size): Rect {
  const a = outputArea(fit, view ? { w: view.width, h: view.height } : null, out);
  return view ? { ...a, x: a.x + view.x, y: a.y + view.y } : a;
}
