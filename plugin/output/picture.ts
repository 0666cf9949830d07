// What part of a guest plane's picture is shown and where its pixels are in the buffer:
// crops (wp_viewport sources), shown sizes (wp_viewport destinations) and buffer
// transforms, turned into the buffer-coordinate rectangles planes and composers take.
import type { Rect } from '../geometry.js';
import { NORMAL, bufferRect, pictureSize } from '../transform.js';
import type { GuestPlaneInfo } from '../sources/source.js';

/**
 * A source rectangle in picture coordinates (as shown, upright) as the buffer pixels that
 * hold it. Planes and composers take rectangles in buffer coordinates and undo the
 * transform as they read.
 */
export function srcInBuffer(r: Rect, p: GuestPlaneInfo): Rect {
  const t = p.transform ?? NORMAL;
  const pic = pictureSize(t, p.width, p.height);
  return bufferRect(t, r, pic.w, pic.h);
}

export interface PlaneView {
  crop: Rect;
  shown: { width: number; height: number };
}

/**
 * What a plane shows and at what size: its crop of the picture (default all of it) and
 * the size it is shown at before the output's fit (a wp_viewport destination; default the
 * crop's).
 */
export function viewOf(p: GuestPlaneInfo): PlaneView {
  const pic = pictureOf(p);
  const crop = p.crop ?? { x: 0, y: 0, width: pic.w, height: pic.h };
  return { crop, shown: p.displaySize ?? { width: crop.width, height: crop.height } };
}

/** A rectangle of the shown surface as picture pixels of the crop (rounded to whole pixels). */
export function cropOf(r: Rect, v: PlaneView): Rect {
  if (v.shown.width === v.crop.width && v.shown.height === v.crop.height) return { x: v.crop.x + r.x, y: v.crop.y + r.y, width: r.width, height: r.height };
  const sx = v.crop.width / v.shown.width;
  const sy = v.crop.height / v.shown.height;
  const x0 = Math.round(v.crop.x + r.x * sx);
  const y0 = Math.round(v.crop.y + r.y * sy);
  return { x: x0, y: y0, width: Math.max(1, Math.round(v.crop.x + (r.x + r.width) * sx) - x0), height: Math.max(1, Math.round(v.crop.y + (r.y + r.height) * sy) - y0) };
}

/** The size of the picture a plane shows (its buffer's, swapped for 90° and 270°). */
export function pictureOf(p: GuestPlaneInfo): { w: number; h: number } {
  return pictureSize(p.transform ?? NORMAL, p.width, p.height);
}
