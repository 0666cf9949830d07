// Issue 4, VFIO guest: an mbochs mdev flipping through the bochs VBE Y offset. Whether
// vkms can scan its dma-bufs out is learnt from the kernel; the stats say which path.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { KmsDevice, findCardByDriver } from '../../plugin/kms/device.js';
import { Output, NO_SIGNAL_PIXEL } from '../../plugin/output/output.js';
import { VfioDevice, VfioSource } from '../../plugin/sources/vfio.js';
import { BochsDispi, BochsTestGuest, bochsVramReader } from '../../plugin/sources/bochs.js';
import { drawPattern, decodeFrameNumber } from '../../plugin/sources/pattern.js';
import { removeMdevAsync } from './helpers/mdev.js';
import { nextPresent } from './helpers/faults.js';

let uuid = '';
const MDEV = '/sys/bus/mdev/devices';
beforeAll(() => {
  uuid = randomUUID();
  writeFileSync('/sys/class/mdev_bus/mbochs/mdev_supported_types/mbochs-medium/create', uuid);
});
afterAll(async () => {
  if (uuid) await removeMdevAsync(uuid);
});

/** dma-bufs the mbochs driver exported that are still alive (debugfs dma_buf/bufinfo). */
function mbochsDmabufs(): string[] {
  const info = readFileSync('/sys/kernel/debug/dma_buf/bufinfo', 'utf8');
  return info.split('\n').filter((l) => /\bmbochs\b/.test(l));
}

/** Where this process holds dma-bufs (fds, mappings): the message when one is left. */
function dmabufHolders(): string {
  const fds = readdirSync('/proc/self/fd').flatMap((f) => {
    try {
      const l = readlinkSync(`/proc/self/fd/${f}`);
      return /dmabuf/.test(l) ? [`fd ${f} ${l}`] : [];
    } catch {
      return [];
    }
  });
  const maps = readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => /dmabuf/.test(l));
  const fbs = readFileSync(`/sys/kernel/debug/dri/${readdirSync('/sys/kernel/debug/dri').find((d) => existsSync(`/sys/kernel/debug/dri/${d}/framebuffer`) && readFileSync(`/sys/kernel/debug/dri/${d}/name`, 'utf8').includes('vkms'))}/framebuffer`, 'utf8');
  return `this process holds: ${[...fds, ...maps].join('; ') || 'no dma-buf fds or mappings'}\nbufinfo:\n${readFileSync('/sys/kernel/debug/dma_buf/bufinfo', 'utf8')}\nvkms framebuffers:\n${fbs}`;
}

function checkCapture(c: { pixels: Uint8Array; stride: number }, gw: number, gh: number, ox: number, oy: number): { frame: number | null; mismatches: number } {
  const frame = decodeFrameNumber({ bytes: c.pixels, offset: 0, width: ox + gw, height: oy + gh, stride: c.stride }, ox, oy);
  if (frame === null) return { frame, mismatches: -1 };
  const ref = new Uint8Array(gw * 4 * gh);
  drawPattern({ bytes: ref, offset: 0, width: gw, height: gh, stride: gw * 4 }, frame);
  const a = new Uint32Array(c.pixels.buffer, c.pixels.byteOffset, c.pixels.byteLength / 4);
  const b = new Uint32Array(ref.buffer);
  let mismatches = 0;
  for (let y = 0; y < gh; y++)
    for (let x = 0; x < gw; x++) if ((a[((y + oy) * c.stride) / 4 + x + ox] & 0xffffff) !== (b[y * gw + x] & 0xffffff)) mismatches++;
  return { frame, mismatches };
}

describe('mbochs guest on vkms', () => {
  it('shows Y-offset flips pixel-exact, absorbs ENOMEM, survives a mode change and a disabled plane', async () => {
    const dev = KmsDevice.open(findCardByDriver('vkms')!);
    const vdev = VfioDevice.open(uuid);
    const dispi = new BochsDispi(vdev);
    const guest = new BochsTestGuest(dispi, 3);
    const source = new VfioSource(vdev, { cpuReader: bochsVramReader(dispi) });
    expect(source.transport).toBe('dmabuf');
    const out = new Output(dev, { connector: 'Virtual-1', mode: { width: 1024, height: 768 } });
    const errors: string[] = [];
    out.on('error', (e) => errors.push(e.cause));
    try {
      out.enable();
      guest.setMode(800, 600);
      out.attach(source, 'native');
      const paths = new Set<string>();
      out.on('present', (p) => paths.add(p.path));
      // 30 guest frames at the guest's own pace (every other host refresh). Output presents
      // only on change, so wait for the present while the guest is still flipping.
      const shown = nextPresent(out, (p) => p.path !== 'no-signal', 30_000);
      for (let n = 0; n < 30; n++) {
        guest.step();
        await new Promise((r) => setTimeout(r, 33));
      }
      await shown;
      const cap = await out.captureNext();
      const r = checkCapture(cap, 800, 600, 112, 84);
      expect(r.frame).not.toBeNull();
      expect(r.mismatches).toBe(0);
      // Borders around the centred guest are black.
      expect(new Uint32Array(cap.pixels.buffer, cap.pixels.byteOffset, 4)[0] & 0xffffff).toBe(0);
      const s = out.statsSnapshot();
      console.log(`mbochs 800x600: paths ${JSON.stringify(s.paths)}, imports ${s.imports}, errors ${JSON.stringify(s.errors)}, bytes copied ${s.bytesCopied}`);
      // mbochs answers the first query at each new scanout offset with ENOMEM: absorbed as not-ready.
      expect(s.errors['not-ready'] ?? 0).toBeGreaterThan(0);
      expect(s.paths.scanout + s.paths.copy).toBeGreaterThan(5);
      // Whatever the path, the stats say it: copied frames count bytes, scanned ones do not.
      if (s.paths.copy > 0) expect(s.bytesCopied).toBeGreaterThan(0);

      // Mode change mid-stream: 800x600 → 1024x768.
      guest.setMode(1024, 768);
      const shown2 = nextPresent(out, (p) => p.path !== 'no-signal' && (p.frame ?? 31) > 30, 30_000);
      for (let n = 0; n < 10; n++) {
        guest.step();
        await new Promise((r) => setTimeout(r, 33));
      }
      await shown2;
      const cap2 = await out.captureNext();
      const r2 = checkCapture(cap2, 1024, 768, 0, 0);
      expect(r2.frame).toBeGreaterThan(30);
      expect(r2.mismatches).toBe(0);

      // The guest switches its display off: the defined "no signal" frame.
      const dark = nextPresent(out, (p) => p.path === 'no-signal', 30_000);
      guest.disable();
      await dark;
      const cap3 = await out.captureNext();
      const mid = new Uint32Array(cap3.pixels.buffer, cap3.pixels.byteOffset, cap3.pixels.byteLength / 4)[(384 * cap3.stride) / 4 + 512];
      expect(mid & 0xffffff).toBe(NO_SIGNAL_PIXEL & 0xffffff);
      console.log(`mbochs final: ${JSON.stringify(out.statsSnapshot().paths)}; paths seen ${[...paths].join(',')}; reported causes ${errors.join(',')}`);
    } finally {
      await out.close();
      source.close();
      dispi.close();
      vdev.close();
      await dev.close();
    }
  });

  it('a vanished device: queries fail, the output says so once, shows no signal and lets go of every dma-buf; then the mdev can be removed', async () => {
    const dev = KmsDevice.open(findCardByDriver('vkms')!);
    const vdev = VfioDevice.open(uuid);
    const dispi = new BochsDispi(vdev);
    const guest = new BochsTestGuest(dispi, 2);
    const source = new VfioSource(vdev, { cpuReader: bochsVramReader(dispi) });
    const out = new Output(dev, { connector: 'Virtual-1', mode: { width: 1024, height: 768 } });
    try {
      out.enable();
      guest.setMode(1024, 768);
      out.attach(source, 'native');
      const shown = nextPresent(out, (p) => p.path !== 'no-signal', 30_000);
      for (let n = 0; n < 6; n++) {
        guest.step();
        await new Promise((r) => setTimeout(r, 40));
      }
      await shown;
      const lost = new Promise<Error>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no source-lost within 20 s')), 20_000);
        out.once('source-lost', (e) => { clearTimeout(t); resolve(e); });
      });
      // The VMM's side closes the device (its process ended): the next query fails.
      dispi.close();
      vdev.close();
      const e = await lost;
      expect(e.message).toMatch(/stopped answering plane queries/);
      const cap = await out.captureNext();
      // The guest is gone: the defined "no signal" frame, not a frozen picture.
      expect(cap.content?.path).toBe('no-signal');
      expect(new Uint32Array(cap.pixels.buffer, cap.pixels.byteOffset, 1)[0] & 0xffffff).toBe(NO_SIGNAL_PIXEL & 0xffffff);
      expect(out.statsSnapshot().errors['source-lost']).toBe(1);
      // Every import of the lost guest is released (FBs, GEM handles, EGLImages, maps):
      // no mbochs dma-buf is left in the kernel. This matters beyond leaks: mbochs'
      // dma-buf release dereferences the device's state, so one that outlives the mdev's
      // removal is a use-after-free in the kernel (seen as a hung rig).
      expect(mbochsDmabufs(), dmabufHolders()).toEqual([]);
      // Only now is the mdev removed; the removal waits for all users in the kernel, so it
      // runs in another process and is awaited with a timeout.
      const remover = spawn('sh', ['-c', `echo 1 > ${MDEV}/${uuid}/remove`]);
      const removed = new Promise<number | null>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('mdev removal still blocked after 10 s (a reference to the device is still held)')), 10_000);
        remover.on('close', (code) => { clearTimeout(t); resolve(code); });
      });
      expect(await removed).toBe(0);
      expect(existsSync(`${MDEV}/${uuid}`)).toBe(false);
      uuid = '';
    } finally {
      await out.close();
      source.close();
      await dev.close();
    }
  });
});
