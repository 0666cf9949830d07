// Plain screen geometry shared by every room: rectangles and how a picture is fitted to
// a screen. No imports: the KMS, composition and transform code all build on it.

/** A rectangle in pixels. width/height, as buffers, modes and outputs say (it was w/h before issue 30). */
export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** A rectangle as a cache/signature key. */
export function rectKey(r: Rect): string {
  return `${r.x},${r.y},${r.width},${r.height}`;
}

export type FitMode = 'native' | 'fit' | 'fill';

/**
 * Where a guest of size gw×gh goes on a screen of sw×sh: returns the source rect (in
 * guest pixels) and the destination rect (screen pixels).
 *  native: 1:1, centred, cropped if larger than the screen
 *  fit:    scaled to fit, aspect kept, centred (letterbox)
 *  fill:   scaled to cover the whole screen (aspect not kept)
 */
export function placement(fit: FitMode, gw: number, gh: number, sw: number, sh: number): { src: Rect; dst: Rect } {
  if (fit === 'fill') return { src: { x: 0, y: 0, width: gw, height: gh }, dst: { x: 0, y: 0, width: sw, height: sh } };
  if (fit === 'fit') {
    const scale = Math.min(sw / gw, sh / gh);
    const w = Math.max(1, Math.round(gw * scale));
    const h = Math.max(1, Math.round(gh * scale));
    return { src: { x: 0, y: 0, width: gw, height: gh }, dst: { x: Math.floor((sw - w) / 2), y: Math.floor((sh - h) / 2), width: w, height: h } };
  }
  const w = Math.min(gw, sw);
  const h = Math.min(gh, sh);
  return {
    src: { x: Math.floor((gw - w) / 2), y: Math.floor((gh - h) / 2), width: w, height: h },
    dst: { x: Math.floor((sw - w) / 2), y: Math.floor((sh - h) / 2), width: w, height: h },
  };
}
