// Issue 4, udmabuf guest: guest page flips become host atomic flips of cached FBs,
// zero-copy, pixel-exact on the writeback connector; no leaks over many flips.
import { describe, it, expect } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { KmsDevice, findCardByDriver } from '../../plugin/kms/device.js';
import { Output } from '../../plugin/output/output.js';
import { UdmabufSource } from '../../plugin/sources/udmabuf.js';
import { drawPattern, decodeFrameNumber } from '../../plugin/sources/pattern.js';
import { cleanupAfterEach, guestOnOutput } from './helpers/cleanup.js';
import { nextPresent } from './helpers/faults.js';

const cleanup = cleanupAfterEach();
function minorOf(dev: KmsDevice): string {
  return dev.path.replace('/dev/dri/card', '');
}
function fbCount(dev: KmsDevice): number {
  const text = readFileSync(`/sys/kernel/debug/dri/${minorOf(dev)}/framebuffer`, 'utf8');
  return (text.match(/^framebuffer\[\d+\]:/gm) ?? []).length;
}
function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

describe('udmabuf guest on vkms (zero-copy)', () => {
  it('600 triple-buffered flips: all scanned out, 3 imports, 0 bytes copied, pixels exact', async () => {
    const { dev, out, guest, errors, presents } = guestOnOutput(cleanup, { mode: { width: 640, height: 480 }, guest: { width: 640, height: 480 } });
    const testOnlyBefore = dev.counters.testOnly;
    const captured: { frame: number; mismatches: number; decoded: number | null }[] = [];
    const scratch = new Uint8Array(guest.stride * 480);
    for (let n = 1; n <= 600; n++) {
      const i = n % 3;
      guest.render(i, n);
      const shown = nextPresent(out);
      const cap = n % 150 === 0 ? out.captureNext() : null;
      guest.flip(i, n);
      const p = await shown;
      if (cap) {
        const c = await cap;
        const frame = c.content?.frame ?? -1;
        drawPattern({ bytes: scratch, offset: 0, width: 640, height: 480, stride: guest.stride }, frame);
        let mismatches = 0;
        const a = new Uint32Array(c.pixels.buffer, c.pixels.byteOffset, c.pixels.byteLength / 4);
        const b = new Uint32Array(scratch.buffer);
        for (let y = 0; y < 480; y++)
          for (let x = 0; x < 640; x++) if ((a[(y * c.stride) / 4 + x] & 0xffffff) !== (b[(y * guest.stride) / 4 + x] & 0xffffff)) mismatches++;
        captured.push({ frame, mismatches, decoded: decodeFrameNumber({ bytes: c.pixels, offset: 0, width: 640, height: 480, stride: c.stride }) });
      }
      expect(p.frame).toBe(n);
    }
    await out.idle();
    const s = out.statsSnapshot();
    expect(errors).toEqual([]);
    expect(presents.filter((p) => p.frame !== undefined).every((p) => p.path === 'scanout' && p.zeroCopy)).toBe(true);
    expect(s.paths.scanout).toBe(600);
    expect(s.imports).toBe(3);
    expect(s.bytesCopied).toBe(0);
    // One TEST_ONLY for the one buffer shape, none in the steady state.
    expect(dev.counters.testOnly - testOnlyBefore).toBe(1);
    expect(captured).toHaveLength(4);
    for (const c of captured) {
      expect(c.mismatches).toBe(0);
      expect(c.decoded).toBe(c.frame);
    }
    const lat = presents.map((p) => p.latencyNs! / 1e6).sort((a, b) => a - b);
    console.log(`udmabuf 640x480 scanout: latency p50 ${lat[Math.floor(lat.length / 2)].toFixed(2)} ms, p99 ${lat[Math.floor(lat.length * 0.99)].toFixed(2)} ms, refresh ${(out.refreshNs / 1e6).toFixed(2)} ms`);
  });

  it('a VMM scanout stored bottom-up (GL-rendered): zero-copy on a reflect-y plane, upright on screen, through GLES and the CPU too', async () => {
    const results: string[] = [];
    for (const paths of [undefined, ['gles'], ['copy']] as const) {
      const { out, guest, errors } = guestOnOutput(cleanup, { mode: { width: 640, height: 480 }, guest: { width: 640, height: 480, yInverted: true }, paths: paths && [...paths] });
      guest.render(0, 7);
      const shown = nextPresent(out, (p) => p.frame === 7, 60_000);
      const cap = out.captureNext();
      guest.flip(0, 7);
      const p = await shown;
      const c = await cap;
      // The pattern reads upright: its frame number decodes from the top rows.
      const decoded = decodeFrameNumber({ bytes: c.pixels, offset: 0, width: 640, height: 480, stride: c.stride });
      const ref = new Uint8Array(640 * 480 * 4);
      drawPattern({ bytes: ref, offset: 0, width: 640, height: 480, stride: 640 * 4 }, 7);
      const a = new Uint32Array(c.pixels.buffer, c.pixels.byteOffset, c.pixels.byteLength / 4);
      const b = new Uint32Array(ref.buffer);
      let mismatches = 0;
      for (let y = 0; y < 480; y++) for (let x = 0; x < 640; x++) if ((a[(y * c.stride) / 4 + x] & 0xffffff) !== (b[y * 640 + x] & 0xffffff)) mismatches++;
      results.push(`${paths?.[0] ?? 'default'}: ${p.path}, ${mismatches} px wrong, frame decoded ${decoded}`);
      expect(errors).toEqual([]);
      expect(mismatches).toBe(0);
      expect(decoded).toBe(7);
      if (!paths) expect(p).toMatchObject({ path: 'scanout', zeroCopy: true });
      else expect(p.path).toBe(paths[0]);
      for (const f of cleanup.splice(0).reverse()) await f();
    }
    console.log(`bottom-up udmabuf guest: ${results.join('; ')}`);
  });

  it('no leaks: 10,000 guest flips and 100 mode changes leave FBs and fds as they were', async () => {
    const fdsBefore = fdCount();
    const path = findCardByDriver('vkms')!;
    const dev = KmsDevice.open(path);
    const fbsBefore = fbCount(dev);
    const out = new Output(dev, { connector: 'Virtual-1', mode: { width: 640, height: 480 } });
    const guest = new UdmabufSource({ width: 640, height: 480, buffers: 3 });
    const errors: string[] = [];
    out.on('error', (e) => errors.push(`${e.cause}: ${e.message}`));
    out.enable();
    out.attach(guest, 'native');
    const sizes = [
      [640, 480],
      [320, 240],
    ];
    let presented = 0;
    out.on('present', () => presented++);
    let flips = 0;
    for (let change = 0; change < 100; change++) {
      const [w, h] = sizes[change % 2];
      guest.setMode(w, h);
      for (let k = 0; k < 100; k++) {
        guest.flip(flips % 3, ++flips);
        // The guest runs faster than the host refresh: yield to the event loop sometimes.
        if (k % 10 === 0) await new Promise((r) => setImmediate(r));
      }
      await nextPresent(out);
    }
    await out.idle();
    const s = out.statsSnapshot();
    console.log(`leak test: ${flips} guest flips, ${presented} presented, imports ${s.imports}, paths ${JSON.stringify(s.paths)}, live FBs ${out.cache.liveFbIds().length}`);
    expect(flips).toBe(10_000);
    expect(errors.filter((e) => !e.startsWith('not-ready'))).toEqual([]);
    expect(out.cache.liveFbIds().length).toBeLessThanOrEqual(16);
    await out.close();
    guest.close();
    expect(fbCount(dev)).toBe(fbsBefore);
    await dev.close();
    expect(fdCount()).toBe(fdsBefore);
  });
});
