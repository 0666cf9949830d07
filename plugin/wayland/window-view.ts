// The part of a toplevel's root surface that is its window: the window geometry
// (xdg_surface.set_window_geometry) clipped to the surface, or the whole surface without
// one. The kiosk places this rectangle on the output (fit mode), not the buffer: what a
// toolkit draws outside it (client-side shadows) is cropped off, and sub-surfaces, popups,
// the pointer and the popups' constraint area follow the same placement. A window larger
// than the output (a toolkit whose minimum size exceeds the fullscreen configure, GTK's
// widget factory on 1024x768) is bounded in native fit from its top-left corner: the
// part cropped off is its right and bottom edge, as on any desktop, not both sides of a
// centred crop that would hide the start of every menu bar and form. Pure functions.
import type { FitMode, Rect } from '../geometry.js';
import { outputArea, outputToSurface, type Point, type Size } from './input-map.js';

/**
 * The window rectangle in surface coordinates; null when the surface has no size (unmapped).
 * With `bound` (the output's size, for native fit) it is at most that large, keeping its
 * top-left corner.
 */
export function windowView(size: Size | null, geometry: Rect | null, bound?: Size): Rect | null {
  if (!size) return null;
  const full = { x: 0, y: 0, width: size.w, height: size.h };
  let v = full;
  if (geometry) {
    const x0 = Math.max(0, geometry.x);
    const y0 = Math.max(0, geometry.y);
    const x1 = Math.min(size.w, geometry.x + geometry.width);
    const y1 = Math.min(size.h, geometry.y + geometry.height);
    if (x1 > x0 && y1 > y0) v = { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
  }
  return bound ? { ...v, width: Math.min(v.width, bound.w), height: Math.min(v.height, bound.h) } : v;
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
