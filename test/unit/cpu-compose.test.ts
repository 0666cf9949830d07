// The CPU copy path's reflection of y-inverted buffers: a picture stored bottom-up and
// copied with flipY must land exactly as the same picture stored top-down and copied
// plainly — for any source rectangle, any destination (clipped at the screen's edges)
// and with scaling. Rectangles are in memory rows, as the output hands them over.
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { blendOver, blit, clipUnscaled, drawTransformed, type CpuImage, type Rect } from '../../plugin/compose/cpu.js';
import { bufferRect, pictureSize, toBuffer, type Transform } from '../../plugin/transform.js';

function image(w: number, h: number, px: (x: number, y: number) => number): CpuImage {
  const bytes = new Uint8Array(w * h * 4);
  const v = new DataView(bytes.buffer);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) v.setUint32((y * w + x) * 4, px(x, y) >>> 0, true);
  return { bytes, offset: 0, stride: w * 4, width: w, height: h };
}
const blank = (w: number, h: number) => image(w, h, () => 0);
const picture = (x: number, y: number) => 0xff000000 | (x << 12) | y;

/** `r` (picture coordinates) as the memory rows of a bottom-up buffer of height h. */
const memRows = (r: Rect, h: number): Rect => ({ ...r, y: h - r.y - r.height });

describe('CPU copy of y-inverted buffers', () => {
  it('unscaled: a 4×3 picture stored bottom-up is copied upright', () => {
    const up = image(4, 3, picture);
    const inv = image(4, 3, (x, y) => picture(x, 2 - y));
    const a = blank(6, 5);
    const b = blank(6, 5);
    blit(up, { x: 0, y: 0, width: 4, height: 3 }, a, { x: 1, y: 1, width: 4, height: 3 });
    blit(inv, { x: 0, y: 0, width: 4, height: 3 }, b, { x: 1, y: 1, width: 4, height: 3 }, true);
    expect(b.bytes).toEqual(a.bytes);
    // Not the same as ignoring the flag.
    const c = blank(6, 5);
    blit(inv, { x: 0, y: 0, width: 4, height: 3 }, c, { x: 1, y: 1, width: 4, height: 3 });
    expect(c.bytes).not.toEqual(a.bytes);
  });

  it('any crop, position (clipped at the edges) and scale: same pixels as the upright buffer', () => {
    fc.assert(
      fc.property(
        fc.record({
          w: fc.integer({ min: 1, max: 12 }),
          h: fc.integer({ min: 1, max: 12 }),
          sx: fc.nat(11), sy: fc.nat(11), sw: fc.integer({ min: 1, max: 12 }), sh: fc.integer({ min: 1, max: 12 }),
          dx: fc.integer({ min: -8, max: 14 }), dy: fc.integer({ min: -8, max: 14 }),
          dw: fc.integer({ min: 1, max: 16 }), dh: fc.integer({ min: 1, max: 16 }),
          scaled: fc.boolean(),
        }),
        (c) => {
          const src: Rect = { x: c.sx % c.w, y: c.sy % c.h, width: 0, height: 0 };
          src.width = Math.min(c.sw, c.w - src.x);
          src.height = Math.min(c.sh, c.h - src.y);
          const dst: Rect = { x: c.dx, y: c.dy, width: c.scaled ? c.dw : src.width, height: c.scaled ? c.dh : src.height };
          const up = image(c.w, c.h, picture);
          const inv = image(c.w, c.h, (x, y) => picture(x, c.h - 1 - y));
          const a = blank(10, 10);
          const b = blank(10, 10);
          if (c.scaled) {
            // The scaled copy is only asked for whole destinations inside the screen.
            if (dst.x < 0 || dst.y < 0 || dst.x + dst.width > 10 || dst.y + dst.height > 10) return;
            blit(up, src, a, dst);
            blit(inv, memRows(src, c.h), b, dst, true);
          } else {
            const ca = clipUnscaled(src, dst, 10, 10);
            const cb = clipUnscaled(memRows(src, c.h), dst, 10, 10, true);
            expect(cb === null).toBe(ca === null);
            if (ca && cb) {
              blit(up, ca.src, a, ca.dst);
              blit(inv, cb.src, b, cb.dst, true);
            }
          }
          expect(b.bytes).toEqual(a.bytes);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('blending (a cursor-like ARGB layer with plane alpha) reflects the same way', () => {
    const px = (x: number, y: number) => ((((x + y) & 1) * 0x80) << 24) | (x << 16) | (y << 8);
    const up = image(5, 4, px);
    const inv = image(5, 4, (x, y) => px(x, 3 - y));
    const a = image(8, 8, () => 0xff202020);
    const b = image(8, 8, () => 0xff202020);
    const ca = clipUnscaled({ x: 0, y: 1, width: 5, height: 3 }, { x: -1, y: 6, width: 5, height: 3 }, 8, 8)!;
    const cb = clipUnscaled(memRows({ x: 0, y: 1, width: 5, height: 3 }, 4), { x: -1, y: 6, width: 5, height: 3 }, 8, 8, true)!;
    blendOver(up, ca.src, a, ca.dst, { alpha: 0.5 });
    blendOver(inv, cb.src, b, cb.dst, { alpha: 0.5, flipY: true });
    expect(b.bytes).toEqual(a.bytes);
  });

  it('rotations and mirrors (all eight transforms): any crop, any position clipped at the edges, same pixels as the upright picture', () => {
    fc.assert(
      fc.property(
        fc.record({
          t: fc.integer({ min: 0, max: 7 }),
          w: fc.integer({ min: 1, max: 9 }), h: fc.integer({ min: 1, max: 9 }),
          sx: fc.nat(8), sy: fc.nat(8), sw: fc.integer({ min: 1, max: 9 }), sh: fc.integer({ min: 1, max: 9 }),
          dx: fc.integer({ min: -6, max: 12 }), dy: fc.integer({ min: -6, max: 12 }),
          blend: fc.boolean(),
        }),
        (c) => {
          const t = c.t as Transform;
          const src: Rect = { x: c.sx % c.w, y: c.sy % c.h, width: 0, height: 0 };
          src.width = Math.min(c.sw, c.w - src.x);
          src.height = Math.min(c.sh, c.h - src.y);
          const dst: Rect = { x: c.dx, y: c.dy, width: src.width, height: src.height };
          const pic = (x: number, y: number) => ((c.blend ? (x + y) % 3 : 3) * 0x55) << 24 | (x << 12) | y;
          const up = image(c.w, c.h, pic);
          // The buffer holds the picture with t applied: buffer pixel ← picture pixel.
          const b = pictureSize(t, c.w, c.h);
          const held = new Map<string, number>();
          for (let y = 0; y < c.h; y++)
            for (let x = 0; x < c.w; x++) {
              const [u, v] = toBuffer(t, (x + 0.5) / c.w, (y + 0.5) / c.h);
              held.set(`${Math.floor(u * b.w)},${Math.floor(v * b.h)}`, pic(x, y));
            }
          const buf = image(b.w, b.h, (x, y) => held.get(`${x},${y}`)!);
          const a = image(10, 10, () => 0xff202020);
          const r = image(10, 10, () => 0xff202020);
          const ca = clipUnscaled(src, dst, 10, 10);
          if (ca) (c.blend ? blendOver(up, ca.src, a, ca.dst) : blit(up, ca.src, a, ca.dst));
          drawTransformed(buf, bufferRect(t, src, c.w, c.h), r, dst, t, { blend: c.blend });
          expect(r.bytes).toEqual(a.bytes);
        },
      ),
      { numRuns: 500 },
    );
  });
});
