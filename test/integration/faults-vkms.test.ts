// Issue 8, faults on the host display side, each on its own vkms ConfigFS device so a
// fault cannot leak into other tests: the connector unplugged and plugged back, the whole
// device disabled mid-stream, DRM master taken by another process and given back.
// Each: the process stays up, the output says what happened, the screen comes back with
// the guest's latest frame (writeback, pixel-exact) where it can, nothing leaks.
import { describe, it, expect } from 'vitest';
import { cleanupAfterEach } from './helpers/cleanup.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as drm from '../../ffi/drm.js';
import { KmsDevice } from '../../plugin/kms/device.js';
import { Output, type OutputErrorEvent } from '../../plugin/output/output.js';
import { UdmabufSource } from '../../plugin/sources/udmabuf.js';
import { drawPattern, decodeFrameNumber } from '../../plugin/sources/pattern.js';
import { createVkmsDevice, type VkmsConfigfsDevice } from './helpers/vkms-configfs.js';
import { baseline, fbIds, lowestFreeGemHandle, GuestDriver, nextPresent, patternMismatches, sleep, waitFor, ourClients } from './helpers/faults.js';

const W = 640;
const H = 480;
const DIST = fileURLToPath(new URL('../../dist', import.meta.url));

const cleanup = cleanupAfterEach({ logErrors: true });

interface Rig {
  vd: VkmsConfigfsDevice;
  dev: KmsDevice;
  out: Output;
  guest: UdmabufSource;
  driver: GuestDriver;
  errors: OutputErrorEvent[];
}

/** A fresh one-CRTC vkms device showing a 640x480 udmabuf guest flipping at ~60 Hz. */
async function streaming(): Promise<Rig> {
  const vd = createVkmsDevice({ crtcs: [{ writeback: true }] });
  cleanup.push(() => vd.remove());
  const dev = KmsDevice.open(vd.cardPath);
  cleanup.push(() => dev.close());
  const out = new Output(dev, { connector: vd.connectorNames[0], mode: { width: W, height: H } });
  cleanup.push(() => out.close());
  const guest = new UdmabufSource({ width: W, height: H, buffers: 3 });
  cleanup.push(() => guest.close());
  const errors: OutputErrorEvent[] = [];
  out.on('error', (e) => errors.push(e));
  const driver = new GuestDriver(guest, 16);
  cleanup.push(() => driver.stop());
  out.enable();
  out.attach(guest, 'native');
  const first = nextPresent(out, (p) => (p.frame ?? 0) >= 5);
  driver.start();
  await first;
  return { vd, dev, out, guest, driver, errors };
}

/**
 * Checks the guest's newest frame is on screen, pixel-exact. The guest pauses so that it
 * does not render into the buffer being captured (a capture costs ~0.1 s under TCG, the
 * guest would lap its three buffers meanwhile), then shows one more frame.
 */
async function expectGuestOnScreen(r: Rig, what: string): Promise<number> {
  r.driver.stop();
  await waitFor(() => r.out.current?.frame === r.driver.frame, `${what}: the output to show the guest's last frame ${r.driver.frame}`, 3000);
  const want = r.driver.frame + 1;
  const shown = nextPresent(r.out, (p) => p.frame === want);
  r.driver.step();
  await shown;
  const cap = await r.out.captureNext();
  r.driver.start();
  const frame = cap.content?.frame ?? -1;
  expect(cap.content?.path, what).toBe('scanout');
  expect(decodeFrameNumber({ bytes: cap.pixels, offset: 0, width: W, height: H, stride: cap.stride }), what).toBe(frame);
  expect(patternMismatches(cap, frame, W, H, drawPattern), what).toBe(0);
  return frame;
}

function exited(child: ChildProcess, what: string, timeoutMs: number): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what} still running after ${timeoutMs} ms`)), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(t);
      resolve(code);
    });
  });
}

describe('host display faults (vkms ConfigFS)', () => {
  it('connector unplugged and plugged back: the stream survives and the latest frame is shown after', async () => {
    const base0 = baseline(null);
    const r = await streaming();
    const base = baseline(r.vd.cardPath);
    const conn = r.out.connector;
    const before = r.out.statsSnapshot().framesPresented;
    r.vd.setConnectorStatus(0, false);
    expect(drm.getConnector(r.dev.fd, conn.id).connection).toBe(drm.DRM_MODE_DISCONNECTED);
    await sleep(500);
    const during = r.out.statsSnapshot().framesPresented - before;
    r.vd.setConnectorStatus(0, true);
    expect(drm.getConnector(r.dev.fd, conn.id).connection).toBe(drm.DRM_MODE_CONNECTED);
    const mark = r.driver.frame;
    await nextPresent(r.out, (p) => (p.frame ?? 0) > mark + 3);
    const shown = await expectGuestOnScreen(r, 'after replug');
    expect(shown).toBeGreaterThan(mark);
    expect(r.driver.error).toBeNull();
    const s = r.out.statsSnapshot();
    console.log(`connector fault: ${during} frames presented during the 500 ms unplug, errors ${JSON.stringify(s.errors)}, frame ${shown} on screen after replug`);
    expect(r.errors.filter((e) => e.cause !== 'not-ready')).toEqual([]);
    r.driver.stop();
    await r.out.idle();
    expect(base.newFbs().length).toBeLessThanOrEqual(2); // the writeback target(s)
    await r.out.close();
    // A fresh device: with our fd still open, none of its FBs or GEM handles may remain.
    expect(fbIds(r.vd.cardPath)).toEqual([]);
    expect(lowestFreeGemHandle(r.dev.fd), 'a GEM handle is still open on the DRM fd').toBe(1);
    for (const f of cleanup.splice(0).reverse()) await f();
    expect(base0.leakedFds()).toEqual([]);
  });

  it('the whole vkms device disabled mid-stream: device-lost reported, no crash, clean close, nothing leaks', async () => {
    const base0 = baseline(null);
    const r = await streaming();
    const lost = new Promise<OutputErrorEvent>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no device-lost within 5 s; reported: ${JSON.stringify(r.errors)}`)), 5000);
      r.out.on('error', (e) => {
        if (e.cause !== 'device-lost') return;
        clearTimeout(t);
        resolve(e);
      });
    });
    // Disabling destroys the DRM device under our open fd; done by another process, as an
    // administrator would, and listened to at once (it may finish while we wait below).
    const disabler = spawn('sh', ['-c', `echo 0 > ${r.vd.dir}/enabled`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    disabler.stderr!.on('data', (d) => (stderr += d));
    const done = exited(disabler, 'echo 0 > enabled', 10_000);
    const e = await lost;
    console.log(`device disabled: ${e.message}; reported causes ${r.errors.map((x) => x.cause).join(', ')}`);
    expect(e.message).toMatch(/gone|ENODEV|went away|removed/i);
    // Not mistaken for a buffer the kernel refused, nor retried per frame.
    expect(r.errors.map((x) => x.cause)).toEqual(['device-lost']);
    const commits = r.dev.counters.commits + r.dev.counters.testOnly;
    await sleep(300);
    expect(r.dev.counters.commits + r.dev.counters.testOnly).toBe(commits);
    // The guest keeps flipping into an output with no device: nothing may throw.
    await sleep(200);
    expect(r.driver.error).toBeNull();
    r.driver.stop();
    await r.out.close();
    await r.dev.close();
    expect(await done, stderr).toBe(0);
    for (const f of cleanup.splice(0).reverse()) await f();
    expect(base0.leakedFds()).toEqual([]);
  });

  it('DRM master taken by another process (which switches our CRTC off) and given back: reported, then the guest is back on screen, zero-copy', async () => {
    const base0 = baseline(null);
    const r = await streaming();
    const base = baseline(r.vd.cardPath);
    expect(ourClients(r.vd.cardPath)).toBe(1);
    // What logind does on a VT switch: our fd stops being master, another session's becomes it.
    drm.dropMaster(r.dev.fd);
    const child = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const [root, card, crtcId, conn, hold] = process.argv.slice(1);
         const { KmsDevice } = await import(root + '/plugin/kms/device.js');
         const { COMMIT } = await import(root + '/plugin/kms/atomic.js');
         const dev = KmsDevice.open(card);
         const crtc = dev.crtc(Number(crtcId));
         const req = dev.request().set(dev.connectorByName(conn), 'CRTC_ID', 0).set(crtc, 'ACTIVE', 0).set(crtc, 'MODE_ID', 0);
         for (const p of dev.planesFor(crtc)) if (p.crtcId === crtc.id) req.set(p, 'FB_ID', 0).set(p, 'CRTC_ID', 0);
         const wb = dev.connectors.find((c) => c.writeback && c.crtcId === crtc.id);
         if (wb) req.set(wb, 'CRTC_ID', 0);
         req.commit(COMMIT.ALLOW_MODESET);
         console.log('master, CRTC off');
         await new Promise((r) => setTimeout(r, Number(hold)));
         await dev.close();`,
        DIST,
        r.vd.cardPath,
        String(r.out.crtc.id),
        r.out.connector.name,
        '600',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    const childDone = exited(child, 'the other DRM master', 20_000);
    await waitFor(() => out.includes('CRTC off') || out.includes('Error'), 'the other process to become master', 15_000);
    expect(out).toContain('master, CRTC off');
    // Our commits now fail (not master): said once, the process stays up.
    await waitFor(() => r.errors.some((e) => e.cause === 'master-lost'), `our output to report the lost master (reported: ${JSON.stringify(r.errors)})`, 3000);
    const lostMsg = r.errors.find((e) => e.cause === 'master-lost')!;
    expect(lostMsg.message).toMatch(/another process is DRM master/);
    // Refusals for want of master are not held against the guest's buffers.
    expect(r.errors.map((e) => e.cause)).toEqual(['master-lost']);
    expect(await childDone, out).toBe(0);
    // The other session ended: logind hands master back to us.
    drm.setMaster(r.dev.fd);
    const mark = r.driver.frame;
    await nextPresent(r.out, (p) => (p.frame ?? 0) > mark + 3 && p.path === 'scanout', 5000);
    const shown = await expectGuestOnScreen(r, 'after master came back');
    const s = r.out.statsSnapshot();
    expect(r.errors.map((e) => e.cause)).toEqual(['master-lost']);
    console.log(`master fault: reported "${lostMsg.cause}: ${lostMsg.message}"; errors ${JSON.stringify(s.errors)}; frame ${shown} on screen after master returned; paths ${JSON.stringify(s.paths)}`);
    expect(r.driver.error).toBeNull();
    r.driver.stop();
    await r.out.idle();
    expect(base.newFbs().length).toBeLessThanOrEqual(2);
    await r.out.close();
    // A fresh device: with our fd still open, none of its FBs or GEM handles may remain.
    expect(fbIds(r.vd.cardPath)).toEqual([]);
    expect(lowestFreeGemHandle(r.dev.fd), 'a GEM handle is still open on the DRM fd').toBe(1);
    for (const f of cleanup.splice(0).reverse()) await f();
    expect(base0.leakedFds()).toEqual([]);
  });
});
