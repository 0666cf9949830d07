// Issue 18 parts B and C: real applications on the kiosk compositor (vkms, real Output).
//  - our client: a dma-buf sub-surface over a wl_shm toplevel: the sub-surface is on an
//    overlay plane (read back from debugfs), its own feedback says zero_copy, and the
//    captured screen is pixel-exact (the toplevel composed on the primary, the video above);
//  - a dma-buf popup (xdg_popup, no grab) is a plane candidate as a sub-surface is: the same
//    checks, on an overlay plane at the place its positioner gives (issue 29 item 1);
//  - weston-subsurfaces (Debian weston: cairo main surface, two desynchronized sub-surfaces,
//    one drawn by Mesa's software EGL) keeps presenting frames of both sub-surfaces;
//  - foot (Debian) starts (it refuses compositors without wl_subcompositor,
//    wl_data_device_manager and wl_seat) and its first frame is on screen: its background;
//  - mpv: --vo=dmabuf-wayland no longer refuses the compositor (it then finds no way to put
//    software-decoded frames in dma-bufs: the rig has no hardware decoder), --vo=wlshm and
//    --vo=gpu (Mesa llvmpipe, --gpu-sw) play a lavfi test source with presentation feedback;
//  - GTK 3 and GTK 4 (Debian's widget factories): the window is on screen, and closing it
//    (xdg_toplevel.close) ends the application cleanly, without a protocol error.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { KioskCompositor } from '../../plugin/modes/compositor.js';
import { findCardByDriver } from '../../plugin/kms/device.js';
import type { PresentEvent } from '../../plugin/output/output.js';
import { readState } from './helpers/debugfs.js';
import { buildWaylandClient, nextToplevelShown, startClient, useRuntimeDir } from './helpers/wayland-client.js';
import { clientTraceViolations } from './helpers/wayland-trace.js';

let kiosk: KioskCompositor;
let client: string;
let card: string;
const socket = 'gp-apps';
const runtimeDir = useRuntimeDir('gp-apps-');
const env = () => ({ runtimeDir: runtimeDir(), socket });

beforeAll(() => {
  client = buildWaylandClient();
  const c = findCardByDriver('vkms');
  if (!c) throw new Error('no vkms card in the rig');
  card = c;
  kiosk = KioskCompositor.start({ device: card, connector: 'Virtual-1', socket, log: () => {} });
});
afterAll(async () => {
  await kiosk?.close();
});

/**
 * Runs an application for at most `ms` (then SIGINT), collecting its output and the presents
 * meanwhile. Its libwayland traces the protocol (WAYLAND_DEBUG=client): `violations` are what
 * the compositor owed it and got wrong (helpers/wayland-trace.ts).
 */
function runApp(cmd: string, args: string[], ms: number, extraEnv: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; signal: string | null; out: string; presents: PresentEvent[]; violations: string[] }> {
  const presents: PresentEvent[] = [];
  const onPresent = (p: PresentEvent) => presents.push(p);
  kiosk.on('present', onPresent);
  const child = spawn(cmd, args, { env: { ...process.env, XDG_RUNTIME_DIR: runtimeDir(), WAYLAND_DISPLAY: socket, WAYLAND_DEBUG: 'client', ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  return new Promise((resolve) => {
    const stop = setTimeout(() => {
      child.kill('SIGINT');
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    }, ms);
    child.on('exit', (code, signal) => {
      clearTimeout(stop);
      kiosk.off('present', onPresent);
      resolve({ code, signal, out, presents, violations: clientTraceViolations(out) });
    });
  });
}

describe('real applications on the kiosk compositor (vkms)', () => {
  /**
   * Our client in `mode` shows a 256x256 dma-buf surface over its wl_shm toplevel at
   * (100,50), 40 frames: its feedback says zero-copy for every presented frame; the layer is
   * on an overlay plane (the kernel's plane state agrees); the capture is pixel-exact (the
   * last frame there, the toplevel's colour around it). Returns the client's output lines.
   */
  async function onOverlayPlane(mode: string, ready: RegExp): Promise<string[]> {
    const c = startClient(client, [mode, '40'], env());
    try {
      await c.waitFor(ready, 60_000);
      const summary = await c.waitFor(/^SUMMARY /, 120_000);
      const m = /SUMMARY frames=40 callbacks=40 presented=(\d+) discarded=(\d+) zero_copy=(\d+)/.exec(summary);
      expect(m, summary).not.toBeNull();
      expect(+m![1]! + +m![2]!).toBe(40);
      // The surface's own feedback: on its plane with its own buffer.
      expect(+m![3]!).toBeGreaterThan(0);
      expect(+m![3]!).toBe(+m![1]!);
      const cap = await kiosk.output.captureNext();
      const layer = cap.content?.layers?.find((l) => l.id.startsWith('sub'));
      console.log(`wayland-apps: ${mode}: layer ${JSON.stringify(layer)}; ${summary}`);
      expect(layer).toMatchObject({ how: 'plane', planeType: 'overlay', zeroCopy: true, path: 'scanout' });
      // The kernel's view: an overlay plane showing 256x256 at (100,50), the primary the composition.
      const st = readState(card);
      const overlay = st.planes.find((p) => p.id === layer!.planeId);
      expect(overlay?.fields['crtc-pos']).toBe('256x256+100+50');
      expect(overlay?.fb).toBeGreaterThan(0);
      // Pixels: the last frame (40) in the 256x256 rectangle, the toplevel's colour around it.
      const px = new Uint32Array(cap.pixels.buffer, cap.pixels.byteOffset, cap.pixels.byteLength / 4);
      let wrong = 0;
      for (let y = 0; y < 768; y++) {
        for (let x = 0; x < 1024; x++) {
          const inside = x >= 100 && x < 356 && y >= 50 && y < 306;
          const want = inside ? (((x - 100) & 255) << 16) | (((y - 50) & 255) << 8) | 40 : 0x336699;
          if ((px[(y * cap.stride) / 4 + x]! & 0xffffff) !== want) wrong++;
        }
      }
      expect(wrong).toBe(0);
      return c.lines;
    } finally {
      c.child.stdin?.write('\n');
      await c.kill();
    }
  }

  it('a dma-buf sub-surface over a wl_shm toplevel is scanned out on an overlay plane, zero-copy, pixel-exact', async () => {
    await onOverlayPlane('subsurface', /^SUBSURFACE 256x256 at 100,50 over 1024x768$/);
  }, 240_000);

  // Issue 29 item 1: popups are plane candidates like sub-surfaces. A popup (no grab, as a
  // tooltip: a grab needs an input serial) whose buffers are udmabuf dma-bufs, placed by its
  // positioner at (100,50), goes to an overlay plane zero-copy over the composed toplevel.
  it('a dma-buf popup over a wl_shm toplevel is scanned out on an overlay plane, zero-copy, pixel-exact', async () => {
    const lines = await onOverlayPlane('popup', /^POPUP 256x256 dmabuf over 1024x768$/);
    expect(lines).toContain('POPUP_CONFIGURE 100 50 256 256');
    expect(lines).not.toContain('POPUP_DONE');
  }, 240_000);

  it('weston-subsurfaces runs: frames of both its sub-surfaces keep being presented', async () => {
    const r = await runApp('weston-subsurfaces', [], 20_000);
    // It runs until stopped (SIGINT at the end), never dies on its own.
    expect(r.signal ?? r.code, r.out.slice(-3000)).not.toBe('SIGSEGV');
    const frames = new Map<string, Set<number>>();
    for (const p of r.presents) for (const l of p.layers ?? []) if (l.id.startsWith('sub') && l.frame !== undefined) (frames.get(l.id) ?? frames.set(l.id, new Set()).get(l.id)!).add(l.frame);
    // Its two sub-surfaces (the red square, the EGL triangle) each show frame after frame.
    const busy = [...frames].filter(([, f]) => f.size >= 3).map(([id]) => id);
    expect(busy, `${[...frames].map(([id, f]) => `${id}: ${f.size}`).join(', ')}\n${r.out.slice(-3000)}`).toHaveLength(2);
    expect(r.violations).toEqual([]);
  }, 60_000);

  it('foot starts and its first frame is on screen (its background colour)', async () => {
    // A frame of foot's own toplevel on screen (not of an earlier client's).
    const shown = nextToplevelShown(kiosk);
    const run = runApp('foot', ['-o', 'colors.background=123456', 'sh', '-c', 'sleep 60'], 60_000);
    await shown;
    const cap = await kiosk.output.captureNext();
    const px = new Uint32Array(cap.pixels.buffer, cap.pixels.byteOffset, cap.pixels.byteLength / 4);
    let bg = 0;
    for (let y = 0; y < 768; y++) for (let x = 0; x < 1024; x++) if ((px[(y * cap.stride) / 4 + x]! & 0xffffff) === 0x123456) bg++;
    // An empty terminal: nearly all of it is the background (the prompt is a few cells).
    expect(bg / (1024 * 768)).toBeGreaterThan(0.9);
    kiosk.toplevels.at(-1)?.resource.sendClose();
    const r = await run;
    expect(r.out).not.toMatch(/not implemented by server|no seats available/);
    expect(r.violations).toEqual([]);
  }, 120_000);

  it('mpv --vo=dmabuf-wayland no longer refuses the compositor (then: no dma-buf path for software-decoded frames in the rig)', async () => {
    const r = await runApp('mpv', ['--no-config', '--vo=dmabuf-wayland', '--length=2', 'av://lavfi:testsrc=size=320x240:rate=30'], 60_000);
    expect(r.out).not.toMatch(/doesn't support the wl_subcompositor/);
    // What it does without a hardware decoder: it cannot put rgb24 frames into dma-bufs.
    expect(r.out).toMatch(/Cannot convert decoder\/filter output to any format supported by the output/);
  }, 90_000);

  for (const [vo, args, extra] of [
    ['wlshm', ['--vo=wlshm'], {}],
    // Mesa's llvmpipe through EGL on Wayland (wl_shm underneath); mpv refuses software GL without --gpu-sw.
    ['gpu', ['--vo=gpu', '--gpu-sw'], { LIBGL_ALWAYS_SOFTWARE: '1' }],
  ] as const) {
    it(`mpv --vo=${vo} plays a lavfi test source with presentation feedback`, async () => {
      const r = await runApp('mpv', ['--no-config', ...args, '--length=3', 'av://lavfi:testsrc=size=320x240:rate=30'], 90_000, extra);
      expect(r.code, r.out.slice(-2000)).toBe(0);
      expect(r.out).toMatch(/Exiting\.\.\. \(End of file\)/);
      const feedback = (r.out.match(/wp_presentation_feedback@\d+\.presented\(/g) ?? []).length;
      const shown = r.presents.filter((p) => p.frame !== undefined).length;
      expect(feedback).toBeGreaterThan(20);
      expect(shown).toBeGreaterThan(20);
      expect(r.violations).toEqual([]);
    }, 120_000);
  }

  // Under TCG a widget factory takes 20-40 s to its first frame, and GTK 4 (cairo on wl_shm)
  // about a second per frame after that.
  for (const app of ['gtk3-widget-factory', 'gtk4-widget-factory']) {
    it(`${app}: its window is on screen, and xdg_toplevel.close ends it cleanly`, async () => {
      const shown = nextToplevelShown(kiosk);
      // No session bus in the rig: GTK's settings from memory, no accessibility bus.
      const run = runApp(app, [], 150_000, { GDK_BACKEND: 'wayland', GSETTINGS_BACKEND: 'memory', NO_AT_BRIDGE: '1' });
      const early = run.then((r) => { throw new Error(`${app} ended before its first frame (${r.signal ?? r.code}):\n${r.out.slice(-2000)}`); });
      early.catch(() => {}); // after the first frame, its end is the test's own (below)
      await Promise.race([shown, early]);
      // GTK draws its Adwaita window background (#f6f5f4) over most of the window; the
      // screen without a client is dark.
      let bg = 0;
      for (let tries = 0; tries < 10 && bg < 0.3 * 1024 * 768; tries++) {
        const cap = await kiosk.output.captureNext();
        const px = new Uint32Array(cap.pixels.buffer, cap.pixels.byteOffset, cap.pixels.byteLength / 4);
        bg = 0;
        for (let y = 0; y < 768; y++) for (let x = 0; x < 1024; x++) if ((px[(y * cap.stride) / 4 + x]! & 0xffffff) === 0xf6f5f4) bg++;
      }
      expect(bg / (1024 * 768)).toBeGreaterThan(0.3);
      kiosk.toplevels.at(-1)?.resource.sendClose();
      const r = await run;
      expect(r.signal ?? r.code, r.out.slice(-2000)).toBe(0);
      expect(r.out).not.toMatch(/Error .* dispatching to Wayland display|protocol error|Lost connection/i);
      expect(r.violations).toEqual([]);
    }, 240_000);
  }
});
