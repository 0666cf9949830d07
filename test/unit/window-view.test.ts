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
