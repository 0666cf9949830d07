// wl_compositor, wl_surface, wl_region: double-buffered surface state (attach, frame
// callbacks, presentation feedback) applied on commit. What a commit shows, and when its
// callbacks fire, is decided by whoever the surface's role hands commits to (the kiosk's
// toplevel → SurfaceSource); a surface without a shown role gets its callbacks at once.
import { EventEmitter } from 'node:events';
import type { Display, Global } from '../../protocols/runtime.js';
import { ProtocolViolation } from '../../protocols/runtime.js';
import { WlCompositor, WlSurface, WlSurfaceError, WlCallback, type WlBuffer } from '../../protocols/generated/wayland.js';
import type { WpPresentationFeedback } from '../../protocols/generated/presentation_time.js';
import { NORMAL, isTransform, pictureSize, type Transform } from '../transform.js';
import { WpViewportError, type WpViewport } from '../../protocols/generated/viewporter.js';
import type { Rect } from '../geometry.js';
import { bufferAttached, bufferOf, type ClientBuffer } from './buffer.js';
import { Region, type RegionShape } from './region.js';

export interface SurfaceCommit {
  /** Compositor-wide commit counter: the frame number the output reports back. */
  readonly seq: number;
  /** The surface's buffer after this commit (null: unmapped). */
  readonly buffer: ClientBuffer | null;
  /** Whether this commit attached a buffer (or null). */
  readonly attached: boolean;
  readonly frameCallbacks: WlCallback[];
  readonly feedbacks: WpPresentationFeedback[];
  /** The buffer transform in effect after this commit (wl_surface.set_buffer_transform). */
  readonly transform: Transform;
  /**
   * wp_viewport after this commit: the part of the buffer's picture shown (picture pixels,
   * buffer scale applied; null = all of it) and the surface size it is shown at (null =
   * the crop's size, or the picture's over the buffer scale).
   */
  readonly crop: Rect | null;
  readonly size: { w: number; h: number } | null;
}

/** wp_viewport state: source in surface coordinates (fractional), destination size. */
export interface ViewportState {
  src: Rect | null;
  dst: { w: number; h: number } | null;
}

/** What a wp_viewport needs of its surface (kept here so surface.ts does not import the viewporter). */
export interface ViewportOwner {
  /** The wp_viewport resource: protocol errors found at commit are raised on it. */
  resource: WpViewport;
  pending: Partial<ViewportState>;
  current: ViewportState;
  /** Its wp_viewport was destroyed: the next commit clears the state and drops it. */
  detached?: boolean;
}

export interface SurfaceEvents {
  commit: [SurfaceCommit];
  /** The surface's state was applied (before 'commit'): sub-surface state goes with it. */
  applied: [];
  destroy: [];
}

/** wl_surface state committed but not applied yet (a synchronized sub-surface's cache). */
interface PendingState {
  /** undefined: nothing attached. */
  buffer: ClientBuffer | null | undefined;
  transform: Transform | undefined;
  scale: number | undefined;
  viewport: { owner: ViewportOwner; pending: Partial<ViewportState> } | null;
  /** undefined: unchanged; null: the whole surface. */
  input: RegionShape | null | undefined;
  frames: WlCallback[];
  feedbacks: WpPresentationFeedback[];
}

/** `later` committed on top of `earlier` (both cached): what is set later wins; callbacks add up. */
function mergeState(earlier: PendingState, later: PendingState): PendingState {
  const vp = later.viewport && earlier.viewport?.owner === later.viewport.owner ? { owner: later.viewport.owner, pending: { ...earlier.viewport.pending, ...later.viewport.pending } } : (later.viewport ?? earlier.viewport);
  return {
    buffer: later.buffer !== undefined ? later.buffer : earlier.buffer,
    transform: later.transform ?? earlier.transform,
    scale: later.scale ?? earlier.scale,
    viewport: vp,
    input: later.input !== undefined ? later.input : earlier.input,
    frames: [...earlier.frames, ...later.frames],
    feedbacks: [...earlier.feedbacks, ...later.feedbacks],
  };
}

let commitSeq = 0;

/** Milliseconds of CLOCK_MONOTONIC, as wl_callback.done carries them (wrapping at 2^32). */
export function callbackTime(ns: bigint = process.hrtime.bigint()): number {
  return Number((ns / 1_000_000n) & 0xffffffffn);
}

/** Completes frame callbacks (wl_callback.done then destroy). */
export function completeCallbacks(cbs: readonly WlCallback[], timeNs?: bigint): void {
  const t = callbackTime(timeNs);
  for (const cb of cbs) {
    if (cb.destroyed) continue;
    cb.sendDone(t);
    cb.destroy();
  }
}

export class Surface extends EventEmitter<SurfaceEvents> {
  readonly resource: WlSurface;
  /** 'xdg_toplevel', 'xdg_popup' or null; a role, once given, stays (wl_surface rules). */
  role: string | null = null;
  /** Runs before a commit is applied; may throw a ProtocolViolation (xdg: unconfigured buffer). */
  beforeCommit: ((pendingBuffer: ClientBuffer | null | undefined) => void) | null = null;
  buffer: ClientBuffer | null = null;
  /** Current buffer transform (double-buffered: set_buffer_transform, then commit). */
  transform: Transform = NORMAL;
  #pendingTransform: Transform | undefined = undefined;
  /** Current buffer scale (wl_surface.set_buffer_scale). */
  scale = 1;
  #pendingScale: number | undefined = undefined;
  /** The surface's wp_viewport (at most one: viewport_exists), null without. */
  viewport: ViewportOwner | null = null;
  #pendingBuffer: ClientBuffer | null | undefined = undefined;
  #pendingBufferRes: WlBuffer | null = null;
  #frames: WlCallback[] = [];
  #feedbacks: WpPresentationFeedback[] = [];
  /**
   * The sum of the offsets committed with attach (v<5) or wl_surface.offset (v5): where a
   * drag icon's picture sits from the pointer (the only role here that uses it).
   */
  offset = { x: 0, y: 0 };
  #pendingOffset: { x: number; y: number } | null = null;
  /**
   * Where input finds the surface (wl_surface.set_input_region, double-buffered), in surface
   * coordinates and always cut to the surface's size; null: all of it (the default).
   */
  inputRegion: RegionShape | null = null;
  #pendingInput: RegionShape | null | undefined = undefined;
  /** The last applied commit (null before the first). */
  current: SurfaceCommit | null = null;
  /**
   * Set while the surface is a sub-surface (wl_subsurface): whether its commits are
   * cached until its parent's state is applied (synchronized, itself or through a parent).
   */
  subsurface: { synchronized(): boolean; readonly parent: Surface | null } | null = null;
  /** State committed while synchronized, applied with the parent's (wl_subsurface). */
  #cached: PendingState | null = null;

  constructor(resource: WlSurface) {
    super();
    this.resource = resource;
    resource.data = this;
  }

  static of(resource: WlSurface): Surface {
    const s = resource.data;
    if (!(s instanceof Surface)) throw new Error(`${resource}: not a surface of this compositor`);
    return s;
  }

  /** wp_presentation.feedback: joins the pending state. */
  addFeedback(fb: WpPresentationFeedback): void {
    this.#feedbacks.push(fb);
  }

  attach(buffer: WlBuffer | null): void {
    this.#pendingBufferRes = buffer;
    if (buffer === null) {
      this.#pendingBuffer = null;
      return;
    }
    const b = bufferOf(buffer);
    if (!b) throw new ProtocolViolation(this.resource, WlSurfaceError.INVALID_SIZE, `${buffer} is not a buffer this compositor made`);
    this.#pendingBuffer = b;
  }

  /** attach's (x, y) before version 5, or wl_surface.offset: applied with the next commit. */
  addOffset(x: number, y: number): void {
    const p = this.#pendingOffset ?? { x: 0, y: 0 };
    this.#pendingOffset = { x: p.x + x, y: p.y + y };
  }

  frame(cb: WlCallback): void {
    this.#frames.push(cb);
  }

  /** set_input_region: a copy of the region now (null: infinite), applied with the next commit. */
  setInputRegion(region: RegionShape | null): void {
    this.#pendingInput = region;
  }

  /** Whether input at a surface-local point finds this surface (its size and input region). */
  acceptsInput(p: { x: number; y: number }): boolean {
    const size = this.size;
    if (!size || p.x < 0 || p.y < 0 || p.x >= size.w || p.y >= size.h) return false;
    return this.inputRegion?.contains(p) ?? true;
  }

  setBufferTransform(t: Transform): void {
    this.#pendingTransform = t;
  }

  setBufferScale(scale: number): void {
    this.#pendingScale = scale;
  }

  /**
   * Applies pending wp_viewport state against the buffer this commit shows, with the
   * protocol's checks (bad_size, out_of_buffer); returns the commit's crop and surface size.
   */
  #applyViewport(vp: PendingState['viewport']): Pick<SurfaceCommit, 'crop' | 'size'> {
    if (vp) {
      if (vp.pending.src !== undefined) vp.owner.current.src = vp.pending.src;
      if (vp.pending.dst !== undefined) vp.owner.current.dst = vp.pending.dst;
      if (vp.owner.detached && this.viewport === vp.owner) this.viewport = null;
    }
    const v = vp?.owner ?? this.viewport;
    const src = v?.current.src ?? null;
    const dst = v?.current.dst ?? null;
    const b = this.buffer;
    if (!b) return { crop: null, size: null };
    const pic = pictureSize(this.transform, b.width, b.height);
    if (src && !dst && (!Number.isInteger(src.width) || !Number.isInteger(src.height))) {
      throw new ProtocolViolation(v!.resource, WpViewportError.BAD_SIZE, `source size ${src.width}x${src.height} is not an integer and no destination size is set`);
    }
    if (src && ((src.x + src.width) * this.scale > pic.w || (src.y + src.height) * this.scale > pic.h)) {
      throw new ProtocolViolation(v!.resource, WpViewportError.OUT_OF_BUFFER, `source rectangle ${src.width}x${src.height}+${src.x}+${src.y} reaches outside the ${pic.w / this.scale}x${pic.h / this.scale} surface the buffer makes`);
    }
    // Picture pixels: surface coordinates times the buffer scale, rounded to whole pixels
    // (planes could take 16.16 sources; the composers work on whole pixels).
    let crop: Rect | null = null;
    if (src) {
      const x0 = Math.round(src.x * this.scale);
      const y0 = Math.round(src.y * this.scale);
      crop = { x: x0, y: y0, width: Math.max(1, Math.round((src.x + src.width) * this.scale) - x0), height: Math.max(1, Math.round((src.y + src.height) * this.scale) - y0) };
    }
    const size = dst ?? (src ? { w: src.width, h: src.height } : this.scale !== 1 ? { w: Math.max(1, Math.round(pic.w / this.scale)), h: Math.max(1, Math.round(pic.h / this.scale)) } : null);
    return { crop, size };
  }

  commit(): void {
    // A buffer destroyed between attach and commit attaches nothing visible.
    let buffer = this.#pendingBuffer;
    if (buffer && this.#pendingBufferRes?.destroyed) buffer = null;
    this.beforeCommit?.(buffer);
    if (this.#pendingOffset) {
      this.offset = { x: this.offset.x + this.#pendingOffset.x, y: this.offset.y + this.#pendingOffset.y };
      this.#pendingOffset = null;
    }
    const v = this.viewport;
    const st: PendingState = {
      buffer,
      transform: this.#pendingTransform,
      scale: this.#pendingScale,
      viewport: v ? { owner: v, pending: v.pending } : null,
      input: this.#pendingInput,
      frames: this.#frames,
      feedbacks: this.#feedbacks,
    };
    if (v) v.pending = {};
    this.#pendingBuffer = undefined;
    this.#pendingBufferRes = null;
    this.#pendingTransform = undefined;
    this.#pendingScale = undefined;
    this.#pendingInput = undefined;
    this.#frames = [];
    this.#feedbacks = [];
    if (this.subsurface?.synchronized()) {
      this.#cached = this.#cached ? mergeState(this.#cached, st) : st;
      return;
    }
    this.#apply(st);
  }

  /** Applies the state cached while synchronized, if any (the parent's state is being applied). */
  applyCached(): void {
    const st = this.#cached;
    this.#cached = null;
    if (st) this.#apply(st);
    // Nothing cached: its own sub-surfaces' state still goes with the parent's (as Weston).
    else this.emit('applied');
  }

  /** Drops cached state (the sub-surface role is gone): its frames finish unshown. */
  dropCached(): void {
    const st = this.#cached;
    this.#cached = null;
    if (st) finishUnshown({ frameCallbacks: st.frames, feedbacks: st.feedbacks });
  }

  #apply(st: PendingState): void {
    const attached = st.buffer !== undefined;
    if (attached) this.buffer = st.buffer ?? null;
    if (attached && this.buffer) bufferAttached(this.buffer);
    if (this.buffer?.resource.destroyed) this.buffer = null;
    if (st.transform !== undefined) this.transform = st.transform;
    if (st.scale !== undefined) this.scale = st.scale;
    if (st.input !== undefined) this.inputRegion = st.input;
    const { crop, size } = this.#applyViewport(st.viewport);
    const c: SurfaceCommit = {
      seq: ++commitSeq,
      buffer: this.buffer,
      attached,
      frameCallbacks: st.frames,
      feedbacks: st.feedbacks,
      transform: this.transform,
      crop,
      size,
    };
    this.current = c;
    // Sub-surfaces' positions, stacking and synchronized state go with this state.
    this.emit('applied');
    if (this.listenerCount('commit') > 0) this.emit('commit', c);
    else finishUnshown(c);
  }

  /** Size on screen in surface coordinates (viewport, scale and transform applied); null when unmapped. */
  get size(): { w: number; h: number } | null {
    const c = this.current;
    if (!c?.buffer || !this.buffer) return null;
    return c.size ?? pictureSize(c.transform, c.buffer.width, c.buffer.height);
  }

  /** @internal */
  _destroyed(): void {
    for (const fb of this.#feedbacks) if (!fb.destroyed) (fb.sendDiscarded(), fb.destroy());
    this.#feedbacks = [];
    this.dropCached();
    this.emit('destroy');
  }
}

/** A commit nobody shows: callbacks done now, feedback discarded (nothing was presented). */
export function finishUnshown(c: Pick<SurfaceCommit, 'frameCallbacks' | 'feedbacks'>): void {
  completeCallbacks(c.frameCallbacks);
  for (const fb of c.feedbacks) {
    if (fb.destroyed) continue;
    fb.sendDiscarded();
    fb.destroy();
  }
}

export function createCompositorGlobal(display: Display, onSurface: (s: Surface) => void): Global<WlCompositor> {
  return WlCompositor.global(display, 5, (id) => {
    id.create({
      createSurface(_res, sid) {
        const r = sid.create({
          attach(res, buffer, x, y) {
            if (res.version >= 5 && (x !== 0 || y !== 0)) {
              throw new ProtocolViolation(res, WlSurfaceError.INVALID_OFFSET, `attach with offset (${x},${y}): use wl_surface.offset since version 5`);
            }
            surface.attach(buffer);
            if (x !== 0 || y !== 0) surface.addOffset(x, y);
          },
          damage() {},
          damageBuffer() {},
          frame(_res, cb) {
            surface.frame(cb.create({}));
          },
          setOpaqueRegion() {},
          setInputRegion(_res, region) {
            surface.setInputRegion(region ? Region.of(region).snapshot() : null);
          },
          commit() {
            surface.commit();
          },
          setBufferTransform(res, transform) {
            if (!isTransform(transform)) {
              throw new ProtocolViolation(res, WlSurfaceError.INVALID_TRANSFORM, `buffer transform ${transform} is not a wl_output.transform`);
            }
            surface.setBufferTransform(transform);
          },
          setBufferScale(res, scale) {
            if (scale < 1) throw new ProtocolViolation(res, WlSurfaceError.INVALID_SCALE, `buffer scale ${scale} is not positive`);
            surface.setBufferScale(scale);
          },
          offset(_res, x, y) {
            surface.addOffset(x, y);
          },
        });
        const surface = new Surface(r);
        r.onDestroy(() => surface._destroyed());
        onSurface(surface);
      },
      createRegion(_res, rid) {
        const region = new Region(
          rid.create({
            add(_r, x, y, w, h) {
              region.add(x, y, w, h);
            },
            subtract(_r, x, y, w, h) {
              region.subtract(x, y, w, h);
            },
          }),
        );
      },
    });
  });
}
