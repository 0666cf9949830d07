// Step 2 of a frame: the planner turns a frame's description (gather.ts) into a plan:
// the layers (guest primary, host layers, background, guest cursor) with their FBs, the
// plane assignment (allocator.ts), the composition of what no plane took (composer.ts),
// every plane's wanted state, the path of the guest's pixels and why, and the per-layer
// report. It commits nothing: its device-facing parts are narrow interfaces (FB cache,
// allocator, composer, cursor buffers).
//
// The order of preference for each layer's pixels is scanout → gles → copy, restricted by
// options.paths. An invalid guest buffer is refused (the source is told) and the last
// good frame stays: plan() returns null, as it does when nothing changed.
import * as drm from '../../ffi/drm.js';
import { placement, type FitMode, type Rect } from '../geometry.js';
import { NORMAL } from '../transform.js';
import { validatePlane } from '../buffers/validate.js';
import type { FramebufferCache } from '../buffers/fb-cache.js';
import type { DmabufMaps } from '../compose/dmabuf-map.js';
import type { ComposeInput, Composed, Composer } from '../compose/composer.js';
import type { Allocation, Layer, PlaneAllocator, PlaneUse } from '../planes/allocator.js';
import type { CursorBuffers } from '../planes/cursor.js';
import type { OutputStats, PresentPath } from '../stats.js';
import type { GuestPlaneInfo, GuestSource, PlaneQuery } from '../sources/source.js';
import { hasAlpha, isHostBuffer, toPlane, type CheckedLayer, type HostBuffer } from '../planes/host-layers.js';
import type { HostFrames } from './host-frames.js';
import type { FrameDescription, GuestFrame } from './gather.js';
import { cropOf, pictureOf, srcInBuffer, viewOf } from './picture.js';
import type { FramePath, FramePlan, PlaneState, PresentedLayer } from './types.js';

const GUEST_Z = 0;
const BACKGROUND_Z = -1_000_000;

/** What the planner needs from its output. */
export interface PlannerDeps {
  readonly width: number;
  readonly height: number;
  readonly primaryId: number;
  readonly paths: ReadonlySet<FramePath>;
  /** The KMS device can import dma-bufs (PRIME import). */
  readonly primeImport: boolean;
  readonly backgroundPixel: number;
  readonly cache: FramebufferCache;
  readonly maps: DmabufMaps;
  readonly composer: Pick<Composer, 'compose' | 'standIn'>;
  readonly allocator: Pick<PlaneAllocator, 'allocate' | 'noteReuse' | 'epoch'>;
  readonly cursor: Pick<CursorBuffers, 'frame'>;
  readonly hostFrames: Pick<HostFrames, 'sourceFor' | 'serialOf'>;
  readonly stats: Pick<OutputStats, 'bytesCopied' | 'bytesUploaded'>;
  fit(): FitMode;
  /** What the last successful commit set on each plane the output has lit. */
  committed(): ReadonlyMap<number, PlaneState>;
  /** FBs on screen or committed: the FB cache must not free them. */
  fbsOnScreen(): ReadonlySet<number>;
  /** The content key of the frame on screen. */
  onScreenKey(): string | undefined;
  /** The host background buffer (made on first use). */
  background(): { fbId: number; format: number };
  report(cause: string, message: string): void;
  refuse(source: GuestSource, plane: GuestPlaneInfo, cause: string, message: string, remembered?: boolean): void;
}

/** FB-cache failures that mean the guest described its buffer wrongly (not that the device refused it). */
function isInvalidGuestData(cause: string): boolean {
  return ['buffer-too-small', 'claimed-size', 'export-failed'].includes(cause) || cause.startsWith('format') || cause.endsWith('range');
}

/** The layers of one frame as they are built. */
interface Build {
  layers: Layer[];
  inputs: Map<string, ComposeInput>;
  /** Layers on a plane through a copy of their buffer (the cursor), not zero-copy. */
  copied: Set<string>;
  /** Host layers whose source has nothing to show. */
  hidden: PresentedLayer[];
  /** Something opaque covers the whole screen: no background needed. */
  covered: boolean;
  hostBufferIds: number[];
  onScreenIds: ReadonlySet<number>;
}

type Placement = { src: Rect; dst: Rect };

/**
 * What must stay the same for the last plan to stand when only the guest's buffer changes:
 * a copy of the plane's description (not the source's object, which it may reuse) and of
 * the output's fit and size. Compared field by field; a string key of the same made two
 * strings per frame, which under TCG cost more than the rest of the steady path.
 */
type SteadyShape = Pick<GuestPlaneInfo, 'generation' | 'format' | 'modifier' | 'width' | 'height' | 'stride' | 'offset' | 'size' | 'x' | 'y' | 'hotX' | 'hotY'> & {
  sid: number;
  transform: number;
  crop: Rect | null;
  displaySize: { width: number; height: number } | null;
  fit: FitMode;
  outW: number;
  outH: number;
};

function sameRect(a: Rect | null, b: Rect | undefined): boolean {
  return a === null ? b === undefined : b !== undefined && a.x === b.x && a.y === b.y && a.width === b.width && a.height === b.height;
}

export class FramePlanner {
  /** Cursor hotspots of this frame's layers, for the planes that take them. */
  private readonly hotspots = new Map<string, { x: number; y: number }>();
  /** The last full plan, when it can stand for the next frame of the same shape (see plan()). */
  private lastPlan: { shape: SteadyShape; epoch: number; planeId: number; content: FramePlan } | null = null;

  constructor(private readonly d: PlannerDeps) {}

  private get full(): Rect {
    return { x: 0, y: 0, width: this.d.width, height: this.d.height };
  }

  /** The plan of the described frame; null = nothing to change (or refused). `force` ignores "unchanged". */
  plan(f: FrameDescription, force: boolean): FramePlan | null {
    if (!force && this.d.onScreenKey() === f.contentKey && !f.region) return null;
    const g = f.guest;
    // Steady state: the guest only flipped to another buffer of the same shape, alone on
    // its plane. The last plan stands with the new FB; no layers, allocation or reports
    // to rebuild (under TCG that rebuilding was most of the host's per-frame CPU).
    const steady = g !== null && !f.host && !g.cursor && g.plane.transport === 'dmabuf';
    if (!force && steady) {
      const again = this.reuse(g, f.contentKey);
      if (again) return again;
    }
    this.lastPlan = null;
    const pre = g ? validatePlane(g.plane, null) : null;
    if (pre && !pre.ok) {
      this.d.refuse(g!.source, g!.plane, pre.cause, pre.message);
      return null; // keep the last good frame
    }
    const b: Build = { layers: [], inputs: new Map(), copied: new Set(), hidden: [], covered: false, hostBufferIds: [], onScreenIds: this.d.fbsOnScreen() };
    this.hotspots.clear();
    const place = g && pre?.ok ? this.guestLayer(b, g, pre.format.hasAlpha) : null;
    if (place === false) return null; // invalid guest data: keep the last good frame
    for (const l of f.host?.layers ?? []) {
      if (!this.hostLayer(b, l, f.sourced.get(l.id))) return null;
    }
    if (!b.covered) this.backgroundLayer(b);
    if (g?.cursor && place) this.cursorLayer(b, g, place);
    const ac = this.allocateAndCompose(b);
    if (!ac) return null; // nothing can show it: keep the last frame
    return this.finish(f, b, ac.alloc, ac.composed, place, steady);
  }

  /** The last plan with the guest's new FB, when the frame's shape is the last one's. */
  private reuse(g: GuestFrame, contentKey: string): FramePlan | null {
    const last = this.lastPlan;
    if (!last || last.epoch !== this.d.allocator.epoch || !this.shapeMatches(last.shape, g.sourceId, g.plane)) return null;
    const fb = this.d.cache.get('guest-primary', g.source, g.plane, this.d.fbsOnScreen());
    if (!fb.ok) return null;
    this.d.allocator.noteReuse();
    const p = g.plane;
    const planes = new Map(last.content.planes);
    planes.set(last.planeId, { ...planes.get(last.planeId)!, fbId: fb.entry.fbId });
    const a = last.content.alloc!;
    return { ...last.content, contentKey, planes, fbId: fb.entry.fbId, bufferId: p.bufferId, frame: p.frame, flipTimeNs: p.flipTimeNs, alloc: { ...a, reused: true, tests: 0, searchMs: 0 } };
  }

  /** `shape` still describes plane `p` of source `sid` on this output (no allocation: every frame). */
  private shapeMatches(a: SteadyShape, sid: number, p: GuestPlaneInfo): boolean {
    const ds = p.displaySize;
    return (
      a.sid === sid && a.generation === p.generation && a.format === p.format && a.modifier === p.modifier && a.width === p.width && a.height === p.height &&
      a.stride === p.stride && a.offset === p.offset && a.size === p.size && a.transform === (p.transform ?? 0) && sameRect(a.crop, p.crop) &&
      (a.displaySize === null ? ds === undefined : ds !== undefined && a.displaySize.width === ds.width && a.displaySize.height === ds.height) &&
      a.x === p.x && a.y === p.y && a.hotX === p.hotX && a.hotY === p.hotY && a.fit === this.d.fit() && a.outW === this.d.width && a.outH === this.d.height
    );
  }

  /** What must stay the same for the last plan to stand when only the guest's buffer changes. */
  private shapeOf(sid: number, p: GuestPlaneInfo): SteadyShape {
    return { sid, generation: p.generation, format: p.format, modifier: p.modifier, width: p.width, height: p.height, stride: p.stride, offset: p.offset, size: p.size, transform: p.transform ?? 0, crop: p.crop ? { ...p.crop } : null, displaySize: p.displaySize ? { ...p.displaySize } : null, x: p.x, y: p.y, hotX: p.hotX, hotY: p.hotY, fit: this.d.fit(), outW: this.d.width, outH: this.d.height };
  }

  private coversScreen(r: Rect): boolean {
    return r.x <= 0 && r.y <= 0 && r.x + r.width >= this.d.width && r.y + r.height >= this.d.height;
  }

  /** Why a guest plane cannot be scanned out whatever the planes offer, or undefined. */
  private noScanout(plane: GuestPlaneInfo): string | undefined {
    if (!this.d.paths.has('scanout')) return 'scanout is not among options.paths';
    if (plane.transport !== 'dmabuf') return 'region plane (no dma-buf)';
    if (!this.d.primeImport) return 'the KMS device cannot import dma-bufs (no PRIME import)';
    return undefined;
  }

  /**
   * A guest plane's FB for `layer` (or why it has none). False when the guest described
   * its buffer wrongly: the frame is refused.
   */
  private guestBuffer(b: Build, layer: Layer, source: GuestSource, plane: GuestPlaneInfo, refusal: (m: string) => string): boolean {
    layer.noBufferReason = this.noScanout(plane);
    if (layer.noBufferReason) return true;
    const fb = this.d.cache.get('guest-primary', source, plane, b.onScreenIds);
    if (fb.ok) {
      const e = fb.entry;
      layer.buffer = { fbId: e.fbId, format: e.format, modifier: e.modifier, width: e.width, height: e.height };
    } else if (isInvalidGuestData(fb.cause)) {
      this.d.refuse(source, plane, fb.cause, refusal(fb.message), fb.remembered);
      return false;
    } else {
      layer.noBufferReason = `import failed: ${fb.message}`;
      if (!fb.remembered) this.d.report(fb.cause, fb.message);
    }
    return true;
  }

  /** The attached guest's primary; its placement on screen, or false when refused. */
  private guestLayer(b: Build, g: GuestFrame, alpha: boolean): Placement | false {
    const p = g.plane;
    const view = viewOf(p);
    const place = placement(this.d.fit(), view.shown.width, view.shown.height, this.d.width, this.d.height);
    b.covered ||= this.coversScreen(place.dst) && !alpha;
    const gsrc = srcInBuffer(cropOf(place.src, view), p);
    const guest: Layer = { id: 'guest', zIndex: GUEST_Z, buffer: null, src: gsrc, dst: place.dst, changesOften: true, transform: p.transform ?? NORMAL };
    if (!this.guestBuffer(b, guest, g.source, p, (m) => m)) return false;
    b.layers.push(guest);
    b.inputs.set('guest', { kind: 'guest', id: 'guest', source: g.source, sourceId: g.sourceId, plane: p, src: gsrc, dst: place.dst, key: `${g.sourceId}/${p.bufferId}/${p.generation}/${p.frame ?? ''}` });
    return place;
  }

  /** One host layer (a host dma-buf, or a guest source's picture); false when the frame is refused. */
  private hostLayer(b: Build, l: CheckedLayer, q: PlaneQuery | undefined): boolean {
    if (isHostBuffer(l.buffer)) {
      this.hostBufferLayer(b, l, l.buffer);
      return true;
    }
    return this.sourcedLayer(b, l, l.buffer.source, q!);
  }

  private hostBufferLayer(b: Build, l: CheckedLayer, hb: HostBuffer): void {
    const alpha = l.alpha ?? 1;
    const hs = this.d.hostFrames.sourceFor(l.id);
    const plane: GuestPlaneInfo = { ...toPlane(hb), frame: this.d.hostFrames.serialOf(hb.bufferId) };
    b.hostBufferIds.push(hb.bufferId);
    b.covered ||= this.coversScreen(l.dst) && !hasAlpha(hb.format) && alpha >= 1;
    const hsrc = srcInBuffer(l.src, plane);
    const layer: Layer = { id: l.id, zIndex: l.zIndex, buffer: null, src: hsrc, dst: l.dst, alpha, transform: plane.transform ?? NORMAL };
    layer.noBufferReason = this.d.paths.has('scanout') ? (this.d.primeImport ? undefined : 'the KMS device cannot import dma-bufs (no PRIME import)') : 'scanout is not among options.paths';
    if (!layer.noBufferReason) {
      const fb = this.d.cache.get('host-layer', hs, plane, b.onScreenIds);
      if (fb.ok) layer.buffer = { fbId: fb.entry.fbId, format: fb.entry.format, modifier: fb.entry.modifier, width: fb.entry.width, height: fb.entry.height };
      else {
        layer.noBufferReason = `import failed: ${fb.message}`;
        if (!fb.remembered) this.d.report(`host-${fb.cause}`, `${hs.name}: ${fb.message}`);
      }
    }
    b.layers.push(layer);
    const hsid = this.d.cache.sourceId(hs);
    b.inputs.set(l.id, { kind: 'guest', id: l.id, source: hs, sourceId: hsid, plane, src: hsrc, dst: l.dst, alpha, key: `${hsid}/${hb.bufferId}/${plane.generation}/${plane.frame}` });
  }

  private sourcedLayer(b: Build, l: CheckedLayer, s: GuestSource, q: PlaneQuery): boolean {
    const alpha = l.alpha ?? 1;
    if (q.state !== 'ok') {
      const why = q.state === 'lost' ? `its source is lost: ${q.error.message}` : q.state === 'not-ready' ? `its source is not ready: ${q.reason}` : 'its source has no plane enabled';
      if (q.state === 'lost') this.d.report('layer-source-lost', `layer "${l.id}" (${s.name}): ${q.error.message}`);
      b.hidden.push({ id: l.id, planeId: null, planeType: null, how: 'hidden', reason: { code: 'no-buffer', message: why }, path: null, zeroCopy: false });
      return true;
    }
    const gp = q.plane;
    const v = validatePlane(gp, null);
    if (!v.ok) {
      this.d.refuse(s, gp, v.cause, `layer "${l.id}" (${s.name}): ${v.message}`);
      return false;
    }
    const gpic = pictureOf(gp);
    const lsrc = l.src.width > 0 ? l.src : { x: 0, y: 0, width: gpic.w, height: gpic.h };
    if (lsrc.x + lsrc.width > gpic.w || lsrc.y + lsrc.height > gpic.h) {
      this.d.report('layer-src-range', `layer "${l.id}": src ${lsrc.width}x${lsrc.height}+${lsrc.x}+${lsrc.y} reaches outside ${s.name}'s ${gpic.w}x${gpic.h} picture`);
      return false;
    }
    b.covered ||= this.coversScreen(l.dst) && !v.format.hasAlpha && alpha >= 1;
    const ssid = this.d.cache.sourceId(s);
    const msrc = srcInBuffer(lsrc, gp);
    const layer: Layer = { id: l.id, zIndex: l.zIndex, buffer: null, src: msrc, dst: l.dst, alpha, changesOften: true, transform: gp.transform ?? NORMAL };
    if (!this.guestBuffer(b, layer, s, gp, (m) => `layer "${l.id}": ${m}`)) return false;
    b.layers.push(layer);
    b.inputs.set(l.id, { kind: 'guest', id: l.id, source: s, sourceId: ssid, plane: gp, src: msrc, dst: l.dst, alpha, key: `${ssid}/${gp.bufferId}/${gp.generation}/${gp.frame ?? ''}` });
    return true;
  }

  /** The host background, where nothing opaque covers the screen. */
  private backgroundLayer(b: Build): void {
    const bg = this.d.background();
    const full = this.full;
    b.layers.push({ id: 'background', zIndex: BACKGROUND_Z, buffer: { fbId: bg.fbId, format: bg.format, modifier: drm.DRM_FORMAT_MOD_LINEAR, width: this.d.width, height: this.d.height }, src: full, dst: full, hostBuffer: true });
    b.inputs.set('background', { kind: 'solid', id: 'background', pixel: this.d.backgroundPixel, dst: full });
  }

  /** The guest's cursor. */
  private cursorLayer(b: Build, g: GuestFrame, place: Placement): void {
    const c = this.d.cursor.frame(g.source, g.sourceId, g.cursor!, place, this.d.cache, this.d.maps, this.d.paths.has('scanout'), b.onScreenIds);
    if ('error' in c) {
      this.d.report(`cursor-${c.cause}`, c.error);
      return;
    }
    b.layers.push(c.layer);
    b.inputs.set('cursor', c.input);
    this.hotspots.set('cursor', { x: c.hotX, y: c.hotY });
    if (c.copied) {
      b.copied.add('cursor');
      this.d.report('cursor-copied', `the guest cursor is copied into a cursor-sized buffer: ${c.copied}`);
    }
  }

  /** Planes for the layers, and the composition of those without one; null when nothing can show it. */
  private allocateAndCompose(b: Build): { alloc: Allocation; composed?: Composed } | null {
    const d = this.d;
    const alloc = d.allocator.allocate(b.layers, d.paths.has('scanout') ? {} : { composeOnly: 'scanout is not among options.paths' });
    if (!alloc.composition) return { alloc };
    const ins = alloc.composed.map((id) => b.inputs.get(id)!);
    const c = d.composer.compose(ins, d.committed().get(d.primaryId)?.fbId ?? 0, d.paths.has('gles'), d.paths.has('copy'));
    if ('error' in c) {
      const failed = c.layer !== undefined ? b.inputs.get(c.layer) : undefined;
      if (failed?.kind === 'guest') d.refuse(failed.source, failed.plane, c.cause, c.error);
      else d.report(c.cause, c.error);
      return null;
    }
    if (c.fallback) d.report('gles-fallback', `GPU composition failed, the CPU composed: ${c.fallback}`);
    d.stats.bytesCopied += c.bytesCopied;
    d.stats.bytesUploaded += c.gles?.uploadedBytes ?? 0;
    return { alloc, composed: c };
  }

  /** Every plane's wanted state for `uses` (planes committed now and not used: off). */
  planesFor(uses: readonly PlaneUse[], layers: ReadonlyMap<string, Layer>, compositionFb: number | undefined): Map<number, PlaneState | null> {
    const planes = new Map<number, PlaneState | null>();
    for (const id of this.d.committed().keys()) planes.set(id, null);
    for (const u of uses) planes.set(u.planeId, this.stateFor(u, layers, compositionFb));
    return planes;
  }

  /** A plane's state for one use of an assignment; `compositionFb` for the composition buffer. */
  private stateFor(u: PlaneUse, layers: ReadonlyMap<string, Layer>, compositionFb: number | undefined): PlaneState {
    if (u.layer === null) return { fbId: compositionFb ?? this.d.composer.standIn(), src: this.full, dst: this.full, zpos: u.zpos };
    const l = layers.get(u.layer)!;
    const hot = this.hotspots.get(u.layer);
    return { fbId: l.buffer!.fbId, src: l.src, dst: l.dst, transform: l.transform, zpos: u.zpos, hotX: hot?.x, hotY: hot?.y };
  }

  /** Per layer: on which plane, or composed by which path, or hidden; and the source frame it showed. */
  private reports(f: FrameDescription, b: Build, alloc: Allocation, composed: Composed | undefined): PresentedLayer[] {
    const frameOf = (id: string) => {
      const q = f.sourced.get(id);
      return q?.state === 'ok' && q.plane.frame !== undefined ? { frame: q.plane.frame } : {};
    };
    return [
      ...alloc.layers.map((r): PresentedLayer => {
        if (r.how === 'plane') return { ...r, path: 'scanout', zeroCopy: !b.copied.has(r.id), ...frameOf(r.id) };
        if (r.how === 'composed') return { ...r, path: composed!.path, zeroCopy: false, ...frameOf(r.id) };
        return { ...r, path: null, zeroCopy: false, ...frameOf(r.id) };
      }),
      ...b.hidden,
    ];
  }

  /** The plan: planes, path of the guest's pixels and why, reports; remembered when it can stand for the next frames. */
  private finish(f: FrameDescription, b: Build, alloc: Allocation, composed: Composed | undefined, place: Placement | null, steady: boolean): FramePlan {
    const full = this.full;
    const byId = new Map(b.layers.map((l) => [l.id, l]));
    const planes = this.planesFor(alloc.uses, byId, composed?.fbId);
    const host = f.host;
    const frameInfo = { contentKey: f.contentKey, frameId: host?.id, hostBufferIds: b.hostBufferIds, hostLayerIds: (host?.layers ?? []).map((l) => l.id), planes, layers: this.reports(f, b, alloc, composed), alloc, allocLayers: b.layers, composed };
    const p = f.guest?.plane;
    const g = p ? alloc.layers.find((l) => l.id === 'guest') : undefined;
    if (!p || !g || !place) {
      // No guest in this frame: the frame's path is composition's if anything was composed.
      const path: PresentPath = composed ? composed.path : 'scanout';
      return { ...frameInfo, path, fbId: planes.get(this.d.primaryId)?.fbId ?? 0, src: full, dst: full, gles: composed?.path === 'gles' ? composed.gles : undefined };
    }
    const onPlane = g.how === 'plane';
    const path: PresentPath = onPlane ? 'scanout' : composed!.path;
    let reason = g.reason?.message;
    if (composed?.fallback && !onPlane) reason = `${reason}; GPU composition: ${composed.fallback}`;
    const planned: FramePlan = {
      ...frameInfo,
      bufferId: p.bufferId,
      frame: p.frame,
      flipTimeNs: p.flipTimeNs,
      path,
      fbId: onPlane ? byId.get('guest')!.buffer!.fbId : composed!.fbId,
      src: onPlane ? place.src : full,
      dst: onPlane ? place.dst : full,
      reason: onPlane ? undefined : reason,
      gles: !onPlane && composed?.path === 'gles' ? composed.gles : undefined,
    };
    if (steady && onPlane && !composed && g.planeId !== null) this.lastPlan = { shape: this.shapeOf(f.guest!.sourceId, p), epoch: this.d.allocator.epoch, planeId: g.planeId, content: planned };
    return planned;
  }
}
