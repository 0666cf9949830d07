// The test guests' picture: a moving, numbered test pattern whose frame number can be
// read back from captured pixels, both by a program (a row of bit blocks) and by a person
// (large seven-segment digits). 32-bit formats only (XR24/AR24 byte order B,G,R,X).

export const BIT_BLOCK = 16; // px; large enough to survive scaling by 2 either way
export const FRAME_BITS = 24;
const MAGIC = 0b1011; // 4 marker bits before the number, so "no pattern" is not frame 0

const DIGIT_SEGMENTS = [0x3f, 0x06, 0x5b, 0x4f, 0x66, 0x6d, 0x7d, 0x07, 0x7f, 0x6f];

export interface PatternTarget {
  bytes: Uint8Array;
  offset: number;
  width: number;
  height: number;
  stride: number;
}

function rgb(r: number, g: number, b: number): number {
  return (0xff << 24) | (r << 16) | (g << 8) | b;
}

const WHITE = rgb(255, 255, 255) >>> 0;
const BLACK = rgb(0, 0, 0) >>> 0;

function rows32(t: PatternTarget): Uint32Array {
  if (t.stride % 4 !== 0 || (t.bytes.byteOffset + t.offset) % 4 !== 0) {
    throw new RangeError(`pattern: stride ${t.stride} / offset ${t.offset} not 4-byte aligned`);
  }
  return new Uint32Array(t.bytes.buffer, t.bytes.byteOffset + t.offset, (t.stride / 4) * t.height);
}

function fillRect(px: Uint32Array, pitch: number, w: number, h: number, x: number, y: number, rw: number, rh: number, c: number): void {
  const x0 = Math.max(0, x);
  const x1 = Math.min(w, x + rw);
  for (let yy = Math.max(0, y); yy < Math.min(h, y + rh); yy++) px.fill(c, yy * pitch + x0, yy * pitch + x1);
}

/** Draws frame `frame` of the pattern. Costs about one pass over the buffer. */
export function drawPattern(t: PatternTarget, frame: number): void {
  const px = rows32(t);
  const pitch = t.stride / 4;
  const { width: w, height: h } = t;
  // Background: vertical colour bands whose hue depends on the row band, drawn as one
  // template row per band copied down (copyWithin is a memmove, cheap even under TCG).
  const bands = 8;
  for (let band = 0; band < bands; band++) {
    const y0 = Math.floor((band * h) / bands);
    const y1 = Math.floor(((band + 1) * h) / bands);
    if (y1 <= y0) continue;
    const row = y0 * pitch;
    for (let x = 0; x < w; x++) {
      const v = Math.floor((x * 255) / Math.max(1, w - 1));
      px[row + x] = rgb((v + band * 32) & 0xff, (255 - v) & 0xff, (band * 37) & 0xff) >>> 0;
    }
    for (let y = y0 + 1; y < y1; y++) px.copyWithin(y * pitch, row, row + w);
  }
  // A bar that moves 4 px per frame: motion is visible in a capture sequence.
  const barW = Math.max(8, Math.floor(w / 16));
  const barX = (frame * 4) % Math.max(1, w - barW);
  fillRect(px, pitch, w, h, barX, BIT_BLOCK * 2, barW, h - BIT_BLOCK * 2, rgb(250, 250, 40) >>> 0);
  encodeFrameNumber(px, pitch, w, h, frame);
  drawNumber(px, pitch, w, h, frame);
}

/** Row of blocks at the top-left: 4 marker bits, then FRAME_BITS bits of the frame, MSB first. */
function encodeFrameNumber(px: Uint32Array, pitch: number, w: number, h: number, frame: number): void {
  const bits = markerAndFrame(frame);
  fillRect(px, pitch, w, h, 0, 0, bits.length * BIT_BLOCK, BIT_BLOCK * 2, BLACK);
  bits.forEach((bit, i) => {
    if (bit) fillRect(px, pitch, w, h, i * BIT_BLOCK, 0, BIT_BLOCK, BIT_BLOCK, WHITE);
  });
}

function markerAndFrame(frame: number): number[] {
  const bits: number[] = [];
  for (let i = 3; i >= 0; i--) bits.push((MAGIC >> i) & 1);
  for (let i = FRAME_BITS - 1; i >= 0; i--) bits.push(Math.floor(frame / 2 ** i) & 1);
  return bits;
}

function drawNumber(px: Uint32Array, pitch: number, w: number, h: number, frame: number): void {
  const digits = String(frame).padStart(5, '0');
  const s = Math.max(4, Math.floor(Math.min(w, h) / 48)); // segment thickness
  const dw = s * 6;
  const dh = s * 11;
  const x0 = Math.floor(w / 2 - (digits.length * (dw + s * 2)) / 2);
  const y0 = Math.floor(h / 2 - dh / 2);
  fillRect(px, pitch, w, h, x0 - s * 2, y0 - s * 2, digits.length * (dw + s * 2) + s * 2, dh + s * 4, BLACK);
  for (let i = 0; i < digits.length; i++) {
    const seg = DIGIT_SEGMENTS[digits.charCodeAt(i) - 48];
    const x = x0 + i * (dw + s * 2);
    const horiz = (yy: number) => fillRect(px, pitch, w, h, x, yy, dw, s, WHITE);
    const vert = (xx: number, yy: number) => fillRect(px, pitch, w, h, xx, yy, s, Math.floor(dh / 2), WHITE);
    if (seg & 0x01) horiz(y0);
    if (seg & 0x02) vert(x + dw - s, y0);
    if (seg & 0x04) vert(x + dw - s, y0 + Math.floor(dh / 2));
    if (seg & 0x08) horiz(y0 + dh - s);
    if (seg & 0x10) vert(x, y0 + Math.floor(dh / 2));
    if (seg & 0x20) vert(x, y0);
    if (seg & 0x40) horiz(y0 + Math.floor(dh / 2) - Math.floor(s / 2));
  }
}

/**
 * Reads the frame number back from 32-bit pixels (any of XR24/AR24/XB24: the blocks are
 * black or white, so channel order does not matter). Samples each block's centre.
 * Returns null when the marker is not there (no pattern on screen). `scale` is how much the
 * pattern was scaled on its way to these pixels (a 'fit' output), so block centres move.
 */
export function decodeFrameNumber(t: PatternTarget, originX = 0, originY = 0, scale = 1): number | null {
  const px = rows32(t);
  const pitch = t.stride / 4;
  const cy = Math.floor(originY + (BIT_BLOCK / 2) * scale);
  if (cy >= t.height) return null;
  const bits: number[] = [];
  for (let i = 0; i < 4 + FRAME_BITS; i++) {
    const cx = Math.floor(originX + (i * BIT_BLOCK + BIT_BLOCK / 2) * scale);
    if (cx >= t.width) return null;
    const p = px[cy * pitch + cx] & 0xffffff;
    const lum = ((p >> 16) & 0xff) + ((p >> 8) & 0xff) + (p & 0xff);
    if (lum > 600) bits.push(1);
    else if (lum < 150) bits.push(0);
    else return null;
  }
  const marker = (bits[0] << 3) | (bits[1] << 2) | (bits[2] << 1) | bits[3];
  if (marker !== MAGIC) return null;
  let n = 0;
  for (let i = 4; i < bits.length; i++) n = n * 2 + bits[i];
  return n;
}
