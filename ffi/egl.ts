// Thin, typed koffi bindings to libEGL.so.1 and libGLESv2.so.2 (GLES 2.0 plus the
// extensions guestplane's GPU composition needs: dma-buf EGLImages and OES_EGL_image).
// No policy: each call returns its result or throws an EglError / GlError naming the call,
// the object and the error symbol (EGL_BAD_MATCH, GL_INVALID_OPERATION).
//
// The libraries are loaded on first use, never at import: the ABI test imports this module
// on hosts without a GPU, and GlesCompositor.create turns "no libEGL" into a fallback
// reason instead of a crash (eglLoadError()).
//
// Handles (EGLDisplay, EGLConfig, EGLContext, EGLSurface, EGLImage) are koffi externals
// behind branded TypeScript types; EGL_NO_* are null. GL names (textures, programs…) are
// plain numbers. GL calls act on the context current on the calling (main) thread: never
// use koffi's async calls with them.
//
// Extension entry points (eglCreateImageKHR, glEGLImageTargetTexture2DOES, …) come from
// eglGetProcAddress and are resolved once per process: with libglvnd they are dispatch
// stubs valid for every display and context.
import koffi from 'koffi';
import type { AbiManifest } from './abi.js';

// ---------------------------------------------------------------------------------------
// EGL constants (EGL/egl.h, EGL/eglext.h; checked by test/unit/abi.test.ts)
// ---------------------------------------------------------------------------------------

export const EGL_FALSE = 0;
export const EGL_TRUE = 1;
export const EGL_NONE = 0x3038;
export const EGL_DONT_CARE = -1;

// Errors (eglGetError)
export const EGL_SUCCESS = 0x3000;
export const EGL_NOT_INITIALIZED = 0x3001;
export const EGL_BAD_ACCESS = 0x3002;
export const EGL_BAD_ALLOC = 0x3003;
export const EGL_BAD_ATTRIBUTE = 0x3004;
export const EGL_BAD_CONFIG = 0x3005;
export const EGL_BAD_CONTEXT = 0x3006;
export const EGL_BAD_CURRENT_SURFACE = 0x3007;
export const EGL_BAD_DISPLAY = 0x3008;
export const EGL_BAD_MATCH = 0x3009;
export const EGL_BAD_NATIVE_PIXMAP = 0x300a;
export const EGL_BAD_NATIVE_WINDOW = 0x300b;
export const EGL_BAD_PARAMETER = 0x300c;
export const EGL_BAD_SURFACE = 0x300d;
export const EGL_CONTEXT_LOST = 0x300e;
export const EGL_BAD_DEVICE_EXT = 0x322b;

// eglQueryString
export const EGL_VENDOR = 0x3053;
export const EGL_VERSION = 0x3054;
export const EGL_EXTENSIONS = 0x3055;
export const EGL_CLIENT_APIS = 0x308d;

// Config attributes
export const EGL_BUFFER_SIZE = 0x3020;
export const EGL_ALPHA_SIZE = 0x3021;
export const EGL_BLUE_SIZE = 0x3022;
export const EGL_GREEN_SIZE = 0x3023;
export const EGL_RED_SIZE = 0x3024;
export const EGL_DEPTH_SIZE = 0x3025;
export const EGL_STENCIL_SIZE = 0x3026;
export const EGL_CONFIG_ID = 0x3028;
export const EGL_NATIVE_VISUAL_ID = 0x302e;
export const EGL_SURFACE_TYPE = 0x3033;
export const EGL_RENDERABLE_TYPE = 0x3040;
export const EGL_CONFORMANT = 0x3042;
export const EGL_WINDOW_BIT = 0x0004;
export const EGL_PBUFFER_BIT = 0x0001;
export const EGL_OPENGL_ES2_BIT = 0x0004;
export const EGL_OPENGL_ES3_BIT = 0x0040;
export const EGL_OPENGL_ES3_BIT_KHR = 0x0040;

// Images
export const EGL_WIDTH = 0x3057;
export const EGL_HEIGHT = 0x3056;
export const EGL_NATIVE_PIXMAP_KHR = 0x30b0;
export const EGL_IMAGE_PRESERVED_KHR = 0x30d2;

// Contexts and APIs
export const EGL_OPENGL_ES_API = 0x30a0;
export const EGL_CONTEXT_CLIENT_VERSION = 0x3098;
export const EGL_CONTEXT_MAJOR_VERSION = 0x3098;
export const EGL_CONTEXT_MINOR_VERSION = 0x30fb;
export const EGL_DRAW = 0x3059;
export const EGL_READ = 0x305a;

// Platforms
export const EGL_PLATFORM_GBM_KHR = 0x31d7;
export const EGL_PLATFORM_SURFACELESS_MESA = 0x31dd;
export const EGL_PLATFORM_DEVICE_EXT = 0x313f;

// EGL_EXT_image_dma_buf_import(_modifiers)
export const EGL_LINUX_DMA_BUF_EXT = 0x3270;
export const EGL_LINUX_DRM_FOURCC_EXT = 0x3271;
export const EGL_DMA_BUF_PLANE0_FD_EXT = 0x3272;
export const EGL_DMA_BUF_PLANE0_OFFSET_EXT = 0x3273;
export const EGL_DMA_BUF_PLANE0_PITCH_EXT = 0x3274;
export const EGL_DMA_BUF_PLANE1_FD_EXT = 0x3275;
export const EGL_DMA_BUF_PLANE1_OFFSET_EXT = 0x3276;
export const EGL_DMA_BUF_PLANE1_PITCH_EXT = 0x3277;
export const EGL_DMA_BUF_PLANE2_FD_EXT = 0x3278;
export const EGL_DMA_BUF_PLANE2_OFFSET_EXT = 0x3279;
export const EGL_DMA_BUF_PLANE2_PITCH_EXT = 0x327a;
export const EGL_DMA_BUF_PLANE3_FD_EXT = 0x3440;
export const EGL_DMA_BUF_PLANE3_OFFSET_EXT = 0x3441;
export const EGL_DMA_BUF_PLANE3_PITCH_EXT = 0x3442;
export const EGL_DMA_BUF_PLANE0_MODIFIER_LO_EXT = 0x3443;
export const EGL_DMA_BUF_PLANE0_MODIFIER_HI_EXT = 0x3444;
export const EGL_DMA_BUF_PLANE1_MODIFIER_LO_EXT = 0x3445;
export const EGL_DMA_BUF_PLANE1_MODIFIER_HI_EXT = 0x3446;
export const EGL_DMA_BUF_PLANE2_MODIFIER_LO_EXT = 0x3447;
export const EGL_DMA_BUF_PLANE2_MODIFIER_HI_EXT = 0x3448;
export const EGL_DMA_BUF_PLANE3_MODIFIER_LO_EXT = 0x3449;
export const EGL_DMA_BUF_PLANE3_MODIFIER_HI_EXT = 0x344a;

/** Per plane: [fd, offset, pitch, modifier lo, modifier hi] attribute names. */
export const EGL_DMA_BUF_PLANE_ATTRIBS: readonly (readonly [number, number, number, number, number])[] = [
  [EGL_DMA_BUF_PLANE0_FD_EXT, EGL_DMA_BUF_PLANE0_OFFSET_EXT, EGL_DMA_BUF_PLANE0_PITCH_EXT, EGL_DMA_BUF_PLANE0_MODIFIER_LO_EXT, EGL_DMA_BUF_PLANE0_MODIFIER_HI_EXT],
  [EGL_DMA_BUF_PLANE1_FD_EXT, EGL_DMA_BUF_PLANE1_OFFSET_EXT, EGL_DMA_BUF_PLANE1_PITCH_EXT, EGL_DMA_BUF_PLANE1_MODIFIER_LO_EXT, EGL_DMA_BUF_PLANE1_MODIFIER_HI_EXT],
  [EGL_DMA_BUF_PLANE2_FD_EXT, EGL_DMA_BUF_PLANE2_OFFSET_EXT, EGL_DMA_BUF_PLANE2_PITCH_EXT, EGL_DMA_BUF_PLANE2_MODIFIER_LO_EXT, EGL_DMA_BUF_PLANE2_MODIFIER_HI_EXT],
  [EGL_DMA_BUF_PLANE3_FD_EXT, EGL_DMA_BUF_PLANE3_OFFSET_EXT, EGL_DMA_BUF_PLANE3_PITCH_EXT, EGL_DMA_BUF_PLANE3_MODIFIER_LO_EXT, EGL_DMA_BUF_PLANE3_MODIFIER_HI_EXT],
];

// ---------------------------------------------------------------------------------------
// GLES constants (GLES2/gl2.h, GLES2/gl2ext.h)
// ---------------------------------------------------------------------------------------

export const GL_NO_ERROR = 0;
export const GL_INVALID_ENUM = 0x0500;
export const GL_INVALID_VALUE = 0x0501;
export const GL_INVALID_OPERATION = 0x0502;
export const GL_OUT_OF_MEMORY = 0x0505;
export const GL_INVALID_FRAMEBUFFER_OPERATION = 0x0506;

export const GL_FALSE = 0;
export const GL_TRUE = 1;
export const GL_VENDOR = 0x1f00;
export const GL_RENDERER = 0x1f01;
export const GL_VERSION = 0x1f02;
export const GL_EXTENSIONS = 0x1f03;
export const GL_SHADING_LANGUAGE_VERSION = 0x8b8c;
export const GL_MAX_TEXTURE_SIZE = 0x0d33;
export const GL_MAX_RENDERBUFFER_SIZE = 0x84e8;

export const GL_TEXTURE_2D = 0x0de1;
export const GL_TEXTURE_EXTERNAL_OES = 0x8d65;
export const GL_TEXTURE0 = 0x84c0;
export const GL_TEXTURE_MAG_FILTER = 0x2800;
export const GL_TEXTURE_MIN_FILTER = 0x2801;
export const GL_TEXTURE_WRAP_S = 0x2802;
export const GL_TEXTURE_WRAP_T = 0x2803;
/** GLES 3: texture swizzles (a 10-bit XR30/AR30 upload has red and blue swapped). */
export const GL_TEXTURE_SWIZZLE_R = 0x8e42;
export const GL_TEXTURE_SWIZZLE_B = 0x8e44;
export const GL_RED = 0x1903;
export const GL_BLUE = 0x1905;
/** GLES 3: 10-bit-per-channel textures (internal format) and their packed pixel type. */
export const GL_RGB10_A2 = 0x8059;
export const GL_UNSIGNED_INT_2_10_10_10_REV = 0x8368;
export const GL_NEAREST = 0x2600;
export const GL_LINEAR = 0x2601;
export const GL_CLAMP_TO_EDGE = 0x812f;

export const GL_RGBA = 0x1908;
export const GL_RGB = 0x1907;
export const GL_BGRA_EXT = 0x80e1;
export const GL_UNSIGNED_BYTE = 0x1401;
export const GL_FLOAT = 0x1406;
export const GL_PACK_ALIGNMENT = 0x0d05;
export const GL_UNPACK_ALIGNMENT = 0x0cf5;
/** GLES 3.0, or GLES 2.0 with GL_EXT_unpack_subimage. */
export const GL_UNPACK_ROW_LENGTH_EXT = 0x0cf2;

export const GL_FRAMEBUFFER = 0x8d40;
export const GL_RENDERBUFFER = 0x8d41;
export const GL_COLOR_ATTACHMENT0 = 0x8ce0;
export const GL_FRAMEBUFFER_BINDING = 0x8ca6;
export const GL_FRAMEBUFFER_COMPLETE = 0x8cd5;
export const GL_FRAMEBUFFER_INCOMPLETE_ATTACHMENT = 0x8cd6;
export const GL_FRAMEBUFFER_INCOMPLETE_MISSING_ATTACHMENT = 0x8cd7;
export const GL_FRAMEBUFFER_INCOMPLETE_DIMENSIONS = 0x8cd9;
export const GL_FRAMEBUFFER_UNSUPPORTED = 0x8cdd;

export const GL_VERTEX_SHADER = 0x8b31;
export const GL_FRAGMENT_SHADER = 0x8b30;
export const GL_COMPILE_STATUS = 0x8b81;
export const GL_LINK_STATUS = 0x8b82;
export const GL_INFO_LOG_LENGTH = 0x8b84;

export const GL_ARRAY_BUFFER = 0x8892;
export const GL_STATIC_DRAW = 0x88e4;
export const GL_STREAM_DRAW = 0x88e0;
export const GL_DYNAMIC_DRAW = 0x88e8;

export const GL_POINTS = 0x0000;
export const GL_TRIANGLES = 0x0004;
export const GL_TRIANGLE_STRIP = 0x0005;
export const GL_TRIANGLE_FAN = 0x0006;

export const GL_COLOR_BUFFER_BIT = 0x00004000;
export const GL_BLEND = 0x0be2;
export const GL_SCISSOR_TEST = 0x0c11;
export const GL_DEPTH_TEST = 0x0b71;
export const GL_CULL_FACE = 0x0b44;
export const GL_DITHER = 0x0bd0;
export const GL_ZERO = 0;
export const GL_ONE = 1;
export const GL_SRC_ALPHA = 0x0302;
export const GL_ONE_MINUS_SRC_ALPHA = 0x0303;

// ---------------------------------------------------------------------------------------
// Pure helpers: error names, attribute lists (unit-tested)
// ---------------------------------------------------------------------------------------

const EGL_ERROR_NAMES: ReadonlyMap<number, string> = new Map([
  [EGL_SUCCESS, 'EGL_SUCCESS'],
  [EGL_NOT_INITIALIZED, 'EGL_NOT_INITIALIZED'],
  [EGL_BAD_ACCESS, 'EGL_BAD_ACCESS'],
  [EGL_BAD_ALLOC, 'EGL_BAD_ALLOC'],
  [EGL_BAD_ATTRIBUTE, 'EGL_BAD_ATTRIBUTE'],
  [EGL_BAD_CONFIG, 'EGL_BAD_CONFIG'],
  [EGL_BAD_CONTEXT, 'EGL_BAD_CONTEXT'],
  [EGL_BAD_CURRENT_SURFACE, 'EGL_BAD_CURRENT_SURFACE'],
  [EGL_BAD_DISPLAY, 'EGL_BAD_DISPLAY'],
  [EGL_BAD_MATCH, 'EGL_BAD_MATCH'],
  [EGL_BAD_NATIVE_PIXMAP, 'EGL_BAD_NATIVE_PIXMAP'],
  [EGL_BAD_NATIVE_WINDOW, 'EGL_BAD_NATIVE_WINDOW'],
  [EGL_BAD_PARAMETER, 'EGL_BAD_PARAMETER'],
  [EGL_BAD_SURFACE, 'EGL_BAD_SURFACE'],
  [EGL_CONTEXT_LOST, 'EGL_CONTEXT_LOST'],
  [EGL_BAD_DEVICE_EXT, 'EGL_BAD_DEVICE_EXT'],
]);

/** 'EGL_BAD_MATCH' for 0x3009; '0x....' for codes EGL does not define. */
export function eglErrorName(code: number): string {
  return EGL_ERROR_NAMES.get(code) ?? `EGL error 0x${(code >>> 0).toString(16)}`;
}

const GL_ERROR_NAMES: ReadonlyMap<number, string> = new Map([
  [GL_NO_ERROR, 'GL_NO_ERROR'],
  [GL_INVALID_ENUM, 'GL_INVALID_ENUM'],
  [GL_INVALID_VALUE, 'GL_INVALID_VALUE'],
  [GL_INVALID_OPERATION, 'GL_INVALID_OPERATION'],
  [GL_OUT_OF_MEMORY, 'GL_OUT_OF_MEMORY'],
  [GL_INVALID_FRAMEBUFFER_OPERATION, 'GL_INVALID_FRAMEBUFFER_OPERATION'],
]);

export function glErrorName(code: number): string {
  return GL_ERROR_NAMES.get(code) ?? `GL error 0x${(code >>> 0).toString(16)}`;
}

const FRAMEBUFFER_STATUS_NAMES: ReadonlyMap<number, string> = new Map([
  [GL_FRAMEBUFFER_COMPLETE, 'GL_FRAMEBUFFER_COMPLETE'],
  [GL_FRAMEBUFFER_INCOMPLETE_ATTACHMENT, 'GL_FRAMEBUFFER_INCOMPLETE_ATTACHMENT'],
  [GL_FRAMEBUFFER_INCOMPLETE_MISSING_ATTACHMENT, 'GL_FRAMEBUFFER_INCOMPLETE_MISSING_ATTACHMENT'],
  [GL_FRAMEBUFFER_INCOMPLETE_DIMENSIONS, 'GL_FRAMEBUFFER_INCOMPLETE_DIMENSIONS'],
  [GL_FRAMEBUFFER_UNSUPPORTED, 'GL_FRAMEBUFFER_UNSUPPORTED'],
]);

export function framebufferStatusName(status: number): string {
  return FRAMEBUFFER_STATUS_NAMES.get(status) ?? `framebuffer status 0x${(status >>> 0).toString(16)}`;
}

/** A failed EGL call: `eglCreateImageKHR(dma-buf 64x64 XR24) failed: EGL_BAD_MATCH`. */
export class EglError extends Error {
  readonly call: string;
  readonly object: string;
  readonly error: number;
  readonly code: string;
  constructor(call: string, object: string, error: number, hint?: string) {
    const code = eglErrorName(error);
    super(`${call}(${object}) failed: ${code}${hint ? ` (${hint})` : ''}`);
    this.name = 'EglError';
    this.call = call;
    this.object = object;
    this.error = error;
    this.code = code;
  }
}

/** A failed GL call, or a shader/program that did not compile/link (log in the message). */
export class GlError extends Error {
  readonly call: string;
  readonly object: string;
  readonly error: number;
  readonly code: string;
  readonly log: string;
  constructor(call: string, object: string, error: number, log = '') {
    // error 0: no GL error code, the failure is in the log (shader compile/link).
    const code = error === 0 ? '' : glErrorName(error);
    super(`${call}(${object}) failed${code ? `: ${code}` : ''}${log ? `:\n${log.trimEnd()}` : ''}`);
    this.name = 'GlError';
    this.call = call;
    this.object = object;
    this.error = error;
    this.code = code;
    this.log = log;
  }
}

/** Splits an extension string ('EGL_KHR_a EGL_EXT_b') into a set. */
export function parseExtensions(s: string | null | undefined): Set<string> {
  return new Set((s ?? '').split(/\s+/).filter((x) => x.length > 0));
}

/** An EGL attribute list from [name, value] pairs, terminated by EGL_NONE. */
export function attribList(pairs: readonly (readonly [number, number])[]): Int32Array {
  const out = new Int32Array(pairs.length * 2 + 1);
  pairs.forEach(([k, v], i) => {
    out[2 * i] = k;
    out[2 * i + 1] = v;
  });
  out[pairs.length * 2] = EGL_NONE;
  return out;
}

/** DRM_FORMAT_MOD_INVALID: "no explicit modifier" — the attribute is then left out. */
const MOD_INVALID = 0x00ffffffffffffffn;

export interface DmabufPlaneDesc {
  fd: number;
  offset: number;
  pitch: number;
}
export interface DmabufImageDesc {
  width: number;
  height: number;
  /** DRM fourcc. */
  format: number;
  planes: readonly DmabufPlaneDesc[];
  /** Layout modifier; DRM_FORMAT_MOD_INVALID (or undefined) = implicit (driver's choice). */
  modifier?: bigint;
}

/**
 * The eglCreateImageKHR(EGL_LINUX_DMA_BUF_EXT) attribute list for a dma-buf. The modifier
 * goes in as MODIFIER_LO/HI per plane only when `withModifiers` (the display has
 * EGL_EXT_image_dma_buf_import_modifiers) and it is explicit; asking for an explicit
 * modifier other than LINEAR without that extension throws, as EGL would misread the buffer.
 */
export function dmabufImageAttribs(d: DmabufImageDesc, withModifiers: boolean): Int32Array {
  if (!(Number.isInteger(d.width) && d.width > 0 && Number.isInteger(d.height) && d.height > 0)) {
    throw new RangeError(`dma-buf image: size ${d.width}x${d.height} is not positive`);
  }
  if (d.planes.length < 1 || d.planes.length > 4) throw new RangeError(`dma-buf image: ${d.planes.length} planes, expected 1..4`);
  const mod = d.modifier === undefined ? MOD_INVALID : BigInt.asUintN(64, d.modifier);
  const explicit = mod !== MOD_INVALID;
  if (explicit && !withModifiers && mod !== 0n) {
    throw new RangeError(
      `dma-buf image: modifier 0x${mod.toString(16)} needs EGL_EXT_image_dma_buf_import_modifiers, which this display lacks`,
    );
  }
  const pairs: [number, number][] = [
    [EGL_WIDTH, d.width],
    [EGL_HEIGHT, d.height],
    [EGL_LINUX_DRM_FOURCC_EXT, d.format | 0],
  ];
  d.planes.forEach((p, i) => {
    if (!(Number.isInteger(p.fd) && p.fd >= 0)) throw new RangeError(`dma-buf image: plane ${i} fd ${p.fd} is not an fd`);
    if (!(Number.isInteger(p.offset) && p.offset >= 0 && p.offset <= 0x7fffffff)) throw new RangeError(`dma-buf image: plane ${i} offset ${p.offset}`);
    if (!(Number.isInteger(p.pitch) && p.pitch > 0 && p.pitch <= 0x7fffffff)) throw new RangeError(`dma-buf image: plane ${i} pitch ${p.pitch}`);
    const [fdA, offA, pitchA, loA, hiA] = EGL_DMA_BUF_PLANE_ATTRIBS[i];
    pairs.push([fdA, p.fd], [offA, p.offset], [pitchA, p.pitch]);
    if (explicit && withModifiers) {
      pairs.push([loA, Number(mod & 0xffffffffn) | 0], [hiA, Number(mod >> 32n) | 0]);
    }
  });
  return attribList(pairs);
}

// ---------------------------------------------------------------------------------------
// Library loading and bindings
// ---------------------------------------------------------------------------------------

declare const brand: unique symbol;
export type EGLDisplay = { readonly [brand]: 'EGLDisplay' };
export type EGLConfig = { readonly [brand]: 'EGLConfig' };
export type EGLContext = { readonly [brand]: 'EGLContext' };
export type EGLSurface = { readonly [brand]: 'EGLSurface' };
export type EGLImage = { readonly [brand]: 'EGLImage' };

export const LIBEGL = 'libEGL.so.1';
export const LIBGLES = 'libGLESv2.so.2';

type Lib = ReturnType<typeof koffi.load>;

function bindEgl(lib: Lib) {
  const opt = (proto: string) => {
    try {
      return lib.func(proto);
    } catch {
      return null;
    }
  };
  return {
    eglGetProcAddress: lib.func('void *eglGetProcAddress(const char *procname)'),
    eglGetError: lib.func('int eglGetError(void)'),
    eglGetDisplay: lib.func('void *eglGetDisplay(void *native)'),
    // EGL 1.5; the EXT variant comes from eglGetProcAddress when the client library lacks it.
    eglGetPlatformDisplay: opt('void *eglGetPlatformDisplay(unsigned int platform, void *native, const intptr_t *attribs)'),
    eglInitialize: lib.func('unsigned int eglInitialize(void *dpy, _Out_ int *major, _Out_ int *minor)'),
    eglTerminate: lib.func('unsigned int eglTerminate(void *dpy)'),
    eglQueryString: lib.func('const char *eglQueryString(void *dpy, int name)'),
    eglBindAPI: lib.func('unsigned int eglBindAPI(unsigned int api)'),
    eglGetConfigs: lib.func('unsigned int eglGetConfigs(void *dpy, _Out_ void **configs, int size, _Out_ int *num)'),
    eglChooseConfig: lib.func(
      'unsigned int eglChooseConfig(void *dpy, const int *attribs, _Out_ void **configs, int size, _Out_ int *num)',
    ),
    eglGetConfigAttrib: lib.func('unsigned int eglGetConfigAttrib(void *dpy, void *config, int attribute, _Out_ int *value)'),
    eglCreateContext: lib.func('void *eglCreateContext(void *dpy, void *config, void *share, const int *attribs)'),
    eglDestroyContext: lib.func('unsigned int eglDestroyContext(void *dpy, void *ctx)'),
    eglMakeCurrent: lib.func('unsigned int eglMakeCurrent(void *dpy, void *draw, void *read, void *ctx)'),
    eglGetCurrentContext: lib.func('void *eglGetCurrentContext(void)'),
    eglCreateWindowSurface: lib.func('void *eglCreateWindowSurface(void *dpy, void *config, void *win, const int *attribs)'),
    eglDestroySurface: lib.func('unsigned int eglDestroySurface(void *dpy, void *surface)'),
    eglSwapBuffers: lib.func('unsigned int eglSwapBuffers(void *dpy, void *surface)'),
    eglReleaseThread: lib.func('unsigned int eglReleaseThread(void)'),
  };
}

function bindGles(lib: Lib) {
  return {
    glGetError: lib.func('unsigned int glGetError(void)'),
    glGetString: lib.func('const char *glGetString(unsigned int name)'),
    glGetIntegerv: lib.func('void glGetIntegerv(unsigned int pname, _Out_ int *data)'),
    glViewport: lib.func('void glViewport(int x, int y, int w, int h)'),
    glScissor: lib.func('void glScissor(int x, int y, int w, int h)'),
    glEnable: lib.func('void glEnable(unsigned int cap)'),
    glDisable: lib.func('void glDisable(unsigned int cap)'),
    glBlendFunc: lib.func('void glBlendFunc(unsigned int sfactor, unsigned int dfactor)'),
    glBlendFuncSeparate: lib.func('void glBlendFuncSeparate(unsigned int srgb, unsigned int drgb, unsigned int salpha, unsigned int dalpha)'),
    glClearColor: lib.func('void glClearColor(float r, float g, float b, float a)'),
    glClear: lib.func('void glClear(unsigned int mask)'),
    glFinish: lib.func('void glFinish(void)'),
    glFlush: lib.func('void glFlush(void)'),
    glPixelStorei: lib.func('void glPixelStorei(unsigned int pname, int param)'),
    glReadPixels: lib.func('void glReadPixels(int x, int y, int w, int h, unsigned int format, unsigned int type, void *pixels)'),

    glGenTextures: lib.func('void glGenTextures(int n, _Out_ unsigned int *textures)'),
    glDeleteTextures: lib.func('void glDeleteTextures(int n, const unsigned int *textures)'),
    glBindTexture: lib.func('void glBindTexture(unsigned int target, unsigned int texture)'),
    glActiveTexture: lib.func('void glActiveTexture(unsigned int texture)'),
    glTexParameteri: lib.func('void glTexParameteri(unsigned int target, unsigned int pname, int param)'),
    glTexImage2D: lib.func(
      'void glTexImage2D(unsigned int target, int level, int internalformat, int w, int h, int border, unsigned int format, unsigned int type, const void *pixels)',
    ),
    glTexSubImage2D: lib.func(
      'void glTexSubImage2D(unsigned int target, int level, int x, int y, int w, int h, unsigned int format, unsigned int type, const void *pixels)',
    ),

    glGenRenderbuffers: lib.func('void glGenRenderbuffers(int n, _Out_ unsigned int *rbs)'),
    glDeleteRenderbuffers: lib.func('void glDeleteRenderbuffers(int n, const unsigned int *rbs)'),
    glBindRenderbuffer: lib.func('void glBindRenderbuffer(unsigned int target, unsigned int rb)'),
    glGenFramebuffers: lib.func('void glGenFramebuffers(int n, _Out_ unsigned int *fbs)'),
    glDeleteFramebuffers: lib.func('void glDeleteFramebuffers(int n, const unsigned int *fbs)'),
    glBindFramebuffer: lib.func('void glBindFramebuffer(unsigned int target, unsigned int fb)'),
    glFramebufferRenderbuffer: lib.func(
      'void glFramebufferRenderbuffer(unsigned int target, unsigned int attachment, unsigned int rbtarget, unsigned int rb)',
    ),
    glFramebufferTexture2D: lib.func(
      'void glFramebufferTexture2D(unsigned int target, unsigned int attachment, unsigned int textarget, unsigned int texture, int level)',
    ),
    glCheckFramebufferStatus: lib.func('unsigned int glCheckFramebufferStatus(unsigned int target)'),

    glCreateShader: lib.func('unsigned int glCreateShader(unsigned int type)'),
    glShaderSource: lib.func('void glShaderSource(unsigned int shader, int count, const char **strings, const int *lengths)'),
    glCompileShader: lib.func('void glCompileShader(unsigned int shader)'),
    glGetShaderiv: lib.func('void glGetShaderiv(unsigned int shader, unsigned int pname, _Out_ int *params)'),
    glGetShaderInfoLog: lib.func('void glGetShaderInfoLog(unsigned int shader, int size, _Out_ int *length, void *log)'),
    glDeleteShader: lib.func('void glDeleteShader(unsigned int shader)'),
    glCreateProgram: lib.func('unsigned int glCreateProgram(void)'),
    glAttachShader: lib.func('void glAttachShader(unsigned int program, unsigned int shader)'),
    glBindAttribLocation: lib.func('void glBindAttribLocation(unsigned int program, unsigned int index, const char *name)'),
    glLinkProgram: lib.func('void glLinkProgram(unsigned int program)'),
    glGetProgramiv: lib.func('void glGetProgramiv(unsigned int program, unsigned int pname, _Out_ int *params)'),
    glGetProgramInfoLog: lib.func('void glGetProgramInfoLog(unsigned int program, int size, _Out_ int *length, void *log)'),
    glUseProgram: lib.func('void glUseProgram(unsigned int program)'),
    glDeleteProgram: lib.func('void glDeleteProgram(unsigned int program)'),
    glGetAttribLocation: lib.func('int glGetAttribLocation(unsigned int program, const char *name)'),
    glGetUniformLocation: lib.func('int glGetUniformLocation(unsigned int program, const char *name)'),
    glUniform1i: lib.func('void glUniform1i(int location, int v0)'),
    glUniform1f: lib.func('void glUniform1f(int location, float v0)'),
    glUniform4f: lib.func('void glUniform4f(int location, float v0, float v1, float v2, float v3)'),

    glGenBuffers: lib.func('void glGenBuffers(int n, _Out_ unsigned int *buffers)'),
    glDeleteBuffers: lib.func('void glDeleteBuffers(int n, const unsigned int *buffers)'),
    glBindBuffer: lib.func('void glBindBuffer(unsigned int target, unsigned int buffer)'),
    glBufferData: lib.func('void glBufferData(unsigned int target, intptr_t size, const void *data, unsigned int usage)'),
    glBufferSubData: lib.func('void glBufferSubData(unsigned int target, intptr_t offset, intptr_t size, const void *data)'),
    // The last argument is a byte offset into the bound GL_ARRAY_BUFFER (we never use
    // client-side arrays: koffi does not keep JS memory pinned until glDrawArrays).
    glVertexAttribPointer: lib.func(
      'void glVertexAttribPointer(unsigned int index, int size, unsigned int type, uint8_t normalized, int stride, uintptr_t offset)',
    ),
    glEnableVertexAttribArray: lib.func('void glEnableVertexAttribArray(unsigned int index)'),
    glDisableVertexAttribArray: lib.func('void glDisableVertexAttribArray(unsigned int index)'),
    glDrawArrays: lib.func('void glDrawArrays(unsigned int mode, int first, int count)'),
  };
}

// Extension entry points, decoded from eglGetProcAddress pointers.
const protos = {
  eglGetPlatformDisplayEXT: koffi.proto(null, 'void *', ['unsigned int', 'void *', 'const int *']),
  eglCreatePlatformWindowSurfaceEXT: koffi.proto(null, 'void *', ['void *', 'void *', 'void *', 'const int *']),
  eglCreateImageKHR: koffi.proto(null, 'void *', ['void *', 'void *', 'unsigned int', 'void *', 'const int *']),
  eglDestroyImageKHR: koffi.proto(null, 'unsigned int', ['void *', 'void *']),
  eglQueryDmaBufFormatsEXT: koffi.proto(null, 'unsigned int', ['void *', 'int', koffi.out(koffi.pointer('int')), koffi.out(koffi.pointer('int'))]),
  eglQueryDmaBufModifiersEXT: koffi.proto(null, 'unsigned int', [
    'void *',
    'int',
    'int',
    koffi.out(koffi.pointer('uint64_t')),
    koffi.out(koffi.pointer('unsigned int')),
    koffi.out(koffi.pointer('int')),
  ]),
  eglGetDisplayDriverName: koffi.proto(null, 'const char *', ['void *']),
  glEGLImageTargetTexture2DOES: koffi.proto(null, 'void', ['unsigned int', 'void *']),
  glEGLImageTargetRenderbufferStorageOES: koffi.proto(null, 'void', ['unsigned int', 'void *']),
};
type ProcName = keyof typeof protos;
type KoffiFn = (...args: unknown[]) => unknown;

let eglApi: ReturnType<typeof bindEgl> | null = null;
let glesApi: ReturnType<typeof bindGles> | null = null;
let loadError: string | null = null;
const procs = new Map<ProcName, KoffiFn | null>();

function egl(): ReturnType<typeof bindEgl> {
  if (eglApi) return eglApi;
  load();
  return eglApi!;
}
function gl(): ReturnType<typeof bindGles> {
  if (glesApi) return glesApi;
  load();
  return glesApi!;
}
function load(): void {
  if (loadError) throw new Error(loadError);
  try {
    eglApi = bindEgl(koffi.load(LIBEGL));
  } catch (e) {
    loadError = `cannot load ${LIBEGL} (${(e as Error).message}); install libegl1 and Mesa's libegl-mesa0`;
    throw new Error(loadError);
  }
  try {
    glesApi = bindGles(koffi.load(LIBGLES));
  } catch (e) {
    eglApi = null;
    loadError = `cannot load ${LIBGLES} (${(e as Error).message}); install libgles2`;
    throw new Error(loadError);
  }
}

/** null when libEGL and libGLESv2 load, else why not. */
export function eglLoadError(): string | null {
  try {
    load();
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

/** eglGetProcAddress, as a raw pointer (null when unknown). */
export function getProcAddress(name: string): unknown {
  return egl().eglGetProcAddress(name);
}

/** An extension entry point, or null when the implementation does not export it. */
function proc(name: ProcName): KoffiFn | null {
  if (procs.has(name)) return procs.get(name)!;
  const p = egl().eglGetProcAddress(name);
  const fn = p === null ? null : (koffi.decode(p, protos[name]) as KoffiFn);
  procs.set(name, fn);
  return fn;
}
function needProc(name: ProcName, ext: string): KoffiFn {
  const fn = proc(name);
  if (!fn) throw new EglError(name, 'eglGetProcAddress', EGL_BAD_PARAMETER, `entry point missing: the implementation lacks ${ext}`);
  return fn;
}

/** Whether an extension entry point resolves (for capability checks). */
export function hasProc(name: ProcName): boolean {
  return proc(name) !== null;
}

// ---------------------------------------------------------------------------------------
// EGL
// ---------------------------------------------------------------------------------------

export function getError(): number {
  return egl().eglGetError() as number;
}

function fail(call: string, object: string, hint?: string): EglError {
  const code = egl().eglGetError() as number;
  // libglvnd answers calls to extensions the vendor lacks with EGL_FALSE and no error.
  const why = hint ?? (code === EGL_SUCCESS ? 'no EGL error recorded: does the display have the extension?' : undefined);
  return new EglError(call, object, code, why);
}
function ok(ret: unknown): boolean {
  return (ret as number) !== EGL_FALSE;
}

/**
 * eglGetPlatformDisplay (EGL 1.5) or eglGetPlatformDisplayEXT. `native` is e.g. a
 * GbmDevice for EGL_PLATFORM_GBM_KHR.
 */
export function getPlatformDisplay(platform: number, native: unknown, what = `platform 0x${platform.toString(16)}`): EGLDisplay {
  const e = egl();
  let dpy: unknown = null;
  if (e.eglGetPlatformDisplay) {
    dpy = e.eglGetPlatformDisplay(platform, native, null);
  } else {
    const ext = proc('eglGetPlatformDisplayEXT');
    if (!ext) throw new EglError('eglGetPlatformDisplay', what, EGL_BAD_PARAMETER, 'neither EGL 1.5 nor EGL_EXT_platform_base');
    dpy = ext(platform, native, null);
  }
  if (dpy === null) throw fail('eglGetPlatformDisplay', what);
  return dpy as EGLDisplay;
}

export function initialize(dpy: EGLDisplay): { major: number; minor: number } {
  const major = new Int32Array(1);
  const minor = new Int32Array(1);
  if (!ok(egl().eglInitialize(dpy, major, minor))) throw fail('eglInitialize', 'display');
  return { major: major[0], minor: minor[0] };
}

export function terminate(dpy: EGLDisplay): void {
  if (!ok(egl().eglTerminate(dpy))) throw fail('eglTerminate', 'display');
}

/** eglQueryString; dpy null = client extensions (EGL_EXT_client_extensions). */
export function queryString(dpy: EGLDisplay | null, name: number): string | null {
  return egl().eglQueryString(dpy, name) as string | null;
}

export function extensions(dpy: EGLDisplay | null): Set<string> {
  const s = queryString(dpy, EGL_EXTENSIONS);
  if (dpy === null && s === null) egl().eglGetError(); // EGL_BAD_DISPLAY: no client extensions
  return parseExtensions(s);
}

export function bindAPI(api: number): void {
  if (!ok(egl().eglBindAPI(api))) throw fail('eglBindAPI', `0x${api.toString(16)}`);
}

function decodeConfigs(buf: Buffer, n: number): EGLConfig[] {
  if (n <= 0) return [];
  return koffi.decode(buf, koffi.array('void *', n, 'Array')) as EGLConfig[];
}

export function getConfigs(dpy: EGLDisplay): EGLConfig[] {
  const num = new Int32Array(1);
  if (!ok(egl().eglGetConfigs(dpy, null, 0, num))) throw fail('eglGetConfigs', 'display');
  const buf = Buffer.alloc(8 * Math.max(1, num[0]));
  if (!ok(egl().eglGetConfigs(dpy, buf, num[0], num))) throw fail('eglGetConfigs', 'display');
  return decodeConfigs(buf, num[0]);
}

/** eglChooseConfig with an attribute list (attribList); best match first. */
export function chooseConfig(dpy: EGLDisplay, attribs: Int32Array, max = 64): EGLConfig[] {
  const buf = Buffer.alloc(8 * max);
  const num = new Int32Array(1);
  if (!ok(egl().eglChooseConfig(dpy, attribs, buf, max, num))) throw fail('eglChooseConfig', 'display');
  return decodeConfigs(buf, Math.min(num[0], max));
}

export function getConfigAttrib(dpy: EGLDisplay, config: EGLConfig, attribute: number): number {
  const v = new Int32Array(1);
  if (!ok(egl().eglGetConfigAttrib(dpy, config, attribute, v))) throw fail('eglGetConfigAttrib', `0x${attribute.toString(16)}`);
  return v[0];
}

/** eglCreateContext; config null = EGL_NO_CONFIG_KHR (EGL_KHR_no_config_context). */
export function createContext(dpy: EGLDisplay, config: EGLConfig | null, share: EGLContext | null, attribs: Int32Array): EGLContext {
  const ctx = egl().eglCreateContext(dpy, config, share, attribs);
  if (ctx === null) throw fail('eglCreateContext', config ? 'config' : 'EGL_NO_CONFIG_KHR');
  return ctx as EGLContext;
}

export function destroyContext(dpy: EGLDisplay, ctx: EGLContext): void {
  if (!ok(egl().eglDestroyContext(dpy, ctx))) throw fail('eglDestroyContext', 'context');
}

/** eglMakeCurrent; draw/read null = surfaceless (EGL_KHR_surfaceless_context); all null = release. */
export function makeCurrent(dpy: EGLDisplay | null, draw: EGLSurface | null, read: EGLSurface | null, ctx: EGLContext | null): void {
  if (!ok(egl().eglMakeCurrent(dpy, draw, read, ctx))) {
    throw fail('eglMakeCurrent', ctx === null ? 'release' : draw === null ? 'surfaceless' : 'window surface');
  }
}

export function getCurrentContext(): EGLContext | null {
  return egl().eglGetCurrentContext() as EGLContext | null;
}

/** Whether `ctx` is the calling thread's current context (externals compare by address). */
export function isCurrentContext(ctx: EGLContext): boolean {
  const cur = egl().eglGetCurrentContext();
  return cur !== null && koffi.address(cur) === koffi.address(ctx);
}

/** A window surface on a native window (a GbmSurface on the GBM platform). */
export function createWindowSurface(dpy: EGLDisplay, config: EGLConfig, window: unknown, attribs: Int32Array | null = null): EGLSurface {
  const platformFn = proc('eglCreatePlatformWindowSurfaceEXT');
  const s = platformFn
    ? platformFn(dpy, config, window, attribs ?? attribList([]))
    : egl().eglCreateWindowSurface(dpy, config, window, attribs ?? attribList([]));
  if (s === null) throw fail(platformFn ? 'eglCreatePlatformWindowSurfaceEXT' : 'eglCreateWindowSurface', 'native window');
  return s as EGLSurface;
}

export function destroySurface(dpy: EGLDisplay, surface: EGLSurface): void {
  if (!ok(egl().eglDestroySurface(dpy, surface))) throw fail('eglDestroySurface', 'surface');
}

export function swapBuffers(dpy: EGLDisplay, surface: EGLSurface): void {
  if (!ok(egl().eglSwapBuffers(dpy, surface))) throw fail('eglSwapBuffers', 'surface');
}

/** Frees EGL's per-thread state (after the last makeCurrent(null…)). */
export function releaseThread(): void {
  egl().eglReleaseThread();
}

/**
 * eglCreateImageKHR. For EGL_LINUX_DMA_BUF_EXT, `buffer` is null and the attributes come
 * from dmabufImageAttribs; EGL does not take the fds (it dups what it keeps), so the
 * caller may close them right after.
 */
export function createImageKHR(dpy: EGLDisplay, ctx: EGLContext | null, target: number, buffer: unknown, attribs: Int32Array, what: string): EGLImage {
  const fn = needProc('eglCreateImageKHR', 'EGL_KHR_image_base');
  const img = fn(dpy, ctx, target, buffer, attribs);
  if (img === null) throw fail('eglCreateImageKHR', what);
  return img as EGLImage;
}

export function destroyImageKHR(dpy: EGLDisplay, image: EGLImage): void {
  const fn = needProc('eglDestroyImageKHR', 'EGL_KHR_image_base');
  if (!ok(fn(dpy, image))) throw fail('eglDestroyImageKHR', 'image');
}

/** eglGetDisplayDriverName (EGL_MESA_query_driver): 'kms_swrast', 'iris'…; null if unknown. */
export function getDisplayDriverName(dpy: EGLDisplay): string | null {
  const fn = proc('eglGetDisplayDriverName');
  return fn ? ((fn(dpy) as string | null) ?? null) : null;
}

/** eglQueryDmaBufFormatsEXT: fourccs the display imports (EGL_EXT_image_dma_buf_import_modifiers). */
export function queryDmaBufFormats(dpy: EGLDisplay): number[] {
  const fn = needProc('eglQueryDmaBufFormatsEXT', 'EGL_EXT_image_dma_buf_import_modifiers');
  const num = new Int32Array(1);
  if (!ok(fn(dpy, 0, null, num))) throw fail('eglQueryDmaBufFormatsEXT', 'display');
  if (num[0] === 0) return [];
  const formats = new Int32Array(num[0]);
  if (!ok(fn(dpy, formats.length, formats, num))) throw fail('eglQueryDmaBufFormatsEXT', 'display');
  return Array.from(formats.subarray(0, num[0]), (f) => f >>> 0);
}

export interface DmaBufModifier {
  modifier: bigint;
  /** Only samplable through GL_TEXTURE_EXTERNAL_OES (YUV, some tiled layouts). */
  externalOnly: boolean;
}

/** eglQueryDmaBufModifiersEXT for one fourcc; [] = only implicit layouts. */
export function queryDmaBufModifiers(dpy: EGLDisplay, format: number): DmaBufModifier[] {
  const fn = needProc('eglQueryDmaBufModifiersEXT', 'EGL_EXT_image_dma_buf_import_modifiers');
  const num = new Int32Array(1);
  const what = `format 0x${(format >>> 0).toString(16)}`;
  if (!ok(fn(dpy, format | 0, 0, null, null, num))) throw fail('eglQueryDmaBufModifiersEXT', what);
  if (num[0] === 0) return [];
  const mods = new BigUint64Array(num[0]);
  const ext = new Uint32Array(num[0]);
  if (!ok(fn(dpy, format | 0, mods.length, mods, ext, num))) throw fail('eglQueryDmaBufModifiersEXT', what);
  const out: DmaBufModifier[] = [];
  for (let i = 0; i < num[0]; i++) out.push({ modifier: mods[i], externalOnly: ext[i] !== 0 });
  return out;
}

// ---------------------------------------------------------------------------------------
// GLES
// ---------------------------------------------------------------------------------------

export function glGetError(): number {
  return gl().glGetError() as number;
}

/** Throws a GlError naming `call` when GL recorded an error (all pending errors drained). */
export function checkGl(call: string, object = ''): void {
  const g = gl();
  const first = g.glGetError() as number;
  if (first === GL_NO_ERROR) return;
  for (let i = 0; i < 8 && (g.glGetError() as number) !== GL_NO_ERROR; i++);
  throw new GlError(call, object, first);
}

/** glGetString; null without a current context. */
export function glGetString(name: number): string | null {
  return gl().glGetString(name) as string | null;
}

export function glGetInteger(pname: number): number {
  const v = new Int32Array(4);
  gl().glGetIntegerv(pname, v);
  return v[0];
}

export function glViewport(x: number, y: number, w: number, h: number): void {
  gl().glViewport(x, y, w, h);
}
export function glScissor(x: number, y: number, w: number, h: number): void {
  gl().glScissor(x, y, w, h);
}
export function glEnable(cap: number): void {
  gl().glEnable(cap);
}
export function glDisable(cap: number): void {
  gl().glDisable(cap);
}
export function glBlendFunc(sfactor: number, dfactor: number): void {
  gl().glBlendFunc(sfactor, dfactor);
}
export function glBlendFuncSeparate(srgb: number, drgb: number, salpha: number, dalpha: number): void {
  gl().glBlendFuncSeparate(srgb, drgb, salpha, dalpha);
}
export function glClearColor(r: number, g: number, b: number, a: number): void {
  gl().glClearColor(r, g, b, a);
}
export function glClear(mask: number): void {
  gl().glClear(mask);
}
export function glFinish(): void {
  gl().glFinish();
}
export function glFlush(): void {
  gl().glFlush();
}
export function glPixelStorei(pname: number, param: number): void {
  gl().glPixelStorei(pname, param);
}

/** glReadPixels into `out` (which must hold w*h*4 bytes for GL_RGBA/GL_UNSIGNED_BYTE). */
export function glReadPixels(x: number, y: number, w: number, h: number, format: number, type: number, out: Buffer | Uint8Array): void {
  if (out.byteLength < w * h * 4) throw new RangeError(`glReadPixels: ${out.byteLength}-byte buffer for ${w}x${h}`);
  gl().glReadPixels(x, y, w, h, format, type, out);
  checkGl('glReadPixels', `${w}x${h} at ${x},${y}`);
}

function genOne(fn: KoffiFn, call: string): number {
  const out = new Uint32Array(1);
  fn(1, out);
  if (out[0] === 0) throw new GlError(call, '1', glGetError());
  return out[0];
}
function deleteOne(fn: KoffiFn, name: number): void {
  fn(1, Uint32Array.of(name));
}

export function glGenTexture(): number {
  return genOne(gl().glGenTextures as KoffiFn, 'glGenTextures');
}
export function glDeleteTexture(tex: number): void {
  deleteOne(gl().glDeleteTextures as KoffiFn, tex);
}
/** glTexSubImage2D from CPU memory (rows as set up by GL_UNPACK_* pixel store state). */
export function glTexSubImage2D(
  target: number,
  level: number,
  x: number,
  y: number,
  w: number,
  h: number,
  format: number,
  type: number,
  pixels: Buffer | Uint8Array,
): void {
  gl().glTexSubImage2D(target, level, x, y, w, h, format, type, pixels);
}
export function glBindTexture(target: number, tex: number): void {
  gl().glBindTexture(target, tex);
}
export function glActiveTexture(unit: number): void {
  gl().glActiveTexture(unit);
}
export function glTexParameteri(target: number, pname: number, param: number): void {
  gl().glTexParameteri(target, pname, param);
}
export function glTexImage2D(
  target: number,
  level: number,
  internalformat: number,
  w: number,
  h: number,
  format: number,
  type: number,
  pixels: Buffer | Uint8Array | null,
): void {
  gl().glTexImage2D(target, level, internalformat, w, h, 0, format, type, pixels);
  checkGl('glTexImage2D', `${w}x${h}`);
}

export function glGenRenderbuffer(): number {
  return genOne(gl().glGenRenderbuffers as KoffiFn, 'glGenRenderbuffers');
}
export function glDeleteRenderbuffer(rb: number): void {
  deleteOne(gl().glDeleteRenderbuffers as KoffiFn, rb);
}
export function glBindRenderbuffer(target: number, rb: number): void {
  gl().glBindRenderbuffer(target, rb);
}
export function glGenFramebuffer(): number {
  return genOne(gl().glGenFramebuffers as KoffiFn, 'glGenFramebuffers');
}
export function glDeleteFramebuffer(fb: number): void {
  deleteOne(gl().glDeleteFramebuffers as KoffiFn, fb);
}
export function glBindFramebuffer(target: number, fb: number): void {
  gl().glBindFramebuffer(target, fb);
}
export function glFramebufferRenderbuffer(target: number, attachment: number, rbtarget: number, rb: number): void {
  gl().glFramebufferRenderbuffer(target, attachment, rbtarget, rb);
}
export function glFramebufferTexture2D(target: number, attachment: number, textarget: number, tex: number, level = 0): void {
  gl().glFramebufferTexture2D(target, attachment, textarget, tex, level);
}
export function glCheckFramebufferStatus(target: number): number {
  return gl().glCheckFramebufferStatus(target) as number;
}

/** glEGLImageTargetTexture2DOES on the bound texture of `target` (GL_OES_EGL_image). */
export function glEGLImageTargetTexture2DOES(target: number, image: EGLImage): void {
  needProc('glEGLImageTargetTexture2DOES', 'GL_OES_EGL_image')(target, image);
  checkGl('glEGLImageTargetTexture2DOES', target === GL_TEXTURE_EXTERNAL_OES ? 'GL_TEXTURE_EXTERNAL_OES' : 'GL_TEXTURE_2D');
}

/** glEGLImageTargetRenderbufferStorageOES on the bound renderbuffer (GL_OES_EGL_image). */
export function glEGLImageTargetRenderbufferStorageOES(target: number, image: EGLImage): void {
  needProc('glEGLImageTargetRenderbufferStorageOES', 'GL_OES_EGL_image')(target, image);
  checkGl('glEGLImageTargetRenderbufferStorageOES', 'GL_RENDERBUFFER');
}

export function glGenBuffer(): number {
  return genOne(gl().glGenBuffers as KoffiFn, 'glGenBuffers');
}
export function glDeleteBuffer(buf: number): void {
  deleteOne(gl().glDeleteBuffers as KoffiFn, buf);
}
export function glBindBuffer(target: number, buf: number): void {
  gl().glBindBuffer(target, buf);
}
export function glBufferData(target: number, data: Float32Array | Uint8Array | null, size: number, usage: number): void {
  gl().glBufferData(target, size, data, usage);
  checkGl('glBufferData', `${size} bytes`);
}
export function glBufferSubData(target: number, offset: number, data: Float32Array | Uint8Array): void {
  gl().glBufferSubData(target, offset, data.byteLength, data);
}
/** glVertexAttribPointer into the bound GL_ARRAY_BUFFER at byte `offset`. */
export function glVertexAttribPointer(index: number, size: number, type: number, normalized: boolean, stride: number, offset: number): void {
  gl().glVertexAttribPointer(index, size, type, normalized ? 1 : 0, stride, offset);
}
export function glEnableVertexAttribArray(index: number): void {
  gl().glEnableVertexAttribArray(index);
}
export function glDisableVertexAttribArray(index: number): void {
  gl().glDisableVertexAttribArray(index);
}
export function glDrawArrays(mode: number, first: number, count: number): void {
  gl().glDrawArrays(mode, first, count);
}

function infoLog(getLen: () => number, read: (size: number, len: Int32Array, buf: Buffer) => void): string {
  const n = getLen();
  if (n <= 1) return '';
  const buf = Buffer.alloc(n);
  const len = new Int32Array(1);
  read(n, len, buf);
  return buf.subarray(0, Math.max(0, Math.min(len[0], n))).toString('utf8');
}

/** Compiles a shader; throws a GlError carrying the info log when it does not compile. */
export function compileShader(type: number, source: string, what = type === GL_VERTEX_SHADER ? 'vertex shader' : 'fragment shader'): number {
  const g = gl();
  const sh = g.glCreateShader(type) as number;
  if (sh === 0) throw new GlError('glCreateShader', what, glGetError());
  g.glShaderSource(sh, 1, [source], null);
  g.glCompileShader(sh);
  const status = new Int32Array(1);
  g.glGetShaderiv(sh, GL_COMPILE_STATUS, status);
  if (status[0] === GL_FALSE) {
    const log = infoLog(
      () => {
        const v = new Int32Array(1);
        g.glGetShaderiv(sh, GL_INFO_LOG_LENGTH, v);
        return v[0];
      },
      (size, len, buf) => g.glGetShaderInfoLog(sh, size, len, buf),
    );
    g.glDeleteShader(sh);
    throw new GlError('glCompileShader', what, 0, log || '(no info log)');
  }
  return sh;
}

export function glDeleteShader(sh: number): void {
  gl().glDeleteShader(sh);
}

/**
 * Links a program from compiled shaders, binding attribute locations first (so vertex
 * layouts need no glGetAttribLocation); throws a GlError with the info log on failure.
 * The shaders may be deleted afterwards.
 */
export function linkProgram(vs: number, fs: number, attribs: Readonly<Record<string, number>> = {}, what = 'program'): number {
  const g = gl();
  const prog = g.glCreateProgram() as number;
  if (prog === 0) throw new GlError('glCreateProgram', what, glGetError());
  g.glAttachShader(prog, vs);
  g.glAttachShader(prog, fs);
  for (const [name, index] of Object.entries(attribs)) g.glBindAttribLocation(prog, index, name);
  g.glLinkProgram(prog);
  const status = new Int32Array(1);
  g.glGetProgramiv(prog, GL_LINK_STATUS, status);
  if (status[0] === GL_FALSE) {
    const log = infoLog(
      () => {
        const v = new Int32Array(1);
        g.glGetProgramiv(prog, GL_INFO_LOG_LENGTH, v);
        return v[0];
      },
      (size, len, buf) => g.glGetProgramInfoLog(prog, size, len, buf),
    );
    g.glDeleteProgram(prog);
    throw new GlError('glLinkProgram', what, 0, log || '(no info log)');
  }
  return prog;
}

export function glUseProgram(prog: number): void {
  gl().glUseProgram(prog);
}
export function glDeleteProgram(prog: number): void {
  gl().glDeleteProgram(prog);
}
export function glGetAttribLocation(prog: number, name: string): number {
  return gl().glGetAttribLocation(prog, name) as number;
}
export function glGetUniformLocation(prog: number, name: string): number {
  return gl().glGetUniformLocation(prog, name) as number;
}
export function glUniform1i(loc: number, v: number): void {
  gl().glUniform1i(loc, v);
}
export function glUniform1f(loc: number, v: number): void {
  gl().glUniform1f(loc, v);
}
export function glUniform4f(loc: number, a: number, b: number, c: number, d: number): void {
  gl().glUniform4f(loc, a, b, c, d);
}

// ---------------------------------------------------------------------------------------
// ABI manifest
// ---------------------------------------------------------------------------------------

const EGL_CONSTANTS = {
  EGL_FALSE,
  EGL_TRUE,
  EGL_NONE,
  EGL_DONT_CARE,
  EGL_SUCCESS,
  EGL_NOT_INITIALIZED,
  EGL_BAD_ACCESS,
  EGL_BAD_ALLOC,
  EGL_BAD_ATTRIBUTE,
  EGL_BAD_CONFIG,
  EGL_BAD_CONTEXT,
  EGL_BAD_CURRENT_SURFACE,
  EGL_BAD_DISPLAY,
  EGL_BAD_MATCH,
  EGL_BAD_NATIVE_PIXMAP,
  EGL_BAD_NATIVE_WINDOW,
  EGL_BAD_PARAMETER,
  EGL_BAD_SURFACE,
  EGL_CONTEXT_LOST,
  EGL_BAD_DEVICE_EXT,
  EGL_VENDOR,
  EGL_VERSION,
  EGL_EXTENSIONS,
  EGL_CLIENT_APIS,
  EGL_BUFFER_SIZE,
  EGL_ALPHA_SIZE,
  EGL_BLUE_SIZE,
  EGL_GREEN_SIZE,
  EGL_RED_SIZE,
  EGL_DEPTH_SIZE,
  EGL_STENCIL_SIZE,
  EGL_CONFIG_ID,
  EGL_NATIVE_VISUAL_ID,
  EGL_SURFACE_TYPE,
  EGL_RENDERABLE_TYPE,
  EGL_CONFORMANT,
  EGL_WINDOW_BIT,
  EGL_PBUFFER_BIT,
  EGL_OPENGL_ES2_BIT,
  EGL_OPENGL_ES3_BIT,
  EGL_OPENGL_ES3_BIT_KHR,
  EGL_WIDTH,
  EGL_HEIGHT,
  EGL_NATIVE_PIXMAP_KHR,
  EGL_IMAGE_PRESERVED_KHR,
  EGL_OPENGL_ES_API,
  EGL_CONTEXT_CLIENT_VERSION,
  EGL_CONTEXT_MAJOR_VERSION,
  EGL_CONTEXT_MINOR_VERSION,
  EGL_DRAW,
  EGL_READ,
  EGL_PLATFORM_GBM_KHR,
  EGL_PLATFORM_SURFACELESS_MESA,
  EGL_PLATFORM_DEVICE_EXT,
  EGL_LINUX_DMA_BUF_EXT,
  EGL_LINUX_DRM_FOURCC_EXT,
  EGL_DMA_BUF_PLANE0_FD_EXT,
  EGL_DMA_BUF_PLANE0_OFFSET_EXT,
  EGL_DMA_BUF_PLANE0_PITCH_EXT,
  EGL_DMA_BUF_PLANE1_FD_EXT,
  EGL_DMA_BUF_PLANE1_OFFSET_EXT,
  EGL_DMA_BUF_PLANE1_PITCH_EXT,
  EGL_DMA_BUF_PLANE2_FD_EXT,
  EGL_DMA_BUF_PLANE2_OFFSET_EXT,
  EGL_DMA_BUF_PLANE2_PITCH_EXT,
  EGL_DMA_BUF_PLANE3_FD_EXT,
  EGL_DMA_BUF_PLANE3_OFFSET_EXT,
  EGL_DMA_BUF_PLANE3_PITCH_EXT,
  EGL_DMA_BUF_PLANE0_MODIFIER_LO_EXT,
  EGL_DMA_BUF_PLANE0_MODIFIER_HI_EXT,
  EGL_DMA_BUF_PLANE1_MODIFIER_LO_EXT,
  EGL_DMA_BUF_PLANE1_MODIFIER_HI_EXT,
  EGL_DMA_BUF_PLANE2_MODIFIER_LO_EXT,
  EGL_DMA_BUF_PLANE2_MODIFIER_HI_EXT,
  EGL_DMA_BUF_PLANE3_MODIFIER_LO_EXT,
  EGL_DMA_BUF_PLANE3_MODIFIER_HI_EXT,
};

const GL_CONSTANTS = {
  GL_NO_ERROR,
  GL_INVALID_ENUM,
  GL_INVALID_VALUE,
  GL_INVALID_OPERATION,
  GL_OUT_OF_MEMORY,
  GL_INVALID_FRAMEBUFFER_OPERATION,
  GL_FALSE,
  GL_TRUE,
  GL_VENDOR,
  GL_RENDERER,
  GL_VERSION,
  GL_EXTENSIONS,
  GL_SHADING_LANGUAGE_VERSION,
  GL_MAX_TEXTURE_SIZE,
  GL_MAX_RENDERBUFFER_SIZE,
  GL_TEXTURE_2D,
  GL_TEXTURE_EXTERNAL_OES,
  GL_TEXTURE0,
  GL_TEXTURE_MAG_FILTER,
  GL_TEXTURE_MIN_FILTER,
  GL_TEXTURE_WRAP_S,
  GL_TEXTURE_WRAP_T,
  GL_NEAREST,
  GL_LINEAR,
  GL_CLAMP_TO_EDGE,
  GL_RGBA,
  GL_RGB,
  GL_BGRA_EXT,
  GL_UNSIGNED_BYTE,
  GL_FLOAT,
  GL_PACK_ALIGNMENT,
  GL_UNPACK_ALIGNMENT,
  GL_UNPACK_ROW_LENGTH_EXT,
  GL_FRAMEBUFFER,
  GL_RENDERBUFFER,
  GL_COLOR_ATTACHMENT0,
  GL_FRAMEBUFFER_BINDING,
  GL_FRAMEBUFFER_COMPLETE,
  GL_FRAMEBUFFER_INCOMPLETE_ATTACHMENT,
  GL_FRAMEBUFFER_INCOMPLETE_MISSING_ATTACHMENT,
  GL_FRAMEBUFFER_INCOMPLETE_DIMENSIONS,
  GL_FRAMEBUFFER_UNSUPPORTED,
  GL_VERTEX_SHADER,
  GL_FRAGMENT_SHADER,
  GL_COMPILE_STATUS,
  GL_LINK_STATUS,
  GL_INFO_LOG_LENGTH,
  GL_ARRAY_BUFFER,
  GL_STATIC_DRAW,
  GL_STREAM_DRAW,
  GL_DYNAMIC_DRAW,
  GL_POINTS,
  GL_TRIANGLES,
  GL_TRIANGLE_STRIP,
  GL_TRIANGLE_FAN,
  GL_COLOR_BUFFER_BIT,
  GL_BLEND,
  GL_SCISSOR_TEST,
  GL_DEPTH_TEST,
  GL_CULL_FACE,
  GL_DITHER,
  GL_ZERO,
  GL_ONE,
  GL_SRC_ALPHA,
  GL_ONE_MINUS_SRC_ALPHA,
};

const scalar = (t: string) => ({ type: koffi.resolve(t) });

export const ABI: AbiManifest = {
  headers: ['EGL/egl.h', 'EGL/eglext.h', 'GLES2/gl2.h', 'GLES2/gl2ext.h'],
  // The scalar typedefs our prototypes spell as C types (EGLint → int, EGLAttrib →
  // intptr_t, EGLBoolean → unsigned int…): size and alignment checked against the headers.
  structs: {
    EGLint: scalar('int'),
    EGLBoolean: scalar('unsigned int'),
    EGLenum: scalar('unsigned int'),
    EGLAttrib: scalar('intptr_t'),
    EGLuint64KHR: scalar('uint64_t'),
    EGLDisplay: scalar('void *'),
    EGLConfig: scalar('void *'),
    EGLImageKHR: scalar('void *'),
    GLenum: scalar('unsigned int'),
    GLuint: scalar('unsigned int'),
    GLint: scalar('int'),
    GLsizei: scalar('int'),
    GLboolean: scalar('uint8_t'),
    GLbitfield: scalar('unsigned int'),
    GLfloat: scalar('float'),
    GLsizeiptr: scalar('intptr_t'),
    GLintptr: scalar('intptr_t'),
  },
  constants: { ...EGL_CONSTANTS, ...GL_CONSTANTS },
};
