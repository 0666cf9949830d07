// Issue 5, plane allocation on real vkms (1 primary, 8 overlays, 1 cursor, no zpos): a
// guest smaller than the screen goes on an overlay over the host background on the
// primary, pixel-exact on the writeback connector; steady-state flips issue no TEST_ONLY;
// the same stream forced through GLES and the CPU gives the same pixels.
import { describe, it, expect } from 'vitest';
import { Output, type OutputOptions } from '../../plugin/output/output.js';
import { drawPattern } from '../../plugin/sources/pattern.js';
import type { Capture } from '../../plugin/kms/writeback.js';
import { cleanupAfterEach, guestOnOutput } from './helpers/cleanup.js';
import { nextPresent } from './helpers/faults.js';

process.env.GALLIUM_OVERRIDE_CPU_CAPS ??= 'sse4.1';

const cleanup = cleanupAfterEach();


/** Mismatches of the capture against: guest frame `frame` at (ox, oy), black elsewhere. */
function check(c: Capture, gw: number, gh: number, ox: number, oy: number, frame: number): { guest: number; border: number } {
  const ref = new Uint8Array(gw * gh * 4);
  drawPattern({ bytes: ref, offset: 0, width: gw, height: gh, stride: gw * 4 }, frame);
  const a = new Uint32Array(c.pixels.buffer, c.pixels.byteOffset, c.pixels.byteLength / 4);
  const b = new Uint32Array(ref.buffer);
  let guest = 0;
  let border = 0;
  for (let y = 0; y < c.height; y++) {
    for (let x = 0; x < c.width; x++) {
      const got = a[(y * c.stride) / 4 + x] & 0xffffff;
      const inside = x >= ox && x < ox + gw && y >= oy && y < oy + gh;
      if (inside) {
        if (got !== (b[(y - oy) * gw + (x - ox)] & 0xffffff)) guest++;
      } else if (got !== 0) border++;
    }
  }
  return { guest, border };
}

async function smallGuest(paths: OutputOptions['paths'], flips: number) {
  const { dev, out, guest, errors, presents } = guestOnOutput(cleanup, { mode: { width: 640, height: 480 }, guest: { width: 320, height: 240 }, paths });
  // First frame: the search.
  guest.render(0, 1);
  const first = nextPresent(out, (p) => p.frame === 1);
  guest.flip(0, 1);
  const p1 = await first;
  const testOnlyAfterFirst = dev.counters.testOnly;
  const commitsAfterFirst = dev.counters.commits;
  let cap: (Capture & { content: { frame?: number } | null }) | null = null;
  for (let n = 2; n <= flips; n++) {
    guest.render(n % 3, n);
    const shown = nextPresent(out, (p) => p.frame === n);
    const c = n === flips ? out.captureNext() : null;
    guest.flip(n % 3, n);
    await shown;
    if (c) cap = await c;
  }
  await out.idle();
  return { dev, out, errors, presents, first: p1, cap: cap!, steadyTestOnly: dev.counters.testOnly - testOnlyAfterFirst, steadyCommits: dev.counters.commits - commitsAfterFirst };
}

describe('plane allocation on vkms', () => {
  it('a 320x240 guest on a 640x480 screen: overlay over the background on the primary, pixel-exact, 0 TEST_ONLY in the steady state', async () => {
    const r = await smallGuest(undefined, 60);
    const kinds = r.dev.planesFor(r.out.crtc).map((p) => p.type);
    console.log(`vkms planes for CRTC ${r.out.crtc.id}: ${kinds.filter((k) => k === 'primary').length} primary, ${kinds.filter((k) => k === 'overlay').length} overlay, ${kinds.filter((k) => k === 'cursor').length} cursor`);
    expect(r.errors).toEqual([]);
    const layers = r.first.layers!;
    const by = Object.fromEntries(layers.map((l) => [l.id, l]));
    expect(by.guest.how).toBe('plane');
    expect(by.guest.planeType).toBe('overlay');
    expect(by.background.planeType).toBe('primary');
    expect(r.first.path).toBe('scanout');
    expect(r.first.allocation?.reused).toBe(false);
    const searchTests = r.first.allocation!.tests;
    const guestFrames = r.presents.filter((p) => p.frame !== undefined && p.frame > 1);
    expect(guestFrames.every((p) => p.path === 'scanout' && p.zeroCopy && p.allocation?.reused && p.allocation.tests === 0)).toBe(true);
    // Steady state: 59 flips, one commit each, not one TEST_ONLY.
    expect(r.steadyTestOnly).toBe(0);
    const s = r.out.statsSnapshot();
    expect(s.bytesCopied + s.bytesUploaded).toBe(0);
    const f = r.cap.content!.frame!;
    const m = check(r.cap, 320, 240, 160, 120, f);
    expect(m).toEqual({ guest: 0, border: 0 });
    console.log(
      `allocation: first search ${searchTests} TEST_ONLY in ${r.first.allocation!.searchMs.toFixed(2)} ms; steady state ${guestFrames.length} flips, ${r.steadyCommits} commits, ${r.steadyTestOnly} TEST_ONLY (${(r.steadyTestOnly / guestFrames.length).toFixed(3)} per flip); allocator ${JSON.stringify(s.allocator)}`,
    );
  });

  it('the same guest forced through GLES and through the CPU: composed on the primary, the same pixels', async () => {
    for (const paths of [['gles'], ['copy']] as const) {
      const r = await smallGuest([...paths], 6);
      expect(r.errors).toEqual([]);
      const by = Object.fromEntries(r.first.layers!.map((l) => [l.id, l]));
      expect(by.guest.how).toBe('composed');
      expect(by.guest.reason?.code).toBe('forced');
      expect(r.first.path).toBe(paths[0]);
      const f = r.cap.content!.frame!;
      expect(check(r.cap, 320, 240, 160, 120, f)).toEqual({ guest: 0, border: 0 });
      expect(r.steadyTestOnly).toBe(0);
      for (const fn of cleanup.splice(0).reverse()) await fn();
    }
  });
});
