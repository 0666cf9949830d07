// A toplevel larger than the output is cut at its window geometry (or from its top-left
// corner without one) in surface coordinates, whatever buffer transform and viewport the
// client uses (plugin/wayland/surface-source.ts #cropOf with window-view.ts): real
// libwayland clients (gp-wayland-client geometry / oversize) draw green inside the window
// and red outside it (blue on a border their viewport crops off), stored with each of the
// eight buffer transforms, with and without a viewport that scales 2:1. The test reads the
// buffer pixels the primary plane's crop selects, as the copy path and planes do
// (srcInBuffer), and wants exactly the green ones.
//
// No KMS on the host: the source is read as the Output reads it (query, cpuView); the
// placement of that crop on the output is scene.ts's, unchanged and tested in window-view.
import { describe, it, expect, afterEach } from 'vitest';
import { Display } from '../../protocols/runtime.js';
import { createCompositorGlobal } from '../../plugin/wayland/surface.js';
import { createShmGlobal } from '../../plugin/wayland/shm.js';
import { createXdgShellGlobal } from '../../plugin/wayland/xdg-shell.js';
import { createViewporterGlobal } from '../../plugin/wayland/viewporter.js';
import { SurfaceSource } from '../../plugin/wayland/surface-source.js';
import { windowView } from '../../plugin/wayland/window-view.js';
import { srcInBuffer, viewOf } from '../../plugin/output/picture.js';
import type { GuestPlaneInfo } from '../../plugin/sources/source.js';
import { buildWaylandClient, startClient, useRuntimeDir } from '../integration/helpers/wayland-client.js';

const OUT = { w: 640, h: 480 };
let display: Display | null = null;
let n = 0;
const runtimeDir = useRuntimeDir('gp-crop-');
afterEach(async () => {
  if (display) {
    await display.stop();
    display.destroy();
  }
  display = null;
});

/** A display whose toplevels are shown as the kiosk does in native fit: the source's view is the window rectangle. */
function serve(sources: SurfaceSource[]): string {
  display = Display.create();
  const socket = `gp-crop-${process.pid}-${++n}`;
  display.addSocket(socket);
  createCompositorGlobal(display, () => {});
  createShmGlobal(display);
  createViewporterGlobal(display);
  createXdgShellGlobal(display, {
    size: () => ({ width: OUT.w, height: OUT.h }),
    onToplevel: (t) => {
      const s = new SurfaceSource('toplevel');
      s.view = () => windowView(t.surface.size, t.geometry(), OUT);
      t.surface.on('commit', (c) => s.commit(c));
      sources.push(s);
    },
    onToplevelDestroyed: () => {},
  });
  display.start({ onError: () => {} });
  return socket;
}

/** Counts the plane's buffer pixels inside its crop (in buffer coordinates) by colour. */
function cropColours(s: SurfaceSource): { plane: GuestPlaneInfo; green: number; other: number; shown: { width: number; height: number } } {
  const q = s.query('primary');
  if (q.state !== 'ok') throw new Error(`no frame: ${q.state}`);
  const p = q.plane;
  const view = s.cpuView(p);
  if (!view) throw new Error('no pixels');
  const v = viewOf(p);
  const r = srcInBuffer(v.crop, p);
  const px = new DataView(view.bytes.buffer, view.bytes.byteOffset + view.offset);
  let green = 0;
  let other = 0;
  for (let y = r.y; y < r.y + r.height; y++)
    for (let x = r.x; x < r.x + r.width; x++) {
      if (px.getUint32(y * p.stride + x * 4, true) === 0xff00ff00) green++;
      else other++;
    }
  return { plane: p, green, other, shown: v.shown };
}

async function cropOfClient(mode: 'geometry' | 'oversize', transform: number, scale: number) {
  const sources: SurfaceSource[] = [];
  const socket = serve(sources);
  const extra = { GP_TRANSFORM: String(transform), GP_PICTURE_SCALE: String(scale) };
  const c = startClient(buildWaylandClient(), [mode], { runtimeDir: runtimeDir(), socket, extra });
  try {
    await c.waitFor(mode === 'geometry' ? /^GEOMETRY / : /^OVERSIZE /, 20_000);
    await new Promise((r) => setImmediate(r));
    return cropColours(sources[0]!);
  } finally {
    await c.kill();
  }
}

const cases = [0, 1, 2, 3, 4, 5, 6, 7].flatMap((t) => [1, 2].map((k) => [t, k] as const));

describe('an oversized toplevel is cut at its window, whatever its buffer transform and viewport', () => {
  it.each(cases)('geometry, transform %i, %i buffer pixels per surface pixel: the crop is the window geometry, all green, shown at the configured size', async (t, k) => {
    const r = await cropOfClient('geometry', t, k);
    // The geometry is the configured size (640x480); k*k buffer pixels per surface pixel.
    expect({ other: r.other, green: r.green, shown: r.shown }).toEqual({ other: 0, green: OUT.w * OUT.h * k * k, shown: { width: OUT.w, height: OUT.h } });
  }, 30_000);
  it.each(cases)('oversize without geometry, transform %i, %i buffer pixels per surface pixel: cut from the top-left corner at the output size, all green', async (t, k) => {
    const r = await cropOfClient('oversize', t, k);
    expect({ other: r.other, green: r.green, shown: r.shown }).toEqual({ other: 0, green: OUT.w * OUT.h * k * k, shown: { width: OUT.w, height: OUT.h } });
  }, 30_000);
});
