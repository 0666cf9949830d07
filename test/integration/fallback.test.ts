// Issue 5, fallback order on real vkms: the same udmabuf guest stream shown through each
// path (scanout, GPU composition on kms_swrast, CPU copy), forced with options.paths,
// each checked pixel-exact on the writeback connector and reported as the path it took.
import { describe, it, expect } from 'vitest';
import type { KmsDevice } from '../../plugin/kms/device.js';
import { Output, type OutputOptions } from '../../plugin/output/output.js';
import { drawPattern, decodeFrameNumber } from '../../plugin/sources/pattern.js';
import type { Capture } from '../../plugin/kms/writeback.js';
import { cleanupAfterEach, guestOnOutput, openVkms as openVkmsFor } from './helpers/cleanup.js';
import { nextPresent } from './helpers/faults.js';

process.env.GALLIUM_OVERRIDE_CPU_CAPS ??= 'sse4.1';

const cleanup = cleanupAfterEach();
const openVkms = (): KmsDevice => openVkmsFor(cleanup);


/** Mismatching pixels (RGB) of the guest's frame `frame` placed at (ox, oy) in the capture. */
function mismatches(c: Capture, gw: number, gh: number, ox: number, oy: number, frame: number): number {
  const ref = new Uint8Array(gw * gh * 4);
  drawPattern({ bytes: ref, offset: 0, width: gw, height: gh, stride: gw * 4 }, frame);
  const a = new Uint32Array(c.pixels.buffer, c.pixels.byteOffset, c.pixels.byteLength / 4);
  const b = new Uint32Array(ref.buffer);
  let bad = 0;
  for (let y = 0; y < gh; y++) for (let x = 0; x < gw; x++) if ((a[((y + oy) * c.stride) / 4 + x + ox] & 0xffffff) !== (b[y * gw + x] & 0xffffff)) bad++;
  return bad;
}

async function runPath(paths: OutputOptions['paths'], frames: number) {
  const { dev, out, guest, errors, presents } = guestOnOutput(cleanup, { mode: { width: 640, height: 480 }, guest: { width: 640, height: 480 }, paths });
  let cap: (Capture & { content: { frame?: number } | null }) | null = null;
  for (let n = 1; n <= frames; n++) {
    guest.render(n % 3, n);
    const shown = nextPresent(out, (p) => p.frame === n);
    const c = n === frames ? out.captureNext() : null;
    guest.flip(n % 3, n);
    await shown;
    if (c) cap = await c;
  }
  await out.idle();
  return { out, dev, presents, errors, cap: cap!, stats: out.statsSnapshot() };
}

describe('fallback order, forced with options.paths (udmabuf guest, 640x480 native)', () => {
  it('scanout: zero-copy, no bytes copied or uploaded', async () => {
    const r = await runPath(['scanout'], 10);
    expect(r.errors).toEqual([]);
    const guestFrames = r.presents.filter((p) => p.frame !== undefined);
    expect(guestFrames.every((p) => p.path === 'scanout' && p.zeroCopy)).toBe(true);
    expect(r.stats.bytesCopied + r.stats.bytesUploaded).toBe(0);
    const f = r.cap.content!.frame!;
    expect(mismatches(r.cap, 640, 480, 0, 0, f)).toBe(0);
  });

  it('gles: composed by kms_swrast, reported as gles with the reason and the bytes uploaded', async () => {
    const r = await runPath(['gles'], 10);
    expect(r.errors).toEqual([]);
    const guestFrames = r.presents.filter((p) => p.frame !== undefined);
    expect(guestFrames.length).toBeGreaterThan(0);
    for (const p of guestFrames) {
      expect(p.path).toBe('gles');
      expect(p.zeroCopy).toBe(false);
      expect(p.reason).toMatch(/scanout is not among options.paths/);
      expect(p.gles).toBeDefined();
    }
    const g = guestFrames[0].gles!;
    // kms_swrast cannot sample a udmabuf: the pixels go through an upload, counted.
    if (g.imagePath === 'upload') {
      expect(g.uploadedBytes).toBe(640 * 480 * 4);
      expect(r.stats.bytesUploaded).toBe(guestFrames.length * 640 * 480 * 4);
    }
    console.log(`gles path: image ${g.imagePath}${g.uploadReason ? ` (${g.uploadReason})` : ''}, compose ${g.composeMs.toFixed(1)} ms, uploaded ${r.stats.bytesUploaded} bytes over ${guestFrames.length} frames`);
    expect(r.stats.bytesCopied).toBe(0);
    const f = r.cap.content!.frame!;
    expect(decodeFrameNumber({ bytes: r.cap.pixels, offset: 0, width: 640, height: 480, stride: r.cap.stride })).toBe(f);
    expect(mismatches(r.cap, 640, 480, 0, 0, f)).toBe(0);
  });

  it('copy: CPU copy, the same pixels, bytes counted', async () => {
    const r = await runPath(['copy'], 10);
    expect(r.errors).toEqual([]);
    const guestFrames = r.presents.filter((p) => p.frame !== undefined);
    expect(guestFrames.every((p) => p.path === 'copy')).toBe(true);
    expect(r.stats.bytesCopied).toBe(guestFrames.length * 640 * 480 * 4);
    const f = r.cap.content!.frame!;
    expect(mismatches(r.cap, 640, 480, 0, 0, f)).toBe(0);
  });

  it('rejects unknown or empty path lists, naming them', () => {
    const dev = openVkms();
    expect(() => new Output(dev, { connector: 'Virtual-1', paths: [] })).toThrow(/options.paths is empty/);
    expect(() => new Output(dev, { connector: 'Virtual-1', paths: ['gpu' as 'gles'] })).toThrow(/unknown path\(s\) "gpu"/);
  });
});
