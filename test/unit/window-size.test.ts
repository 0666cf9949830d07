// The window's size in device pixels (plugin/window/size.ts) against our own compositor's
// wp_fractional_scale_v1 (plugin/wayland/fractional-scale.ts) in the same process, real
// libwayland on both ends: the preferred scale (here 1.5: a server option, since our
// compositor itself shows everything at 1.0) turns the logical size into device pixels,
// rounded; a resize burst is sent once, with its last size; a second fractional-scale
// object for one surface is the protocol error; without the global the scale is the
// outputs' (none entered here: 1). The wl_output scale path is covered on Weston with a
// scale-2 output in window-lifecycle.test.ts.
import { describe, it, expect, afterEach } from 'vitest';
import { useRuntimeDir } from '../integration/helpers/wayland-client.js';
import { Display } from '../../protocols/runtime.js';
import { createCompositorGlobal } from '../../plugin/wayland/surface.js';
import { createFractionalScaleGlobal } from '../../plugin/wayland/fractional-scale.js';
import { Connection } from '../../protocols/client-runtime.js';
import { bindGlobals, roundtrip } from '../../protocols/client.js';
import { WlCompositor } from '../../protocols/generated/client/wayland.js';
import { WpFractionalScaleManagerV1 } from '../../protocols/generated/client/fractional_scale_v1.js';
import { DeviceSize } from '../../plugin/window/size.js';

useRuntimeDir('gp-winsize-');
let display: Display | null = null;
const conns: Connection[] = [];
afterEach(async () => {
  for (const c of conns.splice(0)) c.close();
  if (display) {
    await display.stop();
    display.destroy();
    display = null;
  }
});

function serve(socket: string, scale120: number | null): void {
  display = Display.create();
  display.addSocket(socket);
  createCompositorGlobal(display, () => {});
  if (scale120 !== null) createFractionalScaleGlobal(display, () => scale120);
  display.start({ onError: () => {} });
}

async function client(socket: string) {
  const conn = Connection.connect(socket);
  conns.push(conn);
  const g = await bindGlobals(conn, { wl_compositor: [WlCompositor, 4], wp_fractional_scale_manager_v1: [WpFractionalScaleManagerV1, 1] } as const);
  return { conn, g, surface: g.wl_compositor!.createSurface() };
}

const nextSend = (sent: { width: number; height: number }[], n: number) =>
  new Promise<void>((resolve) => {
    const t = setInterval(() => {
      if (sent.length >= n) {
        clearInterval(t);
        resolve();
      }
    }, 5);
  });

describe('window size in device pixels', () => {
  it('the compositor\'s fractional scale (1.5): a resize burst becomes one send of the last size in device pixels, rounded', async () => {
    serve('gp-winsize-a', 180);
    const { conn, surface } = await client('gp-winsize-a');
    const sent: { width: number; height: number }[] = [];
    const size = new DeviceSize(conn, surface, { send: (width, height) => sent.push({ width, height }), debounceMs: 20 });
    await roundtrip(conn); // the registry's globals, then the preferred scale
    await roundtrip(conn);
    expect(size.scale).toBe(1.5);
    for (const w of [640, 700, 801]) size.logical(w, 601);
    await nextSend(sent, 1);
    size.logical(801, 601); // the same size again: not sent again
    await new Promise((r) => setTimeout(r, 60));
    expect(sent).toEqual([{ width: 1202, height: 902 }]);
    expect(size.device).toEqual({ width: 1202, height: 902 });
    size.close();
  });

  it('a second wp_fractional_scale_v1 for one surface is the protocol error fractional_scale_exists', async () => {
    serve('gp-winsize-b', 120);
    const { conn, g, surface } = await client('gp-winsize-b');
    g.wp_fractional_scale_manager_v1!.getFractionalScale(surface);
    g.wp_fractional_scale_manager_v1!.getFractionalScale(surface);
    const closed = new Promise<{ kind: string; message: string }>((r) => conn.once('closed', r));
    await roundtrip(conn).catch(() => {});
    const r = await closed;
    expect(r.kind).toBe('protocol-error');
    // libwayland-client hands on the object and code, not the text: code 0 is fractional_scale_exists.
    expect(r.message).toMatch(/wp_fractional_scale_manager_v1@\d+ code 0$/);
  });

  it('no fractional scale offered and on no output yet: scale 1, the logical size is sent', async () => {
    serve('gp-winsize-c', null);
    const { conn, surface } = await client('gp-winsize-c');
    const sent: { width: number; height: number }[] = [];
    const size = new DeviceSize(conn, surface, { send: (width, height) => sent.push({ width, height }), debounceMs: 0 });
    await roundtrip(conn);
    size.logical(1024, 768);
    await nextSend(sent, 1);
    size.close();
    expect(size.scale).toBe(1);
    expect(sent).toEqual([{ width: 1024, height: 768 }]);
  });
});
