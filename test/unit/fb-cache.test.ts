// The FB cache's memory of failed imports against a hostile guest. A guest names its own
// buffer ids (a VFIO dmabuf_id is any 32-bit number); one whose exports all fail, cycling
// through ids, must not grow the cache without bound. The failing export is a fake source
// (the real kernel path, imports that fail for real, is in the rig: faults-guest-input).
import { describe, it, expect } from 'vitest';
import { EventEmitter } from 'node:events';
import { FramebufferCache, MAX_REMEMBERED_FAILURES } from '../../plugin/buffers/fb-cache.js';
import type { GuestPlaneInfo, GuestSource, GuestSourceEvents, PlaneQuery } from '../../plugin/sources/source.js';
import * as drm from '../../ffi/drm.js';

class RefusingSource extends EventEmitter<GuestSourceEvents> implements GuestSource {
  readonly name = 'refusing guest';
  readonly changeEvents = true;
  exports = 0;
  query(): PlaneQuery {
    return { state: 'disabled' };
  }
  exportDmabuf(plane: GuestPlaneInfo): number {
    this.exports++;
    throw new Error(`no dma-buf for buffer ${plane.bufferId}`);
  }
  close(): void {}
}

const plane = (bufferId: number): GuestPlaneInfo => ({
  kind: 'primary', bufferId, transport: 'dmabuf', format: drm.fourcc('XR24'), modifier: 0n, width: 64, height: 64, stride: 256, offset: 0, size: 0, x: 0, y: 0, hotX: -1, hotY: -1, generation: 1,
});

describe('FramebufferCache failure memory', () => {
  it('a failed import is remembered (not retried every refresh), and a guest cycling 100,000 ids keeps it bounded', () => {
    const cache = new FramebufferCache(-1); // no import reaches the device: every export fails first
    const src = new RefusingSource();
    const r1 = cache.get('guest-primary', src, plane(7), new Set());
    expect(r1).toMatchObject({ ok: false, cause: 'export-failed', remembered: false });
    const r2 = cache.get('guest-primary', src, plane(7), new Set());
    expect(r2).toMatchObject({ ok: false, remembered: true });
    expect(src.exports).toBe(1);
    for (let id = 0; id < 100_000; id++) cache.get('guest-primary', src, plane(1000 + id), new Set());
    expect(cache.rememberedFailures).toBe(MAX_REMEMBERED_FAILURES);
    // The newest are remembered, the oldest forgotten (and so tried again).
    const before = src.exports;
    expect(cache.get('guest-primary', src, plane(1000 + 99_999), new Set())).toMatchObject({ remembered: true });
    expect(cache.get('guest-primary', src, plane(7), new Set())).toMatchObject({ remembered: false });
    expect(src.exports).toBe(before + 1);
  });
});
