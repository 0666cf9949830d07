// Plane allocation: which KMS plane shows which layer of one output, checked by the kernel.
//
// The kernel is the only judge of what a plane combination can do (bandwidth, scaling,
// positioning, watermarks…), and TEST_ONLY is how it is asked. The search is libliftoff's
// idea — depth-first, one TEST_ONLY per step, pruning by an upper bound of the score,
// a time budget, layers that change often decided first — arranged around layers rather
// than planes, and with more memory:
//  - Same frame shape as before (only buffers changed; a cursor-plane layer only moved):
//    the last assignment is reused with NO TEST_ONLY at all. Shapes seen before reuse
//    their remembered assignment too (a cursor that hides and shows again costs nothing).
//    The real commit is the test: if it fails, commitFailed() forgets the assignment,
//    remembers that the layers it placed cannot be trusted to TEST_ONLY, and the next
//    allocate() searches again.
//  - Every TEST_ONLY answer is remembered by the exact plane configuration it judged,
//    so a search never asks the kernel the same question twice.
//  - Static checks first (CRTC, IN_FORMATS, plane alpha, cursor size, z order): the
//    kernel is asked only about combinations that could work.
// Layers with no plane are composed into one buffer on the primary plane (the caller
// composes: GLES, else CPU). Each layer's report says where it went and why.
//
// The search itself is allocator-search.ts; the types are allocator-types.ts.
import type { KmsPlane } from '../kms/device.js';
import type { AllocatorDevice, AllocatorOptions, AllocatorStats, Allocation, Layer, LayerReport, PlaneUse } from './types.js';
import { intersects, layerShape, searchAssignment } from './search.js';

export type * from './types.js';



class Lru<K, V> {
  private readonly m = new Map<K, V>();
  constructor(private readonly cap: number) {}
  get(k: K): V | undefined {
    const v = this.m.get(k);
    if (v !== undefined) {
      this.m.delete(k);
      this.m.set(k, v);
    }
    return v;
  }
  set(k: K, v: V): void {
    this.m.delete(k);
    this.m.set(k, v);
    if (this.m.size > this.cap) this.m.delete(this.m.keys().next().value as K);
  }
  delete(k: K): void {
    this.m.delete(k);
  }
  clear(): void {
    this.m.clear();
  }
}

interface Remembered {
  uses: PlaneUse[];
  composed: string[];
  composition: boolean;
  layers: LayerReport[];
  /** Layers whose position is free (on a cursor plane). */
  positionFree: Set<string>;
}

export class PlaneAllocator {
  readonly stats: AllocatorStats = { allocations: 0, reuses: 0, searches: 0, tests: 0, testCacheHits: 0, commitFailures: 0, budgetExhausted: 0, lastSearchMs: 0, maxSearchMs: 0 };
  private readonly budgetMs: number;
  /** Frame signature → assignment that the kernel took. */
  private readonly shapes: Lru<string, Remembered>;
  /** Plane configuration → TEST_ONLY verdict. */
  private readonly verdicts: Lru<string, boolean>;
  /** Layer shapes that made a real commit fail although TEST_ONLY agreed: compose them. */
  private readonly untrusted = new Lru<string, string>(256);
  private last: { signature: string; rem: Remembered } | null = null;
  /** Bumped whenever remembered assignments are dropped: a caller's copy of one is stale. */
  epoch = 0;

  constructor(
    private readonly dev: AllocatorDevice,
    private readonly opts: AllocatorOptions,
  ) {
    this.budgetMs = opts.budgetMs ?? 4;
    this.shapes = new Lru(opts.memoShapes ?? 32);
    this.verdicts = new Lru(opts.memoTests ?? 1024);
  }

  /**
   * Assigns `layers` to planes. `composeOnly` (a reason) puts every layer into the
   * composition buffer (the caller forbade scanout).
   */
  allocate(layers: readonly Layer[], opts: { composeOnly?: string } = {}): Allocation {
    this.stats.allocations++;
    const planes = this.usablePlanes();
    const screen = { x: 0, y: 0, width: this.opts.width, height: this.opts.height };
    const visible = layers.filter((l) => (l.alpha ?? 1) > 0 && l.dst.width > 0 && l.dst.height > 0 && intersects(l.dst, screen));
    const hidden = layers.filter((l) => !visible.includes(l));
    const planeKey = planes.map((p) => p.id).join(',');
    const forced = opts.composeOnly ?? '';
    const byId = new Map(visible.map((l) => [l.id, l]));

    // Reuse: the same shape as the last frame, or a shape remembered from earlier.
    const sigFor = (free: ReadonlySet<string>) =>
      `${planeKey}#${forced}#` +
      [...visible]
        .sort((a, b) => a.zIndex - b.zIndex)
        .map((l) => layerShape(l, free.has(l.id)))
        .join(';');
    const candidates = this.last ? [this.last] : [];
    for (const c of candidates) {
      const sig = sigFor(c.rem.positionFree);
      if (sig === c.signature) return this.reuse(sig, c.rem, hidden);
    }
    const freeGuess = new Set(visible.filter((l) => l.cursor).map((l) => l.id));
    for (const free of [freeGuess, new Set<string>()]) {
      const sig = sigFor(free);
      const rem = this.shapes.get(sig);
      if (rem && sameSet(rem.positionFree, free)) {
        this.last = { signature: sig, rem };
        return this.reuse(sig, rem, hidden);
      }
    }

    const t0 = performance.now();
    this.stats.searches++;
    const testsBefore = this.stats.tests;
    const found = searchAssignment(
      {
        untrusted: (shape) => this.untrusted.get(shape),
        verdicts: this.verdicts,
        stats: this.stats,
        test: (u, l) => this.dev.test(u, l),
        budgetMs: this.budgetMs,
        cursorWidth: this.opts.cursorWidth,
        cursorHeight: this.opts.cursorHeight,
      },
      visible,
      byId,
      planes,
      forced,
      t0,
    );
    const searchMs = performance.now() - t0;
    this.stats.lastSearchMs = searchMs;
    this.stats.maxSearchMs = Math.max(this.stats.maxSearchMs, searchMs);
    const positionFree = new Set(found.uses.filter((u) => u.layer && byId.get(u.layer)?.cursor && planes.find((p) => p.id === u.planeId)?.type === 'cursor').map((u) => u.layer!));
    const rem: Remembered = { ...found, positionFree };
    const signature = sigFor(positionFree);
    this.shapes.set(signature, rem);
    this.last = { signature, rem };
    return { ...this.materialise(rem, hidden), reused: false, tests: this.stats.tests - testsBefore, searchMs, signature };
  }

  /** The real commit of `a` failed: forget it and distrust the layers it put on planes. */
  commitFailed(a: Allocation, layers: readonly Layer[], err: Error): void {
    this.stats.commitFailures++;
    this.epoch++;
    this.shapes.delete(a.signature);
    this.last = null;
    const byId = new Map(layers.map((l) => [l.id, l]));
    for (const u of a.uses) {
      const l = u.layer ? byId.get(u.layer) : undefined;
      if (l && !l.hostBuffer) this.untrusted.set(layerShape(l, true), `a commit with ${l.id} on plane ${u.planeId} failed although TEST_ONLY accepted it: ${err.message}`);
    }
    // Verdicts may have been right for the test and wrong for the commit: drop them all.
    this.verdicts.clear();
  }

  /** Forgets everything learnt (planes changed hands, hotplug, mode change). */
  reset(): void {
    this.epoch++;
    this.shapes.clear();
    this.verdicts.clear();
    this.untrusted.clear();
    this.last = null;
  }

  /** Counts a reuse the caller made of the last allocation without asking (Output's steady-state path). */
  noteReuse(): void {
    this.stats.allocations++;
    this.stats.reuses++;
  }

  private reuse(signature: string, rem: Remembered, hidden: readonly Layer[]): Allocation {
    this.stats.reuses++;
    return { ...this.materialise(rem, hidden), reused: true, tests: 0, searchMs: 0, signature };
  }

  private materialise(rem: Remembered, hidden: readonly Layer[]): Omit<Allocation, 'reused' | 'tests' | 'searchMs' | 'signature'> {
    const layers = [...rem.layers, ...hidden.map((l): LayerReport => ({ id: l.id, planeId: null, planeType: null, how: 'hidden' }))];
    return { uses: rem.uses.map((u) => ({ ...u })), composed: [...rem.composed], composition: rem.composition, layers };
  }

  private usablePlanes(): KmsPlane[] {
    const bit = 1 << this.opts.crtcIndex;
    return this.dev.planes().filter((p) => (p.possibleCrtcs & bit) !== 0);
  }
}


function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  return a.size === b.size && [...a].every((x) => b.has(x));
}
