// The GLES compositor's objects and vocabulary: what it imports (DmabufImport), draws
// (GlesLayer) and reports (GlesInfo, ComposeResult), the textures (GlesImage) and scanout
// buffers (GlesTarget) it hands out, and the ring that double/triple-buffers targets.
// Each object is freed through its owner (the compositor, gles.ts), which tracks them all.
import type * as libc from '../../ffi/libc.js';
import * as drm from '../../ffi/drm.js';
import * as gbm from '../../ffi/gbm.js';
import type * as egl from '../../ffi/egl.js';
import type { Rect } from '../geometry.js';
import type { Transform } from '../transform.js';

export type { Rect };

export function errMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export function fourccList(formats: Iterable<number>): string {
  return [...formats].map((f) => drm.fourccName(f)).join(' ');
}
// Public types
// ---------------------------------------------------------------------------------------

/** A single-plane dma-buf as a guest source describes it. */
export interface DmabufImport {
  fd: number;
  format: number;
  /** DRM_FORMAT_MOD_INVALID or undefined = implicit layout. */
  modifier?: bigint;
  width: number;
  height: number;
  stride: number;
  offset?: number;
}

export type GlesFilter = 'nearest' | 'linear';

export interface GlesLayer {
  image: GlesImage;
  /** Source rectangle in buffer pixels; default the whole buffer. */
  src?: Rect;
  /** Destination rectangle in target pixels (may reach outside the target: clipped). */
  dst: Rect;
  /** Plane alpha 0..1, default 1. Sources are taken as premultiplied (Wayland's rule). */
  alpha?: number;
  /** How the buffer holds the picture (default normal): drawn with it undone; `src` is in buffer pixels. */
  transform?: Transform;
}

export interface ComposeOptions {
  /** Background, RGBA 0..1; default opaque black. */
  clear?: readonly [number, number, number, number];
  /** Scaling filter; default 'linear'. */
  filter?: GlesFilter;
}

export interface ComposeResult {
  layers: number;
  /** Bytes copied into textures for upload-path images. */
  uploadedBytes: number;
  ms: number;
}

export interface GlesInfo {
  /** The KMS node GBM/EGL run on. */
  devicePath: string;
  /** false when the KMS fd itself is shared with GBM (see the ownership notes). */
  privateFd: boolean;
  gbmBackend: string;
  /** EGL_MESA_query_driver's name ('kms_swrast', 'iris'…), or null. */
  driver: string | null;
  eglVersion: string;
  eglVendor: string;
  clientExtensions: string[];
  eglExtensions: string[];
  glVendor: string;
  glRenderer: string;
  glVersion: string;
  glExtensions: string[];
  /** GLES major version of the context (3, or 2 when 3 is not offered). */
  contextVersion: number;
  /** Made current without a surface (EGL_KHR_surfaceless_context) or on a GBM window surface. */
  surfaceless: boolean;
  /** Importable fourccs and their modifiers; null without EGL_EXT_image_dma_buf_import_modifiers. */
  dmabufFormats: ReadonlyMap<number, readonly egl.DmaBufModifier[]> | null;
  /** A software rasteriser: imports are probed and may take the upload path. */
  software: boolean;
}

export interface GlesCreateOptions {
  /** 'auto' (default): surfaceless when possible. 'window': always a GBM window surface. */
  surface?: 'auto' | 'window';
  /** Whether importDmabuf may fall back to the upload path (default true). */
  allowUpload?: boolean;
}

export type GlesImportErrorReason = 'invalid' | 'unsupported-format' | 'unsupported-modifier' | 'external-only' | 'egl' | 'unreadable';

/** importDmabuf failed: `reason` for the caller's negative cache, the message for people. */
export class GlesImportError extends Error {
  constructor(
    readonly reason: GlesImportErrorReason,
    message: string,
    override readonly cause?: unknown,
  ) {
    super(message);
    this.name = 'GlesImportError';
  }
}

export type RingState = 'free' | 'busy' | 'scanout';

/**
 * A ring of scanout targets so one can be on screen while another is drawn (and, with
 * three, a third waits for its flip). acquire() hands out a free target; displayed(t)
 * records that the flip showing t completed, which frees the one it replaced; release(t)
 * returns a target whose commit never happened.
 */
export class TargetRing<T extends { close(): void }> {
  private readonly states: Map<T, RingState>;
  private current: T | null = null;
  private closed = false;

  constructor(readonly targets: readonly T[]) {
    if (targets.length < 1) throw new RangeError('target ring: no targets');
    this.states = new Map(targets.map((t) => [t, 'free' as RingState]));
  }

  private stateOf(t: T): RingState {
    const s = this.states.get(t);
    if (s === undefined) throw new Error('target ring: not one of this ring\'s targets');
    return s;
  }

  state(t: T): RingState {
    return this.stateOf(t);
  }

  /** The target the last completed flip put on screen. */
  get onScreen(): T | null {
    return this.current;
  }

  /** A free target to draw into (then commit it, then displayed() when its flip completes). */
  acquire(): T {
    if (this.closed) throw new Error('target ring is closed');
    // Round-robin from the one after the screen's, so a just-freed target rests a frame.
    const n = this.targets.length;
    const start = this.current ? this.targets.indexOf(this.current) + 1 : 0;
    for (let i = 0; i < n; i++) {
      const t = this.targets[(start + i) % n];
      if (this.states.get(t) === 'free') {
        this.states.set(t, 'busy');
        return t;
      }
    }
    throw new Error(`target ring: all ${n} targets are in use (${n === 1 ? 'one is on screen' : 'waiting for page flips'})`);
  }

  /** The flip showing `t` completed: `t` is on screen, the previous one is free again. */
  displayed(t: T): void {
    const s = this.stateOf(t);
    if (s === 'free') throw new Error('target ring: displayed() for a target that was not acquired');
    if (this.current && this.current !== t) this.states.set(this.current, 'free');
    this.states.set(t, 'scanout');
    this.current = t;
  }

  /** Gives back an acquired target that will not be shown (its commit failed). */
  release(t: T): void {
    if (this.stateOf(t) === 'busy') this.states.set(t, 'free');
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.targets) t.close();
  }
}

// ---------------------------------------------------------------------------------------
// Images and targets
// ---------------------------------------------------------------------------------------

/** @internal */
export interface ImageState {
  texture: number;
  eglImage: egl.EGLImage | null;
  /** Upload path: our dup of the dma-buf and its read-only mapping. */
  fd: number;
  map: libc.Mapping | null;
  stride: number;
  offset: number;
  glFormat: number;
  /** Upload path: the GL pixel type (GL_UNSIGNED_BYTE, or 2_10_10_10_REV for 10-bit formats). */
  glType: number;
  /** Ignore the texture's alpha (X of XR24/XB24 on the upload path). */
  opaque: boolean;
  /** GL filter the texture is set to now. */
  filter: number;
}

/** A guest dma-buf as a texture. Owned by its compositor; close() (or the compositor's) frees it. */
export class GlesImage {
  /** @internal */
  _s: ImageState | null;
  constructor(
    private readonly owner: { _releaseImage(img: GlesImage): void },
    readonly width: number,
    readonly height: number,
    readonly format: number,
    readonly modifier: bigint,
    /** 'dmabuf': the texture reads the dma-buf itself (zero-copy). 'upload': copied in at each compose. */
    readonly path: 'dmabuf' | 'upload',
    /** Why the upload path was taken. */
    readonly uploadReason: string | null,
    state: ImageState,
  ) {
    this._s = state;
  }

  get closed(): boolean {
    return this._s === null;
  }

  close(): void {
    this.owner._releaseImage(this);
  }
}

/** @internal */
export interface TargetState {
  bo: gbm.GbmBo;
  eglImage: egl.EGLImage;
  renderbuffer: number;
  framebuffer: number;
}

/** A scanout buffer the compositor draws into, with its KMS framebuffer. */
export class GlesTarget {
  /** @internal */
  _s: TargetState | null;
  constructor(
    private readonly owner: { _releaseTarget(t: GlesTarget, keepOnScreen: boolean): void },
    readonly width: number,
    readonly height: number,
    readonly format: number,
    /** DRM_FORMAT_MOD_LINEAR (we always ask for linear, which every scanout engine takes). */
    readonly modifier: bigint,
    readonly stride: number,
    readonly offset: number,
    /** The KMS framebuffer id on the KMS device's fd: put it in a plane's FB_ID. */
    readonly fbId: number,
    state: TargetState,
  ) {
    this._s = state;
  }

  get closed(): boolean {
    return this._s === null;
  }

  /** A new dma-buf fd of the target's buffer (the caller closes it). */
  exportDmabuf(): number {
    if (!this._s) throw new Error('GlesTarget is closed');
    return gbm.boGetFd(this._s.bo);
  }

  /**
   * Frees the FB, the GL objects and the buffer. `keepOnScreen` removes the FB with
   * CLOSEFB so a plane still showing it stays lit (the kernel keeps the memory until the
   * plane moves on); by default RMFB, which turns such a plane off.
   */
  close(opts: { keepOnScreen?: boolean } = {}): void {
    this.owner._releaseTarget(this, !!opts.keepOnScreen);
  }
}
