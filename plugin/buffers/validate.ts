// Validation of untrusted guest plane descriptions before anything is imported, mapped
// or copied. A guest (or a buggy mediated driver) can claim any format, size, stride and
// offset; every number is checked against the format table and the dma-buf's real size
// (lseek SEEK_END), in integers that cannot overflow: every product below is bounded by
// the range checks before it (16384 × 2^20 < 2^35, far inside 2^53).
import * as drm from '../../ffi/drm.js';
import type { GuestPlaneInfo } from '../sources/source.js';
import { isTransform, pictureSize } from '../transform.js';

export const MAX_DIMENSION = 16384;
export const MAX_STRIDE = 1 << 20;
export const MAX_POSITION = 65535;

export type ValidationCause =
  | 'format-unknown'
  | 'format-multiplanar'
  | 'size-range'
  | 'stride-range'
  | 'stride-too-small'
  | 'offset-range'
  | 'buffer-too-small'
  | 'claimed-size'
  | 'position-range'
  | 'hotspot-range'
  | 'modifier-range'
  | 'transform'
  | 'crop-range';

export type Validation =
  | { ok: true; format: drm.DrmFormatInfo; /** bytes the plane's pixels span from offset 0 */ span: number }
  | { ok: false; cause: ValidationCause; message: string };

function fail(p: GuestPlaneInfo, cause: ValidationCause, what: string): Validation {
  return { ok: false, cause, message: `guest ${p.kind} plane (buffer ${p.bufferId}): ${what}` };
}

const isUint = (n: number, max: number) => Number.isInteger(n) && n >= 0 && n <= max;

/**
 * Checks a plane description. `bufferSize` is the real size of the dma-buf or region
 * (null when unknown yet: then only the description's own consistency is checked).
 */
export function validatePlane(p: GuestPlaneInfo, bufferSize: number | null): Validation {
  // formatInfo() truncates to u32: 0x34325258 + 0.5 or + 2^32 must not pass as XR24.
  if (!isUint(p.format, 0xffffffff)) return fail(p, 'format-unknown', `pixel format ${p.format} is not a 32-bit fourcc`);
  // The kernel takes a u64; a wider or negative bigint would wrap into another modifier.
  if (typeof p.modifier !== 'bigint' || p.modifier < 0n || p.modifier > 0xffffffffffffffffn) {
    return fail(p, 'modifier-range', `format modifier ${String(p.modifier)} is not a 64-bit unsigned value`);
  }
  const info = drm.formatInfo(p.format);
  if (!info) return fail(p, 'format-unknown', `unknown pixel format 0x${(p.format >>> 0).toString(16)} (${drm.fourccName(p.format)})`);
  const extra = p.planes ?? [];
  if (info.planes !== 1 + extra.length) {
    return fail(p, 'format-multiplanar', `format ${info.code} has ${info.planes} planes but the guest described ${1 + extra.length}`);
  }
  if (extra.length && (p.transport !== 'dmabuf' || p.kind !== 'primary')) return fail(p, 'format-multiplanar', `format ${info.code}: multi-plane formats are taken only as primary dma-bufs`);
  if (!isUint(p.width, MAX_DIMENSION) || !isUint(p.height, MAX_DIMENSION) || p.width === 0 || p.height === 0) {
    return fail(p, 'size-range', `size ${p.width}x${p.height} outside 1..${MAX_DIMENSION}`);
  }
  if (!isUint(p.stride, MAX_STRIDE)) return fail(p, 'stride-range', `stride ${p.stride} outside 0..${MAX_STRIDE}`);
  const rowBytes = p.width * info.cpp[0];
  if (p.stride < rowBytes) return fail(p, 'stride-too-small', `stride ${p.stride} < width ${p.width} × ${info.cpp[0]} bytes`);
  if (!isUint(p.offset, 2 ** 40)) return fail(p, 'offset-range', `offset ${p.offset} out of range`);
  const span = p.offset + p.stride * (p.height - 1) + rowBytes;
  if (!isUint(p.size, 2 ** 40)) return fail(p, 'claimed-size', `claimed size ${p.size} out of range`);
  if (p.size !== 0 && p.size < span) {
    return fail(p, 'claimed-size', `claims ${p.size} bytes but ${p.width}x${p.height} with stride ${p.stride} at offset ${p.offset} spans ${span}`);
  }
  if (bufferSize !== null && span > bufferSize) {
    return fail(p, 'buffer-too-small', `spans ${span} bytes (stride ${p.stride} × ${p.height} rows from offset ${p.offset}) but the buffer has only ${bufferSize}`);
  }
  for (const [i, q] of extra.entries()) {
    const n = i + 1;
    if (!isUint(q.stride, MAX_STRIDE)) return fail(p, 'stride-range', `plane ${n} stride ${q.stride} outside 0..${MAX_STRIDE}`);
    const min = drm.minPitch(info, n, p.width);
    if (q.stride < min) return fail(p, 'stride-too-small', `plane ${n} stride ${q.stride} < the ${min} bytes a row of ${info.code} plane ${n} takes at width ${p.width}`);
    if (!isUint(q.offset, 2 ** 40)) return fail(p, 'offset-range', `plane ${n} offset ${q.offset} out of range`);
    const end = q.offset + drm.minPlaneSize(info, n, p.width, p.height, q.stride);
    if (bufferSize !== null && end > bufferSize) return fail(p, 'buffer-too-small', `plane ${n} spans ${end} bytes (stride ${q.stride} from offset ${q.offset}) but the buffer has only ${bufferSize}`);
  }
  if (!Number.isInteger(p.x) || !Number.isInteger(p.y) || Math.abs(p.x) > MAX_POSITION || Math.abs(p.y) > MAX_POSITION) {
    return fail(p, 'position-range', `position ${p.x},${p.y} outside ±${MAX_POSITION}`);
  }
  const hotOk = (h: number, lim: number) => h === -1 || (Number.isInteger(h) && h >= 0 && h < lim);
  if (!hotOk(p.hotX, p.width) || !hotOk(p.hotY, p.height)) {
    return fail(p, 'hotspot-range', `hotspot ${p.hotX},${p.hotY} outside the ${p.width}x${p.height} plane`);
  }
  if (p.transform !== undefined && !isTransform(p.transform)) return fail(p, 'transform', `transform ${String(p.transform)} is not a wl_output.transform (0..7)`);
  if (p.crop !== undefined || p.displaySize !== undefined) {
    if (p.kind === 'cursor') return fail(p, 'crop-range', 'has a crop or display size; only primary planes may');
    const pic = pictureSize(p.transform ?? 0, p.width, p.height);
    const c = p.crop;
    if (c && !(isUint(c.x, MAX_DIMENSION) && isUint(c.y, MAX_DIMENSION) && isUint(c.width, MAX_DIMENSION) && isUint(c.height, MAX_DIMENSION) && c.width > 0 && c.height > 0 && c.x + c.width <= pic.w && c.y + c.height <= pic.h)) {
      return fail(p, 'crop-range', `crop ${c.width}x${c.height}+${c.x}+${c.y} is not a rectangle inside the ${pic.w}x${pic.h} picture`);
    }
    const d = p.displaySize;
    if (d && !(isUint(d.width, MAX_DIMENSION) && isUint(d.height, MAX_DIMENSION) && d.width > 0 && d.height > 0)) return fail(p, 'crop-range', `display size ${d.width}x${d.height} outside 1..${MAX_DIMENSION}`);
  }
  // Nothing makes transformed cursors, and the cursor path copies rows as they are.
  if ((p.transform ?? 0) !== 0 && p.kind === 'cursor') return fail(p, 'transform', 'has a transform; only primary planes may');
  return { ok: true, format: info, span };
}
