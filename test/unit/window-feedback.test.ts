// Window mode reading linux-dmabuf v4 feedback (plugin/window/dmabuf-feedback.ts through
// Desktop), against our own compositor's zwp_linux_dmabuf_v1 (plugin/wayland/linux-dmabuf.ts:
// format table in a sealed memfd, tranches by index) in the same process, real libwayland on
// both ends: the default feedback's tranches in order with their scanout flag, the pairs
// they offer, the modifier a guest buffer goes over with, a surface's own feedback, and the
// table fds not leaked. Also the table and dev_t decoding on their own.
import { describe, it, expect, afterEach } from 'vitest';
import { readdirSync } from 'node:fs';
import { useRuntimeDir } from '../integration/helpers/wayland-client.js';
import { Display } from '../../protocols/runtime.js';
import * as S from '../../protocols/generated/wayland.js';
import { XdgWmBase } from '../../protocols/generated/xdg_shell.js';
import { LinuxDmabuf } from '../../plugin/wayland/linux-dmabuf.js';
import { createCompositorGlobal } from '../../plugin/wayland/surface.js';
import { TRANCHE_FLAG_SCANOUT as SERVER_SCANOUT, devTBytes, type TrancheSpec } from '../../plugin/wayland/dmabuf-feedback.js';
import { Desktop, DRM_FORMAT_MOD_INVALID } from '../../plugin/window/connection.js';
import { devT, offers, pairKey, parseFormatTable, type DmabufFeedback } from '../../plugin/window/dmabuf-feedback.js';
import { roundtrip } from '../../protocols/client.js';

useRuntimeDir('gp-winfb-');
const XR24 = 0x34325258;
const AR24 = 0x34325241;
const RG16 = 0x36314752;
const NV12 = 0x3231564e;
const LINEAR = 0n;
const TILED = 0x0100000000000001n; // I915_FORMAT_MOD_X_TILED
const DEV = 0xe201n; // 226:1, a card's dev_t
const fds = () => readdirSync('/proc/self/fd').length;

let display: Display | null = null;
let dmabuf: LinuxDmabuf | null = null;
afterEach(async () => {
  dmabuf?.close();
  dmabuf = null;
  if (display) {
    await display.stop();
    display.destroy();
    display = null;
  }
});

const unused = () => {
  throw new Error('not used by this test');
};

/** Our compositor's linux-dmabuf with a scanout tranche (XR24 linear) and a main tranche; surfaces get AR24 on the scanout tranche too. */
function server(socket: string): void {
  display = Display.create();
  display.addSocket(socket);
  createCompositorGlobal(display, () => {});
  S.WlShm.global(display, 1, (id) => id.create({ createPool: unused }).sendFormat(S.WlShmFormat.XRGB8888));
  XdgWmBase.global(display, 5, (id) => id.create({ createPositioner: unused, getXdgSurface: unused, pong: () => {} }));
  const scanout: TrancheSpec = { device: DEV, flags: SERVER_SCANOUT, formats: [{ format: XR24, modifier: LINEAR }] };
  const main: TrancheSpec = { device: DEV, flags: 0, formats: [{ format: XR24, modifier: LINEAR }, { format: AR24, modifier: LINEAR }, { format: NV12, modifier: TILED }] };
  const surfaceScanout: TrancheSpec = { ...scanout, formats: [{ format: XR24, modifier: LINEAR }, { format: AR24, modifier: LINEAR }] };
  dmabuf = new LinuxDmabuf(display, { mainDevice: DEV, defaultTranches: () => [scanout, main], surfaceTranches: () => [surfaceScanout, main] });
  void dmabuf.table.fd; // the server's own table memfd, made before the client's fds are counted
  display.start({ onError: () => {} });
}

describe('window mode: linux-dmabuf v4 feedback', () => {
  it('the default feedback: tranches in order with the scanout flag; the modifier a buffer goes over with; a surface\'s own feedback; no fd left', async () => {
    server('gp-fb-a');
    const fds0 = fds();
    const d = await Desktop.connect({ display: 'gp-fb-a', log: () => {} });
    let surfaceFeedbacks: DmabufFeedback[] = [];
    try {
      expect(d.globals.dmabuf?.version).toBe(4);
      const f = d.defaultFeedback;
      expect(f).not.toBeNull();
      expect(f!.mainDevice).toBe(DEV);
      expect(f!.tranches.map((t) => [t.device, t.scanout, [...t.pairs]])).toEqual([
        [DEV, true, [pairKey(XR24, LINEAR)]],
        [DEV, false, [pairKey(XR24, LINEAR), pairKey(AR24, LINEAR), pairKey(NV12, TILED)]],
      ]);
      expect(offers(f!, XR24, LINEAR)).toEqual({ importable: true, scanout: true });
      expect(offers(f!, AR24, LINEAR)).toEqual({ importable: true, scanout: false });
      expect(offers(f!, RG16, LINEAR)).toEqual({ importable: false, scanout: false });
      // v4 lists explicit modifiers: a linear guest buffer goes over as LINEAR, never "implicit".
      expect(d.modifierFor(XR24, LINEAR)).toBe(LINEAR);
      expect(d.modifierFor(NV12, TILED)).toBe(TILED);
      expect(d.modifierFor(NV12, LINEAR)).toBeNull();
      expect(d.modifierFor(RG16, LINEAR)).toBeNull();
      expect(d.modifierFor(XR24, DRM_FORMAT_MOD_INVALID)).toBeNull();
      // A surface's own feedback: AR24 is scanout-capable there.
      const surface = d.globals.compositor.createSurface();
      const sf = d.surfaceFeedback(surface, (x) => surfaceFeedbacks.push(x))!;
      await roundtrip(d.connection);
      expect(surfaceFeedbacks.length).toBe(1);
      expect(offers(surfaceFeedbacks[0]!, AR24, LINEAR)).toEqual({ importable: true, scanout: true });
      expect(d.modifierFor(AR24, LINEAR, surfaceFeedbacks[0]!)).toBe(LINEAR);
      sf.proxy.destroy();
      surface.destroy();
      await roundtrip(d.connection);
    } finally {
      d.close();
    }
    // Both format tables (default and surface feedback) were read and closed.
    await new Promise((r) => setTimeout(r, 50));
    expect(fds()).toBe(fds0);
    surfaceFeedbacks = [];
  });

  it('a v3 compositor: no feedback, the format/modifier events decide', async () => {
    display = Display.create();
    display.addSocket('gp-fb-b');
    S.WlCompositor.global(display, 5, (id) => id.create({ createSurface: unused, createRegion: unused }));
    S.WlShm.global(display, 1, (id) => id.create({ createPool: unused }));
    XdgWmBase.global(display, 5, (id) => id.create({ createPositioner: unused, getXdgSurface: unused, pong: () => {} }));
    dmabuf = new LinuxDmabuf(display, { mainDevice: DEV, version: 3, defaultTranches: () => [{ device: DEV, flags: 0, formats: [{ format: XR24, modifier: LINEAR }] }] });
    display.start({ onError: () => {} });
    const d = await Desktop.connect({ display: 'gp-fb-b', log: () => {} });
    try {
      expect(d.globals.dmabuf?.version).toBe(3);
      expect(d.defaultFeedback).toBeNull();
      expect(d.modifierFor(XR24, LINEAR)).toBe(LINEAR);
      expect(d.modifierFor(AR24, LINEAR)).toBeNull();
      const s = d.globals.compositor.createSurface();
      expect(d.surfaceFeedback(s, () => {})).toBeNull();
    } finally {
      d.close();
    }
  });

  it('decodes the format table (16-byte entries, a partial one ignored) and dev_t bytes', () => {
    const b = Buffer.alloc(16 * 2 + 5);
    b.writeUInt32LE(XR24, 0);
    b.writeBigUInt64LE(TILED, 8);
    b.writeUInt32LE(NV12, 16);
    b.writeBigUInt64LE(LINEAR, 24);
    expect(parseFormatTable(new Uint8Array(b))).toEqual([{ format: XR24, modifier: TILED }, { format: NV12, modifier: LINEAR }]);
    expect(devT(devTBytes(DEV))).toBe(DEV);
    expect(devT(new Uint8Array(4))).toBe(0n);
  });
});
