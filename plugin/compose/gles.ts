// GPU composition: the fallback between zero-copy planes and the CPU copy path. Guest
// dma-bufs become GL textures (EGLImages), are drawn as textured quads into a scanout
// buffer allocated with GBM on the KMS device, and that buffer is shown as one KMS
// framebuffer on one plane. Window mode uses the same compositor without a KMS device
// (GlesCompositor.onNode: a render or card node of its own, targets without FBs) to blit
// a guest buffer the desktop compositor cannot take into one it can (window/gles-blit.ts).
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
//
// The room, one concern per file: gles-context.ts (GBM/EGL/GLES set-up and teardown),
// gles-import.ts (dma-bufs as textures, the upload path), gles-target.ts (scanout
// targets and their FBs), gles-draw.ts (the program, quads, drawing, read-back),
// gles-types.ts (the objects and types). This file is the compositor that tracks them.
import * as drm from '../../ffi/drm.js';
import type { KmsDevice } from '../kms/device.js';
import { makeCurrent, openGles, teardownCore, type Core, type GlesDevice } from './gles-context.js';
import { freeImage, importDmabuf, uploadImage, type ImportContext } from './gles-import.js';
import { createTarget, freeTarget, removeTargetFb, type TargetContext } from './gles-target.js';
import { drawLayers, readPixels, uniforms, checkLayerRects } from './gles-draw.js';
import { TargetRing, errMessage, type ComposeOptions, type ComposeResult, type DmabufImport, type GlesCreateOptions, type GlesImage, type GlesInfo, type GlesLayer, type GlesTarget } from './gles-types.js';

export * from './gles-types.js';
export { eglModifierFor, uploadFormat } from './gles-import.js';
export { checkLayerRects, isPixelCopy, quadVertices } from './gles-draw.js';

export class GlesCompositor {
  readonly info: GlesInfo;
  private readonly images = new Set<GlesImage>();
  private readonly targets = new Set<GlesTarget>();
  private closed = false;
  private readonly uLoc: { tex: number; alpha: number; opaque: number };
  private readonly canRowLength: boolean;
  private readonly imports: ImportContext;
  private readonly targetCtx: TargetContext;

  private constructor(
    private readonly kms: KmsDevice | null,
    private readonly core: Core,
    info: GlesInfo,
    opts: GlesCreateOptions,
  ) {
    this.info = info;
    const gext = new Set(info.glExtensions);
    this.canRowLength = info.contextVersion >= 3 || gext.has('GL_EXT_unpack_subimage');
    this.imports = { dpy: core.dpy!, info, allowUpload: opts.allowUpload !== false, canBgra: gext.has('GL_EXT_texture_format_BGRA8888'), gles3: info.contextVersion >= 3, owner: this };
    this.targetCtx = { kms, gbmDev: core.gbmDev!, dpy: core.dpy!, info, owner: this };
    this.uLoc = uniforms(core);
  }

  /**
   * Sets up GBM + EGL + GLES on the KMS device. Returns `{ unavailable }` instead of
   * throwing when the machine cannot do GPU composition (no libEGL/libgbm, no GBM
   * platform, no dma-buf import, no GL_OES_EGL_image…): the caller falls back to the CPU
   * path and can log the reason.
   */
  static create(dev: KmsDevice, opts: GlesCreateOptions = {}): GlesCompositor | { unavailable: string } {
    const r = openGles(dev, opts);
    if ('unavailable' in r) return r;
    return new GlesCompositor(dev, r.core, r.info, opts);
  }

  /**
   * The same on a device node without KMS (`/dev/dri/renderD128`, or a card node we are
   * not master of): targets get no KMS framebuffer (fbId 0), they are for exportDmabuf().
   */
  static onNode(path: string, opts: GlesCreateOptions = {}): GlesCompositor | { unavailable: string } {
    const dev: GlesDevice = { fd: -1, path, isClosed: false };
    const r = openGles(dev, opts);
    if ('unavailable' in r) return r;
    return new GlesCompositor(null, r.core, r.info, opts);
  }

  private current(): void {
    if (this.closed) throw new Error('GlesCompositor is closed');
    makeCurrent(this.core);
  }

  /** Whether EGL lists the format for dma-buf import (true when it cannot be asked). */
  supportsFormat(format: number): boolean {
    return this.info.dmabufFormats === null || this.info.dmabufFormats.has(format >>> 0);
  }

  /**
   * Makes a texture of a dma-buf. Throws a GlesImportError whose message names the format
   * and what the driver offers (unsupported formats/modifiers) or the failing EGL call.
   * The caller keeps its fd (EGL dups what it needs) and may close it at once.
   */
  importDmabuf(d: DmabufImport): GlesImage {
    this.current();
    const img = importDmabuf(this.imports, d);
    this.images.add(img);
    return img;
  }

  /** @internal GlesImage.close() */
  _releaseImage(img: GlesImage): void {
    const s = img._s;
    if (!s) return;
    img._s = null;
    this.images.delete(img);
    if (this.closed) return; // already freed with the context
    this.current();
    freeImage(this.core.dpy!, s);
  }

  /**
   * A linear scanout buffer (GBM, SCANOUT|RENDERING) that GL renders into through an
   * EGLImage-backed renderbuffer, added as a KMS framebuffer on the KMS device (if any).
   */
  createTarget(width: number, height: number, format: number = drm.fourcc('XR24')): GlesTarget {
    this.current();
    const t = createTarget(this.targetCtx, width, height, format);
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
    // The FB first: it is what a plane may be scanning out. Its failure must not leak
    // the rest, so it is reported last.
    const fbError = removeTargetFb(this.kms, t.fbId, keepOnScreen);
    if (!this.closed) {
      this.current();
      freeTarget(this.core.dpy!, s);
    }
    if (fbError) throw fbError;
  }

  /**
   * Draws `layers` (first = bottom) over the clear colour into `target`, then waits for
   * the GPU (glFinish), so the caller may commit the target's FB at once.
   */
  compose(target: GlesTarget, layers: readonly GlesLayer[], opts: ComposeOptions = {}): ComposeResult {
    const t0 = process.hrtime.bigint();
    this.current();
    const ts = target._s;
    if (!ts || !this.targets.has(target)) throw new Error('compose: the target is closed or belongs to another compositor');
    const plan = layers.map((l, i) => {
      const s = l.image._s;
      if (!s || !this.images.has(l.image)) throw new Error(`compose: layer ${i}'s image is closed or belongs to another compositor`);
      const alpha = l.alpha ?? 1;
      if (!(alpha >= 0 && alpha <= 1)) throw new RangeError(`compose: layer ${i} alpha ${alpha} outside 0..1`);
      const src = checkLayerRects(l.src, l.dst, l.image.width, l.image.height);
      return { l, s, alpha, src };
    });
    const r = drawLayers(this.core, this.uLoc, target, ts, plan, opts, (img, s) => uploadImage(img, s, this.canRowLength));
    return { layers: r.drawn, uploadedBytes: r.uploaded, ms: Number(process.hrtime.bigint() - t0) / 1e6 };
  }

  /**
   * The target's pixels as read by GL, top row first, one 0xAARRGGBB word per pixel
   * (for tests and screenshots; slow).
   */
  readback(target: GlesTarget): Uint32Array {
    this.current();
    const ts = target._s;
    if (!ts || !this.targets.has(target)) throw new Error('readback: the target is closed or belongs to another compositor');
    return readPixels(target, ts);
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
    teardownCore(this.core);
    if (errors.length > 0) throw new AggregateError(errors, `GlesCompositor.close: ${errors.length} error(s): ${errors.map(errMessage).join('; ')}`);
  }
}
