// Screens in one plane (the layout), as sway and cage place outputs: a screen goes where
// the config says (position), else to the right of everything placed so far, top edges
// aligned. The host pointer lives in this plane: a move that leaves every screen lands on
// the nearest point of a screen (wlroots' closest-point rule), so motion past an edge
// enters the neighbouring screen where there is one and is stopped at the edge elsewhere.
import type { Point, Size } from './guest-port.js';

export interface LayoutRect {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface ScreenSpec extends Size {
  name: string;
  position?: Point;
}

export interface PlacedScreen {
  name: string;
  rect: LayoutRect;
}

/** Places the screens: explicit positions first, the others left to right in the given order. */
export function placeScreens(screens: readonly ScreenSpec[]): PlacedScreen[] {
  const placed = new Map<string, LayoutRect>();
  for (const s of screens) if (s.position) placed.set(s.name, { ...s.position, width: s.width, height: s.height });
  for (const s of screens) {
    if (s.position) continue;
    const right = Math.max(0, ...[...placed.values()].map((r) => r.x + r.width));
    placed.set(s.name, { x: right, y: 0, width: s.width, height: s.height });
  }
  return screens.map((s) => ({ name: s.name, rect: placed.get(s.name)! }));
}

/** Whether `p` is on `r` (left and top edges in, right and bottom out). */
export function contains(r: LayoutRect, p: Point): boolean {
  return p.x >= r.x && p.x < r.x + r.width && p.y >= r.y && p.y < r.y + r.height;
}

/** `p` kept inside `r`: on its last pixel row or column at most. */
export function clampTo(r: LayoutRect, p: Point): Point {
  return { x: Math.min(Math.max(p.x, r.x), r.x + r.width - 1), y: Math.min(Math.max(p.y, r.y), r.y + r.height - 1) };
}

/** The point of the layout nearest to `p`: `p` itself when a screen has it; null without screens. */
export function closestPoint(rects: readonly LayoutRect[], p: Point): Point | null {
  let best: Point | null = null;
  let bestD = Infinity;
  for (const r of rects) {
    if (contains(r, p)) return p;
    const c = clampTo(r, p);
    const d = (c.x - p.x) ** 2 + (c.y - p.y) ** 2;
    if (d < bestD) {
      best = c;
      bestD = d;
    }
  }
  return best;
}
