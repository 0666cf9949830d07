// wl_compositor, wl_surface, wl_region: double-buffered surface state (attach, frame
// callbacks, presentation feedback) applied on commit. What a commit shows, and when its
// callbacks fire, is decided by whoever the surface's role hands commits to (the kiosk's
// toplevel → SurfaceSource); a surface without a shown role gets its callbacks at once.
import { EventEmitter } from 'node:events';
import type { Display, Global } from '../../protocols/runtime.js';
import { ProtocolViolation } from '../../protocols/runtime.js';
import { WlCompositor, WlSurface, WlSurfaceError, WlCallback, type WlBuffer } from '../../protocols/generated/wayland.js';
import type { WpPresentationFeedback } from '../../protocols/generated/presentation_time.js';
import { NORMAL, isTransform, type Transform } from '../transform.js';
import { bufferOf, type ClientBuffer } from './buffer.js';

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
}

export interface SurfaceEvents {
  commit: [SurfaceCommit];
  destroy: [];
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
  #pendingBuffer: ClientBuffer | null | undefined = undefined;
  #pendingBufferRes: WlBuffer | null = null;
  #frames: WlCallback[] = [];
  #feedbacks: WpPresentationFeedback[] = [];

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

  frame(cb: WlCallback): void {
    this.#frames.push(cb);
  }

  setBufferTransform(t: Transform): void {
    this.#pendingTransform = t;
  }

  commit(): void {
    // A buffer destroyed between attach and commit attaches nothing visible.
    let pending = this.#pendingBuffer;
    if (pending && this.#pendingBufferRes?.destroyed) pending = null;
    this.beforeCommit?.(pending);
    const attached = pending !== undefined;
    if (attached) this.buffer = pending ?? null;
    if (this.buffer?.resource.destroyed) this.buffer = null;
    this.#pendingBuffer = undefined;
    this.#pendingBufferRes = null;
    if (this.#pendingTransform !== undefined) this.transform = this.#pendingTransform;
    this.#pendingTransform = undefined;
    const c: SurfaceCommit = {
      seq: ++commitSeq,
      buffer: this.buffer,
      attached,
      frameCallbacks: this.#frames,
      feedbacks: this.#feedbacks,
      transform: this.transform,
    };
    this.#frames = [];
    this.#feedbacks = [];
    if (this.listenerCount('commit') > 0) this.emit('commit', c);
    else finishUnshown(c);
  }

  /** @internal */
  _destroyed(): void {
    for (const fb of this.#feedbacks) if (!fb.destroyed) (fb.sendDiscarded(), fb.destroy());
    this.#feedbacks = [];
    this.emit('destroy');
  }
}

/** A commit nobody shows: callbacks done now, feedback discarded (nothing was presented). */
export function finishUnshown(c: SurfaceCommit): void {
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
          },
          damage() {},
          damageBuffer() {},
          frame(_res, cb) {
            surface.frame(cb.create({}));
          },
          setOpaqueRegion() {},
          setInputRegion() {},
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
          },
          offset() {},
        });
        const surface = new Surface(r);
        r.onDestroy(() => surface._destroyed());
        onSurface(surface);
      },
      createRegion(_res, rid) {
        rid.create({ add() {}, subtract() {} });
      },
    });
  });
}
