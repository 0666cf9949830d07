// The output's planner (plugin/output/planner.ts) and gatherer (gather.ts) without a
// device: fakes stand in for the FB cache, the plane allocator and the composer, so what
// is checked is the planner's own logic: the frame's layers, the path and its reason, the
// planes' wanted state, the steady state that skips allocation, refusals of bad guest data.
import { describe, it, expect } from 'vitest';
import { EventEmitter } from 'node:events';
import * as drm from '../../ffi/drm.js';
import { FramePlanner, type PlannerDeps } from '../../plugin/output/planner.js';
import { gatherFrame, type FrameDescription } from '../../plugin/output/gather.js';
import type { PlaneState } from '../../plugin/output/types.js';
import type { Allocation, Layer } from '../../plugin/planes/allocator.js';
import type { GuestPlaneInfo, GuestSource, PlaneQuery } from '../../plugin/sources/source.js';

const W = 1024;
const H = 768;
const XR24 = drm.fourcc('XR24');
const PRIMARY = 31;

function plane(bufferId: number, over: Partial<GuestPlaneInfo> = {}): GuestPlaneInfo {
  return { kind: 'primary', bufferId, transport: 'dmabuf', format: XR24, modifier: drm.DRM_FORMAT_MOD_LINEAR, width: W, height: H, stride: W * 4, offset: 0, size: 0, x: -1, y: -1, hotX: -1, hotY: -1, generation: 0, frame: bufferId, ...over };
}

/** A guest source answering a fixed primary plane (and no cursor). */
function source(p: () => PlaneQuery): GuestSource {
  const s = new EventEmitter() as unknown as GuestSource & { query: GuestSource['query'] };
  Object.assign(s, { name: 'fake guest', changeEvents: true, query: (k: string) => (k === 'primary' ? p() : { state: 'disabled' }) });
  return s;
}

interface Harness {
  planner: FramePlanner;
  calls: { allocate: number; reuse: number; compose: number; refused: string[]; reported: string[] };
  committed: Map<number, PlaneState>;
  /** What the fake allocator answers: the guest on the primary plane, or composed. */
  mode: { composeGuest: boolean; badBuffer?: string };
}

function harness(): Harness {
  const calls = { allocate: 0, reuse: 0, compose: 0, refused: [] as string[], reported: [] as string[] };
  const committed = new Map<number, PlaneState>();
  const mode: Harness['mode'] = { composeGuest: false };
  let epoch = 0;
  const allocator = {
    get epoch() {
      return epoch;
    },
    noteReuse: () => void calls.reuse++,
    allocate: (layers: readonly Layer[]): Allocation => {
      calls.allocate++;
      // Bottom layer on the primary, the next ones on overlays 40, 41…; or all composed.
      const sorted = [...layers].sort((a, b) => a.zIndex - b.zIndex);
      if (mode.composeGuest) {
        return {
          uses: [{ planeId: PRIMARY, layer: null }],
          composed: sorted.map((l) => l.id),
          composition: true,
          layers: sorted.map((l) => ({ id: l.id, planeId: null, planeType: null, how: 'composed', reason: { code: 'forced', message: 'test says compose' } })),
          reused: false,
          tests: 1,
          searchMs: 0.1,
          signature: 'sig',
        };
      }
      const planeOf = (i: number) => (i === 0 ? PRIMARY : 39 + i);
      return {
        uses: sorted.map((l, i) => ({ planeId: planeOf(i), layer: l.id })),
        composed: [],
        composition: false,
        layers: sorted.map((l, i) => ({ id: l.id, planeId: planeOf(i), planeType: i === 0 ? 'primary' : 'overlay', how: 'plane' })),
        reused: false,
        tests: 1,
        searchMs: 0.1,
        signature: 'sig',
      };
    },
  };
  const cache = {
    sourceId: () => 7,
    get: (_tag: number, _s: GuestSource, p: GuestPlaneInfo) =>
      mode.badBuffer ? { ok: false as const, cause: mode.badBuffer, message: `bad: ${mode.badBuffer}`, remembered: false } : { ok: true as const, imported: false, entry: { fbId: 100 + p.bufferId, format: p.format, modifier: p.modifier, width: p.width, height: p.height } },
  };
  const deps = {
    width: W,
    height: H,
    primaryId: PRIMARY,
    paths: new Set(['scanout', 'gles', 'copy'] as const),
    primeImport: true,
    backgroundPixel: 0xff000000,
    cache,
    maps: {},
    composer: {
      standIn: () => 1,
      compose: () => {
        calls.compose++;
        return { key: 'k', fbId: 500, path: 'copy' as const, bytesCopied: W * H * 4 };
      },
    },
    allocator,
    cursor: { frame: () => ({ cause: 'none', error: 'no cursor in these tests' }) },
    hostFrames: { sourceFor: () => undefined, serialOf: () => 0 },
    stats: { bytesCopied: 0, bytesUploaded: 0 },
    fit: () => 'fit' as const,
    committed: () => committed,
    fbsOnScreen: () => new Set<number>(),
    onScreenKey: () => undefined,
    background: () => ({ fbId: 2, format: XR24 }),
    report: (cause: string) => void calls.reported.push(cause),
    refuse: (_s: GuestSource, _p: GuestPlaneInfo, cause: string) => void calls.refused.push(cause),
  } as unknown as PlannerDeps;
  return { planner: new FramePlanner(deps), calls, committed, mode };
}

function describeGuest(s: GuestSource): FrameDescription {
  const g = gatherFrame(s, null, () => 7);
  if (g.kind !== 'frame') throw new Error(`gathered ${g.kind}`);
  return g.frame;
}

describe('gatherFrame', () => {
  it('describes the guest and keys the frame by buffer, generation and frame', () => {
    const d = describeGuest(source(() => ({ state: 'ok', plane: plane(3) })));
    expect(d.guest?.plane.bufferId).toBe(3);
    expect(d.guest?.cursor).toBeNull();
    expect(d.contentKey).toBe('7/3/0/3/dmabuf|-');
  });

  it('no source and no host frame, a disabled guest, a lost one: no signal; not ready: wait', () => {
    expect(gatherFrame(null, null, () => 0).kind).toBe('no-signal');
    expect(gatherFrame(source(() => ({ state: 'disabled' })), null, () => 0).kind).toBe('no-signal');
    const lost = gatherFrame(source(() => ({ state: 'lost', error: new Error('gone') })), null, () => 0);
    expect(lost).toMatchObject({ kind: 'no-signal', lost: { message: 'gone' } });
    expect(gatherFrame(source(() => ({ state: 'not-ready', reason: 'ENOMEM' })), null, () => 0).kind).toBe('not-ready');
  });
});

describe('FramePlanner', () => {
  it('a full-screen opaque guest goes on the primary plane, zero-copy, with no background', () => {
    const h = harness();
    const plan = h.planner.plan(describeGuest(source(() => ({ state: 'ok', plane: plane(1) }))), false)!;
    expect(plan.path).toBe('scanout');
    expect(plan.fbId).toBe(101);
    expect(plan.reason).toBeUndefined();
    expect(plan.planes.get(PRIMARY)).toMatchObject({ fbId: 101, src: { x: 0, y: 0, width: W, height: H }, dst: { x: 0, y: 0, width: W, height: H } });
    expect(plan.layers?.map((l) => [l.id, l.path, l.zeroCopy])).toEqual([['guest', 'scanout', true]]);
    expect(plan.alloc?.reused).toBe(false);
  });

  it('steady state: a flip to another buffer of the same shape reuses the plan without allocating', () => {
    const h = harness();
    let buf = 1;
    const s = source(() => ({ state: 'ok', plane: plane(buf) }));
    h.planner.plan(describeGuest(s), false);
    buf = 2;
    const again = h.planner.plan(describeGuest(s), false)!;
    expect(h.calls.allocate).toBe(1);
    expect(h.calls.reuse).toBe(1);
    expect(again.fbId).toBe(102);
    expect(again.planes.get(PRIMARY)?.fbId).toBe(102);
    expect(again.alloc).toMatchObject({ reused: true, tests: 0 });
  });

  it('a guest no plane takes is composed: the path is the composition, with the reason', () => {
    const h = harness();
    h.mode.composeGuest = true;
    const plan = h.planner.plan(describeGuest(source(() => ({ state: 'ok', plane: plane(1) }))), false)!;
    expect(h.calls.compose).toBe(1);
    expect(plan.path).toBe('copy');
    expect(plan.fbId).toBe(500);
    expect(plan.reason).toBe('test says compose');
    expect(plan.planes.get(PRIMARY)?.fbId).toBe(500);
  });

  it('a guest letterboxed by fit gets the background layer under it', () => {
    const h = harness();
    const plan = h.planner.plan(describeGuest(source(() => ({ state: 'ok', plane: plane(1, { width: 640, height: 640, stride: 640 * 4 }) }))), false)!;
    expect(plan.allocLayers?.map((l) => l.id).sort()).toEqual(['background', 'guest']);
    expect(plan.planes.get(PRIMARY)?.fbId).toBe(2);
    expect(plan.planes.get(40)).toMatchObject({ fbId: 101, dst: { x: 128, y: 0, width: 768, height: 768 } });
    expect(plan.path).toBe('scanout');
    expect(plan.dst).toEqual({ x: 128, y: 0, width: 768, height: 768 });
  });

  it('bad guest data is refused and nothing changes; so is an invalid description', () => {
    const h = harness();
    h.mode.badBuffer = 'buffer-too-small';
    expect(h.planner.plan(describeGuest(source(() => ({ state: 'ok', plane: plane(1) }))), false)).toBeNull();
    expect(h.calls.refused).toEqual(['buffer-too-small']);
    const h2 = harness();
    expect(h2.planner.plan(describeGuest(source(() => ({ state: 'ok', plane: plane(1, { stride: 16 }) }))), false)).toBeNull();
    expect(h2.calls.refused).toEqual(['stride-too-small']);
    expect(h2.calls.allocate).toBe(0);
  });

  it('planes committed before and not used now are switched off', () => {
    const h = harness();
    h.committed.set(45, { fbId: 9, src: { x: 0, y: 0, width: 64, height: 64 }, dst: { x: 0, y: 0, width: 64, height: 64 } });
    const plan = h.planner.plan(describeGuest(source(() => ({ state: 'ok', plane: plane(1) }))), false)!;
    expect(plan.planes.get(45)).toBeNull();
    expect(plan.planes.get(PRIMARY)?.fbId).toBe(101);
  });
});
