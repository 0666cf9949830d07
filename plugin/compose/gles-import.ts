// Guest and host dma-bufs as GL textures. Each import becomes an EGLImage bound to a
// texture (zero-copy: the GPU samples the dma-buf); on a software driver that cannot read
// foreign dma-bufs, an unreadable import takes the upload path instead (the dma-buf is
// mapped and its pixels copied into the texture at each compose; see gles.ts's notes).
// The caller's fd stays the caller's: EGL dups what it keeps. (The cache of imports,
// keyed like the FB cache, is the composer's: compose/composer.ts.)
import * as libc from '../../ffi/libc.js';
import * as drm from '../../ffi/drm.js';
import * as egl from '../../ffi/egl.js';
import { dmabufSync, DMA_BUF_SYNC_END, DMA_BUF_SYNC_READ, DMA_BUF_SYNC_START } from '../../ffi/dmabuf.js';
import { GlesImage, GlesImportError, errMessage, fourccList, type DmabufImport, type GlesImportErrorReason, type GlesInfo, type ImageState } from './gles-types.js';

// ---------------------------------------------------------------------------------------
// Pure helpers (unit-tested in test/unit/gles.test.ts)
// ---------------------------------------------------------------------------------------

export const MOD_INVALID = drm.DRM_FORMAT_MOD_INVALID;
export const MOD_LINEAR = drm.DRM_FORMAT_MOD_LINEAR;

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

/**
 * How a 32-bit RGB fourcc is uploaded: GL format, type and internal format, whether its
 * 4th channel is padding, whether it needs GL_EXT_texture_format_BGRA8888 (8-bit BGRA
 * orders) or a GLES 3 context (10-bit: GL_RGB10_A2), and whether red and blue must be
 * swapped by a texture swizzle (GL's 2_10_10_10_REV puts red in the low bits, as XB30
 * does; XR30 has blue there).
 */
export interface UploadFormat {
  glFormat: number;
  glType: number;
  internalFormat: number;
  opaque: boolean;
  needsBgra: boolean;
  needsGles3: boolean;
  swapRedBlue: boolean;
}

export function uploadFormat(format: number): UploadFormat | null {
  const eight = (glFormat: number, opaque: boolean): UploadFormat => ({
    glFormat, glType: egl.GL_UNSIGNED_BYTE, internalFormat: glFormat, opaque, needsBgra: glFormat === egl.GL_BGRA_EXT, needsGles3: false, swapRedBlue: false,
  });
  const ten = (opaque: boolean, swapRedBlue: boolean): UploadFormat => ({
    glFormat: egl.GL_RGBA, glType: egl.GL_UNSIGNED_INT_2_10_10_10_REV, internalFormat: egl.GL_RGB10_A2, opaque, needsBgra: false, needsGles3: true, swapRedBlue,
  });
  switch (format >>> 0) {
    case drm.fourcc('XR24'):
      return eight(egl.GL_BGRA_EXT, true);
    case drm.fourcc('AR24'):
      return eight(egl.GL_BGRA_EXT, false);
    case drm.fourcc('XB24'):
      return eight(egl.GL_RGBA, true);
    case drm.fourcc('AB24'):
      return eight(egl.GL_RGBA, false);
    case drm.fourcc('XR30'):
      return ten(true, true);
    case drm.fourcc('AR30'):
      return ten(false, true);
    case drm.fourcc('XB30'):
      return ten(true, false);
    case drm.fourcc('AB30'):
      return ten(false, false);
    default:
      return null;
  }
}

/** What an import needs of its compositor. */
export interface ImportContext {
  dpy: egl.EGLDisplay;
  info: GlesInfo;
  /** Whether an unreadable import may take the upload path. */
  allowUpload: boolean;
  /** GL_EXT_texture_format_BGRA8888 (XR24/AR24 uploads). */
  canBgra: boolean;
  /** A GLES 3 context (10-bit uploads, texture swizzles). */
  gles3: boolean;
  owner: { _releaseImage(img: GlesImage): void };
}

/**
 * Makes a texture of a dma-buf. Throws a GlesImportError whose message names the format
 * and what the driver offers (unsupported formats/modifiers) or the failing EGL call.
 * The caller keeps its fd (EGL dups what it needs) and may close it at once.
 */
export function importDmabuf(c: ImportContext, d: DmabufImport): GlesImage {
  const fmt = d.format >>> 0;
  const name = `${d.width}x${d.height} ${drm.fourccName(fmt)}`;
  const offset = d.offset ?? 0;
  if (!(Number.isInteger(d.fd) && d.fd >= 0)) throw new GlesImportError('invalid', `dma-buf ${name}: fd ${d.fd} is not an fd`);
  if (!(d.width > 0 && d.height > 0 && d.stride > 0 && offset >= 0)) {
    throw new GlesImportError('invalid', `dma-buf ${name}: stride ${d.stride}, offset ${offset} do not describe a buffer`);
  }
  const formats = c.info.dmabufFormats;
  const modifier = d.modifier === undefined ? MOD_INVALID : BigInt.asUintN(64, d.modifier);
  if (formats && !formats.has(fmt)) {
    const why =
      `EGL on ${c.info.driver ?? c.info.glRenderer} cannot import ${drm.fourccName(fmt)} (0x${fmt.toString(16).padStart(8, '0')}) dma-bufs: ` +
      `eglQueryDmaBufFormatsEXT lists ${formats.size} formats (${fourccList(formats.keys())})`;
    // A format GL can still take as pixels (XR30 on a driver without 10-bit imports): upload it.
    if (c.allowUpload && uploadable(c, fmt, modifier)) return importByUpload(c, d, fmt, offset, modifier, name, why);
    throw new GlesImportError('unsupported-format', why);
  }
  const pick = eglModifierFor(d.modifier, formats?.get(fmt));
  if ('error' in pick) throw new GlesImportError(pick.reason, `dma-buf ${name}: ${pick.error}`);
  if (pick.externalOnly) {
    throw new GlesImportError(
      'external-only',
      `dma-buf ${name}: the driver samples this format/modifier only as GL_TEXTURE_EXTERNAL_OES, which guestplane's compositor does not use yet`,
    );
  }

  let image: egl.EGLImage;
  try {
    const attribs = egl.dmabufImageAttribs(
      { width: d.width, height: d.height, format: fmt, planes: [{ fd: d.fd, offset, pitch: d.stride }], modifier: pick.modifier },
      c.info.eglExtensions.includes('EGL_EXT_image_dma_buf_import_modifiers'),
    );
    image = egl.createImageKHR(c.dpy, null, egl.EGL_LINUX_DMA_BUF_EXT, null, attribs, `dma-buf fd ${d.fd} ${name} pitch ${d.stride} offset ${offset}`);
  } catch (e) {
    throw new GlesImportError(e instanceof RangeError ? 'invalid' : 'egl', `cannot import dma-buf ${name}: ${errMessage(e)}`, e);
  }
  let texture = 0;
  try {
    texture = egl.glGenTexture();
    egl.glBindTexture(egl.GL_TEXTURE_2D, texture);
    texDefaults();
    egl.glEGLImageTargetTexture2DOES(egl.GL_TEXTURE_2D, image);
  } catch (e) {
    if (texture) egl.glDeleteTexture(texture);
    egl.destroyImageKHR(c.dpy, image);
    throw new GlesImportError('egl', `cannot make a texture of dma-buf ${name}: ${errMessage(e)}`, e);
  }

  if (!c.info.software || readable(texture)) {
    const img = new GlesImage(c.owner, d.width, d.height, fmt, modifier, 'dmabuf', null, {
      texture,
      eglImage: image,
      fd: -1,
      map: null,
      stride: d.stride,
      offset,
      glFormat: 0,
      glType: 0,
      opaque: false,
      filter: egl.GL_LINEAR,
    });
    return img;
  }

  // The software driver cannot read this dma-buf (see the notes at the top).
  egl.glDeleteTexture(texture);
  egl.destroyImageKHR(c.dpy, image);
  const why = `${c.info.driver ?? 'the software driver'} cannot read dma-bufs exported by another device (it maps textures with MODE_MAP_DUMB, which the kernel refuses for imported buffers)`;
  if (!c.allowUpload) throw new GlesImportError('unreadable', `dma-buf ${name}: ${why}`);
  return importByUpload(c, d, fmt, offset, modifier, name, why);
}

/** Whether importByUpload can take this format/modifier on this context. */
function uploadable(c: ImportContext, fmt: number, modifier: bigint): boolean {
  const up = uploadFormat(fmt);
  return !!up && !(up.needsBgra && !c.canBgra) && !(up.needsGles3 && !c.gles3) && (modifier === MOD_INVALID || modifier === MOD_LINEAR);
}

function texDefaults(): void {
  egl.glTexParameteri(egl.GL_TEXTURE_2D, egl.GL_TEXTURE_MIN_FILTER, egl.GL_LINEAR);
  egl.glTexParameteri(egl.GL_TEXTURE_2D, egl.GL_TEXTURE_MAG_FILTER, egl.GL_LINEAR);
  egl.glTexParameteri(egl.GL_TEXTURE_2D, egl.GL_TEXTURE_WRAP_S, egl.GL_CLAMP_TO_EDGE);
  egl.glTexParameteri(egl.GL_TEXTURE_2D, egl.GL_TEXTURE_WRAP_T, egl.GL_CLAMP_TO_EDGE);
}

/** Reads one texel through a scratch FBO: false when the driver cannot map the texture. */
function readable(texture: number): boolean {
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

function importByUpload(c: ImportContext, d: DmabufImport, fmt: number, offset: number, modifier: bigint, name: string, why: string): GlesImage {
  const up = uploadFormat(fmt);
  if (!up || (up.needsBgra && !c.canBgra) || (up.needsGles3 && !c.gles3)) {
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
    texDefaults();
    egl.glTexImage2D(egl.GL_TEXTURE_2D, 0, up.internalFormat, d.width, d.height, up.glFormat, up.glType, null);
    if (up.swapRedBlue) {
      egl.glTexParameteri(egl.GL_TEXTURE_2D, egl.GL_TEXTURE_SWIZZLE_R, egl.GL_BLUE);
      egl.glTexParameteri(egl.GL_TEXTURE_2D, egl.GL_TEXTURE_SWIZZLE_B, egl.GL_RED);
    }
    egl.checkGl('glTexImage2D', `upload texture for ${name}`);
  } catch (e) {
    if (texture) egl.glDeleteTexture(texture);
    map?.unmap();
    if (fd >= 0) libc.close(fd, `dma-buf ${name}`);
    if (e instanceof GlesImportError) throw e;
    throw new GlesImportError('unreadable', `dma-buf ${name}: ${why}, and mapping it for upload failed: ${errMessage(e)}`, e);
  }
  const img = new GlesImage(c.owner, d.width, d.height, fmt, modifier, 'upload', why, {
    texture,
    eglImage: null,
    fd,
    map,
    stride: d.stride,
    offset,
    glFormat: up.glFormat,
    glType: up.glType,
    opaque: up.opaque,
    filter: egl.GL_LINEAR,
  });
  return img;
}

/** Copies an upload-path image's current pixels into its texture; returns the bytes. */
export function uploadImage(img: GlesImage, s: ImageState, canRowLength: boolean): number {
  const map = s.map!;
  const bytes = map.bytes;
  const rowBytes = img.width * 4;
  dmabufSync(s.fd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ);
  try {
    egl.glBindTexture(egl.GL_TEXTURE_2D, s.texture);
    egl.glPixelStorei(egl.GL_UNPACK_ALIGNMENT, 4);
    if (s.stride === rowBytes || canRowLength) {
      if (s.stride !== rowBytes) egl.glPixelStorei(egl.GL_UNPACK_ROW_LENGTH_EXT, s.stride / 4);
      const span = s.stride * (img.height - 1) + rowBytes;
      egl.glTexSubImage2D(egl.GL_TEXTURE_2D, 0, 0, 0, img.width, img.height, s.glFormat, s.glType, bytes.subarray(s.offset, s.offset + span));
      if (s.stride !== rowBytes) egl.glPixelStorei(egl.GL_UNPACK_ROW_LENGTH_EXT, 0);
    } else {
      for (let y = 0; y < img.height; y++) {
        const o = s.offset + y * s.stride;
        egl.glTexSubImage2D(egl.GL_TEXTURE_2D, 0, 0, y, img.width, 1, s.glFormat, s.glType, bytes.subarray(o, o + rowBytes));
      }
    }
    egl.checkGl('glTexSubImage2D', `upload of ${img.width}x${img.height} ${drm.fourccName(img.format)}`);
  } finally {
    dmabufSync(s.fd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ);
  }
  return rowBytes * img.height;
}

/** Frees an image's GL objects, EGLImage and (upload path) mapping and fd; the context is current. */
export function freeImage(dpy: egl.EGLDisplay, s: ImageState): void {
  egl.glDeleteTexture(s.texture);
  if (s.eglImage) egl.destroyImageKHR(dpy, s.eglImage);
  s.map?.unmap();
  if (s.fd >= 0) libc.close(s.fd, 'uploaded dma-buf');
}

