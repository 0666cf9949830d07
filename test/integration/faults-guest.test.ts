// Issue 8, faults on the guest side: a guest flipping far faster than the host refreshes,
// a storm of guest mode changes, and the guest's mediated device removed while it is on
// screen. Each: the process stays up, the output shows what it should afterwards
// (writeback, pixel-exact), and FBs, fds and memory come back to where they were.
import { describe, it, expect } from 'vitest';
import { cleanupAfterEach } from './helpers/cleanup.js';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { KmsDevice, findCardByDriver } from '../../plugin/kms/device.js';
import { Output, NO_SIGNAL_PIXEL, type OutputErrorEvent, type PresentEvent } from '../../plugin/output/output.js';
import { UdmabufSource } from '../../plugin/sources/udmabuf.js';
import { VfioDevice, VfioSource } from '../../plugin/sources/vfio.js';
import { BochsDispi, BochsTestGuest, bochsVramReader } from '../../plugin/sources/bochs.js';
import { drawPattern, decodeFrameNumber } from '../../plugin/sources/pattern.js';
import { createMdev, type MdevInstance } from './helpers/mdev.js';
import { baseline, lowestFreeGemHandle, type Baseline, nextPresent, patternMismatches, sleep, waitFor, rssMiB } from './helpers/faults.js';
import { readFramebuffers } from './helpers/debugfs.js';

const cleanup = cleanupAfterEach({ logErrors: true });

function vkmsOutput(width: number, height: number, errors: OutputErrorEvent[]): { dev: KmsDevice; out: Output } {
  const dev = KmsDevice.open(findCardByDriver('vkms')!);
  cleanup.push(() => dev.close());
  // No GPU composition: llvmpipe under TCG would make frames cost seconds.
  const out = new Output(dev, { connector: 'Virtual-1', mode: { width, height }, paths: ['scanout', 'copy'] });
  cleanup.push(() => out.close());
  out.on('error', (e) => errors.push(e));
  return { dev, out };
}

/** Shows one more rendered frame of a udmabuf guest and checks it on screen, pixel-exact. */
/**
 * The output's own leak check: with the DRM fd still open (closing it would free
 * everything anyway), closing the output leaves none of its FBs and no GEM handle behind;
 * then, everything else closed, no fd is left.
 */
async function closeWithoutLeaks(out: Output, dev: KmsDevice, base: Baseline): Promise<void> {
  await out.close();
  expect(base.newFbs()).toEqual([]);
  expect(lowestFreeGemHandle(dev.fd), 'a GEM handle is still open on the DRM fd').toBe(1);
  for (const f of cleanup.splice(0).reverse()) await f();
  expect(base.leakedFds()).toEqual([]);
}

async function showAndCheck(out: Output, guest: UdmabufSource, frame: number, buffer: number): Promise<void> {
  guest.render(buffer, frame);
  const shown = nextPresent(out, (p) => p.frame === frame);
  guest.flip(buffer, frame);
  await shown;
  const cap = await out.captureNext();
  expect(cap.content?.frame).toBe(frame);
  const ox = out.current!.dst.x;
  const oy = out.current!.dst.y;
  expect(decodeFrameNumber({ bytes: cap.pixels, offset: 0, width: ox + guest.width, height: oy + guest.height, stride: cap.stride }, ox, oy)).toBe(frame);
  expect(patternMismatches(cap, frame, guest.width, guest.height, drawPattern, ox, oy)).toBe(0);
}

describe('guest faults', () => {
  it('a guest flipping ~30x faster than the host refresh: each refresh shows the newest frame, nothing queues', async () => {
    const errors: OutputErrorEvent[] = [];
    const card = findCardByDriver('vkms')!;
    const base = baseline(card);
    const { dev, out } = vkmsOutput(640, 480, errors);
    const guest = new UdmabufSource({ width: 640, height: 480, buffers: 3 });
    cleanup.push(() => guest.close());
    out.enable();
    out.attach(guest, 'native');
    await showAndCheck(out, guest, 1, 1);
    // At each present, the guest's newest frame: the commit that follows must show at least that.
    let frame = 1;
    const seen: { p: PresentEvent; newestThen: number }[] = [];
    out.on('present', (p) => seen.push({ p, newestThen: frame }));
    const commits0 = dev.counters.commits;
    const imports0 = out.cache.stats.imports;
    const rss0 = rssMiB();
    const t0 = Date.now();
    // Thousands of flips/s for 3 s: eight flips, then a turn of the event loop (where the
    // output's flip events are handled), no rendering (flips only).
    while (Date.now() - t0 < 3000) {
      for (let k = 0; k < 8; k++) guest.flip(++frame % 3, frame);
      await new Promise((r) => setImmediate(r));
    }
    const secs = (Date.now() - t0) / 1000;
    await out.idle();
    const presented = seen.filter((s) => s.p.frame !== undefined);
    const lag = presented.slice(1).map((s, i) => (presented[i].newestThen) - (s.p.frame ?? 0));
    const maxLag = Math.max(...lag);
    const commits = dev.counters.commits - commits0;
    const refreshHz = 1e9 / out.refreshNs;
    console.log(
      `fast guest: ${frame - 1} flips in ${secs.toFixed(1)} s (${((frame - 1) / secs).toFixed(0)}/s), ${presented.length} presented (${(presented.length / secs).toFixed(1)}/s at ${refreshHz.toFixed(1)} Hz), ${commits} commits, max lag behind the newest frame at the previous flip ${maxLag}, imports +${out.cache.stats.imports - imports0}, RSS +${(rssMiB() - rss0).toFixed(1)} MiB`,
    );
    // The premise: the guest outran the host at least tenfold (how far depends on the load).
    expect(presented.length).toBeGreaterThan(10);
    expect((frame - 1) / presented.length).toBeGreaterThan(10);
    // At most one commit per refresh, one per presented frame (nothing queued, nothing dropped silently).
    expect(presented.length).toBeLessThanOrEqual(Math.ceil(secs * refreshHz) + 2);
    expect(commits).toBeLessThanOrEqual(presented.length + 1);
    // Never an older frame than the newest one at the previous flip.
    expect(maxLag).toBeLessThanOrEqual(0);
    for (let i = 1; i < presented.length; i++) expect(presented[i].p.frame!).toBeGreaterThan(presented[i - 1].p.frame!);
    // Each of the three buffers imported once at most, whatever the flip rate.
    expect(out.cache.stats.imports - imports0).toBeLessThanOrEqual(2);
    // Then the guest slows down: its last frame is on screen, exact.
    await showAndCheck(out, guest, frame + 1, (frame + 1) % 3);
    expect(errors.filter((e) => e.cause !== 'not-ready')).toEqual([]);
    await closeWithoutLeaks(out, dev, base);
  });

  it('100 guest mode changes in a second, then a stable mode: the right final frame, FBs and fds back to baseline', async () => {
    const errors: OutputErrorEvent[] = [];
    const card = findCardByDriver('vkms')!;
    const base = baseline(card);
    const { dev, out } = vkmsOutput(640, 480, errors);
    const guest = new UdmabufSource({ width: 640, height: 480, buffers: 3 });
    cleanup.push(() => guest.close());
    out.enable();
    out.attach(guest, 'native');
    await showAndCheck(out, guest, 1, 1);
    const fbsBeforeIds = base.newFbs();
    const fbsBefore = fbsBeforeIds.length;
    const sizes: [number, number][] = [[320, 240], [640, 480], [512, 384], [400, 300], [640, 360], [256, 256], [600, 472]];
    let frame = 1;
    let presented = 0;
    out.on('present', () => presented++);
    const t0 = Date.now();
    for (let m = 0; m < 100; m++) {
      const [w, h] = sizes[m % sizes.length];
      guest.setMode(w, h);
      // Two flips per mode, as a guest redrawing after its mode set; no pixels needed.
      guest.flip(0, ++frame);
      guest.flip(1, ++frame);
      // Paced to 100 changes/s where the machine allows; a turn of the event loop at least.
      await sleep(Math.max(0, t0 + (m + 1) * 10 - Date.now()));
    }
    const stormMs = Date.now() - t0;
    guest.setMode(640, 480);
    await showAndCheck(out, guest, ++frame, 2);
    const s = out.statsSnapshot();
    const live = out.cache.liveFbIds().length;
    const fbsAfter = base.newFbs().length;
    console.log(
      `mode storm: 100 modes in ${stormMs} ms, ${presented} frames presented, imports ${s.imports}, paths ${JSON.stringify(s.paths)}, live cache FBs ${live}, device FBs of ours ${fbsBefore} before / ${fbsAfter} after, errors ${JSON.stringify(s.errors)}`,
    );
    console.log(`mode storm: our FBs now ${JSON.stringify(readFramebuffers(card).filter((f) => !new Set(fbsBeforeIds).has(f.id)).map((f) => `${f.id}:${f.width}x${f.height}:${f.refcount}`))}`);
    // Stale generations are released as the same buffer ids come back: only the final mode's
    // remain, in the cache and on the device (FBs closed while still on a plane linger
    // until the next flips replace them).
    expect(live).toBeLessThanOrEqual(3);
    // Measured: 3 before (no-signal, one cached FB, writeback), 7 after (+ background, the
    // final mode's buffers); 94 when stale generations were not released.
    await waitFor(() => base.newFbs().length <= fbsBefore + 6, `our FBs on the device to settle near ${fbsBefore} (now ${base.newFbs().length})`, 3000);
    expect(errors.filter((e) => e.cause !== 'not-ready')).toEqual([]);
    await closeWithoutLeaks(out, dev, base);
  });

  it('the mdev removed while displayed: the output keeps going while removal waits, shows no signal once the VMM lets go, and takes a new mdev', async () => {
    const errors: OutputErrorEvent[] = [];
    const card = findCardByDriver('vkms')!;
    const base = baseline(card);
    let mdev: MdevInstance = createMdev('mbochs', 'mbochs-medium');
    cleanup.push(() => mdev.remove());
    const { out } = vkmsOutput(1024, 768, errors);
    const open = () => {
      const vdev = VfioDevice.open(mdev.uuid);
      const dispi = new BochsDispi(vdev);
      const source = new VfioSource(vdev, { cpuReader: bochsVramReader(dispi) });
      return { vdev, dispi, source, guest: new BochsTestGuest(dispi, 2) };
    };
    let g = open();
    // Before the mdev removal in cleanup: removal blocks while the device is open.
    cleanup.push(() => {
      g.source.close();
      g.dispi.close();
      g.vdev.close();
    });
    out.enable();
    g.guest.setMode(1024, 768);
    out.attach(g.source, 'native');
    const stepper = setInterval(() => {
      try {
        g.guest.step();
      } catch {
        /* the device is being closed under the guest: a real guest would be gone too */
      }
    }, 40);
    cleanup.push(() => clearInterval(stepper));
    await nextPresent(out, (p) => p.path !== 'no-signal');

    // The administrator removes the mdev. The kernel waits for the device's users (us, the
    // VMM side) to close it; mbochs has no request callback to ask us.
    const remover = spawn('sh', ['-c', `echo 1 > ${mdev.sysfsPath}/remove`]);
    let removedCode: number | null | undefined;
    const removed = new Promise<number | null>((resolve) => remover.on('close', (code) => resolve((removedCode = code))));
    const lost = new Promise<Error>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no source-lost within 5 s (errors ${JSON.stringify(errors)})`)), 5000);
      out.once('source-lost', (e) => {
        clearTimeout(t);
        resolve(e);
      });
    });
    lost.catch(() => {});
    const framesAtRemoval = out.statsSnapshot().framesPresented;
    await sleep(700);
    // Removal pending: the device still works and the output still presents.
    expect(removedCode).toBeUndefined();
    expect(out.statsSnapshot().framesPresented).toBeGreaterThan(framesAtRemoval);
    // The VMM side lets go (QEMU unplugs the device): close it.
    clearInterval(stepper);
    const closeOnce = g;
    closeOnce.dispi.close();
    closeOnce.vdev.close();
    g = { ...g, dispi: { close() {} } as BochsDispi, vdev: { close() {} } as VfioDevice };
    const e = await lost;
    expect(e.message).toMatch(/stopped answering/);
    await waitFor(() => out.current?.path === 'no-signal', 'the no-signal frame after the source went away');
    const cap = await out.captureNext();
    expect(cap.content?.path).toBe('no-signal');
    expect(new Uint32Array(cap.pixels.buffer, cap.pixels.byteOffset, 1)[0] & 0xffffff).toBe(NO_SIGNAL_PIXEL & 0xffffff);
    closeOnce.source.close();
    expect(await Promise.race([removed, sleep(10_000).then(() => 'still blocked')])).toBe(0);
    expect(existsSync(mdev.sysfsPath)).toBe(false);
    expect(errors.filter((x) => x.cause === 'source-lost')).toHaveLength(1);

    // State restored: a new mdev on the same output shows its guest again.
    mdev = createMdev('mbochs', 'mbochs-medium', randomUUID());
    g = open();
    g.guest.setMode(1024, 768);
    out.attach(g.source, 'native');
    const back = nextPresent(out, (p) => p.path !== 'no-signal', 8000);
    for (let n = 0; n < 12; n++) {
      g.guest.step();
      await sleep(40);
    }
    const p = await back;
    console.log(`mdev removal: pending removal blocked ${removedCode === undefined ? '' : 'until close'}, ${out.statsSnapshot().framesPresented - framesAtRemoval} frames after the removal request; new mdev shown via ${p.path}; errors ${JSON.stringify(out.statsSnapshot().errors)}`);
    await out.close();
    expect(base.newFbs()).toEqual([]);
    for (const f of cleanup.splice(0).reverse()) await f();
    expect(base.leakedFds()).toEqual([]);
  });
});
