// The small protocols real applications ask for (plugin/wayland/{data-device,decoration,
// single-pixel}.ts), against real libwayland clients: the clipboard between two clients,
// the decoration mode a kiosk answers, a single-pixel buffer as the copy path reads it.
// (foot, which will not start without wl_data_device_manager, runs in the rig.)
import { describe, it, expect, afterEach } from 'vitest';
import { Display, type Client } from '../../protocols/runtime.js';
import { WlSeat } from '../../protocols/generated/wayland.js';
import { createCompositorGlobal } from '../../plugin/wayland/surface.js';
import { createShmGlobal } from '../../plugin/wayland/shm.js';
import { createXdgShellGlobal } from '../../plugin/wayland/xdg-shell.js';
import { createViewporterGlobal } from '../../plugin/wayland/viewporter.js';
import { createDecorationGlobal } from '../../plugin/wayland/decoration.js';
import { createSinglePixelBufferGlobal } from '../../plugin/wayland/single-pixel.js';
import { DataDevices } from '../../plugin/wayland/data-device.js';
import { SurfaceSource } from '../../plugin/wayland/surface-source.js';
import { fourcc } from '../../ffi/drm.js';
import { buildWaylandClient, startClient, useRuntimeDir } from '../integration/helpers/wayland-client.js';

let display: Display | null = null;
let n = 0;
const runtimeDir = useRuntimeDir('gp-small-');
afterEach(async () => {
  if (display) {
    await display.stop();
    display.destroy();
  }
  display = null;
});

describe('small protocols, real clients', () => {
  it('the clipboard: one client sets the selection, the focused one gets an offer and reads it; a DnD source cannot be the selection', async () => {
    display = Display.create();
    const socket = `gp-small-${process.pid}-${++n}`;
    display.addSocket(socket);
    const surfaceClients: Client[] = [];
    createCompositorGlobal(display, (s) => surfaceClients.push(s.resource.client));
    // A seat with no devices yet (input is issue 14): enough for wl_data_device_manager.get_data_device.
    const none = () => {};
    WlSeat.global(display, 1, (id) => void id.create({ getPointer: none, getKeyboard: none, getTouch: none }));
    const dd = new DataDevices(display);
    display.start({ onError: () => {} });
    const client = buildWaylandClient();
    const setter = startClient(client, ['clip-set', 'hello from guestplane'], { runtimeDir: runtimeDir(), socket });
    let getter: ReturnType<typeof startClient> | null = null;
    try {
      await setter.waitFor(/^SELECTION_SET$/);
      getter = startClient(client, ['clip-get'], { runtimeDir: runtimeDir(), socket });
      await getter.waitFor(/^WAITING$/);
      // Not focused yet: it has seen no offer. Focus it (as the kiosk does for the shown toplevel).
      expect(getter.lines.filter((l) => l.startsWith('SELECTION offer'))).toEqual([]);
      dd.focus(surfaceClients.at(-1)!);
      expect(await getter.waitFor(/^CLIP /)).toBe('CLIP hello from guestplane');
      expect(getter.lines).toContain('OFFER text/plain;charset=utf-8');
      expect(getter.lines).toContain('OFFER text/plain');
      expect(await setter.waitFor(/^SEND /)).toBe('SEND text/plain;charset=utf-8');
      // wl_data_source.error.invalid_source
      expect(await getter.waitFor(/^PROTOCOL_ERROR/)).toBe('PROTOCOL_ERROR interface=wl_data_source code=1');
    } finally {
      await setter.kill();
      await getter?.kill();
    }
  }, 30_000);

  it('a toplevel asking for client-side decorations is told server-side; a single-pixel buffer is one premultiplied pixel stretched to its viewport', async () => {
    display = Display.create();
    const socket = `gp-small-${process.pid}-${++n}`;
    display.addSocket(socket);
    createCompositorGlobal(display, () => {});
    createShmGlobal(display);
    createViewporterGlobal(display);
    createDecorationGlobal(display);
    createSinglePixelBufferGlobal(display);
    const sources: SurfaceSource[] = [];
    createXdgShellGlobal(display, {
      size: () => ({ width: 320, height: 200 }),
      onToplevel: (t) => {
        const s = new SurfaceSource('solid');
        sources.push(s);
        t.surface.on('commit', (c) => {
          s.commit(c);
          const q = s.query('primary');
          if (q.state === 'ok') s.presented({ frame: q.plane.frame, timestampNs: process.hrtime.bigint(), refreshNs: 16_666_667, sequence: 1, zeroCopy: false });
        });
      },
      onToplevelDestroyed: () => {},
    });
    display.start({ onError: () => {} });
    const c = startClient(buildWaylandClient(), ['solid', '128', '64', '32', '128'], { runtimeDir: runtimeDir(), socket });
    try {
      await c.waitFor(/^SOLID_SHOWN 320x200$/);
      expect(c.lines).toContain('DECORATION mode=2'); // server_side: the kiosk draws none
      const q = sources[0]!.query('primary');
      if (q.state !== 'ok') throw new Error(`no plane: ${q.state}`);
      expect(q.plane).toMatchObject({ transport: 'region', width: 1, height: 1, stride: 4, format: fourcc('AR24'), displaySize: { width: 320, height: 200 } });
      const v = sources[0]!.cpuView(q.plane)!;
      expect([...v.bytes.subarray(v.offset, v.offset + 4)]).toEqual([32, 64, 128, 128]); // B, G, R, A
    } finally {
      await c.kill();
    }
  }, 30_000);
});
