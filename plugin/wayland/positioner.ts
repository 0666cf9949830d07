// xdg_positioner: the rules a client gives for placing a popup (size, anchor rectangle,
// anchor edge, gravity, offset, constraint adjustments) and the pure geometry that turns
// them into the popup's rectangle, relative to the parent's window geometry, kept inside
// a constraint area (the output, in the same coordinates). The constraint rules follow
// the protocol text (xdg-shell.xml, constraint_adjustment) in the order wlroots applies
// them: flip (only when the flipped box is unconstrained on that axis), then slide, then
// resize. Pure functions, unit-tested (test/unit/positioner.test.ts). No resources here.
import { XdgPositionerAnchor as A, XdgPositionerGravity as G, XdgPositionerConstraintAdjustment as C } from '../../protocols/generated/xdg_shell.js';
import type { Rect } from '../geometry.js';

export interface PositionerRules {
  size: { w: number; h: number } | null;
  anchorRect: Rect | null;
  anchor: A;
  gravity: G;
  adjustment: number;
  offset: { x: number; y: number };
  reactive: boolean;
  parentSize: { w: number; h: number } | null;
  parentConfigure: number | null;
}

export function emptyRules(): PositionerRules {
  return { size: null, anchorRect: null, anchor: A.NONE, gravity: G.NONE, adjustment: C.NONE, offset: { x: 0, y: 0 }, reactive: false, parentSize: null, parentConfigure: null };
}

/** Which side an anchor or gravity names on one axis: -1 left/top, 1 right/bottom, 0 centre. */
function sides(v: A | G): { x: number; y: number } {
  switch (v) {
    case A.TOP:
      return { x: 0, y: -1 };
    case A.BOTTOM:
      return { x: 0, y: 1 };
    case A.LEFT:
      return { x: -1, y: 0 };
    case A.RIGHT:
      return { x: 1, y: 0 };
    case A.TOP_LEFT:
      return { x: -1, y: -1 };
    case A.BOTTOM_LEFT:
      return { x: -1, y: 1 };
    case A.TOP_RIGHT:
      return { x: 1, y: -1 };
    case A.BOTTOM_RIGHT:
      return { x: 1, y: 1 };
    default:
      return { x: 0, y: 0 };
  }
}

/** The anchor/gravity value with sides (x, y) (anchor and gravity share their numbering). */
function fromSides(x: number, y: number): A {
  if (x === 0) return y < 0 ? A.TOP : y > 0 ? A.BOTTOM : A.NONE;
  if (y === 0) return x < 0 ? A.LEFT : A.RIGHT;
  if (x < 0) return y < 0 ? A.TOP_LEFT : A.BOTTOM_LEFT;
  return y < 0 ? A.TOP_RIGHT : A.BOTTOM_RIGHT;
}

interface Placed {
  anchor: A;
  gravity: G;
  offset: { x: number; y: number };
}

/** The popup's box for these anchor/gravity/offset, unconstrained. */
function box(rect: Rect, size: { w: number; h: number }, p: Placed): Rect {
  const a = sides(p.anchor);
  const g = sides(p.gravity);
  const ax = a.x < 0 ? rect.x : a.x > 0 ? rect.x + rect.width : rect.x + Math.floor(rect.width / 2);
  const ay = a.y < 0 ? rect.y : a.y > 0 ? rect.y + rect.height : rect.y + Math.floor(rect.height / 2);
  // Gravity says which way the popup grows from the anchor point.
  const x = g.x < 0 ? ax - size.w : g.x > 0 ? ax : ax - Math.floor(size.w / 2);
  const y = g.y < 0 ? ay - size.h : g.y > 0 ? ay : ay - Math.floor(size.h / 2);
  return { x: x + p.offset.x, y: y + p.offset.y, width: size.w, height: size.h };
}

/** How far a box reaches past each edge of the area (positive: outside). */
export function overflow(b: Rect, area: Rect): { left: number; right: number; top: number; bottom: number } {
  return { left: area.x - b.x, right: b.x + b.width - (area.x + area.width), top: area.y - b.y, bottom: b.y + b.height - (area.y + area.height) };
}

/** The popup rectangle the rules give without any constraint (relative to the parent's geometry). */
export function unconstrainedBox(r: PositionerRules): Rect {
  if (!r.size || !r.anchorRect) throw new Error('positioner incomplete: set_size and set_anchor_rect are required');
  return box(r.anchorRect, r.size, { anchor: r.anchor, gravity: r.gravity, offset: r.offset });
}

/**
 * The popup rectangle (relative to the parent's window geometry) for the rules, adjusted
 * to stay inside `area` (the constraint area in the same coordinates) as far as the
 * rules' constraint adjustments allow.
 */
export function placePopup(r: PositionerRules, area: Rect): Rect {
  if (!r.size || !r.anchorRect) throw new Error('positioner incomplete: set_size and set_anchor_rect are required');
  const rect = r.anchorRect;
  const size = r.size;
  let p: Placed = { anchor: r.anchor, gravity: r.gravity, offset: { ...r.offset } };
  let b = box(rect, size, p);
  let o = overflow(b, area);
  if (o.left <= 0 && o.right <= 0 && o.top <= 0 && o.bottom <= 0) return b;
  // Flip: anchor, gravity and offset mirrored on a constrained axis, kept only when the
  // flipped box fits on that axis.
  if (r.adjustment & C.FLIP_X && (o.left > 0 || o.right > 0)) {
    const a = sides(p.anchor);
    const g = sides(p.gravity);
    const q: Placed = { anchor: fromSides(-a.x, a.y), gravity: fromSides(-g.x, g.y) as number as G, offset: { x: -p.offset.x, y: p.offset.y } };
    const fb = box(rect, size, q);
    const fo = overflow(fb, area);
    if (fo.left <= 0 && fo.right <= 0) ((p = q), (b = fb));
  }
  o = overflow(b, area);
  if (r.adjustment & C.FLIP_Y && (o.top > 0 || o.bottom > 0)) {
    const a = sides(p.anchor);
    const g = sides(p.gravity);
    const q: Placed = { anchor: fromSides(a.x, -a.y), gravity: fromSides(g.x, -g.y) as number as G, offset: { x: p.offset.x, y: -p.offset.y } };
    const fb = box(rect, size, q);
    const fo = overflow(fb, area);
    if (fo.top <= 0 && fo.bottom <= 0) ((p = q), (b = fb));
  }
  // Slide: moved back in; a box larger than the area keeps its left (top) edge visible.
  o = overflow(b, area);
  if (r.adjustment & C.SLIDE_X) {
    if (o.right > 0) b = { ...b, x: b.x - o.right };
    if (b.x < area.x) b = { ...b, x: area.x };
  }
  if (r.adjustment & C.SLIDE_Y) {
    if (o.bottom > 0) b = { ...b, y: b.y - o.bottom };
    if (b.y < area.y) b = { ...b, y: area.y };
  }
  // Resize: what still reaches outside is cut off (never below one pixel).
  o = overflow(b, area);
  if (r.adjustment & C.RESIZE_X) {
    const x0 = Math.max(b.x, area.x);
    const x1 = Math.min(b.x + b.width, area.x + area.width);
    if (o.left > 0 || o.right > 0) b = x1 > x0 ? { ...b, x: x0, width: x1 - x0 } : b;
  }
  if (r.adjustment & C.RESIZE_Y) {
    const y0 = Math.max(b.y, area.y);
    const y1 = Math.min(b.y + b.height, area.y + area.height);
    if (o.top > 0 || o.bottom > 0) b = y1 > y0 ? { ...b, y: y0, height: y1 - y0 } : b;
  }
  return b;
}
