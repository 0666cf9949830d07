// Smoke tests: each proves one real part of the rig end to end.
//  - a 2-CRTC ConfigFS vkms device lit in ONE atomic commit, both writebacks verified
//  - ConfigFS connector hotplug while the device is enabled
//  - udmabuf (guest RAM as dma-buf) → PRIME import → AddFB2 → vkms scanout, pixel-exact
//  - an mbochs and an mdpy mdev opened through VFIO from node, answering the gfx-plane PROBE
// Everything created is removed in afterAll, whether the tests passed or not; leak checks
// (debugfs framebuffers and clients, our fds) run after each test's own cleanup.
import { describe, it, expect, afterAll } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KmsDevice, type KmsCrtc, type KmsConnector } from '../../plugin/kms/device.js';
import { DumbFramebuffer } from '../../plugin/kms/dumb.js';
import { WritebackCapture, type Capture } from '../../plugin/kms/writeback.js';
import { COMMIT, type AtomicRequest } from '../../plugin/kms/atomic.js';
import { UdmabufSource } from '../../plugin/sources/udmabuf.js';
import { VfioSource, VfioDevice, probeGfx } from '../../plugin/sources/vfio.js';
import { decodeFrameNumber } from '../../plugin/sources/pattern.js';
import * as drm from '../../ffi/drm.js';
import * as vfio from '../../ffi/vfio.js';
import * as libc from '../../ffi/libc.js';
import { createVkmsDevice, removeVkmsDevicesWithPrefix, type VkmsConfigfsDevice } from './helpers/vkms-configfs.js';
import { createMdev } from './helpers/mdev.js';
import { countNotColour, comparePixels, describeCompare, resultsDir, writePng } from './helpers/png.js';
import { fdSnapshot, readClients, readDebugfsName, readFramebuffers, readState } from './helpers/debugfs.js';
import { lightFullScreen } from './helpers/modeset.js';

const PREFIX = `gpsmoke${process.pid}`;

/** Undo actions, run last-in first-out in afterAll; every one runs even if others throw. */
const undo: Array<{ what: string; fn: () => unknown }> = [];
function onCleanup(what: string, fn: () => unknown): void {
  undo.push({ what, fn });
}
async function runCleanup(): Promise<string[]> {
  const errors: string[] = [];
  while (undo.length) {
    const u = undo.pop()!;
    try {
      await u.fn();
    } catch (e) {
      errors.push(`${u.what}: ${(e as Error).message}`);
    }
  }
  return errors;
}

afterAll(async () => {
  const errors = await runCleanup();
  // Belt and braces: nothing of ours may stay behind for the next test file.
  try {
    removeVkmsDevicesWithPrefix(PREFIX);
  } catch (e) {
    errors.push(`ConfigFS sweep: ${(e as Error).message}`);
  }
  if (errors.length) throw new Error(`cleanup failed:\n${errors.join('\n')}`);
});

let seq = 0;
function vkmsDevice(spec: Parameters<typeof createVkmsDevice>[0]): VkmsConfigfsDevice {
  const vd = createVkmsDevice({ name: `${PREFIX}-${seq++}`, ...spec });
  onCleanup(`remove ConfigFS device ${vd.name}`, () => vd.remove());
  return vd;
}

function openKms(path: string): KmsDevice {
  const dev = KmsDevice.open(path);
  onCleanup(`close ${path}`, () => dev.close());
  return dev;
}

function outputFor(dev: KmsDevice, crtc: KmsCrtc): KmsConnector {
  const c = dev.connectors.find((x) => !x.writeback && x.connection === 'connected' && (x.possibleCrtcs & (1 << crtc.index)) !== 0);
  if (!c) throw new Error(`${dev.path}: no connected output connector for CRTC ${crtc.id}`);
  return c;
}

function pickMode(conn: KmsConnector, w: number, h: number): drm.DrmModeInfo {
  const m = conn.modes.find((x) => x.hdisplay === w && x.vdisplay === h);
  if (!m) throw new Error(`${conn.name} has no ${w}x${h} mode: ${conn.modes.map((x) => x.name).join(' ')}`);
  return m;
}

/** Full-screen primary plane showing `fbId` on `crtc` at `mode`, with the connector routed. */
function lightHead(req: AtomicRequest, dev: KmsDevice, crtc: KmsCrtc, conn: KmsConnector, modeBlob: number, mode: drm.DrmModeInfo, fbId: number): void {
  const primary = dev.planesFor(crtc, 'primary')[0];
  if (!primary) throw new Error(`${dev.path}: CRTC ${crtc.id} has no primary plane`);
  lightFullScreen(req, { conn, crtc, modeBlob, primary, fbId, width: mode.hdisplay, height: mode.vdisplay });
}

function savePng(name: string, cap: Capture): string {
  return writePng(join(resultsDir('rig-smoke'), name), cap);
}

/** After everything of a test was closed: no FB, no DRM client and no kernel-object fd of ours is left. */
function expectNothingLeft(vd: VkmsConfigfsDevice, fds: ReturnType<typeof fdSnapshot>): void {
  expect(readFramebuffers(vd.cardPath), 'framebuffers left on the device').toEqual([]);
  expect(readClients(vd.cardPath).filter((c) => c.pid === process.pid), 'DRM files of ours still open').toEqual([]);
  expect(fds.leakedSince(), 'fds leaked').toEqual([]);
}

describe('ConfigFS vkms with two CRTCs', () => {
  it('lights both heads in one atomic commit and captures both writebacks', async () => {
    const vd = vkmsDevice({ crtcs: [{ writeback: true }, { writeback: true }] });
    expect(vd.connectors.map((c) => c.crtc)).toEqual([0, 1]);
    const fds = fdSnapshot();
    const dev = KmsDevice.open(vd.cardPath);
    let closed = false;
    onCleanup(`close ${vd.cardPath}`, () => (closed ? undefined : dev.close()));
    expect(dev.driver.name).toBe('vkms');
    // drmGetBusid answers '' here (the unique is only set after drmSetInterfaceVersion);
    // debugfs names the device's unique, which is the ConfigFS directory name.
    expect(readDebugfsName(vd.cardPath)).toEqual({ driver: 'vkms', dev: vd.name, unique: vd.busid });
    expect(dev.crtcs).toHaveLength(2);
    expect(dev.connectors.filter((c) => c.writeback)).toHaveLength(2);
    expect(dev.connectors.filter((c) => !c.writeback).map((c) => c.name)).toEqual(vd.connectorNames);

    const W = 640;
    const H = 480;
    const colours = [0xd02040, 0x20b070];
    const heads = dev.crtcs.map((crtc, i) => {
      const conn = outputFor(dev, crtc);
      const mode = pickMode(conn, W, H);
      const fb = new DumbFramebuffer(dev.fd, W, H);
      new Uint32Array(fb.bytes.buffer, fb.bytes.byteOffset, fb.size / 4).fill(colours[i]);
      const blob = dev.createModeBlob(mode);
      const wb = new WritebackCapture(dev, crtc);
      return { crtc, conn, mode, fb, blob, wb };
    });
    try {
      // The writeback connector of each head serves that head only.
      expect(new Set(heads.map((h) => h.wb.connector.id)).size).toBe(2);
      const req = dev.request();
      for (const h of heads) {
        lightHead(req, dev, h.crtc, h.conn, h.blob, h.mode, h.fb.fbId);
        h.wb.attach(req, h.crtc, W, H);
      }
      const commitsBefore = dev.counters.commits;
      req.commit(COMMIT.ALLOW_MODESET);
      expect(dev.counters.commits - commitsBefore).toBe(1);
      const caps = await Promise.all(heads.map((h) => h.wb.wait(10_000)));
      caps.forEach((cap, i) => {
        const png = savePng(`two-crtc-head${i}.png`, cap);
        const r = countNotColour(cap, colours[i]);
        expect(r.mismatches, `head ${i} (${png}): ${describeCompare(r)}`).toBe(0);
      });
      const st = readState(vd.cardPath);
      expect(st.crtcs.map((c) => [c.id, c.active, c.mode?.hdisplay, c.mode?.vdisplay])).toEqual(heads.map((h) => [h.crtc.id, true, W, H]));
      const fbs = readFramebuffers(vd.cardPath);
      for (const h of heads) {
        const fb = fbs.find((f) => f.id === h.fb.fbId);
        expect(fb).toMatchObject({ format: 'XR24', width: W, height: H });
        expect(fb!.allocatedBy.length).toBeGreaterThan(0);
      }
    } finally {
      for (const h of heads) {
        h.wb.close();
        h.fb.close();
        dev.destroyBlob(h.blob);
      }
      await dev.close();
      closed = true;
    }
    expectNothingLeft(vd, fds);
  });

  it('unplugs and replugs a connector by writing its ConfigFS status while enabled', async () => {
    const vd = vkmsDevice({ crtcs: [{ writeback: false }, { writeback: false }] });
    const dev = openKms(vd.cardPath);
    const name = vd.connectorNames[1];
    expect(dev.connectorByName(name).connection).toBe('connected');
    vd.setConnectorStatus(1, false);
    expect(vd.connectorStatus(1)).toBe('disconnected');
    dev.probe();
    expect(dev.connectorByName(name).connection).toBe('disconnected');
    expect(dev.connectorByName(name).modes).toHaveLength(0);
    expect(dev.connectorByName(vd.connectorNames[0]).connection).toBe('connected');
    vd.setConnectorStatus(1, true);
    dev.probe();
    expect(dev.connectorByName(name).connection).toBe('connected');
    expect(dev.connectorByName(name).modes.length).toBeGreaterThan(10);
    // The rest of the configuration is frozen while enabled (vkms_configfs.c: -EBUSY).
    let code = 'no error';
    try {
      writeFileSync(join(vd.dir, 'crtcs', 'crtc0', 'writeback'), '1');
    } catch (e) {
      code = (e as NodeJS.ErrnoException).code ?? String(e);
    }
    expect(code).toBe('EBUSY');
    expect(() => createVkmsDevice({ name: vd.name, crtcs: [{}] })).toThrow(/already exists/);
  });
});

describe('udmabuf → vkms scanout', () => {
  it('shows guest-RAM dma-bufs on the primary plane, pixel-exact, frame after frame', async () => {
    const vd = vkmsDevice({ crtcs: [{ writeback: true }] });
    const fds = fdSnapshot();
    const W = 640;
    const H = 480;
    const src = new UdmabufSource({ width: W, height: H, buffers: 2 });
    let srcClosed = false;
    onCleanup('close udmabuf source', () => (srcClosed ? undefined : src.close()));
    const dev = KmsDevice.open(vd.cardPath);
    let devClosed = false;
    onCleanup(`close ${vd.cardPath}`, () => (devClosed ? undefined : dev.close()));
    const crtc = dev.crtcs[0];
    const conn = outputFor(dev, crtc);
    const mode = pickMode(conn, W, H);
    const blob = dev.createModeBlob(mode);
    const wb = new WritebackCapture(dev, crtc);
    const fbIds: number[] = [];

    /** Imports the front buffer the source reports as a KMS FB (handle closed right after AddFB2). */
    const importFront = (): { fbId: number; buffer: number; frame: number } => {
      const q = src.query('primary');
      if (q.state !== 'ok') throw new Error(`udmabuf source: ${q.state}`);
      const p = q.plane;
      expect(p.transport).toBe('dmabuf');
      const dmabuf = src.exportDmabuf(p);
      let handle: number;
      try {
        handle = drm.primeFDToHandle(dev.fd, dmabuf);
      } finally {
        libc.close(dmabuf, 'udmabuf dma-buf');
      }
      let fbId: number;
      try {
        fbId = drm.addFB2WithModifiers(dev.fd, p.width, p.height, p.format, [handle], [p.stride], [p.offset], [p.modifier]);
      } finally {
        drm.gemClose(dev.fd, handle);
      }
      fbIds.push(fbId);
      return { fbId, buffer: p.bufferId, frame: p.frame ?? -1 };
    };

    try {
      let first = true;
      for (const [buffer, frame] of [[0, 41], [1, 42]] as const) {
        src.render(buffer, frame);
        src.flip(buffer, frame);
        const fb = importFront();
        expect(fb.buffer).toBe(buffer);
        const dfb = readFramebuffers(vd.cardPath).find((f) => f.id === fb.fbId);
        expect(dfb?.layers[0]?.imported, 'debugfs: the FB is backed by an imported dma-buf').toBe(true);
        const req = dev.request();
        if (first) lightHead(req, dev, crtc, conn, blob, mode, fb.fbId);
        else req.set(dev.planesFor(crtc, 'primary')[0], 'FB_ID', fb.fbId);
        wb.attach(req, crtc, W, H);
        req.commit(first ? COMMIT.ALLOW_MODESET : 0);
        first = false;
        const cap = await wb.wait(10_000);
        const png = savePng(`udmabuf-frame${frame}.png`, cap);
        const r = comparePixels({ width: W, height: H, stride: src.stride, format: src.format, pixels: src.pixels(buffer) }, cap);
        expect(r.mismatches, `frame ${frame} (${png}): ${describeCompare(r)}`).toBe(0);
        expect(decodeFrameNumber({ bytes: cap.pixels, offset: 0, width: cap.width, height: cap.height, stride: cap.stride })).toBe(frame);
      }
    } finally {
      wb.close();
      for (const id of fbIds) drm.rmFB(dev.fd, id);
      dev.destroyBlob(blob);
      await dev.close();
      devClosed = true;
      src.close();
      srcClosed = true;
    }
    expectNothingLeft(vd, fds);
  });
});

describe('mediated displays through VFIO', () => {
  const P = vfio.VFIO_GFX_PLANE_TYPE_PROBE;

  it('mbochs: a dma-buf display', () => {
    const fds = fdSnapshot();
    const m = createMdev('mbochs', 'mbochs-small');
    onCleanup(`remove mdev ${m.uuid}`, () => m.remove());
    expect(m.vfioGroupPath).toMatch(/^\/dev\/vfio\/\d+$/);
    const dev = VfioDevice.open(m.uuid);
    let closed = false;
    onCleanup(`close VFIO ${m.uuid}`, () => (closed ? undefined : dev.close()));
    expect(dev.name).toBe(m.uuid);
    expect(probeGfx(dev)).toBe('dmabuf');
    expect(vfio.queryGfxPlaneTry(dev.deviceFd, P | vfio.VFIO_GFX_PLANE_TYPE_DMABUF).ok).toBe(true);
    const region = vfio.queryGfxPlaneTry(dev.deviceFd, P | vfio.VFIO_GFX_PLANE_TYPE_REGION);
    expect(region.ok ? 'ok' : region.code).toBe('EINVAL');
    // No guest driver has set a mode: the primary plane is reported disabled (zeros).
    const q = vfio.queryGfxPlaneTry(dev.deviceFd, vfio.VFIO_GFX_PLANE_TYPE_DMABUF, vfio.DRM_PLANE_TYPE_PRIMARY);
    expect(q.ok && q.plane.drmFormat).toBe(0);
    dev.close();
    closed = true;
    m.remove();
    expect(m.removed).toBe(true);
    expect(fds.leakedSince()).toEqual([]);
  });

  it('mdpy: a region display of fixed size', () => {
    const fds = fdSnapshot();
    const m = createMdev('mdpy', 'mdpy-xga');
    onCleanup(`remove mdev ${m.uuid}`, () => m.remove());
    const dev = VfioDevice.open(m.uuid);
    let closed = false;
    onCleanup(`close VFIO ${m.uuid}`, () => (closed ? undefined : dev.close()));
    expect(probeGfx(dev)).toBe('region');
    expect(vfio.queryGfxPlaneTry(dev.deviceFd, P | vfio.VFIO_GFX_PLANE_TYPE_REGION).ok).toBe(true);
    const dmabuf = vfio.queryGfxPlaneTry(dev.deviceFd, P | vfio.VFIO_GFX_PLANE_TYPE_DMABUF);
    expect(dmabuf.ok ? 'ok' : dmabuf.code).toBe('EINVAL');
    const q = vfio.queryGfxPlane(dev.deviceFd, vfio.VFIO_GFX_PLANE_TYPE_REGION, vfio.DRM_PLANE_TYPE_PRIMARY);
    expect({ format: drm.fourccName(q.drmFormat), width: q.width, height: q.height, stride: q.stride }).toEqual({ format: 'XR24', width: 1024, height: 768, stride: 4096 });
    const info = dev.regionInfo(q.regionIndex);
    expect(Number(info.size)).toBeGreaterThanOrEqual(q.stride * q.height);
    // mdpy answers a cursor query with its whole framebuffer; the source has no cursor.
    const cur = vfio.queryGfxPlane(dev.deviceFd, vfio.VFIO_GFX_PLANE_TYPE_REGION, vfio.DRM_PLANE_TYPE_CURSOR);
    expect([cur.width, cur.height]).toEqual([1024, 768]);
    const src = new VfioSource(dev, { owned: [] });
    expect(src.query('cursor').state).toBe('disabled');
    expect(src.query('primary').state).toBe('ok');
    src.close();
    dev.close();
    closed = true;
    m.remove();
    expect(fds.leakedSince()).toEqual([]);
  });

  it('two mdevs of different parents are open at once', () => {
    const a = createMdev('mbochs', 'mbochs-small');
    onCleanup(`remove mdev ${a.uuid}`, () => a.remove());
    const b = createMdev('mdpy', 'mdpy-vga');
    onCleanup(`remove mdev ${b.uuid}`, () => b.remove());
    expect(a.iommuGroup).not.toBe(b.iommuGroup);
    const da = VfioDevice.open(a.uuid);
    onCleanup(`close VFIO ${a.uuid}`, () => da.close());
    const db = VfioDevice.open(b.uuid);
    onCleanup(`close VFIO ${b.uuid}`, () => db.close());
    expect([probeGfx(da), probeGfx(db)]).toEqual(['dmabuf', 'region']);
    // These two stay open until afterAll: its cleanup must close them before removing the mdevs.
  });
});
