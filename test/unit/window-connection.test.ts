// Window mode's view of a desktop compositor (plugin/window/connection.ts), against our
// own server runtime in the same process (real libwayland on both ends): version caps,
// one line per missing optional global, the required ones named when missing, pings
// answered, and which modifier a guest buffer is handed over with.
import { describe, it, expect, afterEach } from 'vitest';
import { useRuntimeDir } from '../integration/helpers/wayland-client.js';
import { Display } from '../../protocols/runtime.js';
import * as S from '../../protocols/generated/wayland.js';
import { XdgWmBase } from '../../protocols/generated/xdg_shell.js';
import { ZwpLinuxDmabufV1 } from '../../protocols/generated/linux_dmabuf_unstable_v1.js';
import { Desktop, DRM_FORMAT_MOD_INVALID } from '../../plugin/window/connection.js';
import { roundtrip } from '../../protocols/client.js';

useRuntimeDir('gp-winconn-');
const XR24 = 0x34325258;
const AR24 = 0x34325241;
const NV12 = 0x3231564e;

let display: Display | null = null;
afterEach(async () => {
  if (display) {
    await display.stop();
    display.destroy();
    display = null;
  }
});

const unused = () => {
  throw new Error('not used by this test');
};

function desktopServer(socket: string, opts: { wmBase: boolean; pongs?: number[] }): void {
  display = Display.create();
  display.addSocket(socket);
  S.WlCompositor.global(display, 5, (id) => id.create({ createSurface: unused, createRegion: unused }));
  S.WlShm.global(display, 1, (id) => id.create({ createPool: unused }).sendFormat(S.WlShmFormat.XRGB8888));
  if (opts.wmBase) {
    XdgWmBase.global(display, 5, (id) => {
      const wm = id.create({ createPositioner: unused, getXdgSurface: unused, pong: (_r, serial) => opts.pongs?.push(serial) });
      wm.sendPing(77);
    });
  }
  // Version 3, as Weston 10: the formats come as modifier events (v4: window-feedback.test.ts).
  ZwpLinuxDmabufV1.global(display, 3, (id) => {
    const d = id.create({ createParams: unused, getDefaultFeedback: unused, getSurfaceFeedback: unused });
    expect(d.version).toBe(3);
    d.sendModifier(XR24, 0x00ffffff, 0xffffffff); // implicit only, as Weston 10's GL renderer on Mesa's software driver
    d.sendModifier(NV12, 0, 0); // linear only
  });
  display.start({ onError: () => {} });
}

describe('window mode: the desktop compositor connection', () => {
  it('binds with version caps, says each missing optional global in one line, answers pings, picks the modifier', async () => {
    const pongs: number[] = [];
    desktopServer('gp-desk-a', { wmBase: true, pongs });
    const log: string[] = [];
    const d = await Desktop.connect({ display: 'gp-desk-a', log: (l) => log.push(l) });
    try {
      expect(d.globals.compositor.version).toBe(4);
      expect(d.globals.wmBase.version).toBe(3);
      expect(d.globals.dmabuf?.version).toBe(3);
      expect(d.globals.presentation).toBeNull();
      expect(log).toEqual([
        'guestplane window: no wp_presentation: frames are paced by frame callbacks, without presentation times',
        'guestplane window: no wl_subcompositor: the guest is the window itself (no letterbox)',
        'guestplane window: no wp_viewporter: the guest is shown unscaled (no letterbox)',
        'guestplane window: no single-pixel buffers: the black background is a 1x1 wl_shm buffer',
        'guestplane window: no xdg-decoration: the compositor decides about decorations',
        'guestplane window: no wl_seat: no keyboard or pointer input reaches the guest',
        "guestplane window: no relative pointer: a guest whose mouse is not absolute gets the pointer's moves over the window, uncaptured",
        'guestplane window: no pointer constraints: the pointer cannot be captured for a guest whose mouse is not absolute',
        'guestplane window: no keyboard shortcuts inhibit: the desktop keeps its shortcuts while the pointer is captured',
      ]);
      await roundtrip(d.connection); // the pong reached the server before the sync's answer
      expect(pongs).toEqual([77]);
      // A linear guest buffer goes over as "implicit" where only that is offered…
      expect(d.modifierFor(XR24, 0n)).toBe(DRM_FORMAT_MOD_INVALID);
      // …as itself where it is offered, and not at all for formats not offered.
      expect(d.modifierFor(NV12, 0n)).toBe(0n);
      expect(d.modifierFor(AR24, 0n)).toBeNull();
      expect(d.modifierFor(XR24, 0x0100000000000001n)).toBeNull();
      expect(d.takesShm(S.WlShmFormat.XRGB8888)).toBe(true);
    } finally {
      d.close();
    }
  });

  it('names a missing required global and what window mode needs it for', async () => {
    desktopServer('gp-desk-b', { wmBase: false });
    await expect(Desktop.connect({ display: 'gp-desk-b', log: () => {} })).rejects.toThrow(/offers no xdg_wm_base; window mode needs it/);
  });

  it('no compositor at the socket: the error names the socket', async () => {
    await expect(Desktop.connect({ display: 'gp-desk-nobody', log: () => {} })).rejects.toThrow(/wl_display_connect.*gp-desk-nobody/);
  });
});
