// Multi-head input routing, pure: the layout of screens, the pointer crossing their edges,
// keyboard focus following the head under the pointer (held keys released in the guest
// that loses it), devices bound to a head, heads without input. The real path (uinput,
// udevd, libinput, two unmodified QEMUs) is test/integration/heads-input.test.ts.
import { describe, it, expect } from 'vitest';
import { closestPoint, placeScreens } from '../../plugin/input/layout.js';
import { GuestPort, type InputTarget } from '../../plugin/input/guest-port.js';
import { HeadsRouter, type RoutedHead } from '../../plugin/input/heads-router.js';
import type { InputEvent } from '../../plugin/input/devices.js';

function port(tag: string, calls: string[]): GuestPort {
  const target: InputTarget = {
    key: async (c, d) => void calls.push(`${tag} key ${c} ${d ? 'down' : 'up'}`),
    button: async (b, d) => void calls.push(`${tag} button ${b} ${d ? 'down' : 'up'}`),
    pointerTo: async (x, y, from, rel) => void calls.push(`${tag} pointer ${x},${y}${from ? ` from ${from.x},${from.y}` : ''}${rel ? ` rel ${rel.dx},${rel.dy}` : ''}`),
  };
  return new GuestPort(target, (e) => calls.push(`${tag} error ${e.message}`));
}

const key = (code: number, pressed: boolean): InputEvent => ({ kind: 'key', code, pressed });
const move = (dx: number, dy: number, raw = 1): InputEvent => ({ kind: 'motion', dx, dy, dxRaw: dx * raw, dyRaw: dy * raw });

/** Screen L (640x480) left of screen R (800x600); head 0 (guest a, native) on L, head 1 (guest b, fit, a 400x300 picture) on R. */
function twoScreens(opts: { bPort?: boolean } = {}) {
  const calls: string[] = [];
  const a = port('a', calls);
  const b = opts.bPort === false ? null : port('b', calls);
  const focus: (number | null)[] = [];
  const quits: number[] = [];
  const r = new HeadsRouter({ quit: () => quits.push(1), focus: (h) => focus.push(h?.index ?? null) });
  const screens = placeScreens([
    { name: 'L', width: 640, height: 480 },
    { name: 'R', width: 800, height: 600 },
  ]);
  const heads: RoutedHead[] = [
    { index: 0, screen: 'L', area: screens[0].rect, fit: 'native', picture: () => ({ width: 640, height: 480 }), offset: { x: 0, y: 0 }, port: a },
    { index: 1, screen: 'R', area: screens[1].rect, fit: 'fit', picture: () => ({ width: 400, height: 300 }), offset: { x: 0, y: 0 }, port: b },
  ];
  r.setLayout(screens, heads);
  return { r, calls, focus, quits, screens, heads, a, b };
}

describe('layout', () => {
  it('places screens left to right in order, top edges aligned; explicit positions first, the rest to their right', () => {
    expect(placeScreens([{ name: 'A', width: 640, height: 480 }, { name: 'B', width: 800, height: 600 }, { name: 'C', width: 100, height: 100 }]).map((s) => s.rect)).toEqual([
      { x: 0, y: 0, width: 640, height: 480 },
      { x: 640, y: 0, width: 800, height: 600 },
      { x: 1440, y: 0, width: 100, height: 100 },
    ]);
    // B above A (explicit); C goes right of everything placed.
    expect(placeScreens([{ name: 'A', width: 640, height: 480, position: { x: 0, y: 600 } }, { name: 'B', width: 800, height: 600, position: { x: 0, y: 0 } }, { name: 'C', width: 100, height: 100 }]).map((s) => s.rect)).toEqual([
      { x: 0, y: 600, width: 640, height: 480 },
      { x: 0, y: 0, width: 800, height: 600 },
      { x: 800, y: 0, width: 100, height: 100 },
    ]);
  });

  it('the nearest point of a screen: inside stays, past a shared edge enters the neighbour, past an outer edge stops there', () => {
    const rects = placeScreens([{ name: 'L', width: 640, height: 480 }, { name: 'R', width: 800, height: 600 }]).map((s) => s.rect);
    expect(closestPoint(rects, { x: 639.5, y: 10 })).toEqual({ x: 639.5, y: 10 });
    expect(closestPoint(rects, { x: 700, y: 10 })).toEqual({ x: 700, y: 10 });
    expect(closestPoint(rects, { x: 2000, y: 10 })).toEqual({ x: 1439, y: 10 });
    expect(closestPoint(rects, { x: 100, y: 550 })).toEqual({ x: 100, y: 479 }); // below the shorter screen: its bottom edge
    expect(closestPoint(rects, { x: 630, y: 590 })).toEqual({ x: 640, y: 590 }); // nearer the taller one
    expect(closestPoint([], { x: 0, y: 0 })).toBeNull();
  });
});

describe('HeadsRouter', () => {
  it('the pointer crosses into the neighbouring head (its fit mapping, raw counts) and is clamped at the outer edges; focus follows', () => {
    const { r, calls, focus } = twoScreens();
    expect(r.pointer).toEqual({ x: 320, y: 240 });
    expect(r.focus).toBe(0);
    r.handle(move(100, 0, 0.5)); // (420,240) on L: native → guest a (420,240)
    r.handle(move(300, 0, 0.5)); // (720,240) on R: x 80 of 800 → fit 400x300 scaled 2x at (0,0): guest b (40,120)
    r.handle(move(5000, -5000, 0.5)); // clamped to R's top right corner (1439,0) → guest b (399,0)
    expect(calls).toEqual(['a pointer 420,240 from 320,240 rel 50,0', 'b pointer 40,120 rel 150,0', 'b pointer 399,0 from 40,120 rel 2500,-2500']);
    expect(r.pointer).toEqual({ x: 1439, y: 0 });
    expect(focus).toEqual([0, 1]);
    r.handle(move(-5000, 1000)); // back across to L's bottom left: (0,479)
    expect(r.pointer).toEqual({ x: 0, y: 479 });
    expect(calls.at(-1)).toBe('a pointer 0,479 from 420,240 rel -5000,1000');
    expect(focus).toEqual([0, 1, 0]);
  });

  it('keys go to the head under the pointer; the guest losing focus gets its held keys and buttons released, and their later releases go nowhere', () => {
    const { r, calls } = twoScreens();
    r.handle(key(30, true)); // A down in a
    r.handle({ kind: 'button', button: 0x111, pressed: true }); // right button in a
    r.handle(move(400, 0)); // into R
    r.handle(key(30, false)); // released on R: a got its release already, b never saw the press
    r.handle({ kind: 'button', button: 0x111, pressed: false });
    r.handle(key(31, true));
    r.handle(key(31, false));
    expect(calls.filter((c) => !c.includes('pointer'))).toEqual(['a key 30 down', 'a button right down', 'a key 30 up', 'a button right up', 'b key 31 down', 'b key 31 up']);
  });

  it('a device bound to a head: its keys go to that guest wherever the pointer is; its pointer stays on its head and moves nobody else', () => {
    const { r, calls } = twoScreens();
    r.handle(move(400, 0)); // shared pointer to R: focus b
    calls.length = 0;
    r.handle(key(32, true), 0); // bound to head 0
    r.handle(key(32, false), 0);
    r.handle(move(-10, 0), 0); // its own pointer, from the centre of head 0
    r.handle(move(5000, 0), 0); // clamped to head 0's right edge: does not cross
    r.handle({ kind: 'absolute', x: 0.5, y: 0.5 }, 0); // onto head 0
    expect(calls).toEqual(['a key 32 down', 'a key 32 up', 'a pointer 310,240 from 320,240 rel -10,0', 'a pointer 639,240 from 310,240 rel 5000,0', 'a pointer 320,240 from 639,240']);
    expect(r.focus).toBe(1);
    expect(r.pointer).toEqual({ x: 720, y: 240 });
    r.handle(key(33, true), 7); // bound to a head that is not up: dropped
    expect(calls.length).toBe(5);
  });

  it('shared absolute devices map onto the configured screen (default the first)', () => {
    const { r, calls, screens, heads } = twoScreens();
    r.handle({ kind: 'absolute', x: 0.25, y: 0.5 });
    expect(r.pointer).toEqual({ x: 160, y: 240 });
    r.setLayout(screens, heads, 'R');
    r.handle({ kind: 'absolute', x: 0.5, y: 0.5 });
    expect(r.pointer).toEqual({ x: 1040, y: 300 });
    expect(calls).toEqual(['a pointer 160,240 from 320,240', 'b pointer 200,150']);
  });

  it('a head without input: entering it takes the focus (the other guest lets go), keys and clicks there go nowhere', () => {
    const { r, calls, focus } = twoScreens({ bPort: false });
    r.handle(key(30, true));
    r.handle(move(400, 0));
    r.handle(key(31, true));
    r.handle({ kind: 'button', button: 0x110, pressed: true });
    expect(calls).toEqual(['a key 30 down', 'a key 30 up']);
    expect(focus).toEqual([0, 1]);
  });

  it('one guest over two heads (views): crossing keeps focus and held keys; the pointer lands at the view offset', () => {
    const calls: string[] = [];
    const d = port('d', calls);
    const r = new HeadsRouter({ quit: () => {} });
    const screens = placeScreens([{ name: 'L', width: 640, height: 480 }, { name: 'R', width: 640, height: 480 }]);
    const view = (index: number, x: number): RoutedHead => ({ index, screen: screens[index].name, area: screens[index].rect, fit: 'native', picture: () => ({ width: 640, height: 480 }), offset: { x, y: 0 }, port: d });
    r.setLayout(screens, [view(0, 0), view(1, 640)]);
    r.handle(key(30, true));
    r.handle(move(400, 0)); // (720,240): guest x 640 + 80
    r.handle(key(30, false));
    expect(calls).toEqual(['d key 30 down', 'd pointer 720,240 from 320,240 rel 400,0', 'd key 30 up']);
  });

  it('a screen going away: the pointer moves to the nearest screen left and focus with it, the gone guest lets go', () => {
    const { r, calls, screens, heads, focus } = twoScreens();
    r.handle(move(400, 100));
    r.handle(key(30, true)); // held in b
    r.setLayout([screens[0]], [heads[0]]);
    expect(r.pointer).toEqual({ x: 639, y: 340 });
    expect(focus).toEqual([0, 1, 0]);
    expect(calls.filter((c) => c.includes('key'))).toEqual(['b key 30 down', 'b key 30 up']);
  });

  it('chords from any keyboard: Ctrl+Alt+G lets every guest go and takes them back, Ctrl+Alt+Q quits; releaseAll (the seat went) releases every route', () => {
    const { r, calls, quits } = twoScreens();
    r.handle(key(30, true), 1); // held in b through a bound keyboard
    r.handle(key(29, true));
    r.handle(key(56, true));
    r.handle(key(34, true)); // G: release
    expect(r.grabbed).toBe(false);
    r.handle(key(34, false));
    r.handle(key(34, true)); // G: take back
    r.handle(key(16, true), 1); // Q from the bound keyboard
    expect(quits).toEqual([1]);
    expect(calls).toEqual(['b key 30 down', 'a key 29 down', 'a key 56 down', 'a key 29 up', 'a key 56 up', 'b key 30 up']);
    calls.length = 0;
    r.handle(key(31, true));
    r.handle(key(32, true), 1);
    r.releaseAll();
    r.releaseAll();
    expect(calls).toEqual(['a key 31 down', 'b key 32 down', 'a key 31 up', 'b key 32 up']);
  });
  it('a shared touchscreen is the pointer on its screen (one finger = the left button); the wheel goes to the head under the pointer', () => {
    const { r, calls, screens, heads } = twoScreens();
    r.setLayout(screens, heads, 'R');
    r.handle({ kind: 'touch', phase: 'down', slot: 0, x: 0.5, y: 0.5 }); // (1040,300) on R: guest b (200,150)
    r.handle({ kind: 'touch', phase: 'down', slot: 1, x: 0.1, y: 0.1 }); // a second finger moves the pointer too (as for one guest), no second press
    r.handle({ kind: 'touch', phase: 'up', slot: 1, x: 0, y: 0 });
    r.handle({ kind: 'touch', phase: 'up', slot: 0, x: 0, y: 0 });
    r.handle({ kind: 'scroll', axis: 'vertical', v120: 60 });
    r.handle({ kind: 'scroll', axis: 'vertical', v120: 60 }); // one detent in two halves
    r.handle({ kind: 'scroll', axis: 'horizontal', v120: 120 }); // no horizontal wheel in QEMU's buttons
    expect(calls).toEqual(['b pointer 200,150', 'b button left down', 'b pointer 40,30 from 200,150', 'b button left up', 'b button wheel-down down', 'b button wheel-down up']);
    expect(r.focus).toBe(1);
  });
});
