// Scanout targets: a linear GBM buffer (SCANOUT|RENDERING) that GL renders into through
// an EGLImage-backed renderbuffer and FBO, added as a KMS framebuffer on the KMS fd (by a
// PRIME import whose temporary GEM handle is closed right after AddFB2: the FB holds its
// own reference). Freed FB first: it is what a plane may be scanning out. A compositor
// without a KMS device (window mode: the target goes to the desktop as a dma-buf) makes
// no FB (fbId 0).
import * as libc from '../../ffi/libc.js';
import * as drm from '../../ffi/drm.js';
import * as gbm from '../../ffi/gbm.js';
import * as egl from '../../ffi/egl.js';
import type { KmsDevice } from '../kms/device.js';
import { GlesTarget, type GlesInfo, type TargetState } from './gles-types.js';
import { MOD_INVALID, MOD_LINEAR, eglModifierFor } from './gles-import.js';

/** What making a target needs of its compositor. */
export interface TargetContext {
  /** null: no KMS device, no framebuffers. */
  kms: KmsDevice | null;
  gbmDev: gbm.GbmDevice;
  dpy: egl.EGLDisplay;
  info: GlesInfo;
  owner: { _releaseTarget(t: GlesTarget, keepOnScreen: boolean): void };
}

/** A linear scanout bo: explicit LINEAR when the driver speaks modifiers, else the LINEAR usage flag. */
function linearBo(c: TargetContext, width: number, height: number, fmt: number): gbm.GbmBo {
  const listed = c.info.dmabufFormats?.get(fmt);
  const use = gbm.GBM_BO_USE_SCANOUT | gbm.GBM_BO_USE_RENDERING;
  if (listed && listed.some((m) => m.modifier === MOD_LINEAR && !m.externalOnly)) {
    try {
      return gbm.boCreateWithModifiers2(c.gbmDev, width, height, fmt, [MOD_LINEAR], use);
    } catch {
      /* the flag below */
    }
  }
  return gbm.boCreate(c.gbmDev, width, height, fmt, use | gbm.GBM_BO_USE_LINEAR);
}

/** The KMS framebuffer of a bo, on the KMS fd. */
function addTargetFb(kms: KmsDevice, c: TargetContext, bo: gbm.GbmBo, fd: number, width: number, height: number, fmt: number, boMod: bigint, stride: number, offset: number): number {
  const kfd = kms.fd;
  const modifiers = boMod !== MOD_INVALID && kms.caps.addFb2Modifiers ? [boMod] : null;
  if (!c.info.privateFd) {
    // Same fd as GBM: the bo's own handle (which the bo keeps and frees).
    return drm.addFB2WithModifiers(kfd, width, height, fmt, [gbm.boGetHandle(bo)], [stride], [offset], modifiers);
  }
  const handle = drm.primeFDToHandle(kfd, fd);
  try {
    return drm.addFB2WithModifiers(kfd, width, height, fmt, [handle], [stride], [offset], modifiers);
  } finally {
    // The FB holds its own reference; a lingering handle would only alias others'.
    drm.gemClose(kfd, handle);
  }
}

/** A target of `width`×`height` in `format`; the context is current. */
export function createTarget(c: TargetContext, width: number, height: number, format: number): GlesTarget {
  const fmt = format >>> 0;
  const name = `${width}x${height} ${drm.fourccName(fmt)}`;
  if (!(Number.isInteger(width) && width > 0 && Number.isInteger(height) && height > 0)) throw new RangeError(`target ${name}: bad size`);
  const bo = linearBo(c, width, height, fmt);
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
    const pick = eglModifierFor(boMod === MOD_INVALID ? undefined : boMod, c.info.dmabufFormats?.get(fmt));
    if ('error' in pick) throw new Error(`target ${name}: ${pick.error}`);
    image = egl.createImageKHR(
      c.dpy,
      null,
      egl.EGL_LINUX_DMA_BUF_EXT,
      null,
      egl.dmabufImageAttribs({ width, height, format: fmt, planes: [{ fd, offset, pitch: stride }], modifier: pick.modifier }, c.info.eglExtensions.includes('EGL_EXT_image_dma_buf_import_modifiers')),
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
    if (c.kms) fbId = addTargetFb(c.kms, c, bo, fd, width, height, fmt, boMod, stride, offset);
  } catch (e) {
    if (fbo) egl.glDeleteFramebuffer(fbo);
    if (rb) egl.glDeleteRenderbuffer(rb);
    if (image) egl.destroyImageKHR(c.dpy, image);
    gbm.boDestroy(bo);
    throw e;
  } finally {
    if (fd >= 0) libc.close(fd, `target ${name} dma-buf`);
  }
  const state: TargetState = { bo, eglImage: image, renderbuffer: rb, framebuffer: fbo };
  return new GlesTarget(c.owner, width, height, fmt, boMod === MOD_INVALID ? MOD_LINEAR : boMod, stride, offset, fbId, state);
}

/**
 * Removes a target's FB (CLOSEFB with `keepOnScreen`, so a plane still showing it stays
 * lit) and returns the error to throw once the rest is freed, if it failed.
 */
export function removeTargetFb(kms: KmsDevice | null, fbId: number, keepOnScreen: boolean): unknown {
  // A closed KMS fd took its FBs with it; no KMS device, no FB.
  if (!kms || kms.isClosed || fbId === 0) return null;
  try {
    if (keepOnScreen) {
      try {
        drm.closeFB(kms.fd, fbId);
      } catch {
        drm.rmFB(kms.fd, fbId);
      }
    } else {
      drm.rmFB(kms.fd, fbId);
    }
  } catch (e) {
    return e;
  }
  return null;
}

/** Frees a target's GL objects, EGLImage and bo; the context is current. */
export function freeTarget(dpy: egl.EGLDisplay, s: TargetState): void {
  egl.glDeleteFramebuffer(s.framebuffer);
  egl.glDeleteRenderbuffer(s.renderbuffer);
  egl.destroyImageKHR(dpy, s.eglImage);
  gbm.boDestroy(s.bo);
}
