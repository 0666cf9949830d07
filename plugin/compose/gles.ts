// GPU composition: the fallback between zero-copy planes and the CPU copy path. Guest
// dma-bufs become GL textures (EGLImages), are drawn as textured quads into a scanout
// buffer allocated with GBM on the KMS device, and that buffer is shown as one KMS
// framebuffer on one plane.
//
// Ownership, and why it is arranged this way:
//  - The compositor opens its *own* file descriptor on the KMS device node for GBM/EGL.
//    GEM handles are per open file and not reference-counted: Mesa imports every guest
//    dma-buf with drmPrimeFDToHandle on the GBM fd and closes that handle when the
//    EGLImage goes; if that were the KMS fd, the handle would be the very one the
//    zero-copy FB cache gets for the same dma-buf, and whichever closes first would pull
//    it from under the other. With a private fd the two namespaces never meet. (If the
//    node cannot be reopened, e.g. an adopted fd without a path, we fall back to sharing
//    the KMS fd and say so in `info.privateFd`.)
//  - A GlesTarget owns a GBM bo, the EGLImage/renderbuffer/FBO that render into it and
//    the KMS framebuffer on the KMS fd that scans it out. The FB is created from a PRIME
//    import of the bo's dma-buf into the KMS fd; that temporary GEM handle is closed right
//    after AddFB2 (the FB holds its own reference), so no handle outlives the call.
//  - A GlesImage owns its EGLImage and texture (or, on the upload path, a dup of the
//    dma-buf fd and its mapping). The caller's fd stays the caller's: EGL dups what it
//    keeps, so the caller may close its fd right after importDmabuf.
//  - The compositor tracks everything it handed out: close() frees images, then targets
//    (FBs first, so no plane is left scanning out freed memory), then GL objects, the
//    context, the EGL display (which lives on the GBM device), the GBM device (which uses
//    the fd) and finally the private fd.
//
// Software rendering (Mesa's kms_swrast on vkms/vgem, the test rig): kms_swrast reads a
// texture by mapping its GEM handle with MODE_MAP_DUMB, which the kernel refuses for
// imported (foreign) objects, so a udmabuf EGLImage imports fine but cannot be read
// (glReadPixels reports GL_OUT_OF_MEMORY, a draw would crash in llvmpipe). On software
// drivers every import is therefore probed with a 1-pixel read before first use; an
// unreadable one falls back to the *upload* path: the dma-buf is mapped and its pixels
// are copied into the texture at each compose (no worse than what llvmpipe would do
// anyway: its "GPU" memory is CPU memory). image.path tells which path an import took.
//
// All GL work happens on the main thread, synchronously; the context is made current on
// entry to every public method (several compositors may coexist).
import * as libc from '../../ffi/libc.js';
import * as drm from '../../ffi/drm.js';
import * as gbm from '../../ffi/gbm.js';
import * as egl from '../../ffi/egl.js';
import { dmabufSync, DMA_BUF_SYNC_END, DMA_BUF_SYNC_READ, DMA_BUF_SYNC_START } from '../../ffi/dmabuf.js';
import type { KmsDevice } from '../kms/device.js';
import type { Rect } from '../geometry.js';
import { pictureSize, toBuffer, type Transform } from '../transform.js';

export type { Rect };

// ---------------------------------------------------------------------------------------
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

// ---------------------------------------------------------------------------------------
// Pure helpers (unit-tested in test/unit/gles.test.ts)
// ---------------------------------------------------------------------------------------

const MOD_INVALID = drm.DRM_FORMAT_MOD_INVALID;
const MOD_LINEAR = drm.DRM_FORMAT_MOD_LINEAR;

/**
 * Which modifier to put in the EGL attribute list for an import, given what
 * eglQueryDmaBufModifiersEXT listed for the format (`listed`; undefined when the display
 * cannot be asked). Implicit stays implicit. A driver that lists no modifier at all
 * (kms_swrast) only takes implicit layouts, and reads them linearly, so LINEAR is passed
 * as implicit there; any other explicit modifier must be listed.
 */
export function eglModifierFor(
  modifier: bigint | undefined,
  listed: readonly egl.DmaBufModifier[] | undefined,
): { modifier: bigint | undefined; externalOnly: boolean } | { error: string; reason: GlesImportErrorReason } {
  const m = modifier === undefined ? MOD_INVALID : BigInt.asUintN(64, modifier);
  if (m === MOD_INVALID) {
    const ext = listed !== undefined && listed.length > 0 && listed.every((x) => x.externalOnly);
    return { modifier: undefined, externalOnly: ext };
  }
  if (listed === undefined) return m === MOD_LINEAR ? { modifier: undefined, externalOnly: false } : { modifier: m, externalOnly: false };
  if (listed.length === 0) {
    if (m === MOD_LINEAR) return { modifier: undefined, externalOnly: false };
    return { error: `modifier ${drm.formatModifierName(m)} is not importable: the driver takes implicit layouts only`, reason: 'unsupported-modifier' };
  }
  const hit = listed.find((x) => x.modifier === m);
  if (!hit) {
    return {
      error: `modifier ${drm.formatModifierName(m)} is not among the ${listed.length} the driver lists (${listed.map((x) => drm.formatModifierName(x.modifier)).join(', ')})`,
      reason: 'unsupported-modifier',
    };
  }
  return { modifier: m, externalOnly: hit.externalOnly };
}

/** The GL upload format for a 32-bit RGB fourcc, and whether its 4th byte is padding. */
export function uploadFormat(format: number): { glFormat: number; opaque: boolean; needsBgra: boolean } | null {
  switch (format >>> 0) {
    case drm.fourcc('XR24'):
      return { glFormat: egl.GL_BGRA_EXT, opaque: true, needsBgra: true };
    case drm.fourcc('AR24'):
      return { glFormat: egl.GL_BGRA_EXT, opaque: false, needsBgra: true };
    case drm.fourcc('XB24'):
      return { glFormat: egl.GL_RGBA, opaque: true, needsBgra: false };
    case drm.fourcc('AB24'):
      return { glFormat: egl.GL_RGBA, opaque: false, needsBgra: false };
    default:
      return null;
  }
}

function finite(...v: number[]): boolean {
  return v.every((x) => Number.isFinite(x));
}

/** Checks a layer's rectangles; returns the source rect to use. Throws RangeError. */
export function checkLayerRects(src: Rect | undefined, dst: Rect, imageW: number, imageH: number): Rect {
  const s = src ?? { x: 0, y: 0, w: imageW, h: imageH };
  if (!finite(s.x, s.y, s.w, s.h) || s.w <= 0 || s.h <= 0 || s.x < 0 || s.y < 0 || s.x + s.w > imageW || s.y + s.h > imageH) {
    throw new RangeError(`layer source ${s.w}x${s.h}+${s.x}+${s.y} is not inside the ${imageW}x${imageH} buffer`);
  }
  if (!finite(dst.x, dst.y, dst.w, dst.h) || dst.w <= 0 || dst.h <= 0) {
    throw new RangeError(`layer destination ${dst.w}x${dst.h}+${dst.x}+${dst.y} is empty`);
  }
  return s;
}

/** Whether a layer is an unscaled copy on whole pixels (any filter gives the same result). */
export function isPixelCopy(src: Rect, dst: Rect): boolean {
  return src.w === dst.w && src.h === dst.h && [src.x, src.y, src.w, src.h, dst.x, dst.y].every(Number.isInteger);
}

/**
 * Interleaved [x, y, u, v] for a TRIANGLE_STRIP quad drawing `src` (buffer pixels of an
 * imageW×imageH image) onto `dst` (pixels of a targetW×targetH target). Neither axis is
 * flipped: GL's row 0 of a framebuffer or texture made from a dma-buf is the buffer's
 * first row in memory, which KMS shows at the top; so y grows downward in both spaces.
 * `transform` is how the buffer holds the picture: each corner of `dst` samples the
 * buffer point that holds that corner of the picture.
 */
export function quadVertices(src: Rect, dst: Rect, imageW: number, imageH: number, targetW: number, targetH: number, transform: Transform = 0): Float32Array {
  const x0 = (2 * dst.x) / targetW - 1;
  const x1 = (2 * (dst.x + dst.w)) / targetW - 1;
  const y0 = (2 * dst.y) / targetH - 1;
  const y1 = (2 * (dst.y + dst.h)) / targetH - 1;
  const tex = (u: number, v: number): [number, number] => {
    const [a, b] = toBuffer(transform, u, v);
    return [(src.x + a * src.w) / imageW, (src.y + b * src.h) / imageH];
  };
  return Float32Array.of(x0, y0, ...tex(0, 0), x1, y0, ...tex(1, 0), x0, y1, ...tex(0, 1), x1, y1, ...tex(1, 1));
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

interface ImageState {
  texture: number;
  eglImage: egl.EGLImage | null;
  /** Upload path: our dup of the dma-buf and its read-only mapping. */
  fd: number;
  map: libc.Mapping | null;
  stride: number;
  offset: number;
  glFormat: number;
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
    private readonly owner: GlesCompositor,
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

interface TargetState {
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
    private readonly owner: GlesCompositor,
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

// ---------------------------------------------------------------------------------------
// Shaders
// ---------------------------------------------------------------------------------------

const VERTEX_SHADER = `
attribute vec2 a_pos;
attribute vec2 a_uv;
varying vec2 v_uv;
void main() {
  v_uv = a_uv;
  gl_Position = vec4(a_pos, 0.0, 1.0);
}
`;

// highp where the GPU has it: mediump texture coordinates lose texels past ~2048 px.
const FRAGMENT_SHADER = `
#ifdef GL_FRAGMENT_PRECISION_HIGH
precision highp float;
#else
precision mediump float;
#endif
uniform sampler2D u_tex;
uniform float u_alpha;
uniform float u_opaque;
varying vec2 v_uv;
void main() {
  vec4 c = texture2D(u_tex, v_uv);
  c.a = mix(c.a, 1.0, u_opaque);
  gl_FragColor = c * u_alpha;
}
`;

const ATTR_POS = 0;
const ATTR_UV = 1;
const VERTEX_BYTES = 16 * 4;

// ---------------------------------------------------------------------------------------
// The compositor
// ---------------------------------------------------------------------------------------

interface Core {
  fd: number;
  ownsFd: boolean;
  gbmDev: gbm.GbmDevice | null;
  dpy: egl.EGLDisplay | null;
  ctx: egl.EGLContext | null;
  gbmSurface: gbm.GbmSurface | null;
  surface: egl.EGLSurface | null;
  program: number;
  vbo: number;
}

function errMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function fourccList(formats: Iterable<number>): string {
  return [...formats].map((f) => drm.fourccName(f)).join(' ');
}

export class GlesCompositor {
  readonly info: GlesInfo;
  private readonly images = new Set<GlesImage>();
  private readonly targets = new Set<GlesTarget>();
  private closed = false;
  private readonly uLoc: { tex: number; alpha: number; opaque: number };
  private readonly canRowLength: boolean;
  private readonly canBgra: boolean;
  private readonly allowUpload: boolean;

  private constructor(
    private readonly kms: KmsDevice,
    private readonly core: Core,
    info: GlesInfo,
    opts: GlesCreateOptions,
  ) {
    this.info = info;
    this.allowUpload = opts.allowUpload !== false;
    const gext = new Set(info.glExtensions);
    this.canRowLength = info.contextVersion >= 3 || gext.has('GL_EXT_unpack_subimage');
    this.canBgra = gext.has('GL_EXT_texture_format_BGRA8888');
    this.uLoc = {
      tex: egl.glGetUniformLocation(core.program, 'u_tex'),
      alpha: egl.glGetUniformLocation(core.program, 'u_alpha'),
      opaque: egl.glGetUniformLocation(core.program, 'u_opaque'),
    };
  }

  /**
   * Sets up GBM + EGL + GLES on the KMS device. Returns `{ unavailable }` instead of
   * throwing when the machine cannot do GPU composition (no libEGL/libgbm, no GBM
   * platform, no dma-buf import, no GL_OES_EGL_image…): the caller falls back to the CPU
   * path and can log the reason.
   */
  static create(dev: KmsDevice, opts: GlesCreateOptions = {}): GlesCompositor | { unavailable: string } {
    if (dev.isClosed) return { unavailable: `${dev.path} is closed` };
    const missingLib = gbm.gbmLoadError() ?? egl.eglLoadError();
    if (missingLib) return { unavailable: missingLib };

    const core: Core = { fd: -1, ownsFd: false, gbmDev: null, dpy: null, ctx: null, gbmSurface: null, surface: null, program: 0, vbo: 0 };
    const unavailable = (why: string): { unavailable: string } => {
      GlesCompositor.teardown(core);
      return { unavailable: why };
    };
    try {
      // A private fd on the same node (see the ownership notes at the top).
      const nodePath = drm.getDeviceNameFromFd2(dev.fd) ?? dev.path;
      try {
        core.fd = libc.open(nodePath, libc.O_RDWR);
        core.ownsFd = true;
        // Opening a card node while nobody is master makes the opener master (the kernel's
        // drm_master_open): during a VT switch this private fd would take master and keep
        // the KMS fd, or the next session, from getting it back. It never commits: give it up.
        if (/\/card\d+$/.test(nodePath) && drm.isMaster(core.fd)) {
          try {
            drm.dropMaster(core.fd);
          } catch {
            /* not master after all */
          }
        }
      } catch {
        core.fd = dev.fd;
        core.ownsFd = false;
      }
      try {
        core.gbmDev = gbm.createDevice(core.fd);
      } catch (e) {
        return unavailable(`GBM cannot use ${nodePath}: ${errMessage(e)}`);
      }
      const gbmBackend = gbm.deviceGetBackendName(core.gbmDev);

      const clientExt = egl.extensions(null);
      if (!clientExt.has('EGL_KHR_platform_gbm') && !clientExt.has('EGL_MESA_platform_gbm')) {
        return unavailable(`libEGL has no GBM platform (client extensions: ${[...clientExt].join(' ') || 'none'})`);
      }
      try {
        core.dpy = egl.getPlatformDisplay(egl.EGL_PLATFORM_GBM_KHR, core.gbmDev, `GBM on ${nodePath}`);
      } catch (e) {
        return unavailable(errMessage(e));
      }
      let version: { major: number; minor: number };
      try {
        version = egl.initialize(core.dpy);
      } catch (e) {
        core.dpy = null; // never initialised: nothing to terminate
        return unavailable(`EGL on ${nodePath}: ${errMessage(e)}`);
      }
      const dpy = core.dpy;
      const driver = egl.getDisplayDriverName(dpy);
      const eglExt = egl.extensions(dpy);
      const missing: string[] = [];
      if (!eglExt.has('EGL_EXT_image_dma_buf_import')) missing.push('EGL_EXT_image_dma_buf_import');
      if (!eglExt.has('EGL_KHR_image_base') && !eglExt.has('EGL_KHR_image')) missing.push('EGL_KHR_image_base');
      if (missing.length > 0) {
        return unavailable(`EGL on ${nodePath} (driver ${driver ?? 'unknown'}) lacks ${missing.join(', ')}: it cannot import dma-bufs`);
      }
      egl.bindAPI(egl.EGL_OPENGL_ES_API);

      // Context: no config when we can (we only render into FBOs), else one that suits a
      // GBM XR24 window surface.
      const wantWindow = opts.surface === 'window' || !eglExt.has('EGL_KHR_surfaceless_context');
      let config: egl.EGLConfig | null = null;
      if (wantWindow || !eglExt.has('EGL_KHR_no_config_context')) {
        try {
          config = GlesCompositor.pickConfig(dpy, wantWindow);
        } catch (e) {
          return unavailable(`EGL on ${nodePath}: no usable config (${errMessage(e)})`);
        }
      }
      let contextVersion = 0;
      let lastErr: unknown = null;
      for (const major of [3, 2]) {
        try {
          core.ctx = egl.createContext(dpy, config, null, egl.attribList([[egl.EGL_CONTEXT_MAJOR_VERSION, major]]));
          contextVersion = major;
          break;
        } catch (e) {
          lastErr = e;
        }
      }
      if (!core.ctx) return unavailable(`EGL on ${nodePath}: no GLES 2/3 context (${errMessage(lastErr)})`);

      if (wantWindow) {
        try {
          // The surface only exists to make the context current; drawing goes to FBOs.
          core.gbmSurface = gbm.surfaceCreate(core.gbmDev, 16, 16, gbm.GBM_FORMAT_XRGB8888, gbm.GBM_BO_USE_RENDERING);
          core.surface = egl.createWindowSurface(dpy, config!, core.gbmSurface);
        } catch (e) {
          return unavailable(`EGL on ${nodePath}: cannot create a GBM window surface (${errMessage(e)})`);
        }
      }
      try {
        egl.makeCurrent(dpy, core.surface, core.surface, core.ctx);
      } catch (e) {
        return unavailable(`EGL on ${nodePath}: ${errMessage(e)}`);
      }
      const glExt = egl.parseExtensions(egl.glGetString(egl.GL_EXTENSIONS));
      if (!glExt.has('GL_OES_EGL_image')) {
        return unavailable(`GLES on ${nodePath} (${egl.glGetString(egl.GL_RENDERER)}) lacks GL_OES_EGL_image: EGLImages cannot become textures`);
      }

      let dmabufFormats: Map<number, egl.DmaBufModifier[]> | null = null;
      if (eglExt.has('EGL_EXT_image_dma_buf_import_modifiers')) {
        dmabufFormats = new Map();
        for (const f of egl.queryDmaBufFormats(dpy)) dmabufFormats.set(f, egl.queryDmaBufModifiers(dpy, f));
      }

      // Program and vertex buffer.
      const vs = egl.compileShader(egl.GL_VERTEX_SHADER, VERTEX_SHADER);
      let fs = 0;
      try {
        fs = egl.compileShader(egl.GL_FRAGMENT_SHADER, FRAGMENT_SHADER);
        core.program = egl.linkProgram(vs, fs, { a_pos: ATTR_POS, a_uv: ATTR_UV }, 'composition program');
      } finally {
        egl.glDeleteShader(vs);
        if (fs) egl.glDeleteShader(fs);
      }
      core.vbo = egl.glGenBuffer();
      egl.glBindBuffer(egl.GL_ARRAY_BUFFER, core.vbo);
      egl.glBufferData(egl.GL_ARRAY_BUFFER, null, VERTEX_BYTES, egl.GL_STREAM_DRAW);

      const renderer = egl.glGetString(egl.GL_RENDERER) ?? '';
      const info: GlesInfo = {
        devicePath: nodePath,
        privateFd: core.ownsFd,
        gbmBackend,
        driver,
        eglVersion: `${version.major}.${version.minor} (${egl.queryString(dpy, egl.EGL_VERSION) ?? ''})`,
        eglVendor: egl.queryString(dpy, egl.EGL_VENDOR) ?? '',
        clientExtensions: [...clientExt],
        eglExtensions: [...eglExt],
        glVendor: egl.glGetString(egl.GL_VENDOR) ?? '',
        glRenderer: renderer,
        glVersion: egl.glGetString(egl.GL_VERSION) ?? '',
        glExtensions: [...glExt],
        contextVersion,
        surfaceless: core.surface === null,
        dmabufFormats,
        software: /kms_swrast|swrast/.test(driver ?? '') || /llvmpipe|softpipe|swrast/i.test(renderer),
      };
      return new GlesCompositor(dev, core, info, opts);
    } catch (e) {
      return unavailable(`GPU composition setup failed: ${errMessage(e)}`);
    }
  }

  private static pickConfig(dpy: egl.EGLDisplay, window: boolean): egl.EGLConfig {
    const attribs = egl.attribList([
      [egl.EGL_SURFACE_TYPE, window ? egl.EGL_WINDOW_BIT : egl.EGL_DONT_CARE],
      [egl.EGL_RENDERABLE_TYPE, egl.EGL_OPENGL_ES2_BIT],
      [egl.EGL_RED_SIZE, 8],
      [egl.EGL_GREEN_SIZE, 8],
      [egl.EGL_BLUE_SIZE, 8],
    ]);
    const configs = egl.chooseConfig(dpy, attribs);
    if (configs.length === 0) throw new Error('eglChooseConfig found no 8-bit GLES2 config');
    // On GBM a window surface's format is the config's native visual: it must be XR24.
    const xr24 = configs.find((c) => egl.getConfigAttrib(dpy, c, egl.EGL_NATIVE_VISUAL_ID) >>> 0 === gbm.GBM_FORMAT_XRGB8888);
    if (window && !xr24) throw new Error(`none of ${configs.length} configs has native visual XR24`);
    return xr24 ?? configs[0];
  }

  /** Frees whatever `create` got as far as making; safe on partial state. */
  private static teardown(core: Core): void {
    const quiet = (f: () => void) => {
      try {
        f();
      } catch {
        /* best effort: we are tearing down */
      }
    };
    if (core.dpy) {
      const dpy = core.dpy;
      if (core.ctx && egl.isCurrentContext(core.ctx)) {
        if (core.program) quiet(() => egl.glDeleteProgram(core.program));
        if (core.vbo) quiet(() => egl.glDeleteBuffer(core.vbo));
      }
      quiet(() => egl.makeCurrent(dpy, null, null, null));
      if (core.surface) quiet(() => egl.destroySurface(dpy, core.surface!));
      if (core.ctx) quiet(() => egl.destroyContext(dpy, core.ctx!));
      // The display lives on the GBM device: terminate it before destroying that.
      quiet(() => egl.terminate(dpy));
      quiet(() => egl.releaseThread());
    }
    if (core.gbmSurface) quiet(() => gbm.surfaceDestroy(core.gbmSurface!));
    if (core.gbmDev) quiet(() => gbm.deviceDestroy(core.gbmDev!));
    if (core.ownsFd && core.fd >= 0) quiet(() => libc.close(core.fd, 'GBM device fd'));
    core.program = 0;
    core.vbo = 0;
    core.surface = null;
    core.ctx = null;
    core.dpy = null;
    core.gbmSurface = null;
    core.gbmDev = null;
    core.fd = -1;
  }

  private current(): void {
    if (this.closed) throw new Error('GlesCompositor is closed');
    if (!egl.isCurrentContext(this.core.ctx!)) egl.makeCurrent(this.core.dpy!, this.core.surface, this.core.surface, this.core.ctx!);
  }

  /** Whether EGL lists the format for dma-buf import (true when it cannot be asked). */
  supportsFormat(format: number): boolean {
    return this.info.dmabufFormats === null || this.info.dmabufFormats.has(format >>> 0);
  }

  // ---- images --------------------------------------------------------------------------

  /**
   * Makes a texture of a dma-buf. Throws a GlesImportError whose message names the format
   * and what the driver offers (unsupported formats/modifiers) or the failing EGL call.
   * The caller keeps its fd (EGL dups what it needs) and may close it at once.
   */
  importDmabuf(d: DmabufImport): GlesImage {
    this.current();
    const fmt = d.format >>> 0;
    const name = `${d.width}x${d.height} ${drm.fourccName(fmt)}`;
    const offset = d.offset ?? 0;
    if (!(Number.isInteger(d.fd) && d.fd >= 0)) throw new GlesImportError('invalid', `dma-buf ${name}: fd ${d.fd} is not an fd`);
    if (!(d.width > 0 && d.height > 0 && d.stride > 0 && offset >= 0)) {
      throw new GlesImportError('invalid', `dma-buf ${name}: stride ${d.stride}, offset ${offset} do not describe a buffer`);
    }
    const formats = this.info.dmabufFormats;
    if (formats && !formats.has(fmt)) {
      throw new GlesImportError(
        'unsupported-format',
        `EGL on ${this.info.driver ?? this.info.glRenderer} cannot import ${drm.fourccName(fmt)} (0x${fmt.toString(16).padStart(8, '0')}) dma-bufs: ` +
          `eglQueryDmaBufFormatsEXT lists ${formats.size} formats (${fourccList(formats.keys())})`,
      );
    }
    const pick = eglModifierFor(d.modifier, formats?.get(fmt));
    if ('error' in pick) throw new GlesImportError(pick.reason, `dma-buf ${name}: ${pick.error}`);
    if (pick.externalOnly) {
      throw new GlesImportError(
        'external-only',
        `dma-buf ${name}: the driver samples this format/modifier only as GL_TEXTURE_EXTERNAL_OES, which guestplane's compositor does not use yet`,
      );
    }
    const modifier = d.modifier === undefined ? MOD_INVALID : BigInt.asUintN(64, d.modifier);

    let image: egl.EGLImage;
    try {
      const attribs = egl.dmabufImageAttribs(
        { width: d.width, height: d.height, format: fmt, planes: [{ fd: d.fd, offset, pitch: d.stride }], modifier: pick.modifier },
        this.info.eglExtensions.includes('EGL_EXT_image_dma_buf_import_modifiers'),
      );
      image = egl.createImageKHR(this.core.dpy!, null, egl.EGL_LINUX_DMA_BUF_EXT, null, attribs, `dma-buf fd ${d.fd} ${name} pitch ${d.stride} offset ${offset}`);
    } catch (e) {
      throw new GlesImportError(e instanceof RangeError ? 'invalid' : 'egl', `cannot import dma-buf ${name}: ${errMessage(e)}`, e);
    }
    let texture = 0;
    try {
      texture = egl.glGenTexture();
      egl.glBindTexture(egl.GL_TEXTURE_2D, texture);
      this.texDefaults();
      egl.glEGLImageTargetTexture2DOES(egl.GL_TEXTURE_2D, image);
    } catch (e) {
      if (texture) egl.glDeleteTexture(texture);
      egl.destroyImageKHR(this.core.dpy!, image);
      throw new GlesImportError('egl', `cannot make a texture of dma-buf ${name}: ${errMessage(e)}`, e);
    }

    if (!this.info.software || this.readable(texture)) {
      const img = new GlesImage(this, d.width, d.height, fmt, modifier, 'dmabuf', null, {
        texture,
        eglImage: image,
        fd: -1,
        map: null,
        stride: d.stride,
        offset,
        glFormat: 0,
        opaque: false,
        filter: egl.GL_LINEAR,
      });
      this.images.add(img);
      return img;
    }

    // The software driver cannot read this dma-buf (see the notes at the top).
    egl.glDeleteTexture(texture);
    egl.destroyImageKHR(this.core.dpy!, image);
    const why = `${this.info.driver ?? 'the software driver'} cannot read dma-bufs exported by another device (it maps textures with MODE_MAP_DUMB, which the kernel refuses for imported buffers)`;
    if (!this.allowUpload) throw new GlesImportError('unreadable', `dma-buf ${name}: ${why}`);
    return this.importByUpload(d, fmt, offset, modifier, name, why);
  }

  private texDefaults(): void {
    egl.glTexParameteri(egl.GL_TEXTURE_2D, egl.GL_TEXTURE_MIN_FILTER, egl.GL_LINEAR);
    egl.glTexParameteri(egl.GL_TEXTURE_2D, egl.GL_TEXTURE_MAG_FILTER, egl.GL_LINEAR);
    egl.glTexParameteri(egl.GL_TEXTURE_2D, egl.GL_TEXTURE_WRAP_S, egl.GL_CLAMP_TO_EDGE);
    egl.glTexParameteri(egl.GL_TEXTURE_2D, egl.GL_TEXTURE_WRAP_T, egl.GL_CLAMP_TO_EDGE);
  }

  /** Reads one texel through a scratch FBO: false when the driver cannot map the texture. */
  private readable(texture: number): boolean {
    while (egl.glGetError() !== egl.GL_NO_ERROR);
    const fbo = egl.glGenFramebuffer();
    try {
      egl.glBindFramebuffer(egl.GL_FRAMEBUFFER, fbo);
      egl.glFramebufferTexture2D(egl.GL_FRAMEBUFFER, egl.GL_COLOR_ATTACHMENT0, egl.GL_TEXTURE_2D, texture);
      if (egl.glCheckFramebufferStatus(egl.GL_FRAMEBUFFER) !== egl.GL_FRAMEBUFFER_COMPLETE) return false;
      egl.glReadPixels(0, 0, 1, 1, egl.GL_RGBA, egl.GL_UNSIGNED_BYTE, Buffer.alloc(4));
      return true;
    } catch (e) {
      if (e instanceof egl.GlError) return false;
      throw e;
    } finally {
      egl.glBindFramebuffer(egl.GL_FRAMEBUFFER, 0);
      egl.glDeleteFramebuffer(fbo);
    }
  }

  private importByUpload(d: DmabufImport, fmt: number, offset: number, modifier: bigint, name: string, why: string): GlesImage {
    const up = uploadFormat(fmt);
    if (!up || (up.needsBgra && !this.canBgra)) {
      throw new GlesImportError('unreadable', `dma-buf ${name}: ${why}, and ${drm.fourccName(fmt)} cannot be uploaded instead`);
    }
    if (modifier !== MOD_INVALID && modifier !== MOD_LINEAR) {
      throw new GlesImportError('unreadable', `dma-buf ${name}: ${why}, and a ${drm.formatModifierName(modifier)} buffer cannot be read linearly`);
    }
    if (d.stride % 4 !== 0 || d.stride < d.width * 4) {
      throw new GlesImportError('invalid', `dma-buf ${name}: stride ${d.stride} is not a multiple of 4 of at least width*4`);
    }
    let fd = -1;
    let map: libc.Mapping | null = null;
    let texture = 0;
    try {
      fd = libc.dup(d.fd, `dma-buf ${name}`);
      const size = Number(libc.lseek(fd, 0, libc.SEEK_END));
      const need = offset + d.stride * (d.height - 1) + d.width * 4;
      if (size < need) throw new GlesImportError('invalid', `dma-buf ${name}: ${size} bytes, the layout needs ${need}`);
      map = libc.mmap(fd, size, libc.PROT_READ, 0, `dma-buf ${name}`);
      texture = egl.glGenTexture();
      egl.glBindTexture(egl.GL_TEXTURE_2D, texture);
      this.texDefaults();
      egl.glTexImage2D(egl.GL_TEXTURE_2D, 0, up.glFormat, d.width, d.height, up.glFormat, egl.GL_UNSIGNED_BYTE, null);
    } catch (e) {
      if (texture) egl.glDeleteTexture(texture);
      map?.unmap();
      if (fd >= 0) libc.close(fd, `dma-buf ${name}`);
      if (e instanceof GlesImportError) throw e;
      throw new GlesImportError('unreadable', `dma-buf ${name}: ${why}, and mapping it for upload failed: ${errMessage(e)}`, e);
    }
    const img = new GlesImage(this, d.width, d.height, fmt, modifier, 'upload', why, {
      texture,
      eglImage: null,
      fd,
      map,
      stride: d.stride,
      offset,
      glFormat: up.glFormat,
      opaque: up.opaque,
      filter: egl.GL_LINEAR,
    });
    this.images.add(img);
    return img;
  }

  /** Copies an upload-path image's current pixels into its texture; returns the bytes. */
  private upload(img: GlesImage, s: ImageState): number {
    const map = s.map!;
    const bytes = map.bytes;
    const rowBytes = img.width * 4;
    dmabufSync(s.fd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ);
    try {
      egl.glBindTexture(egl.GL_TEXTURE_2D, s.texture);
      egl.glPixelStorei(egl.GL_UNPACK_ALIGNMENT, 4);
      if (s.stride === rowBytes || this.canRowLength) {
        if (s.stride !== rowBytes) egl.glPixelStorei(egl.GL_UNPACK_ROW_LENGTH_EXT, s.stride / 4);
        const span = s.stride * (img.height - 1) + rowBytes;
        egl.glTexSubImage2D(egl.GL_TEXTURE_2D, 0, 0, 0, img.width, img.height, s.glFormat, egl.GL_UNSIGNED_BYTE, bytes.subarray(s.offset, s.offset + span));
        if (s.stride !== rowBytes) egl.glPixelStorei(egl.GL_UNPACK_ROW_LENGTH_EXT, 0);
      } else {
        for (let y = 0; y < img.height; y++) {
          const o = s.offset + y * s.stride;
          egl.glTexSubImage2D(egl.GL_TEXTURE_2D, 0, 0, y, img.width, 1, s.glFormat, egl.GL_UNSIGNED_BYTE, bytes.subarray(o, o + rowBytes));
        }
      }
      egl.checkGl('glTexSubImage2D', `upload of ${img.width}x${img.height} ${drm.fourccName(img.format)}`);
    } finally {
      dmabufSync(s.fd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ);
    }
    return rowBytes * img.height;
  }

  /** @internal GlesImage.close() */
  _releaseImage(img: GlesImage): void {
    const s = img._s;
    if (!s) return;
    img._s = null;
    this.images.delete(img);
    if (this.closed) return; // already freed with the context
    this.current();
    egl.glDeleteTexture(s.texture);
    if (s.eglImage) egl.destroyImageKHR(this.core.dpy!, s.eglImage);
    s.map?.unmap();
    if (s.fd >= 0) libc.close(s.fd, 'uploaded dma-buf');
  }

  // ---- targets -------------------------------------------------------------------------

  /**
   * A linear scanout buffer (GBM, SCANOUT|RENDERING) that GL renders into through an
   * EGLImage-backed renderbuffer, added as a KMS framebuffer on the KMS device.
   */
  createTarget(width: number, height: number, format: number = drm.fourcc('XR24')): GlesTarget {
    this.current();
    const fmt = format >>> 0;
    const name = `${width}x${height} ${drm.fourccName(fmt)}`;
    if (!(Number.isInteger(width) && width > 0 && Number.isInteger(height) && height > 0)) throw new RangeError(`target ${name}: bad size`);
    const gbmDev = this.core.gbmDev!;
    const listed = this.info.dmabufFormats?.get(fmt);
    let bo: gbm.GbmBo;
    // Explicit LINEAR when the driver speaks modifiers, else the LINEAR usage flag.
    if (listed && listed.some((m) => m.modifier === MOD_LINEAR && !m.externalOnly)) {
      try {
        bo = gbm.boCreateWithModifiers2(gbmDev, width, height, fmt, [MOD_LINEAR], gbm.GBM_BO_USE_SCANOUT | gbm.GBM_BO_USE_RENDERING);
      } catch {
        bo = gbm.boCreate(gbmDev, width, height, fmt, gbm.GBM_BO_USE_SCANOUT | gbm.GBM_BO_USE_RENDERING | gbm.GBM_BO_USE_LINEAR);
      }
    } else {
      bo = gbm.boCreate(gbmDev, width, height, fmt, gbm.GBM_BO_USE_SCANOUT | gbm.GBM_BO_USE_RENDERING | gbm.GBM_BO_USE_LINEAR);
    }
    const boMod = gbm.boGetModifier(bo);
    const stride = gbm.boGetStride(bo);
    const offset = gbm.boGetOffset(bo, 0);
    let fd = -1;
    let image: egl.EGLImage | null = null;
    let rb = 0;
    let fbo = 0;
    let fbId = 0;
    try {
      fd = gbm.boGetFd(bo);
      const pick = eglModifierFor(boMod === MOD_INVALID ? undefined : boMod, listed);
      if ('error' in pick) throw new Error(`target ${name}: ${pick.error}`);
      image = egl.createImageKHR(
        this.core.dpy!,
        null,
        egl.EGL_LINUX_DMA_BUF_EXT,
        null,
        egl.dmabufImageAttribs(
          { width, height, format: fmt, planes: [{ fd, offset, pitch: stride }], modifier: pick.modifier },
          this.info.eglExtensions.includes('EGL_EXT_image_dma_buf_import_modifiers'),
        ),
        `target ${name}`,
      );
      rb = egl.glGenRenderbuffer();
      egl.glBindRenderbuffer(egl.GL_RENDERBUFFER, rb);
      egl.glEGLImageTargetRenderbufferStorageOES(egl.GL_RENDERBUFFER, image);
      fbo = egl.glGenFramebuffer();
      egl.glBindFramebuffer(egl.GL_FRAMEBUFFER, fbo);
      egl.glFramebufferRenderbuffer(egl.GL_FRAMEBUFFER, egl.GL_COLOR_ATTACHMENT0, egl.GL_RENDERBUFFER, rb);
      const status = egl.glCheckFramebufferStatus(egl.GL_FRAMEBUFFER);
      if (status !== egl.GL_FRAMEBUFFER_COMPLETE) throw new egl.GlError('glCheckFramebufferStatus', `target ${name}`, 0, egl.framebufferStatusName(status));
      egl.glBindFramebuffer(egl.GL_FRAMEBUFFER, 0);

      // KMS framebuffer on the KMS fd.
      const kfd = this.kms.fd;
      const modifiers = boMod !== MOD_INVALID && this.kms.caps.addFb2Modifiers ? [boMod] : null;
      if (this.info.privateFd) {
        const handle = drm.primeFDToHandle(kfd, fd);
        try {
          fbId = drm.addFB2WithModifiers(kfd, width, height, fmt, [handle], [stride], [offset], modifiers);
        } finally {
          // The FB holds its own reference; a lingering handle would only alias others'.
          drm.gemClose(kfd, handle);
        }
      } else {
        // Same fd as GBM: the bo's own handle (which the bo keeps and frees).
        fbId = drm.addFB2WithModifiers(kfd, width, height, fmt, [gbm.boGetHandle(bo)], [stride], [offset], modifiers);
      }
    } catch (e) {
      if (fbo) egl.glDeleteFramebuffer(fbo);
      if (rb) egl.glDeleteRenderbuffer(rb);
      if (image) egl.destroyImageKHR(this.core.dpy!, image);
      gbm.boDestroy(bo);
      throw e;
    } finally {
      if (fd >= 0) libc.close(fd, `target ${name} dma-buf`);
    }
    const t = new GlesTarget(this, width, height, fmt, boMod === MOD_INVALID ? MOD_LINEAR : boMod, stride, offset, fbId, {
      bo,
      eglImage: image,
      renderbuffer: rb,
      framebuffer: fbo,
    });
    this.targets.add(t);
    return t;
  }

  /** `count` (2–3) targets of one size for double/triple buffering. */
  createRing(width: number, height: number, opts: { count?: number; format?: number } = {}): TargetRing<GlesTarget> {
    const count = opts.count ?? 3;
    if (!(Number.isInteger(count) && count >= 1 && count <= 4)) throw new RangeError(`target ring: count ${count} outside 1..4`);
    const made: GlesTarget[] = [];
    try {
      for (let i = 0; i < count; i++) made.push(this.createTarget(width, height, opts.format));
    } catch (e) {
      for (const t of made) t.close();
      throw e;
    }
    return new TargetRing(made);
  }

  /** @internal GlesTarget.close() */
  _releaseTarget(t: GlesTarget, keepOnScreen: boolean): void {
    const s = t._s;
    if (!s) return;
    t._s = null;
    this.targets.delete(t);
    const kfd = this.kms.fd;
    // The FB first: it is what a plane may be scanning out. (A closed KMS fd took its
    // FBs with it.) Its failure must not leak the rest, so it is reported last.
    let fbError: unknown = null;
    if (!this.kms.isClosed) {
      try {
        if (keepOnScreen) {
          try {
            drm.closeFB(kfd, t.fbId);
          } catch {
            drm.rmFB(kfd, t.fbId);
          }
        } else {
          drm.rmFB(kfd, t.fbId);
        }
      } catch (e) {
        fbError = e;
      }
    }
    if (!this.closed) {
      this.current();
      egl.glDeleteFramebuffer(s.framebuffer);
      egl.glDeleteRenderbuffer(s.renderbuffer);
      egl.destroyImageKHR(this.core.dpy!, s.eglImage);
      gbm.boDestroy(s.bo);
    }
    if (fbError) throw fbError;
  }

  // ---- composition ---------------------------------------------------------------------

  /**
   * Draws `layers` (first = bottom) over the clear colour into `target`, then waits for
   * the GPU (glFinish), so the caller may commit the target's FB at once.
   */
  compose(target: GlesTarget, layers: readonly GlesLayer[], opts: ComposeOptions = {}): ComposeResult {
    const t0 = process.hrtime.bigint();
    this.current();
    const ts = target._s;
    if (!ts || !this.targets.has(target)) throw new Error('compose: the target is closed or belongs to another compositor');
    const filter = (opts.filter ?? 'linear') === 'nearest' ? egl.GL_NEAREST : egl.GL_LINEAR;
    const plan = layers.map((l, i) => {
      const s = l.image._s;
      if (!s || !this.images.has(l.image)) throw new Error(`compose: layer ${i}'s image is closed or belongs to another compositor`);
      const alpha = l.alpha ?? 1;
      if (!(alpha >= 0 && alpha <= 1)) throw new RangeError(`compose: layer ${i} alpha ${alpha} outside 0..1`);
      const src = checkLayerRects(l.src, l.dst, l.image.width, l.image.height);
      return { l, s, alpha, src };
    });

    let uploaded = 0;
    egl.glBindFramebuffer(egl.GL_FRAMEBUFFER, ts.framebuffer);
    egl.glViewport(0, 0, target.width, target.height);
    egl.glDisable(egl.GL_SCISSOR_TEST);
    egl.glDisable(egl.GL_DEPTH_TEST);
    egl.glDisable(egl.GL_CULL_FACE);
    egl.glDisable(egl.GL_DITHER);
    const [r, g, b, a] = opts.clear ?? [0, 0, 0, 1];
    egl.glClearColor(r, g, b, a);
    egl.glClear(egl.GL_COLOR_BUFFER_BIT);

    egl.glUseProgram(this.core.program);
    egl.glUniform1i(this.uLoc.tex, 0);
    egl.glActiveTexture(egl.GL_TEXTURE0);
    egl.glBindBuffer(egl.GL_ARRAY_BUFFER, this.core.vbo);
    egl.glVertexAttribPointer(ATTR_POS, 2, egl.GL_FLOAT, false, 16, 0);
    egl.glVertexAttribPointer(ATTR_UV, 2, egl.GL_FLOAT, false, 16, 8);
    egl.glEnableVertexAttribArray(ATTR_POS);
    egl.glEnableVertexAttribArray(ATTR_UV);
    // Premultiplied "over"; skipped for opaque layers at full alpha (exact copies).
    egl.glBlendFunc(egl.GL_ONE, egl.GL_ONE_MINUS_SRC_ALPHA);

    let drawn = 0;
    for (const { l, s, alpha, src } of plan) {
      if (alpha === 0) continue;
      if (s.map) uploaded += this.upload(l.image, s);
      egl.glBindTexture(egl.GL_TEXTURE_2D, s.texture);
      // An unscaled, pixel-aligned layer samples texel centres exactly: nearest gives the
      // same pixels as linear, and is cheaper (much, on software rasterisers).
      const shown = { ...src, ...pictureSize(l.transform ?? 0, src.w, src.h) };
      const f = isPixelCopy(shown, l.dst) ? egl.GL_NEAREST : filter;
      if (s.filter !== f) {
        egl.glTexParameteri(egl.GL_TEXTURE_2D, egl.GL_TEXTURE_MIN_FILTER, f);
        egl.glTexParameteri(egl.GL_TEXTURE_2D, egl.GL_TEXTURE_MAG_FILTER, f);
        s.filter = f;
      }
      const hasAlpha = drm.formatInfo(l.image.format)?.hasAlpha ?? true;
      const opaque = s.opaque || !hasAlpha;
      if (alpha < 1 || !opaque) egl.glEnable(egl.GL_BLEND);
      else egl.glDisable(egl.GL_BLEND);
      egl.glUniform1f(this.uLoc.alpha, alpha);
      egl.glUniform1f(this.uLoc.opaque, opaque ? 1 : 0);
      egl.glBufferSubData(egl.GL_ARRAY_BUFFER, 0, quadVertices(src, l.dst, l.image.width, l.image.height, target.width, target.height, l.transform ?? 0));
      egl.glDrawArrays(egl.GL_TRIANGLE_STRIP, 0, 4);
      drawn++;
    }
    egl.glDisableVertexAttribArray(ATTR_POS);
    egl.glDisableVertexAttribArray(ATTR_UV);
    egl.glDisable(egl.GL_BLEND);
    egl.checkGl('compose', `${plan.length} layer(s) into ${target.width}x${target.height}`);
    // The caller commits right after: the pixels must be in memory by then.
    egl.glFinish();
    egl.glBindFramebuffer(egl.GL_FRAMEBUFFER, 0);
    return { layers: drawn, uploadedBytes: uploaded, ms: Number(process.hrtime.bigint() - t0) / 1e6 };
  }

  /**
   * The target's pixels as read by GL, top row first, one 0xAARRGGBB word per pixel
   * (for tests and screenshots; slow).
   */
  readback(target: GlesTarget): Uint32Array {
    this.current();
    const ts = target._s;
    if (!ts || !this.targets.has(target)) throw new Error('readback: the target is closed or belongs to another compositor');
    const w = target.width;
    const h = target.height;
    const rgba = Buffer.alloc(w * h * 4);
    egl.glBindFramebuffer(egl.GL_FRAMEBUFFER, ts.framebuffer);
    egl.glPixelStorei(egl.GL_PACK_ALIGNMENT, 4);
    try {
      egl.glReadPixels(0, 0, w, h, egl.GL_RGBA, egl.GL_UNSIGNED_BYTE, rgba);
    } finally {
      egl.glBindFramebuffer(egl.GL_FRAMEBUFFER, 0);
    }
    const out = new Uint32Array(w * h);
    for (let i = 0; i < w * h; i++) {
      out[i] = ((rgba[4 * i + 3] << 24) | (rgba[4 * i] << 16) | (rgba[4 * i + 1] << 8) | rgba[4 * i + 2]) >>> 0;
    }
    return out;
  }

  /** Live images and targets (for leak checks). */
  get counts(): { images: number; targets: number } {
    return { images: this.images.size, targets: this.targets.size };
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Frees everything: images, targets (their KMS FBs first), the GL program and buffer,
   * the context, the EGL display, the GBM device and the private fd. `keepOnScreen`
   * removes target FBs with CLOSEFB so a plane still showing one stays lit.
   */
  close(opts: { keepOnScreen?: boolean } = {}): void {
    if (this.closed) return;
    try {
      this.current();
    } catch {
      /* a context we cannot make current: free what we can below */
    }
    const errors: unknown[] = [];
    for (const img of [...this.images]) {
      try {
        img.close();
      } catch (e) {
        errors.push(e);
      }
    }
    for (const t of [...this.targets]) {
      try {
        t.close(opts);
      } catch (e) {
        errors.push(e);
      }
    }
    this.closed = true;
    GlesCompositor.teardown(this.core);
    if (errors.length > 0) throw new AggregateError(errors, `GlesCompositor.close: ${errors.length} error(s): ${errors.map(errMessage).join('; ')}`);
  }
}
