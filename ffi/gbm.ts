// Thin, typed koffi bindings to libgbm.so.1 (Mesa's buffer manager). No policy: each call
// returns its result or throws a SysError naming the gbm call, the object and the errno
// symbol (gbm failures usually leave errno set by the ioctl that failed; when they do not,
// the error says so instead of showing a stale errno).
//
// libgbm is loaded on first use, not at import: a host without Mesa must still be able to
// import this module (the ABI test does, and GlesCompositor.create reports "GBM missing"
// as a reason to fall back to the CPU path instead of crashing). gbmLoadError() answers
// whether the library can be loaded.
//
// Pointers (struct gbm_device *, struct gbm_bo *, struct gbm_surface *) are koffi
// externals behind branded TypeScript types, so a bo cannot be passed where a device is
// wanted. Nothing here owns them: the caller destroys what it creates.
import koffi from 'koffi';
import type { AbiManifest } from './abi.js';
import { SysError, errno } from './libc.js';

// ---------------------------------------------------------------------------------------
// Constants (gbm.h; checked by test/unit/abi.test.ts)
// ---------------------------------------------------------------------------------------

// enum gbm_bo_flags
export const GBM_BO_USE_SCANOUT = 1 << 0;
export const GBM_BO_USE_CURSOR = 1 << 1;
export const GBM_BO_USE_RENDERING = 1 << 2;
export const GBM_BO_USE_WRITE = 1 << 3;
export const GBM_BO_USE_LINEAR = 1 << 4;
export const GBM_BO_USE_PROTECTED = 1 << 5;
export const GBM_BO_USE_FRONT_RENDERING = 1 << 6;

// gbm_bo_import types
export const GBM_BO_IMPORT_WL_BUFFER = 0x5501;
export const GBM_BO_IMPORT_EGL_IMAGE = 0x5502;
export const GBM_BO_IMPORT_FD = 0x5503;
export const GBM_BO_IMPORT_FD_MODIFIER = 0x5504;

export const GBM_MAX_PLANES = 4;

/** GBM formats are DRM fourccs; the few we name are checked against gbm.h. */
export const GBM_FORMAT_XRGB8888 = 0x34325258; // 'XR24'
export const GBM_FORMAT_ARGB8888 = 0x34325241; // 'AR24'
export const GBM_FORMAT_XBGR8888 = 0x34324258; // 'XB24'
export const GBM_FORMAT_ABGR8888 = 0x34324241; // 'AB24'
export const GBM_FORMAT_RGB565 = 0x36314752; // 'RG16'

// ---------------------------------------------------------------------------------------
// Struct layouts
// ---------------------------------------------------------------------------------------

/** struct gbm_import_fd_modifier_data (GBM_BO_IMPORT_FD_MODIFIER). */
export const gbm_import_fd_modifier_data = koffi.struct({
  width: 'uint32_t',
  height: 'uint32_t',
  format: 'uint32_t',
  num_fds: 'uint32_t',
  fds: koffi.array('int', GBM_MAX_PLANES),
  strides: koffi.array('int', GBM_MAX_PLANES),
  offsets: koffi.array('int', GBM_MAX_PLANES),
  modifier: 'uint64_t',
});

/** struct gbm_import_fd_data (GBM_BO_IMPORT_FD, single plane, implicit modifier). */
export const gbm_import_fd_data = koffi.struct({
  fd: 'int',
  width: 'uint32_t',
  height: 'uint32_t',
  stride: 'uint32_t',
  format: 'uint32_t',
});

/**
 * union gbm_bo_handle, returned by value from gbm_bo_get_handle. Every member is at most
 * 8 bytes of INTEGER class, so the x86_64/aarch64 ABIs return it in one register exactly
 * like a uint64_t; we bind the getter as returning uint64_t and read the u32 member as
 * its low 32 bits (the ABI test checks the union is 8 bytes).
 */
export const gbm_bo_handle = koffi.union({
  ptr: 'void *',
  s32: 'int32_t',
  u32: 'uint32_t',
  s64: 'int64_t',
  u64: 'uint64_t',
});

// ---------------------------------------------------------------------------------------
// Library loading and bindings
// ---------------------------------------------------------------------------------------

declare const brand: unique symbol;
/** struct gbm_device * */
export type GbmDevice = { readonly [brand]: 'gbm_device' };
/** struct gbm_bo * */
export type GbmBo = { readonly [brand]: 'gbm_bo' };
/** struct gbm_surface * */
export type GbmSurface = { readonly [brand]: 'gbm_surface' };

export const LIBGBM = 'libgbm.so.1';

type Fn = ReturnType<ReturnType<typeof koffi.load>['func']>;

function bind(lib: ReturnType<typeof koffi.load>) {
  const opt = (proto: string): Fn | null => {
    try {
      return lib.func(proto);
    } catch {
      return null;
    }
  };
  return {
    gbm_create_device: lib.func('void *gbm_create_device(int fd)'),
    gbm_device_destroy: lib.func('void gbm_device_destroy(void *gbm)'),
    gbm_device_get_fd: lib.func('int gbm_device_get_fd(void *gbm)'),
    gbm_device_get_backend_name: lib.func('const char *gbm_device_get_backend_name(void *gbm)'),
    gbm_device_is_format_supported: lib.func('int gbm_device_is_format_supported(void *gbm, uint32_t format, uint32_t flags)'),
    gbm_device_get_format_modifier_plane_count: opt(
      'int gbm_device_get_format_modifier_plane_count(void *gbm, uint32_t format, uint64_t modifier)',
    ),
    gbm_bo_create: lib.func('void *gbm_bo_create(void *gbm, uint32_t width, uint32_t height, uint32_t format, uint32_t flags)'),
    gbm_bo_create_with_modifiers: lib.func(
      'void *gbm_bo_create_with_modifiers(void *gbm, uint32_t width, uint32_t height, uint32_t format, const uint64_t *modifiers, unsigned int count)',
    ),
    // Mesa ≥ 21.3.
    gbm_bo_create_with_modifiers2: opt(
      'void *gbm_bo_create_with_modifiers2(void *gbm, uint32_t width, uint32_t height, uint32_t format, const uint64_t *modifiers, unsigned int count, uint32_t flags)',
    ),
    gbm_bo_import: lib.func('void *gbm_bo_import(void *gbm, uint32_t type, void *buffer, uint32_t flags)'),
    gbm_bo_destroy: lib.func('void gbm_bo_destroy(void *bo)'),
    gbm_bo_get_width: lib.func('uint32_t gbm_bo_get_width(void *bo)'),
    gbm_bo_get_height: lib.func('uint32_t gbm_bo_get_height(void *bo)'),
    gbm_bo_get_stride: lib.func('uint32_t gbm_bo_get_stride(void *bo)'),
    gbm_bo_get_stride_for_plane: lib.func('uint32_t gbm_bo_get_stride_for_plane(void *bo, int plane)'),
    gbm_bo_get_format: lib.func('uint32_t gbm_bo_get_format(void *bo)'),
    gbm_bo_get_bpp: lib.func('uint32_t gbm_bo_get_bpp(void *bo)'),
    gbm_bo_get_offset: lib.func('uint32_t gbm_bo_get_offset(void *bo, int plane)'),
    gbm_bo_get_handle: lib.func('uint64_t gbm_bo_get_handle(void *bo)'),
    gbm_bo_get_handle_for_plane: lib.func('uint64_t gbm_bo_get_handle_for_plane(void *bo, int plane)'),
    gbm_bo_get_fd: lib.func('int gbm_bo_get_fd(void *bo)'),
    gbm_bo_get_fd_for_plane: opt('int gbm_bo_get_fd_for_plane(void *bo, int plane)'),
    gbm_bo_get_modifier: lib.func('uint64_t gbm_bo_get_modifier(void *bo)'),
    gbm_bo_get_plane_count: lib.func('int gbm_bo_get_plane_count(void *bo)'),
    gbm_surface_create: lib.func(
      'void *gbm_surface_create(void *gbm, uint32_t width, uint32_t height, uint32_t format, uint32_t flags)',
    ),
    gbm_surface_create_with_modifiers: lib.func(
      'void *gbm_surface_create_with_modifiers(void *gbm, uint32_t width, uint32_t height, uint32_t format, const uint64_t *modifiers, unsigned int count)',
    ),
    gbm_surface_lock_front_buffer: lib.func('void *gbm_surface_lock_front_buffer(void *surface)'),
    gbm_surface_release_buffer: lib.func('void gbm_surface_release_buffer(void *surface, void *bo)'),
    gbm_surface_has_free_buffers: lib.func('int gbm_surface_has_free_buffers(void *surface)'),
    gbm_surface_destroy: lib.func('void gbm_surface_destroy(void *surface)'),
  };
}

let api: ReturnType<typeof bind> | null = null;
let loadError: string | null = null;

function gbm(): ReturnType<typeof bind> {
  if (api) return api;
  if (loadError) throw new Error(loadError);
  try {
    api = bind(koffi.load(LIBGBM));
    return api;
  } catch (e) {
    loadError = `cannot load ${LIBGBM} (${(e as Error).message}); install Mesa's libgbm1`;
    throw new Error(loadError);
  }
}

/** null when libgbm loads, else why not. */
export function gbmLoadError(): string | null {
  try {
    gbm();
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

/** The SysError for a gbm call that failed; errno was cleared before the call. */
function gbmError(call: string, object: string): SysError {
  const e = koffi.errno();
  return new SysError(call, object, e, e === 0 ? 'libgbm gave no errno' : undefined);
}
function fourccStr(f: number): string {
  let s = '';
  for (let i = 0; i < 4; i++) {
    const c = (f >>> (8 * i)) & 0xff;
    s += c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : '?';
  }
  return s.trimEnd();
}
function u64(v: number | bigint): bigint {
  return BigInt.asUintN(64, BigInt(v));
}
function mods(modifiers: readonly bigint[]): BigUint64Array {
  return BigUint64Array.from(modifiers.map((m) => BigInt.asUintN(64, m)));
}

// ---------------------------------------------------------------------------------------
// Device
// ---------------------------------------------------------------------------------------

/**
 * gbm_create_device on a DRM fd. GBM does not dup the fd: it must stay open until
 * deviceDestroy (and GEM handles of its bos live in that fd's handle namespace).
 */
export function createDevice(fd: number): GbmDevice {
  const g = gbm();
  koffi.errno(0);
  const p = g.gbm_create_device(fd);
  if (p === null) throw gbmError('gbm_create_device', `fd ${fd}`);
  return p as GbmDevice;
}

export function deviceDestroy(dev: GbmDevice): void {
  gbm().gbm_device_destroy(dev);
}

export function deviceGetFd(dev: GbmDevice): number {
  return gbm().gbm_device_get_fd(dev) as number;
}

/** 'drm' for Mesa's own backend. */
export function deviceGetBackendName(dev: GbmDevice): string {
  return (gbm().gbm_device_get_backend_name(dev) as string | null) ?? '';
}

/** gbm_device_is_format_supported(format, GBM_BO_USE_* flags). */
export function isFormatSupported(dev: GbmDevice, format: number, flags: number): boolean {
  return (gbm().gbm_device_is_format_supported(dev, format >>> 0, flags >>> 0) as number) !== 0;
}

/** Planes a format+modifier needs, or -1 when unknown (or libgbm lacks the call). */
export function formatModifierPlaneCount(dev: GbmDevice, format: number, modifier: bigint): number {
  const fn = gbm().gbm_device_get_format_modifier_plane_count;
  return fn ? (fn(dev, format >>> 0, u64(modifier)) as number) : -1;
}

// ---------------------------------------------------------------------------------------
// Buffer objects
// ---------------------------------------------------------------------------------------

export function boCreate(dev: GbmDevice, width: number, height: number, format: number, flags: number): GbmBo {
  const g = gbm();
  koffi.errno(0);
  const p = g.gbm_bo_create(dev, width, height, format >>> 0, flags >>> 0);
  if (p === null) throw gbmError('gbm_bo_create', `${width}x${height} ${fourccStr(format)} flags 0x${flags.toString(16)}`);
  return p as GbmBo;
}

export function boCreateWithModifiers(dev: GbmDevice, width: number, height: number, format: number, modifiers: readonly bigint[]): GbmBo {
  const g = gbm();
  koffi.errno(0);
  const p = g.gbm_bo_create_with_modifiers(dev, width, height, format >>> 0, mods(modifiers), modifiers.length);
  if (p === null) throw gbmError('gbm_bo_create_with_modifiers', `${width}x${height} ${fourccStr(format)} ${modifiers.length} modifier(s)`);
  return p as GbmBo;
}

/** gbm_bo_create_with_modifiers2 (modifiers and usage flags); Mesa ≥ 21.3. */
export function boCreateWithModifiers2(
  dev: GbmDevice,
  width: number,
  height: number,
  format: number,
  modifiers: readonly bigint[],
  flags: number,
): GbmBo {
  const g = gbm();
  if (!g.gbm_bo_create_with_modifiers2) {
    throw new SysError('gbm_bo_create_with_modifiers2', LIBGBM, errno.ENOSYS, 'libgbm older than Mesa 21.3');
  }
  koffi.errno(0);
  const p = g.gbm_bo_create_with_modifiers2(dev, width, height, format >>> 0, mods(modifiers), modifiers.length, flags >>> 0);
  if (p === null) {
    throw gbmError('gbm_bo_create_with_modifiers2', `${width}x${height} ${fourccStr(format)} ${modifiers.length} modifier(s) flags 0x${flags.toString(16)}`);
  }
  return p as GbmBo;
}

export function boDestroy(bo: GbmBo): void {
  gbm().gbm_bo_destroy(bo);
}

export interface GbmImportFdModifier {
  width: number;
  height: number;
  format: number;
  /** One entry per plane (the same fd may repeat). GBM dups what it keeps. */
  fds: readonly number[];
  strides: readonly number[];
  offsets: readonly number[];
  modifier: bigint;
}

/** Bytes of struct gbm_import_fd_modifier_data for `d` (pure; unit-tested). */
export function encodeImportFdModifier(d: GbmImportFdModifier): Buffer {
  const n = d.fds.length;
  if (n < 1 || n > GBM_MAX_PLANES) throw new RangeError(`gbm import: ${n} planes, expected 1..${GBM_MAX_PLANES}`);
  if (d.strides.length !== n || d.offsets.length !== n) {
    throw new RangeError(`gbm import: ${n} fds but ${d.strides.length} strides and ${d.offsets.length} offsets`);
  }
  const pad = (a: readonly number[]) => [...a, ...new Array<number>(GBM_MAX_PLANES - a.length).fill(0)];
  const buf = Buffer.alloc(koffi.sizeof(gbm_import_fd_modifier_data));
  koffi.encode(buf, gbm_import_fd_modifier_data, {
    width: d.width,
    height: d.height,
    format: d.format >>> 0,
    num_fds: n,
    fds: pad(d.fds),
    strides: pad(d.strides),
    offsets: pad(d.offsets),
    modifier: u64(d.modifier),
  });
  return buf;
}

/** gbm_bo_import(GBM_BO_IMPORT_FD_MODIFIER): a bo over an existing dma-buf. */
export function boImportFdModifier(dev: GbmDevice, data: GbmImportFdModifier, flags: number): GbmBo {
  const g = gbm();
  const buf = encodeImportFdModifier(data);
  koffi.errno(0);
  const p = g.gbm_bo_import(dev, GBM_BO_IMPORT_FD_MODIFIER, buf, flags >>> 0);
  if (p === null) {
    throw gbmError('gbm_bo_import', `FD_MODIFIER fd ${data.fds[0]} ${data.width}x${data.height} ${fourccStr(data.format)} modifier 0x${u64(data.modifier).toString(16)}`);
  }
  return p as GbmBo;
}

export function boGetWidth(bo: GbmBo): number {
  return gbm().gbm_bo_get_width(bo) as number;
}
export function boGetHeight(bo: GbmBo): number {
  return gbm().gbm_bo_get_height(bo) as number;
}
export function boGetStride(bo: GbmBo): number {
  return gbm().gbm_bo_get_stride(bo) as number;
}
export function boGetStrideForPlane(bo: GbmBo, plane: number): number {
  return gbm().gbm_bo_get_stride_for_plane(bo, plane) as number;
}
export function boGetFormat(bo: GbmBo): number {
  return gbm().gbm_bo_get_format(bo) as number;
}
export function boGetBpp(bo: GbmBo): number {
  return gbm().gbm_bo_get_bpp(bo) as number;
}
export function boGetOffset(bo: GbmBo, plane: number): number {
  return gbm().gbm_bo_get_offset(bo, plane) as number;
}
/** DRM_FORMAT_MOD_INVALID when the bo's layout is implicit (created without modifiers). */
export function boGetModifier(bo: GbmBo): bigint {
  return u64(gbm().gbm_bo_get_modifier(bo) as number | bigint);
}
export function boGetPlaneCount(bo: GbmBo): number {
  return gbm().gbm_bo_get_plane_count(bo) as number;
}
/**
 * The bo's GEM handle (union gbm_bo_handle .u32) in the handle namespace of the fd the
 * gbm device was created on. It belongs to the bo: do not GEM_CLOSE it.
 */
export function boGetHandle(bo: GbmBo): number {
  return Number(u64(gbm().gbm_bo_get_handle(bo) as number | bigint) & 0xffffffffn);
}
export function boGetHandleForPlane(bo: GbmBo, plane: number): number {
  return Number(u64(gbm().gbm_bo_get_handle_for_plane(bo, plane) as number | bigint) & 0xffffffffn);
}
/** A new dma-buf fd for the bo (PRIME export); the caller closes it. */
export function boGetFd(bo: GbmBo): number {
  const g = gbm();
  koffi.errno(0);
  const fd = g.gbm_bo_get_fd(bo) as number;
  if (fd < 0) throw gbmError('gbm_bo_get_fd', 'bo');
  return fd;
}
export function boGetFdForPlane(bo: GbmBo, plane: number): number {
  const g = gbm();
  if (!g.gbm_bo_get_fd_for_plane) {
    if (plane === 0) return boGetFd(bo);
    throw new SysError('gbm_bo_get_fd_for_plane', LIBGBM, errno.ENOSYS, 'libgbm older than Mesa 21.1');
  }
  koffi.errno(0);
  const fd = g.gbm_bo_get_fd_for_plane(bo, plane) as number;
  if (fd < 0) throw gbmError('gbm_bo_get_fd_for_plane', `bo plane ${plane}`);
  return fd;
}

export interface GbmBoInfo {
  width: number;
  height: number;
  format: number;
  modifier: bigint;
  planes: { handle: number; stride: number; offset: number }[];
}
/** Everything needed to add the bo as a KMS framebuffer or import it elsewhere. */
export function boInfo(bo: GbmBo): GbmBoInfo {
  const n = Math.max(1, boGetPlaneCount(bo));
  const planes = [];
  for (let i = 0; i < n; i++) planes.push({ handle: boGetHandleForPlane(bo, i), stride: boGetStrideForPlane(bo, i), offset: boGetOffset(bo, i) });
  return { width: boGetWidth(bo), height: boGetHeight(bo), format: boGetFormat(bo), modifier: boGetModifier(bo), planes };
}

// ---------------------------------------------------------------------------------------
// Surfaces (EGL window surfaces on GBM)
// ---------------------------------------------------------------------------------------

export function surfaceCreate(dev: GbmDevice, width: number, height: number, format: number, flags: number): GbmSurface {
  const g = gbm();
  koffi.errno(0);
  const p = g.gbm_surface_create(dev, width, height, format >>> 0, flags >>> 0);
  if (p === null) throw gbmError('gbm_surface_create', `${width}x${height} ${fourccStr(format)} flags 0x${flags.toString(16)}`);
  return p as GbmSurface;
}

export function surfaceCreateWithModifiers(
  dev: GbmDevice,
  width: number,
  height: number,
  format: number,
  modifiers: readonly bigint[],
): GbmSurface {
  const g = gbm();
  koffi.errno(0);
  const p = g.gbm_surface_create_with_modifiers(dev, width, height, format >>> 0, mods(modifiers), modifiers.length);
  if (p === null) throw gbmError('gbm_surface_create_with_modifiers', `${width}x${height} ${fourccStr(format)} ${modifiers.length} modifier(s)`);
  return p as GbmSurface;
}

/** The buffer eglSwapBuffers just finished; give it back with surfaceReleaseBuffer. */
export function surfaceLockFrontBuffer(surface: GbmSurface): GbmBo {
  const g = gbm();
  koffi.errno(0);
  const p = g.gbm_surface_lock_front_buffer(surface);
  if (p === null) throw gbmError('gbm_surface_lock_front_buffer', 'surface (no eglSwapBuffers since the last lock?)');
  return p as GbmBo;
}

export function surfaceReleaseBuffer(surface: GbmSurface, bo: GbmBo): void {
  gbm().gbm_surface_release_buffer(surface, bo);
}

export function surfaceHasFreeBuffers(surface: GbmSurface): boolean {
  return (gbm().gbm_surface_has_free_buffers(surface) as number) !== 0;
}

export function surfaceDestroy(surface: GbmSurface): void {
  gbm().gbm_surface_destroy(surface);
}

// ---------------------------------------------------------------------------------------
// ABI manifest
// ---------------------------------------------------------------------------------------

export const ABI: AbiManifest = {
  headers: ['gbm.h'],
  structs: {
    'struct gbm_import_fd_modifier_data': { type: gbm_import_fd_modifier_data },
    'struct gbm_import_fd_data': { type: gbm_import_fd_data },
    'union gbm_bo_handle': { type: gbm_bo_handle },
  },
  constants: {
    GBM_BO_USE_SCANOUT,
    GBM_BO_USE_CURSOR,
    GBM_BO_USE_RENDERING,
    GBM_BO_USE_WRITE,
    GBM_BO_USE_LINEAR,
    GBM_BO_USE_PROTECTED,
    GBM_BO_USE_FRONT_RENDERING,
    GBM_BO_IMPORT_WL_BUFFER,
    GBM_BO_IMPORT_EGL_IMAGE,
    GBM_BO_IMPORT_FD,
    GBM_BO_IMPORT_FD_MODIFIER,
    GBM_MAX_PLANES,
    GBM_FORMAT_XRGB8888,
    GBM_FORMAT_ARGB8888,
    GBM_FORMAT_XBGR8888,
    GBM_FORMAT_ABGR8888,
    GBM_FORMAT_RGB565,
  },
};
