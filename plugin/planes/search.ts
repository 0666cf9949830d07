// The allocator's one algorithm (libliftoff's alloc.c, arranged around layers): a
// depth-first search over the layers in decision order (often-changing first, then big,
// then top-most), each tried on its candidate planes and else composed, pruned by an upper
// bound of the score and a time budget. Every step that could work is asked of the kernel
// (TEST_ONLY, through the allocator's memory of verdicts); static checks first (CRTC,
// IN_FORMATS, plane alpha, rotation, cursor size, z order). See allocator.ts for the rest.
import type { KmsPlane } from '../kms/device.js';
import { rectKey, type Rect } from '../geometry.js';
import { KmsDevice } from '../kms/device.js';
import * as drm from '../../ffi/drm.js';
import { NORMAL, TRANSFORM_NAMES, pictureSize, planeRotationFor } from '../transform.js';
import type { AllocatorDevice, AllocatorStats, ComposeReasonCode, Layer, LayerBuffer, LayerReport, PlaneUse } from './types.js';
import type { PlaneType } from '../kms/device.js';

const PLANE_RANK: Record<PlaneType, number> = { primary: 0, overlay: 1, cursor: 2 };

export function intersects(a: Rect, b: Rect): boolean {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

function bufferShape(b: LayerBuffer | null): string {
  return b ? `${drm.fourccName(b.format)}:${b.modifier}:${b.width}x${b.height}` : '-';
}

/** A layer's shape for plane purposes; `positionFree` drops the position. */
export function layerShape(l: Layer, positionFree: boolean): string {
  const a = l.alpha ?? 1;
  const alpha = a >= 1 ? '1' : a <= 0 ? '0' : 'a';
  const dst = positionFree ? `${l.dst.width}x${l.dst.height}` : rectKey(l.dst);
  return `${l.id}|${l.zIndex}|${bufferShape(l.buffer)}|${rectKey(l.src)}|${dst}|${alpha}|${l.cursor ? 'c' : ''}|${l.transform ?? 0}`;
}

const isScaled = (l: Layer) => {
  const s = pictureSize(l.transform ?? NORMAL, l.src.width, l.src.height);
  return s.w !== l.dst.width || s.h !== l.dst.height;
};
const rotates = (l: Layer, p: KmsPlane) => (l.transform ?? NORMAL) === NORMAL || planeRotationFor(l.transform!, p.rotations) !== null;

/** Stacking rank of a plane with a fixed position (no zpos, or immutable zpos). */
function fixedZ(p: KmsPlane): number | null {
  if (p.zpos) return p.zpos.immutable ? Number(p.zpos.value) : null;
  // No zpos property: the driver stacks by type, then creation order (plane id).
  return PLANE_RANK[p.type] * 1e6 + p.id;
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

/** Keep the most telling reason: a refusal beats "no plane left". */
const REASON_RANK: Record<ComposeReasonCode, number> = { forced: 9, 'no-buffer': 9, 'commit-refused': 8, format: 7, alpha: 6, transform: 6, scaling: 5, 'test-only': 4, 'z-order': 3, 'no-plane': 2, budget: 1 };

/** What the search needs of its allocator: memory, counters, the kernel's TEST_ONLY. */
export interface SearchContext {
  /** Why a layer shape is distrusted (a real commit with it failed), if it is. */
  untrusted(shape: string): string | undefined;
  verdicts: { get(key: string): boolean | undefined; set(key: string, ok: boolean): void };
  stats: AllocatorStats;
  test: AllocatorDevice['test'];
  budgetMs: number;
  cursorWidth: number;
  cursorHeight: number;
}

/** An assignment found by the search. */
export interface Found {
  uses: PlaneUse[];
  composed: string[];
  composition: boolean;
  layers: LayerReport[];
}

type Best = { score: number; plane: Map<string, KmsPlane>; composed: Set<string>; zpos: Map<number, number> };

/** The best assignment of `visible` to `planes` the kernel accepts (everything composed if none). */
export function searchAssignment(c: SearchContext, visible: readonly Layer[], byId: ReadonlyMap<string, Layer>, planes: readonly KmsPlane[], forced: string, t0: number): Found {
  return new Search(c, visible, byId, planes, t0).run(forced);
}

class Search {
  private readonly primary: KmsPlane | undefined;
  private readonly zOrder: Layer[];
  private readonly bottom: Layer;
  /** Decision order: often-changing first (they get planes first), then big ones (each one on a plane saves the most composition), then top-most. */
  private readonly order: Layer[];
  private readonly why = new Map<string, { code: ComposeReasonCode; message: string }>();
  /** Static candidates per layer, in order of preference. */
  private readonly cands = new Map<string, KmsPlane[]>();
  private readonly st = { plane: new Map<string, KmsPlane>(), composed: new Set<string>(), used: new Set<number>() };
  private best: Best | null = null;
  private outOfTime = false;

  constructor(
    private readonly c: SearchContext,
    private readonly visible: readonly Layer[],
    private readonly byId: ReadonlyMap<string, Layer>,
    private readonly planes: readonly KmsPlane[],
    private readonly t0: number,
  ) {
    this.primary = planes.find((p) => p.type === 'primary');
    this.zOrder = [...visible].sort((a, b) => a.zIndex - b.zIndex);
    this.bottom = this.zOrder[0];
    this.order = [...visible].sort(
      (a, b) => Number(!!b.changesOften) - Number(!!a.changesOften) || b.dst.width * b.dst.height - a.dst.width * a.dst.height || b.zIndex - a.zIndex,
    );
  }

  run(forced: string): Found {
    for (const l of this.visible) this.cands.set(l.id, this.candidates(l, forced));
    this.dfs(0);
    if (this.outOfTime) this.c.stats.budgetExhausted++;
    return this.result();
  }

  private weight(l: Layer): number {
    return l.changesOften ? 3 : 2;
  }

  private note(l: Layer, code: ComposeReasonCode, message: string): void {
    const cur = this.why.get(l.id);
    if (!cur || REASON_RANK[code] > REASON_RANK[cur.code]) this.why.set(l.id, { code, message });
  }

  /** The planes that could take `l` on their own, best first; when none, why is noted. */
  private candidates(l: Layer, forced: string): KmsPlane[] {
    const list: KmsPlane[] = [];
    let distrust: string | undefined;
    if (forced) this.note(l, 'forced', forced);
    else if (!l.buffer) this.note(l, 'no-buffer', l.noBufferReason ?? 'no scanout buffer');
    else if ((distrust = this.c.untrusted(layerShape(l, true))) !== undefined) this.note(l, 'commit-refused', distrust);
    else {
      const b = l.buffer;
      for (const p of this.planes) {
        if (!KmsDevice.planeTakes(p, b.format, b.modifier)) continue;
        if ((l.alpha ?? 1) < 1 && !p.props.has('alpha')) continue;
        if (!rotates(l, p)) continue;
        if (p.type === 'cursor' && (l.dst.width > this.c.cursorWidth || l.dst.height > this.c.cursorHeight || isScaled(l))) continue;
        list.push(p);
      }
      if (list.length === 0) this.noteNoCandidate(l, b);
      // Preference: cursor layers on cursor planes; the bottom layer on the primary;
      // others on overlays, top-most first (libliftoff allocates from the top too).
      const pref = (p: KmsPlane) => {
        if (l.cursor && p.type === 'cursor') return 0;
        if (l === this.bottom && p.type === 'primary') return 1;
        if (p.type === 'overlay') return 2;
        if (p.type === 'cursor') return 3;
        return 4;
      };
      list.sort((a, b) => pref(a) - pref(b) || (fixedZ(b) ?? 0) - (fixedZ(a) ?? 0));
    }
    return list;
  }

  private noteNoCandidate(l: Layer, b: LayerBuffer): void {
    const planes = this.planes;
    const fmt = planes.some((p) => KmsDevice.planeTakes(p, b.format, b.modifier));
    if (!fmt) this.note(l, 'format', `no plane of this CRTC lists ${drm.fourccName(b.format)} with modifier ${drm.formatModifierName(b.modifier)} (IN_FORMATS)`);
    else if ((l.alpha ?? 1) < 1 && !planes.some((p) => KmsDevice.planeTakes(p, b.format, b.modifier) && p.props.has('alpha'))) {
      this.note(l, 'alpha', `plane alpha ${l.alpha} and no plane that takes ${drm.fourccName(b.format)} has an alpha property`);
    } else if (!planes.some((p) => KmsDevice.planeTakes(p, b.format, b.modifier) && rotates(l, p))) {
      this.note(l, 'transform', `the buffer's transform ${TRANSFORM_NAMES[l.transform ?? 0]} needs a plane rotation that no plane taking ${drm.fourccName(b.format)} offers`);
    } else this.note(l, 'no-plane', `the planes that list ${drm.fourccName(b.format)} cannot take a ${l.dst.width}x${l.dst.height} layer`);
  }

  private maxRest(i: number): number {
    return this.order.slice(i).reduce((s, l) => s + this.weight(l), 0) + 1;
  }

  /** zpos per plane for the current state, or null when the order cannot be honoured. */
  private zFor(): Map<number, number> | null {
    const { st, primary } = this;
    const out = new Map<number, number>();
    const placed = this.zOrder.filter((l) => st.plane.has(l.id));
    const zOf = new Map<string, number>();
    const comp = st.composed.size > 0 || !![...st.plane.values()].every((p) => p.type !== 'primary');
    // The composition buffer sits on the primary, below everything.
    const compZ = primary ? (fixedZ(primary) ?? Number(primary.zpos?.min ?? 0)) : 0;
    for (const l of placed) {
      const p = st.plane.get(l.id)!;
      let floor = -Infinity;
      for (const o of placed) {
        if (o === l || o.zIndex >= l.zIndex || !intersects(o.dst, l.dst)) continue;
        floor = Math.max(floor, zOf.get(o.id)!);
      }
      if (comp && p.type !== 'primary') floor = Math.max(floor, compZ);
      const fixed = fixedZ(p);
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
  }

  private uses(zpos: Map<number, number>, plane: Map<string, KmsPlane>, composition: boolean): PlaneUse[] {
    const primary = this.primary;
    const u: PlaneUse[] = [];
    if (composition && primary) u.push({ planeId: primary.id, layer: null, ...(primary.zpos && !primary.zpos.immutable ? { zpos: Number(primary.zpos.min) } : {}) });
    for (const [id, p] of plane) u.push({ planeId: p.id, layer: id, ...(zpos.has(p.id) ? { zpos: zpos.get(p.id) } : {}) });
    return u.sort((a, b) => a.planeId - b.planeId);
  }

  /** The kernel's TEST_ONLY verdict on `u`, remembered by the exact configuration. */
  private kernelSays(u: PlaneUse[]): boolean {
    const key = u.map((x) => `${x.planeId}=${x.layer === null ? 'C' : layerShape(this.byId.get(x.layer)!, false)}@${x.zpos ?? ''}`).join(' ');
    const known = this.c.verdicts.get(key);
    if (known !== undefined) {
      this.c.stats.testCacheHits++;
      return known;
    }
    this.c.stats.tests++;
    const err = this.c.test(u, this.byId);
    this.c.verdicts.set(key, err === null);
    return err === null;
  }

  private score(): number {
    let s = 0;
    for (const id of this.st.plane.keys()) s += this.weight(this.byId.get(id)!);
    return s + (this.st.composed.size === 0 ? 1 : 0);
  }

  /** The current state, all layers decided: a candidate for the best if the kernel takes it. */
  private leaf(): void {
    const { st, primary } = this;
    const composition = st.composed.size > 0 || ![...st.plane.values()].some((p) => p.type === 'primary');
    if (composition && !primary) return;
    const zpos = this.zFor();
    if (!zpos) return;
    const u = this.uses(zpos, st.plane, composition);
    if (!this.kernelSays(u)) return;
    const s = this.score();
    if (!this.best || s > this.best.score) this.best = { score: s, plane: new Map(st.plane), composed: new Set(st.composed), zpos };
  }

  private dfs(i: number): void {
    const st = this.st;
    if (performance.now() - this.t0 > this.c.budgetMs && this.best) {
      this.outOfTime = true;
      return;
    }
    const partial = this.score() - (st.composed.size === 0 ? 1 : 0);
    if (this.best && partial + this.maxRest(i) <= this.best.score) return;
    if (i === this.order.length) {
      this.leaf();
      return;
    }
    const l = this.order[i];
    // Planes alike in everything the kernel shows (type, CRTCs, formats, properties, no
    // zpos) differ only in stacking: one refusal at this step stands for the others
    // (vkms has 8 such overlays; trying each would be 8 TEST_ONLYs for one answer).
    const refusedKinds = new Set<string>();
    for (const p of this.cands.get(l.id)!) {
      if (this.best && this.score() - (st.composed.size === 0 ? 1 : 0) + this.maxRest(i) <= this.best.score) return;
      if (!this.tryPlane(l, p, i, refusedKinds)) return;
    }
    // Compose it: needs the primary free, and no plane layer below it that it overlaps.
    const primaryTaken = [...st.plane.values()].some((q) => q.type === 'primary');
    const blockedBy = [...st.plane.keys()].some((o) => this.byId.get(o)!.zIndex < l.zIndex && intersects(this.byId.get(o)!.dst, l.dst));
    if (!primaryTaken && !blockedBy && this.primary) {
      st.composed.add(l.id);
      this.dfs(i + 1);
      st.composed.delete(l.id);
    }
  }

  /** Layer `l` (step i) on plane `p`, and the rest searched from there; false when time ran out. */
  private tryPlane(l: Layer, p: KmsPlane, i: number, refusedKinds: Set<string>): boolean {
    const st = this.st;
    if (refusedKinds.has(planeKind(p))) return true;
    if (st.used.has(p.id)) {
      this.note(l, 'no-plane', `plane ${p.id} (${p.type}) is taken by another layer`);
      return true;
    }
    // The composition buffer needs the primary; a layer on it rules composition out.
    if (p.type === 'primary' && st.composed.size > 0) return true;
    // A composed layer sits below every plane: none may be above one that overlaps it.
    if ([...st.composed].some((c) => this.byId.get(c)!.zIndex > l.zIndex && intersects(this.byId.get(c)!.dst, l.dst))) {
      this.note(l, 'z-order', `a composed layer above it overlaps it, and composition is at the bottom`);
      return true;
    }
    st.plane.set(l.id, p);
    st.used.add(p.id);
    const zpos = this.zFor();
    let ok = zpos !== null;
    if (!ok) this.note(l, 'z-order', `plane ${p.id} (${p.type}) would stack it in the wrong order`);
    else {
      const composition = st.composed.size > 0 || ![...st.plane.values()].some((q) => q.type === 'primary');
      ok = this.kernelSays(this.uses(zpos!, st.plane, composition && !!this.primary));
      if (!ok) {
        if (!p.zpos) refusedKinds.add(planeKind(p));
        if (isScaled(l)) this.note(l, 'scaling', `TEST_ONLY refused it scaled ${l.src.width}x${l.src.height}→${l.dst.width}x${l.dst.height} on plane ${p.id} (${p.type})`);
        else this.note(l, 'test-only', `TEST_ONLY refused it on plane ${p.id} (${p.type})`);
      }
    }
    if (ok) this.dfs(i + 1);
    st.plane.delete(l.id);
    st.used.delete(p.id);
    return !this.outOfTime;
  }

  /** The best assignment found, with a report per layer; or everything composed. */
  private result(): Found {
    const { zOrder, why, primary } = this;
    const composedOrder = (set: ReadonlySet<string>) => zOrder.filter((l) => set.has(l.id)).map((l) => l.id);
    const b = this.best;
    if (!b) {
      // Nothing the kernel accepted with any layer on a plane: compose everything.
      const all = new Set(this.visible.map((l) => l.id));
      for (const l of this.visible) if (!why.has(l.id)) this.note(l, this.outOfTime ? 'budget' : 'test-only', this.outOfTime ? `no layout found within ${this.c.budgetMs} ms` : 'no layout with it on a plane passed TEST_ONLY');
      return {
        uses: primary ? [{ planeId: primary.id, layer: null }] : [],
        composed: composedOrder(all),
        composition: true,
        layers: zOrder.map((l) => ({ id: l.id, planeId: null, planeType: null, how: 'composed', reason: why.get(l.id) })),
      };
    }
    const composition = b.composed.size > 0 || ![...b.plane.values()].some((p) => p.type === 'primary');
    const reports: LayerReport[] = zOrder.map((l) => {
      const p = b.plane.get(l.id);
      if (p) return { id: l.id, planeId: p.id, planeType: p.type, how: 'plane' };
      const r = why.get(l.id) ?? (this.outOfTime ? { code: 'budget' as const, message: `the search stopped after ${this.c.budgetMs} ms` } : { code: 'no-plane' as const, message: 'no plane left for it' });
      return { id: l.id, planeId: null, planeType: null, how: 'composed', reason: r };
    });
    return { uses: this.uses(b.zpos, b.plane, composition), composed: composedOrder(b.composed), composition, layers: reports };
  }
}
