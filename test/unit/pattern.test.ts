import { describe, it, expect } from 'vitest';
import { drawPattern, decodeFrameNumber } from '../../plugin/sources/pattern.js';

function target(width: number, height: number, stride = width * 4) {
  return { bytes: new Uint8Array(stride * height), offset: 0, width, height, stride };
}

describe('test pattern', () => {
  it.each([0, 1, 2, 255, 4096, 123457, 2 ** 24 - 1])('encodes and decodes frame %i', (frame) => {
    const t = target(640, 480, 2624);
    drawPattern(t, frame);
    expect(decodeFrameNumber(t)).toBe(frame);
  });
  it('finds no frame number where there is no pattern', () => {
    const t = target(640, 480);
    expect(decodeFrameNumber(t)).toBeNull();
    t.bytes.fill(0xff);
    expect(decodeFrameNumber(t)).toBeNull();
  });
  it('decodes at an origin (a guest placed inside a larger screen)', () => {
    const screen = target(1024, 768);
    const guest = target(640, 480);
    drawPattern(guest, 777);
    for (let y = 0; y < 480; y++) screen.bytes.set(guest.bytes.subarray(y * 2560, y * 2560 + 2560), (y + 100) * 4096 + 200 * 4);
    expect(decodeFrameNumber(screen, 200, 100)).toBe(777);
  });
  it('changes pixels from frame to frame (the bar moves)', () => {
    const a = target(320, 240);
    const b = target(320, 240);
    drawPattern(a, 10);
    drawPattern(b, 11);
    expect(Buffer.compare(Buffer.from(a.bytes), Buffer.from(b.bytes))).not.toBe(0);
  });
  it('refuses a stride that is not 4-byte aligned', () => {
    expect(() => drawPattern(target(10, 10, 41), 1)).toThrow(/stride 41/);
  });
});
