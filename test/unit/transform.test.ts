// Buffer transforms: the algebra (compose, invert, Y_INVERT folding), rectangles in
// picture vs buffer coordinates, and which KMS plane rotation undoes each transform. The
// expected rotations are worked out by hand from the kernel's rotation property
// (ROTATE_n counter-clockwise, reflection first) and Weston's picture→buffer formulas;
// the rig test (wayland-kiosk) checks the same on vkms' real planes pixel by pixel.
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { FLIPPED_180, NORMAL, TRANSFORM_NAMES, bufferRect, compose, invert, pictureSize, planeRotationFor, toBuffer, withYInvert, type Transform } from '../../plugin/transform.js';

const ALL = [0, 1, 2, 3, 4, 5, 6, 7] as Transform[];
const EVERY_ROTATION = ['rotate-0', 'rotate-90', 'rotate-180', 'rotate-270', 'reflect-x', 'reflect-y'];

/** Weston's picture→buffer pixel mapping (W×H picture), written out independently. */
function westonPixel(t: Transform, W: number, H: number, x: number, y: number): [number, number] {
  return [
    [x, y],
    [y, W - 1 - x],
    [W - 1 - x, H - 1 - y],
    [H - 1 - y, x],
    [W - 1 - x, y],
    [y, x],
    [x, H - 1 - y],
    [H - 1 - y, W - 1 - x],
  ][t] as [number, number];
}

describe('buffer transforms', () => {
  it('toBuffer on pixel centres is Weston\'s mapping for all eight', () => {
    const W = 5;
    const H = 3;
    for (const t of ALL) {
      const b = pictureSize(t, W, H); // buffer size (the swap is its own inverse)
      for (let y = 0; y < H; y++)
        for (let x = 0; x < W; x++) {
          const [a, c] = toBuffer(t, (x + 0.5) / W, (y + 0.5) / H);
          expect([Math.floor(a * b.w), Math.floor(c * b.h)], `${TRANSFORM_NAMES[t]} (${x},${y})`).toEqual(westonPixel(t, W, H, x, y));
        }
    }
  });

  it('forms the symmetry group of the rectangle: identity, inverses, associativity', () => {
    for (const a of ALL) {
      expect(compose(a, NORMAL)).toBe(a);
      expect(compose(NORMAL, a)).toBe(a);
      expect(compose(invert(a), a)).toBe(NORMAL);
      for (const b of ALL) for (const c of ALL) expect(compose(compose(a, b), c)).toBe(compose(a, compose(b, c)));
    }
    expect(invert(1)).toBe(3); // 90 undoes 270
    expect(compose(1, 1)).toBe(2);
    expect(compose(4, 4)).toBe(NORMAL);
  });

  it('Y_INVERT folds in as a vertical flip on top of the buffer transform', () => {
    expect(withYInvert(NORMAL, true)).toBe(FLIPPED_180);
    expect(withYInvert(FLIPPED_180, true)).toBe(NORMAL);
    expect(withYInvert(2, true)).toBe(4); // 180 then flipped vertically = mirrored horizontally
    for (const t of ALL) expect(withYInvert(t, false)).toBe(t);
  });

  it('bufferRect: a picture crop maps to the buffer pixels that hold exactly it', () => {
    fc.assert(
      fc.property(fc.constantFrom(...ALL), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 9 }), fc.nat(), fc.nat(), fc.nat(), fc.nat(), (t, W, H, a, b, c, d) => {
        const r = { x: a % W, y: b % H, width: 0, height: 0 };
        r.width = 1 + (c % (W - r.x));
        r.height = 1 + (d % (H - r.y));
        const br = bufferRect(t, r, W, H);
        const inside = new Set<string>();
        for (let y = r.y; y < r.y + r.height; y++) for (let x = r.x; x < r.x + r.width; x++) inside.add(westonPixel(t, W, H, x, y).join());
        const want = new Set<string>();
        for (let y = br.y; y < br.y + br.height; y++) for (let x = br.x; x < br.x + br.width; x++) want.add(`${x},${y}`);
        expect(want).toEqual(inside);
      }),
      { numRuns: 300 },
    );
  });

  it('plane rotation that undoes each transform (kernel: ROTATE_n counter-clockwise, reflection first)', () => {
    const got = ALL.map((t) => planeRotationFor(t, EVERY_ROTATION));
    expect(got).toEqual([
      ['rotate-0'],
      ['rotate-270'], // the buffer holds the picture turned 90° counter-clockwise
      ['rotate-180'],
      ['rotate-90'],
      ['rotate-0', 'reflect-x'],
      ['rotate-270', 'reflect-y'], // a transpose
      ['rotate-0', 'reflect-y'], // Y_INVERT
      ['rotate-90', 'reflect-y'], // the anti-transpose
    ]);
  });

  it('falls back to an equivalent form a plane offers, or null', () => {
    // flipped (a horizontal mirror) is also reflect-y turned 180°.
    expect(planeRotationFor(4, ['rotate-0', 'rotate-180', 'reflect-y'])).toEqual(['rotate-180', 'reflect-y']);
    // flipped-90 is also reflect-x turned 90°.
    expect(planeRotationFor(5, ['rotate-0', 'rotate-90', 'reflect-x'])).toEqual(['rotate-90', 'reflect-x']);
    expect(planeRotationFor(1, ['rotate-0', 'rotate-180', 'reflect-x', 'reflect-y'])).toBeNull();
    // A plane without a rotation property shows only normal buffers.
    expect(planeRotationFor(NORMAL, [])).toEqual(['rotate-0']);
    expect(planeRotationFor(FLIPPED_180, [])).toBeNull();
  });
});
