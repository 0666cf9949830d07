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
import type { KmsPlane, PlaneType } from './kms/device.js';
import { rectKey, type Rect } from './geometry.js';
import { KmsDevice } from './kms/device.js';
import * as drm from '../ffi/drm.js';
import { NORMAL, TRANSFORM_NAMES, pictureSize, planeRotationFor, type Transform } from './transform.js';

/** What a plane needs to know about a buffer (the FB id changes per frame, the rest is shape). */
export interface LayerBuffer {
  fbId: number;
  format: number;
  modifier: bigint;
  width: number;
  height: number;
}

export interface Layer {
  /** Stable across frames ('background', 'guest-1/primary', 'guest-1/cursor'…). */
  id: string;
  /** Stacking order, higher on top. */
  zIndex: number;
  /** The scanout buffer, or null when the layer can only be composed. */
  buffer: LayerBuffer | null;
  /** Why `buffer` is null (import failed, region plane…), for the report. */
  noBufferReason?: string;
  /** Source rectangle in buffer pixels (memory order: row 0 is the buffer's first row). */
  src: Rect;
  /**
   * How the buffer holds the picture (default normal): `src` is shown with the inverse
   * applied, so only planes whose rotation property can undo it take the layer. With a
   * 90°/270° transform, src's width is dst's height.
   */
  transform?: Transform;
  /** Destination rectangle in CRTC pixels (may reach outside the screen). */
  dst: Rect;
  /** Plane alpha 0..1 (default 1). */
  alpha?: number;
  /** Content changes often (a guest's primary, a video): decided first, gets planes first. */
  changesOften?: boolean;
  /**
   * Moves often without changing shape (a pointer): prefers the cursor plane, and on a
   * cursor plane its position is not part of the frame shape (moves reuse the layout).
   */
  cursor?: boolean;
  /**
   * The buffer is the host's own scanout memory (a dumb buffer): when a real commit fails
   * although TEST_ONLY agreed, it is not the suspect.
   */
  hostBuffer?: boolean;
}

export type ComposeReasonCode =
  | 'forced' // the caller asked for composition (options.paths without scanout)
  | 'no-buffer' // nothing a plane could scan out (import failed, region plane)
  | 'format' // no usable plane lists the format+modifier (IN_FORMATS)
  | 'alpha' // plane alpha < 1 and no plane with an alpha property takes it
  | 'transform' // a buffer transform (rotation, mirror, Y_INVERT) no plane that takes the format can undo
  | 'scaling' // scaled, and TEST_ONLY refused it on every plane that lists the format
  | 'test-only' // TEST_ONLY refused it on every plane tried
  | 'commit-refused' // a real commit failed with it on a plane although TEST_ONLY agreed
  | 'no-plane' // every plane that could take it was given to other layers
  | 'z-order' // a plane for it would break the stacking order with other layers
  | 'budget'; // the search ran out of time before finding it a plane

export interface LayerReport {
  id: string;
  /** KMS plane id, or null when composed or hidden. */
  planeId: number | null;
  planeType: PlaneType | null;
  how: 'plane' | 'composed' | 'hidden';
  reason?: { code: ComposeReasonCode; message: string };
}

/** One plane's content in an assignment: a layer, or the composition buffer. */
export interface PlaneUse {
  planeId: number;
  /** Layer id, or null for the composition buffer. */
  layer: string | null;
  /** zpos to set (mutable zpos planes only). */
  zpos?: number;
}

export interface Allocation {
  uses: PlaneUse[];
  /** Layers to compose (bottom first) into the composition buffer on the primary plane. */
  composed: string[];
  /** Whether the composition buffer is on the primary plane (may compose only a clear colour). */
  composition: boolean;
  layers: LayerReport[];
  /** Reused a remembered assignment: no TEST_ONLY was issued. */
  reused: boolean;
  tests: number;
  searchMs: number;
  signature: string;
}

/** The device surface the allocator needs: planes and a TEST_ONLY of an assignment. */
export interface AllocatorDevice {
  /** Planes this output may use now (its primary included), any order. */
  planes(): readonly KmsPlane[];
  /** TEST_ONLY of the whole output state for `uses` (planes not listed are off). */
  test(uses: readonly PlaneUse[], layers: ReadonlyMap<string, Layer>): Error | null;
}

export interface AllocatorOptions {
  crtcIndex: number;
  width: number;
  height: number;
  cursorWidth: number;
  cursorHeight: number;
  /** Search time budget, ms (libliftoff uses 1 ms; TEST_ONLY under a VM is slower). */
  budgetMs?: number;
  /** Remembered shapes (assignments) and TEST_ONLY answers. */
  memoShapes?: number;
  memoTests?: number;
}

export interface AllocatorStats {
  allocations: number;
  reuses: number;
  searches: number;
  tests: number;
  testCacheHits: number;
  commitFailures: number;
  budgetExhausted: number;
  /** Duration of the last search and the slowest, ms. */
  lastSearchMs: number;
  maxSearchMs: number;
}

const PLANE_RANK: Record<PlaneType, number> = { primary: 0, overlay: 1, cursor: 2 };

function intersects(a: Rect, b: Rect): boolean {
  return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

function bufferShape(b: LayerBuffer | null): string {
  return b ? `${drm.fourccName(b.format)}:${b.modifier}:${b.width}x${b.height}` : '-';
}

/** A layer's shape for plane purposes; `positionFree` drops the position. */
function layerShape(l: Layer, positionFree: boolean): string {
  const a = l.alpha ?? 1;
  const alpha = a >= 1 ? '1' : a <= 0 ? '0' : 'a';
  const dst = positionFree ? `${l.dst.w}x${l.dst.h}` : rectKey(l.dst);
  return `${l.id}|${l.zIndex}|${bufferShape(l.buffer)}|${rectKey(l.src)}|${dst}|${alpha}|${l.cursor ? 'c' : ''}|${l.transform ?? 0}`;
}

const isScaled = (l: Layer) => {
  const s = pictureSize(l.transform ?? NORMAL, l.src.w, l.src.h);
  return s.w !== l.dst.w || s.h !== l.dst.h;
};
const rotates = (l: Layer, p: KmsPlane) => (l.transform ?? NORMAL) === NORMAL || planeRotationFor(l.transform!, p.rotations) !== null;

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
    const screen = { x: 0, y: 0, w: this.opts.width, h: this.opts.height };
    const visible = layers.filter((l) => (l.alpha ?? 1) > 0 && l.dst.w > 0 && l.dst.h > 0 && intersects(l.dst, screen));
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
    const found = this.search(visible, byId, planes, forced, t0);
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

  /** Stacking rank of a plane with a fixed position (no zpos, or immutable zpos). */
  private static fixedZ(p: KmsPlane): number | null {
    if (p.zpos) return p.zpos.immutable ? Number(p.zpos.value) : null;
    // No zpos property: the driver stacks by type, then creation order (plane id).
    return PLANE_RANK[p.type] * 1e6 + p.id;
  }

  private search(visible: readonly Layer[], byId: ReadonlyMap<string, Layer>, planes: readonly KmsPlane[], forced: string, t0: number): Omit<Remembered, 'positionFree'> {
    const primary = planes.find((p) => p.type === 'primary');
    const zOrder = [...visible].sort((a, b) => a.zIndex - b.zIndex);
    const bottom = zOrder[0];
    // Decision order: often-changing first (they get planes first), then big ones (each
    // one on a plane saves the most composition), then top-most.
    const order = [...visible].sort(
      (a, b) => Number(!!b.changesOften) - Number(!!a.changesOften) || b.dst.w * b.dst.h - a.dst.w * a.dst.h || b.zIndex - a.zIndex,
    );
    const weight = (l: Layer) => (l.changesOften ? 3 : 2);
    const why = new Map<string, { code: ComposeReasonCode; message: string }>();
    const note = (l: Layer, code: ComposeReasonCode, message: string) => {
      // Keep the most telling reason: a refusal beats "no plane left".
      const rank: Record<ComposeReasonCode, number> = { forced: 9, 'no-buffer': 9, 'commit-refused': 8, format: 7, alpha: 6, transform: 6, scaling: 5, 'test-only': 4, 'z-order': 3, 'no-plane': 2, budget: 1 };
      const cur = why.get(l.id);
      if (!cur || rank[code] > rank[cur.code]) why.set(l.id, { code, message });
    };

    // Static candidates per layer.
    const cands = new Map<string, KmsPlane[]>();
    for (const l of visible) {
      const list: KmsPlane[] = [];
      if (forced) note(l, 'forced', forced);
      else if (!l.buffer) note(l, 'no-buffer', l.noBufferReason ?? 'no scanout buffer');
      else if (this.untrusted.get(layerShape(l, true)) !== undefined) note(l, 'commit-refused', this.untrusted.get(layerShape(l, true))!);
      else {
        const b = l.buffer;
        for (const p of planes) {
          if (!KmsDevice.planeTakes(p, b.format, b.modifier)) continue;
          if ((l.alpha ?? 1) < 1 && !p.props.has('alpha')) continue;
          if (!rotates(l, p)) continue;
          if (p.type === 'cursor' && (l.dst.w > this.opts.cursorWidth || l.dst.h > this.opts.cursorHeight || isScaled(l))) continue;
          list.push(p);
        }
        if (list.length === 0) {
          const fmt = planes.some((p) => KmsDevice.planeTakes(p, b.format, b.modifier));
          if (!fmt) note(l, 'format', `no plane of this CRTC lists ${drm.fourccName(b.format)} with modifier ${drm.formatModifierName(b.modifier)} (IN_FORMATS)`);
          else if ((l.alpha ?? 1) < 1 && !planes.some((p) => KmsDevice.planeTakes(p, b.format, b.modifier) && p.props.has('alpha'))) {
            note(l, 'alpha', `plane alpha ${l.alpha} and no plane that takes ${drm.fourccName(b.format)} has an alpha property`);
          } else if (!planes.some((p) => KmsDevice.planeTakes(p, b.format, b.modifier) && rotates(l, p))) {
            note(l, 'transform', `the buffer's transform ${TRANSFORM_NAMES[l.transform ?? 0]} needs a plane rotation that no plane taking ${drm.fourccName(b.format)} offers`);
          } else note(l, 'no-plane', `the planes that list ${drm.fourccName(b.format)} cannot take a ${l.dst.w}x${l.dst.h} layer`);
        }
        // Preference: cursor layers on cursor planes; the bottom layer on the primary;
        // others on overlays, top-most first (libliftoff allocates from the top too).
        const pref = (p: KmsPlane) => {
          if (l.cursor && p.type === 'cursor') return 0;
          if (l === bottom && p.type === 'primary') return 1;
          if (p.type === 'overlay') return 2;
          if (p.type === 'cursor') return 3;
          return 4;
        };
        list.sort((a, b) => pref(a) - pref(b) || (PlaneAllocator.fixedZ(b) ?? 0) - (PlaneAllocator.fixedZ(a) ?? 0));
      }
      cands.set(l.id, list);
    }

    type State = { plane: Map<string, KmsPlane>; composed: Set<string>; used: Set<number> };
    const st: State = { plane: new Map(), composed: new Set(), used: new Set() };
    let best: { score: number; plane: Map<string, KmsPlane>; composed: Set<string>; zpos: Map<number, number> } | null = null;
    const maxRest = (i: number) => order.slice(i).reduce((s, l) => s + weight(l), 0) + 1;
    let outOfTime = false;

    /** zpos per plane for the current state, or null when the order cannot be honoured. */
    const zFor = (): Map<number, number> | null => {
      const out = new Map<number, number>();
      const placed = zOrder.filter((l) => st.plane.has(l.id));
      const zOf = new Map<string, number>();
      const comp = st.composed.size > 0 || !![...st.plane.values()].every((p) => p.type !== 'primary');
      // The composition buffer sits on the primary, below everything.
      const compZ = primary ? (PlaneAllocator.fixedZ(primary) ?? Number(primary.zpos?.min ?? 0)) : 0;
      for (const l of placed) {
        const p = st.plane.get(l.id)!;
        let floor = -Infinity;
        for (const o of placed) {
          if (o === l || o.zIndex >= l.zIndex || !intersects(o.dst, l.dst)) continue;
          floor = Math.max(floor, zOf.get(o.id)!);
        }
        if (comp && p.type !== 'primary') floor = Math.max(floor, compZ);
        const fixed = PlaneAllocator.fixedZ(p);
        let z: number;
        if (fixed !== null) {
          if (p.type === 'primary' ? floor > -Infinity : fixed <= floor) return null;
          z = fixed;
        } else {
          const zp = p.zpos!;
          z = Math.max(Number(zp.min), floor === -Infinity ? Number(zp.min) : Math.floor(floor) + 1);
          if (z > Number(zp.max)) return null;
          out.set(p.id, z);
        }
        zOf.set(l.id, z);
      }
      return out;
    };

    const uses = (zpos: Map<number, number>, plane: Map<string, KmsPlane>, composition: boolean): PlaneUse[] => {
      const u: PlaneUse[] = [];
      if (composition && primary) u.push({ planeId: primary.id, layer: null, ...(primary.zpos && !primary.zpos.immutable ? { zpos: Number(primary.zpos.min) } : {}) });
      for (const [id, p] of plane) u.push({ planeId: p.id, layer: id, ...(zpos.has(p.id) ? { zpos: zpos.get(p.id) } : {}) });
      return u.sort((a, b) => a.planeId - b.planeId);
    };

    const verdictKey = (u: readonly PlaneUse[]) =>
      u.map((x) => `${x.planeId}=${x.layer === null ? 'C' : layerShape(byId.get(x.layer)!, false)}@${x.zpos ?? ''}`).join(' ');

    const kernelSays = (u: PlaneUse[]): boolean => {
      const key = verdictKey(u);
      const known = this.verdicts.get(key);
      if (known !== undefined) {
        this.stats.testCacheHits++;
        return known;
      }
      this.stats.tests++;
      const err = this.dev.test(u, byId);
      this.verdicts.set(key, err === null);
      return err === null;
    };

    const score = () => {
      let s = 0;
      for (const id of st.plane.keys()) s += weight(byId.get(id)!);
      return s + (st.composed.size === 0 ? 1 : 0);
    };

    const dfs = (i: number): void => {
      if (performance.now() - t0 > this.budgetMs && best) {
        outOfTime = true;
        return;
      }
      const partial = score() - (st.composed.size === 0 ? 1 : 0);
      if (best && partial + maxRest(i) <= best.score) return;
      if (i === order.length) {
        const composition = st.composed.size > 0 || ![...st.plane.values()].some((p) => p.type === 'primary');
        if (composition && !primary) return;
        const zpos = zFor();
        if (!zpos) return;
        const u = uses(zpos, st.plane, composition);
        if (!kernelSays(u)) return;
        const s = score();
        if (!best || s > best.score) best = { score: s, plane: new Map(st.plane), composed: new Set(st.composed), zpos };
        return;
      }
      const l = order[i];
      // Planes alike in everything the kernel shows (type, CRTCs, formats, properties, no
      // zpos) differ only in stacking: one refusal at this step stands for the others
      // (vkms has 8 such overlays; trying each would be 8 TEST_ONLYs for one answer).
      const refusedKinds = new Set<string>();
      for (const p of cands.get(l.id)!) {
        if (best && score() - (st.composed.size === 0 ? 1 : 0) + maxRest(i) <= best.score) return;
        if (refusedKinds.has(planeKind(p))) continue;
        if (st.used.has(p.id)) {
          note(l, 'no-plane', `plane ${p.id} (${p.type}) is taken by another layer`);
          continue;
        }
        // The composition buffer needs the primary; a layer on it rules composition out.
        if (p.type === 'primary' && st.composed.size > 0) continue;
        // A composed layer sits below every plane: none may be above one that overlaps it.
        if ([...st.composed].some((c) => byId.get(c)!.zIndex > l.zIndex && intersects(byId.get(c)!.dst, l.dst))) {
          note(l, 'z-order', `a composed layer above it overlaps it, and composition is at the bottom`);
          continue;
        }
        st.plane.set(l.id, p);
        st.used.add(p.id);
        const zpos = zFor();
        let ok = zpos !== null;
        if (!ok) note(l, 'z-order', `plane ${p.id} (${p.type}) would stack it in the wrong order`);
        else {
          const composition = st.composed.size > 0 || ![...st.plane.values()].some((q) => q.type === 'primary');
          ok = kernelSays(uses(zpos!, st.plane, composition && !!primary));
          if (!ok) {
            if (!p.zpos) refusedKinds.add(planeKind(p));
            if (isScaled(l)) note(l, 'scaling', `TEST_ONLY refused it scaled ${l.src.w}x${l.src.h}→${l.dst.w}x${l.dst.h} on plane ${p.id} (${p.type})`);
            else note(l, 'test-only', `TEST_ONLY refused it on plane ${p.id} (${p.type})`);
          }
        }
        if (ok) dfs(i + 1);
        st.plane.delete(l.id);
        st.used.delete(p.id);
        if (outOfTime) return;
      }
      // Compose it: needs the primary free, and no plane layer below it that it overlaps.
      const primaryTaken = [...st.plane.values()].some((q) => q.type === 'primary');
      const blockedBy = [...st.plane.keys()].some((o) => byId.get(o)!.zIndex < l.zIndex && intersects(byId.get(o)!.dst, l.dst));
      if (!primaryTaken && !blockedBy && primary) {
        st.composed.add(l.id);
        dfs(i + 1);
        st.composed.delete(l.id);
      }
    };
    dfs(0);
    if (outOfTime) this.stats.budgetExhausted++;

    const composedOrder = (set: ReadonlySet<string>) => zOrder.filter((l) => set.has(l.id)).map((l) => l.id);
    if (!best) {
      // Nothing the kernel accepted with any layer on a plane: compose everything.
      const all = new Set(visible.map((l) => l.id));
      for (const l of visible) if (!why.has(l.id)) note(l, outOfTime ? 'budget' : 'test-only', outOfTime ? `no layout found within ${this.budgetMs} ms` : 'no layout with it on a plane passed TEST_ONLY');
      return {
        uses: primary ? [{ planeId: primary.id, layer: null }] : [],
        composed: composedOrder(all),
        composition: true,
        layers: zOrder.map((l) => ({ id: l.id, planeId: null, planeType: null, how: 'composed', reason: why.get(l.id) })),
      };
    }
    const b: { score: number; plane: Map<string, KmsPlane>; composed: Set<string>; zpos: Map<number, number> } = best;
    const composition = b.composed.size > 0 || ![...b.plane.values()].some((p) => p.type === 'primary');
    const reports: LayerReport[] = zOrder.map((l) => {
      const p = b.plane.get(l.id);
      if (p) return { id: l.id, planeId: p.id, planeType: p.type, how: 'plane' };
      const r = why.get(l.id) ?? (outOfTime ? { code: 'budget' as const, message: `the search stopped after ${this.budgetMs} ms` } : { code: 'no-plane' as const, message: 'no plane left for it' });
      return { id: l.id, planeId: null, planeType: null, how: 'composed', reason: r };
    });
    return { uses: uses(b.zpos, b.plane, composition), composed: composedOrder(b.composed), composition, layers: reports };
  }
}

const kinds = new WeakMap<KmsPlane, string>();
function planeKind(p: KmsPlane): string {
  let k = kinds.get(p);
  if (k === undefined) {
    const fm = [...p.formats.entries()].map(([f, m]) => `${f}:${m.join('/')}`).sort().join(',');
    k = `${p.type}|${p.possibleCrtcs}|${p.props.names().sort().join(',')}|${fm}|${p.zpos ? 'z' : ''}`;
    kinds.set(p, k);
  }
  return k;
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  return a.size === b.size && [...a].every((x) => b.has(x));
}
