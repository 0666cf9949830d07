// The inverse of the kiosk's placement (plugin/wayland/input-map.ts): output points into
// surface coordinates for each fit mode, worked out by hand, and the topmost-surface pick.
import { describe, it, expect } from 'vitest';
import { clampToOutput, inside, outputToSurface, pick } from '../../plugin/wayland/input-map.js';
import { RegionShape } from '../../plugin/wayland/region.js';
import { keysArray, sameModifiers } from '../../plugin/wayland/keyboard.js';
import { Keymap } from '../../plugin/input/keymap.js';

const out = { w: 1024, h: 768 };

describe('output → surface coordinates', () => {
  it('fit: 512x256 scaled by 2 into (0,128)-(1024,640)', () => {
    const s = { w: 512, h: 256 };
    expect(outputToSurface('fit', s, out, { x: 300, y: 200 })).toEqual({ x: 150, y: 36 });
    expect(outputToSurface('fit', s, out, { x: 0, y: 128 })).toEqual({ x: 0, y: 0 });
    expect(outputToSurface('fit', s, out, { x: 1023, y: 639 })).toEqual({ x: 511.5, y: 255.5 });
    // The letterbox above the picture is above the surface.
    const above = outputToSurface('fit', s, out, { x: 300, y: 50 });
    expect(above).toEqual({ x: 150, y: -39 });
    expect(inside(above, s)).toBe(false);
  });

  it('fit: a tall surface is pillarboxed (256x256 by 3 at x=128)', () => {
    expect(outputToSurface('fit', { w: 256, h: 256 }, out, { x: 512, y: 384 })).toEqual({ x: 128, y: 128 });
    expect(outputToSurface('fit', { w: 256, h: 256 }, out, { x: 127, y: 0 }).x).toBeCloseTo(-1 / 3, 10);
  });

  it('native: centred 1:1, and a surface larger than the output is cropped around its middle', () => {
    expect(outputToSurface('native', { w: 640, h: 480 }, out, { x: 192, y: 144 })).toEqual({ x: 0, y: 0 });
    expect(outputToSurface('native', { w: 640, h: 480 }, out, { x: 500.5, y: 300.25 })).toEqual({ x: 308.5, y: 156.25 });
    // 2048x1536 on 1024x768: the middle 1024x768 (from (512, 384)) is shown.
    expect(outputToSurface('native', { w: 2048, h: 1536 }, out, { x: 0, y: 0 })).toEqual({ x: 512, y: 384 });
  });

  it('fill: each axis scaled on its own', () => {
    expect(outputToSurface('fill', { w: 512, h: 512 }, out, { x: 512, y: 384 })).toEqual({ x: 256, y: 256 });
    expect(outputToSurface('fill', { w: 512, h: 512 }, out, { x: 1024, y: 768 })).toEqual({ x: 512, y: 512 });
  });

  it('the host pointer stays on the output', () => {
    expect(clampToOutput({ x: -5, y: 2000 }, out)).toEqual({ x: 0, y: 767 });
    expect(clampToOutput({ x: 10.5, y: 20.25 }, out)).toEqual({ x: 10.5, y: 20.25 });
  });
});

describe('the surface under a point', () => {
  const entries = [
    { surface: 'below', x: -10, y: -10, size: { w: 20, h: 20 } },
    { surface: 'root', x: 0, y: 0, size: { w: 100, h: 100 } },
    { surface: 'video', x: 40, y: 30, size: { w: 32, h: 16 } },
  ];
  it('the topmost one wins, in its own coordinates', () => {
    expect(pick(entries, { x: 50, y: 35 })).toEqual({ surface: 'video', x: 10, y: 5 });
    expect(pick(entries, { x: 5, y: 5 })).toEqual({ surface: 'root', x: 5, y: 5 });
    // A sub-surface below the root shows (and takes input) only where the root is not.
    expect(pick(entries, { x: -5, y: -5 })).toEqual({ surface: 'below', x: 5, y: 5 });
  });
  it('edges: the first row and column are in, the size is out', () => {
    expect(pick(entries, { x: 72, y: 46 })).toEqual({ surface: 'root', x: 72, y: 46 });
    expect(pick(entries, { x: 71.99, y: 45.99 })?.surface).toBe('video');
    expect(pick(entries, { x: 100, y: 50 })).toBeNull();
  });
});

describe('input regions (wl_region add/subtract, in order)', () => {
  it('a later rectangle overrides an earlier one where they overlap', () => {
    const cut = new RegionShape([
      { add: true, x: 0, y: 0, width: 100, height: 50 },
      { add: false, x: 0, y: 0, width: 50, height: 50 },
    ]);
    expect(cut.contains({ x: 49.5, y: 10 })).toBe(false);
    expect(cut.contains({ x: 50, y: 10 })).toBe(true);
    expect(cut.contains({ x: 100, y: 10 })).toBe(false);
    const back = new RegionShape([
      { add: false, x: 0, y: 0, width: 50, height: 50 },
      { add: true, x: 0, y: 0, width: 100, height: 50 },
    ]);
    expect(back.contains({ x: 10, y: 10 })).toBe(true);
    // An empty region (Firefox's content sub-surface) holds no point.
    expect(new RegionShape([]).contains({ x: 0, y: 0 })).toBe(false);
  });
  it('pick skips a surface whose input region does not hold the point', () => {
    const entries = [
      { surface: 'root', x: 0, y: 0, size: { w: 100, h: 100 } },
      { surface: 'content', x: 0, y: 0, size: { w: 100, h: 100 }, accepts: () => false },
    ];
    expect(pick(entries, { x: 10, y: 10 })).toEqual({ surface: 'root', x: 10, y: 10 });
  });
});

describe('wl_keyboard payloads', () => {
  it('enter keys: uint32 evdev codes, little-endian (the hosts this runs on)', () => {
    expect([...keysArray([30, 42, 0x1234])]).toEqual([30, 0, 0, 0, 42, 0, 0, 0, 0x34, 0x12, 0, 0]);
    expect(keysArray([]).length).toBe(0);
  });
  it('modifier states compare field by field', () => {
    const a = { depressed: 1, latched: 0, locked: 2, group: 0 };
    expect(sameModifiers(a, { ...a })).toBe(true);
    for (const k of ['depressed', 'latched', 'locked', 'group'] as const) expect(sameModifiers(a, { ...a, [k]: a[k] + 4 })).toBe(false);
  });
});

describe('modifier serialisation (the real libxkbcommon, us layout)', () => {
  it('Shift, Lock, Control, Mod1 are bits 0..3; a lock stays locked after the release', () => {
    const k = new Keymap({ layout: 'us' });
    try {
      expect(k.modifiers()).toEqual({ depressed: 0, latched: 0, locked: 0, group: 0 });
      expect(k.key(42, true)).toEqual({ depressed: 1, latched: 0, locked: 0, group: 0 }); // LeftShift
      expect(k.key(29, true)).toEqual({ depressed: 1 | 4, latched: 0, locked: 0, group: 0 }); // LeftCtrl
      expect(k.key(56, true)).toEqual({ depressed: 1 | 4 | 8, latched: 0, locked: 0, group: 0 }); // LeftAlt
      k.key(42, false);
      k.key(29, false);
      expect(k.key(56, false)).toEqual({ depressed: 0, latched: 0, locked: 0, group: 0 });
      expect(k.key(58, true)).toEqual({ depressed: 2, latched: 0, locked: 2, group: 0 }); // CapsLock
      expect(k.key(58, false)).toEqual({ depressed: 0, latched: 0, locked: 2, group: 0 });
    } finally {
      k.close();
    }
  });
});
