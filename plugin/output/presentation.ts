// Step 4 of a frame: it is on screen. Its page-flip event becomes the 'present' event
// (path, buffer, frame, latency from the guest's flip, per-layer report, allocation) and
// the output's counters; statsSnapshot() gathers those with the FB cache's, the
// allocator's and the device's.
import type { KmsDevice } from '../kms/device.js';
import type { FlipEvent } from '../kms/events.js';
import type { FramebufferCache } from '../buffers/fb-cache.js';
import type { PlaneAllocator } from '../planes/allocator.js';
import type { OutputStats, OutputStatsSnapshot } from '../stats.js';
import type { FramePlan, PresentEvent, PresentedLayer } from './types.js';

/** A layer report's counter name, made once per report: a steady plan shows the same reports frame after frame. */
const statKeys = new WeakMap<PresentedLayer, string>();
function statKey(l: PresentedLayer): string {
  let k = statKeys.get(l);
  if (k === undefined) {
    k = l.how === 'composed' ? `composed:${l.reason?.code ?? '?'}` : l.how === 'plane' ? `plane:${l.planeType}` : 'hidden';
    statKeys.set(l, k);
  }
  return k;
}

/** Counts a plan that reached the screen and makes its 'present' event. */
export function presented(stats: OutputStats, c: FramePlan, ev: FlipEvent, refreshNs: number): PresentEvent {
  stats.framesPresented++;
  stats.paths[c.path]++;
  for (const l of c.layers ?? []) {
    const k = statKey(l);
    stats.layers[k] = (stats.layers[k] ?? 0) + 1;
  }
  let latencyNs: number | undefined;
  if (c.flipTimeNs && c.flipTimeNs > 0n && ev.timestampNs > 0n) {
    latencyNs = Number(ev.timestampNs - c.flipTimeNs);
    if (latencyNs >= 0) stats.latencyMs.add(latencyNs / 1e6);
  }
  const a = c.alloc;
  return {
    sequence: ev.sequence,
    timestampNs: ev.timestampNs,
    refreshNs,
    path: c.path,
    zeroCopy: c.path === 'scanout',
    bufferId: c.bufferId,
    frame: c.frame,
    latencyNs,
    reason: c.reason,
    gles: c.gles,
    layers: c.layers,
    frameId: c.frameId,
    allocation: a ? { reused: a.reused, tests: a.tests, searchMs: a.searchMs } : undefined,
  };
}

/** The output's counters with the FB cache's, the allocator's and the device's. */
export function statsSnapshot(stats: OutputStats, cache: FramebufferCache, allocator: PlaneAllocator, dev: KmsDevice): OutputStatsSnapshot {
  const c = cache.stats;
  const lat = stats.latencyMs;
  const a = allocator.stats;
  return {
    framesPresented: stats.framesPresented,
    paths: { ...stats.paths },
    imports: c.imports,
    cacheHits: c.hits,
    cacheMisses: c.misses,
    bytesCopied: stats.bytesCopied,
    bytesUploaded: stats.bytesUploaded,
    commits: dev.counters.commits,
    testOnlyCommits: dev.counters.testOnly,
    failedCommits: dev.counters.failed,
    refreshes: stats.refreshes,
    latencyMs: { p50: lat.percentile(50), p95: lat.percentile(95), p99: lat.percentile(99), samples: lat.count },
    errors: { ...stats.errors },
    layers: { ...stats.layers },
    allocator: { allocations: a.allocations, reuses: a.reuses, searches: a.searches, tests: a.tests, testCacheHits: a.testCacheHits, commitFailures: a.commitFailures, lastSearchMs: a.lastSearchMs, maxSearchMs: a.maxSearchMs },
  };
}
