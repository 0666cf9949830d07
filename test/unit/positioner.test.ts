// xdg_positioner geometry (plugin/wayland/positioner.ts): anchor, gravity, offset and the
// constraint adjustments flip, slide and resize, against hand-computed boxes.
import { describe, it, expect } from 'vitest';
import { emptyRules, placePopup, unconstrainedBox, type PositionerRules } from '../../plugin/wayland/positioner.js';
import { XdgPositionerAnchor as A, XdgPositionerGravity as G, XdgPositionerConstraintAdjustment as C } from '../../protocols/generated/xdg_shell.js';

const area = { x: 0, y: 0, width: 1024, height: 768 };
function rules(p: Partial<PositionerRules>): PositionerRules {
  return { ...emptyRules(), size: { w: 200, h: 300 }, anchorRect: { x: 100, y: 20, width: 80, height: 30 }, ...p };
}

describe('xdg_positioner placement', () => {
  it('a menu bar item: anchored bottom-left, growing down-right', () => {
    expect(placePopup(rules({ anchor: A.BOTTOM_LEFT, gravity: G.BOTTOM_RIGHT }), area)).toEqual({ x: 100, y: 50, width: 200, height: 300 });
  });
  it('no anchor and no gravity: centred on the anchor rectangle', () => {
    expect(unconstrainedBox(rules({}))).toEqual({ x: 140 - 100, y: 35 - 150, width: 200, height: 300 });
  });
  it('gravity top-left grows up and left from the anchor point; the offset adds', () => {
    expect(unconstrainedBox(rules({ anchor: A.TOP_LEFT, gravity: G.TOP_LEFT, offset: { x: 5, y: -3 } }))).toEqual({ x: 100 - 200 + 5, y: 20 - 300 - 3, width: 200, height: 300 });
  });
  it('no adjustment: the box stays where the rules put it, even off the output', () => {
    const r = rules({ anchorRect: { x: 900, y: 700, width: 10, height: 10 }, anchor: A.BOTTOM_RIGHT, gravity: G.BOTTOM_RIGHT });
    expect(placePopup(r, area)).toEqual({ x: 910, y: 710, width: 200, height: 300 });
  });
  it('flip_y: a menu that would leave the bottom opens upwards, with its offset mirrored', () => {
    const r = rules({ anchorRect: { x: 100, y: 600, width: 80, height: 30 }, anchor: A.BOTTOM_LEFT, gravity: G.BOTTOM_RIGHT, offset: { x: 0, y: 4 }, adjustment: C.FLIP_Y });
    expect(placePopup(r, area)).toEqual({ x: 100, y: 600 - 300 - 4, width: 200, height: 300 });
  });
  it('flip_x: a submenu at the right edge opens to the left of its item', () => {
    const r = rules({ anchorRect: { x: 900, y: 100, width: 100, height: 20 }, anchor: A.TOP_RIGHT, gravity: G.BOTTOM_RIGHT, adjustment: C.FLIP_X | C.FLIP_Y });
    expect(placePopup(r, area)).toEqual({ x: 900 - 200, y: 100, width: 200, height: 300 });
  });
  it('a flip that would not fit either is not taken; slide then moves the box in', () => {
    const r = rules({ size: { w: 200, h: 700 }, anchorRect: { x: 10, y: 380, width: 10, height: 10 }, anchor: A.BOTTOM_LEFT, gravity: G.BOTTOM_RIGHT, adjustment: C.FLIP_Y | C.SLIDE_Y });
    // Down: 390..1090 (out by 322); flipped up: -320..380 (out by 320): no flip; slid up by 322.
    expect(placePopup(r, area)).toEqual({ x: 10, y: 390 - 322, width: 200, height: 700 });
  });
  it('slide_x: moved left to the edge; larger than the area, its left edge stays visible', () => {
    const r = rules({ anchorRect: { x: 950, y: 10, width: 10, height: 10 }, anchor: A.BOTTOM_LEFT, gravity: G.BOTTOM_RIGHT, adjustment: C.SLIDE_X });
    expect(placePopup(r, area)).toEqual({ x: 1024 - 200, y: 20, width: 200, height: 300 });
    const wide = { ...r, size: { w: 1500, h: 10 } };
    expect(placePopup(wide, area).x).toBe(0);
  });
  it('resize: what slide cannot fix is cut to the area', () => {
    const r = rules({ size: { w: 200, h: 900 }, anchorRect: { x: 10, y: 10, width: 10, height: 10 }, anchor: A.BOTTOM_LEFT, gravity: G.BOTTOM_RIGHT, adjustment: C.SLIDE_Y | C.RESIZE_Y });
    expect(placePopup(r, area)).toEqual({ x: 10, y: 0, width: 200, height: 768 });
    const noSlide = { ...r, adjustment: C.RESIZE_Y };
    expect(placePopup(noSlide, area)).toEqual({ x: 10, y: 20, width: 200, height: 748 });
  });
  it('a constraint area with an offset origin (the parent is not at the output origin)', () => {
    const r = rules({ anchorRect: { x: 0, y: 0, width: 10, height: 10 }, anchor: A.TOP_LEFT, gravity: G.TOP_LEFT, adjustment: C.SLIDE_X | C.SLIDE_Y });
    expect(placePopup(r, { x: -50, y: -40, width: 1024, height: 768 })).toEqual({ x: -50, y: -40, width: 200, height: 300 });
  });
  it('an incomplete positioner is refused', () => {
    expect(() => placePopup({ ...emptyRules(), size: { w: 1, h: 1 } }, area)).toThrow(/incomplete/);
  });
});
