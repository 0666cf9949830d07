// FramebufferCache.forgetBuffer: a buffer gone for good (a client destroyed its wl_buffer)
// loses its FB at once, except an FB still on screen on a kernel without CLOSEFB (before
// Linux 6.8), where RMFB would switch the plane off: that one waits until tick() sees it
// off screen. The rig's kernel has CLOSEFB, so that kernel is modelled here: the drm
// calls are faked (imports that succeed with made-up FB ids, CLOSEFB probed absent), and
// each RMFB/CLOSEFB is recorded. The real-kernel case is window-compositor's two-head test
// (a dead QEMU's FB gone from the compositor while its window shows no signal).
import { describe, it, expect, vi, beforeEach } from 'vitest';
import { EventEmitter } from 'node:events';
import * as libc from '../../ffi/libc.js';
import type { GuestPlaneInfo, GuestSource, GuestSourceEvents, PlaneQuery } from '../../plugin/sources/source.js';

const kernel = vi.hoisted(() => ({ closeFb: false, nextFb: 100, removed: [] as string[] }));

vi.mock('../../ffi/drm.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../ffi/drm.js')>();
  return {
    ...real,
    primeFDToHandle: () => 1,
    gemClose: () => {},
    addFB2WithModifiers: () => kernel.nextFb++,
    probeCloseFB: () => kernel.closeFb,
    closeFB: (_fd: number, fb: number) => void kernel.removed.push(`CLOSEFB ${fb}`),
    rmFB: (_fd: number, fb: number) => void kernel.removed.push(`RMFB ${fb}`),
  };
});
vi.mock('../../ffi/dmabuf.js', async (importOriginal) => ({ ...(await importOriginal<typeof import('../../ffi/dmabuf.js')>()), dmabufSize: () => 64 * 64 * 4 }));

const { FramebufferCache } = await import('../../plugin/buffers/fb-cache.js');
const drm = await import('../../ffi/drm.js');

/** A source whose exports are memfds (closed by the cache, as a dma-buf fd would be). */
class Client extends EventEmitter<GuestSourceEvents> implements GuestSource {
  readonly name = 'client surface';
  readonly changeEvents = true;
  query(): PlaneQuery {
    return { state: 'disabled' };
  }
  exportDmabuf(): number {
    return libc.memfdCreate('fake dma-buf', 1);
  }
  close(): void {}
}

const plane = (bufferId: number): GuestPlaneInfo => ({
  kind: 'primary', bufferId, transport: 'dmabuf', format: drm.fourcc('XR24'), modifier: 0n, width: 64, height: 64, stride: 256, offset: 0, size: 64 * 64 * 4, x: 0, y: 0, hotX: -1, hotY: -1, generation: 1,
});

describe('FramebufferCache.forgetBuffer', () => {
  beforeEach(() => {
    kernel.removed = [];
  });

  it('without CLOSEFB: an FB off screen goes at once, one on screen only once tick() sees it off screen; others stay', () => {
    kernel.closeFb = false;
    const cache = new FramebufferCache(-1);
    const src = new Client();
    const fb = (id: number) => {
      const r = cache.get('host-layer', src, plane(id), new Set());
      if (!r.ok) throw new Error(r.message);
      return r.entry.fbId;
    };
    const [a, b, c] = [fb(1), fb(2), fb(3)];
    cache.forgetBuffer(src, 1, new Set([b]));
    expect(kernel.removed).toEqual([`RMFB ${a}`]);
    cache.forgetBuffer(src, 2, new Set([b])); // on screen: RMFB now would switch the plane off
    expect(kernel.removed).toEqual([`RMFB ${a}`]);
    cache.tick(new Set([b]));
    expect(kernel.removed).toEqual([`RMFB ${a}`]);
    cache.tick(new Set([c])); // the screen moved on
    expect(kernel.removed).toEqual([`RMFB ${a}`, `RMFB ${b}`]);
    cache.tick(new Set());
    expect(kernel.removed).toHaveLength(2); // released once
    expect(cache.liveFbIds()).toEqual([c]);
    cache.close();
  });

  it('with CLOSEFB: even the FB on screen goes at once (the plane keeps it until replaced)', () => {
    kernel.closeFb = true;
    const cache = new FramebufferCache(-1);
    const src = new Client();
    const r = cache.get('host-layer', src, plane(5), new Set());
    if (!r.ok) throw new Error(r.message);
    cache.forgetBuffer(src, 5, new Set([r.entry.fbId]));
    expect(kernel.removed).toEqual([`CLOSEFB ${r.entry.fbId}`]);
    expect(cache.liveFbIds()).toEqual([]);
    // Another source's buffer of the same id is not touched.
    const other = new Client();
    const o = cache.get('host-layer', other, plane(6), new Set());
    cache.forgetBuffer(src, 6, new Set());
    expect(o.ok && cache.liveFbIds()).toEqual(o.ok ? [o.entry.fbId] : false);
  });
});
