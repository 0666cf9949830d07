// A toplevel's surface tree on the output: the root is the output's attached source
// (placed by the fit mode, zIndex 0), and each mapped sub-surface and popup (with its own
// sub-surfaces; popups above the toplevel, a child popup above its parent) becomes a host layer
// (Output.present) at its position scaled like the root, below the root with negative
// zIndex and above it with positive ones, in stacking order. Every layer is a plane
// candidate for the allocator: a dma-buf sub-surface (video) can be scanned out on an
// overlay while the rest is composed.
import { placement, type FitMode, type Rect } from '../geometry.js';
import type { Surface } from './surface.js';
import { flattenTree, type TreeEntry } from './subsurface.js';

export interface SceneLayer {
  surface: Surface;
  /** Where on the output (may reach outside it). */
  dst: Rect;
  /** The part of the buffer's picture shown (wp_viewport source), or undefined for all of it. */
  src?: Rect;
  zIndex: number;
}

/**
 * The sub-surface layers of a flattened tree (`entries` bottom first, `root` among them),
 * for an output of `outW`×`outH` showing the root with `fit`.
 */
export function sceneLayers(entries: readonly TreeEntry[], root: Surface, fit: FitMode, outW: number, outH: number, view?: Rect | null): SceneLayer[] {
  const r = entries.findIndex((e) => e.surface === root);
  const rootSize = root.size;
  if (r < 0 || !rootSize) return [];
  // The window rectangle (window geometry) is what the fit places; the root's own size without one.
  const v = view ?? { x: 0, y: 0, width: rootSize.w, height: rootSize.h };
  const place = placement(fit, v.width, v.height, outW, outH);
  const sx = place.dst.width / place.src.width;
  const sy = place.dst.height / place.src.height;
  // The root's origin on the output (native fit crops a root larger than the output).
  const ox = place.dst.x - (place.src.x + v.x) * sx;
  const oy = place.dst.y - (place.src.y + v.y) * sy;
  const out: SceneLayer[] = [];
  for (const [i, e] of entries.entries()) {
    if (i === r) continue;
    const size = e.surface.size;
    if (!size) continue;
    const x0 = Math.round(ox + e.x * sx);
    const y0 = Math.round(oy + e.y * sy);
    const dst = { x: x0, y: y0, width: Math.max(1, Math.round(ox + (e.x + size.w) * sx) - x0), height: Math.max(1, Math.round(oy + (e.y + size.h) * sy) - y0) };
    const crop = e.surface.current?.crop ?? undefined;
    out.push({ surface: e.surface, dst, ...(crop ? { src: crop } : {}), zIndex: i - r });
  }
  return out;
}

/**
 * The whole scene of a toplevel, bottom first, in its root surface's coordinates: its
 * sub-surface tree, then each mapped popup's tree at the popup's place (xdg-popup.ts).
 */
export function sceneTree(root: Surface, popups: readonly { surface: Surface; x: number; y: number }[]): TreeEntry[] {
  const out = flattenTree(root);
  for (const p of popups) for (const e of flattenTree(p.surface)) out.push({ surface: e.surface, x: e.x + p.x, y: e.y + p.y });
  return out;
}
