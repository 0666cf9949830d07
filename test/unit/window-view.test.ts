// Window geometry placement (plugin/wayland/window-view.ts, scene.ts with a view): the
// window rectangle is what the fit places; shadows outside it fall off the output.
import { describe, it, expect } from 'vitest';
import { outputInView, outputToView, windowView } from '../../plugin/wayland/window-view.js';

describe('window geometry', () => {
  it('the window rectangle is the geometry clipped to the surface, or all of it', () => {
    expect(windowView({ w: 1088, h: 824 }, { x: 8, y: 40, width: 1024, height: 768 })).toEqual({ x: 8, y: 40, width: 1024, height: 768 });
    expect(windowView({ w: 100, h: 100 }, null)).toEqual({ x: 0, y: 0, width: 100, height: 100 });
    // Reaching past the surface: clipped (the protocol's intersection).
    expect(windowView({ w: 100, h: 100 }, { x: -10, y: 50, width: 200, height: 200 })).toEqual({ x: 0, y: 50, width: 100, height: 50 });
    // Wholly outside: the surface.
    expect(windowView({ w: 100, h: 100 }, { x: 200, y: 0, width: 10, height: 10 })).toEqual({ x: 0, y: 0, width: 100, height: 100 });
    expect(windowView(null, { x: 0, y: 0, width: 10, height: 10 })).toBeNull();
  });
  it('a window larger than the output (native fit) is bounded from its top-left corner, not centred', () => {
    const out = { w: 1024, h: 768 };
    // No geometry: GTK's widget factory at its minimum size, wider and taller than the output.
    expect(windowView({ w: 1180, h: 840 }, null, out)).toEqual({ x: 0, y: 0, width: 1024, height: 768 });
    // With geometry: its top-left corner stays, the right and bottom edge fall off.
    expect(windowView({ w: 1300, h: 900 }, { x: 20, y: 30, width: 1200, height: 800 }, out)).toEqual({ x: 20, y: 30, width: 1024, height: 768 });
    // Smaller windows are untouched (centred by the fit, as before).
    expect(windowView({ w: 640, h: 480 }, null, out)).toEqual({ x: 0, y: 0, width: 640, height: 480 });
    // The pointer at the output's corner is at the window's corner, not 78 pixels into it.
    expect(outputToView('native', windowView({ w: 1180, h: 840 }, null, out)!, out, { x: 0, y: 0 })).toEqual({ x: 0, y: 0 });
  });
  it('output points map into the surface with the geometry offset; the output is the constraint area around the window', () => {
    const view = { x: 8, y: 40, width: 1024, height: 768 };
    const out = { w: 1024, h: 768 };
    expect(outputToView('native', view, out, { x: 0, y: 0 })).toEqual({ x: 8, y: 40 });
    expect(outputToView('native', view, out, { x: 100, y: 10 })).toEqual({ x: 108, y: 50 });
    expect(outputInView('native', view, out)).toEqual({ x: 8, y: 40, width: 1024, height: 768 });
    // A window half the output's size, centred (native): the area reaches around it.
    expect(outputInView('native', { x: 20, y: 20, width: 512, height: 384 }, out)).toEqual({ x: 20 - 256, y: 20 - 192, width: 1024, height: 768 });
  });
});
