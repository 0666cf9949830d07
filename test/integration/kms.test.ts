// The KMS device model, atomic commits, page-flip events and writeback on real vkms.
import { describe, it, expect, afterEach } from 'vitest';
import { KmsDevice, KmsOpenError, findCardByDriver } from '../../plugin/kms/device.js';
import { DumbFramebuffer } from '../../plugin/kms/dumb.js';
import { WritebackCapture } from '../../plugin/kms/writeback.js';
import { COMMIT } from '../../plugin/kms/atomic.js';
import type { FlipEvent } from '../../plugin/kms/events.js';
import * as drm from '../../ffi/drm.js';
import { lightFullScreen } from './helpers/modeset.js';

const opened: KmsDevice[] = [];
afterEach(async () => {
  for (const d of opened.splice(0)) await d.close();
});
function vkms(): KmsDevice {
  const path = findCardByDriver('vkms');
  if (!path) throw new Error('no vkms card');
  const d = KmsDevice.open(path);
  opened.push(d);
  return d;
}

describe('KMS device model on vkms', () => {
  it('enumerates the default vkms device', () => {
    const d = vkms();
    expect(d.driver.name).toBe('vkms');
    expect(d.crtcs).toHaveLength(1);
    const virt = d.connectorByName('Virtual-1');
    expect(virt.connection).toBe('connected');
    expect(virt.modes.length).toBeGreaterThan(10);
    expect(d.connectors.some((c) => c.writeback && c.name === 'Writeback-1')).toBe(true);
    const types = d.planes.map((p) => p.type);
    expect(types.filter((t) => t === 'primary')).toHaveLength(1);
    expect(types.filter((t) => t === 'cursor')).toHaveLength(1);
    expect(types.filter((t) => t === 'overlay')).toHaveLength(8);
    const primary = d.planesFor(d.crtcs[0], 'primary')[0];
    expect(primary.formats.get(drm.fourcc('XR24'))).toEqual([drm.DRM_FORMAT_MOD_LINEAR]);
    expect(primary.props.has('FB_ID')).toBe(true);
    expect(d.caps.timestampMonotonic).toBe(true);
    expect(d.caps.prime.import).toBe(true);
  });

  it('names the properties an object has when asked for one it lacks', () => {
    const d = vkms();
    const primary = d.planesFor(d.crtcs[0], 'primary')[0];
    const req = d.request();
    expect(() => req.set(primary, 'NO_SUCH_PROP', 1)).toThrow(/plane \d+ has no property 'NO_SUCH_PROP'; it has: .*FB_ID/);
    req.dispose();
  });

  it('commits a modeset with a dumb buffer and delivers the flip event while timers keep ticking', async () => {
    const d = vkms();
    const crtc = d.crtcs[0];
    const conn = d.connectorByName('Virtual-1');
    const mode = conn.modes.find((m) => m.hdisplay === 1024 && m.vdisplay === 768) ?? conn.modes[0];
    const fb = new DumbFramebuffer(d.fd, mode.hdisplay, mode.vdisplay);
    const blob = d.createModeBlob(mode);
    try {
      const primary = d.planesFor(crtc, 'primary')[0];
      const req = lightFullScreen(d.request(), { conn, crtc, modeBlob: blob, primary, fbId: fb.fbId, width: mode.hdisplay, height: mode.vdisplay });
      let ticks = 0;
      const timer = setInterval(() => ticks++, 2);
      ticks = 0;
      const flip = new Promise<FlipEvent>((resolve) => d.events.once('flip', resolve));
      const before = process.hrtime.bigint();
      req.commit(COMMIT.ALLOW_MODESET | COMMIT.NONBLOCK | COMMIT.PAGE_FLIP_EVENT, 0x1234_5678_9abc_def0n);
      const ev = await flip;
      const after = process.hrtime.bigint();
      clearInterval(timer);
      expect(ev.userData).toBe(0x1234_5678_9abc_def0n);
      expect(ev.crtcId).toBe(crtc.id);
      // The modeset's event can arrive within a millisecond, so "timers kept ticking" is
      // checked over the six flips below, which each wait for a refresh (~16 ms).
      // The modeset's own event may carry no timestamp (vblank was off until then); the
      // page flips that follow carry CLOCK_MONOTONIC, the clock of process.hrtime.
      void before;
      void after;
      // Page flips arrive at the refresh rate (vkms: 60 Hz from an hrtimer).
      const seq: FlipEvent[] = [];
      for (let i = 0; i < 6; i++) {
        const p = new Promise<FlipEvent>((resolve) => d.events.once('flip', resolve));
        const t0 = process.hrtime.bigint();
        const t = setInterval(() => ticks++, 1);
        d.request().set(primary, 'FB_ID', fb.fbId).commit(COMMIT.NONBLOCK | COMMIT.PAGE_FLIP_EVENT, BigInt(i));
        const e = await p;
        clearInterval(t);
        const t1 = process.hrtime.bigint();
        expect(e.userData).toBe(BigInt(i));
        expect(e.timestampNs).toBeGreaterThan(t0 - 1_000_000n);
        expect(e.timestampNs).toBeLessThanOrEqual(t1);
        seq.push(e);
      }
      // The event reader never blocks the loop: 1 ms timers ran while we waited for flips.
      expect(ticks).toBeGreaterThan(6);
      const gaps = seq.slice(1).map((e, i) => Number(e.timestampNs - seq[i].timestampNs) / 1e6);
      for (const g of gaps) expect(g).toBeGreaterThan(10);
      expect(seq.map((e) => e.sequence)).toEqual([...seq.map((e) => e.sequence)].sort((a, b) => a - b));
    } finally {
      d.destroyBlob(blob);
      fb.close();
    }
  });

  it('captures the screen through the writeback connector, pixel-exact', async () => {
    const d = vkms();
    const crtc = d.crtcs[0];
    const conn = d.connectorByName('Virtual-1');
    const mode = conn.modes.find((m) => m.hdisplay === 640 && m.vdisplay === 480) ?? conn.modes[0];
    const fb = new DumbFramebuffer(d.fd, mode.hdisplay, mode.vdisplay);
    const px = new Uint32Array(fb.bytes.buffer, fb.bytes.byteOffset, fb.size / 4);
    for (let y = 0; y < mode.vdisplay; y++)
      for (let x = 0; x < mode.hdisplay; x++) px[(y * fb.pitch) / 4 + x] = ((x & 0xff) << 16) | ((y & 0xff) << 8) | ((x ^ y) & 0xff);
    const blob = d.createModeBlob(mode);
    const wb = new WritebackCapture(d);
    try {
      const primary = d.planesFor(crtc, 'primary')[0];
      const req = d.request()
        .set(conn, 'CRTC_ID', crtc.id).set(crtc, 'MODE_ID', blob).set(crtc, 'ACTIVE', 1)
        .set(primary, 'FB_ID', fb.fbId).set(primary, 'CRTC_ID', crtc.id)
        .set(primary, 'SRC_X', 0).set(primary, 'SRC_Y', 0)
        .set(primary, 'SRC_W', mode.hdisplay << 16).set(primary, 'SRC_H', mode.vdisplay << 16)
        .set(primary, 'CRTC_X', 0).set(primary, 'CRTC_Y', 0)
        .set(primary, 'CRTC_W', mode.hdisplay).set(primary, 'CRTC_H', mode.vdisplay);
      wb.attach(req, crtc, mode.hdisplay, mode.vdisplay);
      req.commit(COMMIT.ALLOW_MODESET);
      const cap = await wb.wait(5000);
      const got = new Uint32Array(cap.pixels.buffer, cap.pixels.byteOffset, cap.pixels.byteLength / 4);
      let mismatches = 0;
      for (let y = 0; y < mode.vdisplay; y++)
        for (let x = 0; x < mode.hdisplay; x++)
          if ((got[(y * cap.stride) / 4 + x] & 0xffffff) !== (px[(y * fb.pitch) / 4 + x] & 0xffffff)) mismatches++;
      expect(mismatches).toBe(0);
    } finally {
      wb.close();
      d.destroyBlob(blob);
      fb.close();
    }
  });
});

describe('opening the wrong thing gives a clear error', () => {
  it('a path that is not a DRM device', () => {
    expect(() => KmsDevice.open('/dev/null')).toThrow(KmsOpenError);
    expect(() => KmsDevice.open('/dev/null')).toThrow(/not a DRM device.*\/dev\/dri\/card/);
    expect(() => KmsDevice.open('/dev/dri/card99')).toThrow(/does not exist/);
    expect(() => KmsDevice.open('/etc/passwd')).toThrow(/not a device node/);
  });
  it('a device without atomic modesetting (vgem, a render node)', () => {
    const vgem = findCardByDriver('vgem');
    expect(vgem).not.toBeNull();
    expect(() => KmsDevice.open(vgem!)).toThrow(/no atomic modesetting/);
    expect(() => KmsDevice.open('/dev/dri/renderD128')).toThrow(/no atomic modesetting.*render node/);
  });
  it('a device another process drives (DRM master held elsewhere)', async () => {
    const first = vkms();
    expect(drm.isMaster(first.fd)).toBe(true);
    expect(() => KmsDevice.open(first.path)).toThrow(/is in use: another process is DRM master/);
    // Without master (e.g. to read the model) it opens.
    const ro = KmsDevice.open(first.path, { master: false });
    expect(ro.crtcs.length).toBe(1);
    await ro.close();
  });
});
