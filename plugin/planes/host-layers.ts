// Host layers: what a host compositor hands Output.present(): its own dma-bufs (panels,
// windows, wallpaper) with rectangles and z order, around and beside the guests.
//
// A host buffer is identified by the caller's stable `bufferId` (+ `generation`, bumped
// when the id is given to a different buffer), never by its fd: a compositor receives
// the same wl_buffer's dma-buf under different fd numbers, and fds are reused after close.
// Each host layer gets a GuestSource adapter so the FB cache, the EGLImage cache and the
// CPU maps treat host buffers exactly as guest buffers (imports by dup of the caller's fd,
// cached per (layer, bufferId, generation), evicted per layer).
//
// Ownership: the fds stay the caller's (only dups are imported, and closed after import);
// the caller must keep each fd open and its pixels unchanged from present() until the
// output emits 'release' for that buffer id.
import { EventEmitter } from 'node:events';
import * as libc from '../../ffi/libc.js';
import * as drm from '../../ffi/drm.js';
import type { Rect } from '../geometry.js';
import type { GuestPlaneInfo, GuestSource, GuestSourceEvents, PlaneQuery } from '../sources/source.js';
import { validatePlane } from '../buffers/validate.js';
import { isTransform, pictureSize, withYInvert, type Transform } from '../transform.js';

/** A host dma-buf (single-plane format). */
export interface HostBuffer {
  /** The dma-buf fd. Stays the caller's: keep it open until 'release' for bufferId. */
  fd: number;
  /** Stable id of this buffer across frames (the cache key; e.g. the wl_buffer's id). */
  bufferId: number;
  /** Bump when bufferId now names another buffer or another layout (default 0). */
  generation?: number;
  /** DRM fourcc. */
  format: number;
  /** DRM format modifier (DRM_FORMAT_MOD_LINEAR for linear buffers). */
  modifier: bigint;
  width: number;
  height: number;
  stride: number;
  offset: number;
  /**
   * Rows are stored bottom-up (linux-dmabuf's Y_INVERT, GL's order): shown reflected
   * vertically. Applied on top of `transform`.
   */
  yInverted?: boolean;
  /**
   * How the buffer holds its picture, a wl_output.transform (wl_surface's buffer
   * transform; default 0, normal): the picture is shown upright. The layer's `src` is in
   * picture coordinates, and a 90°/270° picture is height×width of the buffer.
   */
  transform?: Transform;
}

export interface HostLayer {
  /** Stable across frames; 'background', 'guest' and 'cursor' are the output's own. */
  id: string;
  /** A host dma-buf, or a guest source shown in this layer's rectangles. */
  buffer: HostBuffer | { source: GuestSource };
  /** Source rectangle in buffer pixels (default: the whole buffer). */
  src?: Rect;
  /** Destination rectangle on the output, in pixels (may reach outside the screen). */
  dst: Rect;
  /**
   * Stacking order, higher on top; unique per frame. 0 is the attached guest's
   * (attach()), so host layers below it use negative values, above it positive ones.
   * |zIndex| < 1,000,000 (the output's background and the guest cursor sit beyond).
   */
  zIndex: number;
  /** Plane alpha 0..1 (default 1). Buffers with alpha are taken as premultiplied. */
  alpha?: number;
}

/** The output no longer needs a host buffer: the caller may draw into it or close it. */
export interface HostBufferRelease {
  bufferId: number;
  /** The frame (present() id) whose display let it go. */
  frameId: number;
}

export const RESERVED_LAYER_IDS = new Set(['background', 'guest', 'cursor']);
export const MAX_HOST_Z = 1_000_000;

/** A checked copy of one layer (rectangles filled in). */
export type CheckedLayer = Omit<HostLayer, 'src'> & { src: Rect };

function isRect(r: unknown): r is Rect {
  const o = r as Rect;
  return typeof o === 'object' && o !== null && [o.x, o.y, o.width, o.height].every((n) => Number.isInteger(n));
}

function isSourceBuffer(b: HostLayer['buffer']): b is { source: GuestSource } {
  return typeof b === 'object' && b !== null && 'source' in b;
}

/**
 * Checks a frame's layers; throws naming the layer, the field and the fix. Host buffers
 * are checked for consistency here (the dma-buf's real size is checked at import).
 */
export function checkHostLayers(layers: readonly HostLayer[]): CheckedLayer[] {
  if (!Array.isArray(layers)) throw new TypeError('present(layers): layers must be an array of HostLayer');
  const ids = new Set<string>();
  const zs = new Map<number, string>();
  const out: CheckedLayer[] = [];
  for (const [i, l] of layers.entries()) {
    const at = `present(): layer ${i}${typeof l?.id === 'string' ? ` "${l.id}"` : ''}`;
    if (typeof l?.id !== 'string' || l.id === '') throw new TypeError(`${at}: id must be a non-empty string`);
    if (RESERVED_LAYER_IDS.has(l.id)) throw new Error(`${at}: id "${l.id}" is the output's own layer; pick another id`);
    if (ids.has(l.id)) throw new Error(`${at}: id "${l.id}" appears twice; layer ids must be unique in a frame`);
    ids.add(l.id);
    if (!Number.isInteger(l.zIndex) || l.zIndex === 0 || Math.abs(l.zIndex) >= MAX_HOST_Z) {
      throw new RangeError(`${at}: zIndex ${l.zIndex} must be a non-zero integer with |zIndex| < ${MAX_HOST_Z} (0 is the attached guest's)`);
    }
    const other = zs.get(l.zIndex);
    if (other !== undefined) throw new Error(`${at}: zIndex ${l.zIndex} is also layer "${other}"'s; give each layer its own zIndex`);
    zs.set(l.zIndex, l.id);
    if (!isRect(l.dst) || l.dst.width <= 0 || l.dst.height <= 0) throw new RangeError(`${at}: dst must be an integer rectangle {x, y, width, height} with width, height > 0`);
    if (l.alpha !== undefined && !(l.alpha >= 0 && l.alpha <= 1)) throw new RangeError(`${at}: alpha ${l.alpha} outside 0..1`);
    const b = l.buffer;
    let size: { w: number; h: number } | null = null;
    if (isSourceBuffer(b)) {
      if (typeof b.source?.query !== 'function') throw new TypeError(`${at}: buffer.source is not a GuestSource`);
    } else {
      if (typeof b !== 'object' || b === null) throw new TypeError(`${at}: buffer must be a HostBuffer {fd, bufferId, format, modifier, width, height, stride, offset} or {source}`);
      if (!Number.isInteger(b.fd) || b.fd < 0) throw new TypeError(`${at}: buffer.fd ${b.fd} is not a file descriptor`);
      if (!Number.isInteger(b.bufferId) || b.bufferId < 0 || b.bufferId > 0xffffffff) throw new RangeError(`${at}: buffer.bufferId ${b.bufferId} must be an integer 0..2^32-1`);
      if (b.generation !== undefined && (!Number.isInteger(b.generation) || b.generation < 0)) throw new RangeError(`${at}: buffer.generation ${b.generation} must be a non-negative integer`);
      if (b.transform !== undefined && !isTransform(b.transform)) throw new RangeError(`${at}: buffer.transform ${String(b.transform)} is not a wl_output.transform (0..7)`);
      const v = validatePlane(toPlane(b), null);
      if (!v.ok) throw new RangeError(`${at}: ${v.message.replace(/^guest primary plane/, 'host buffer')}`);
      size = pictureSize(b.transform ?? 0, b.width, b.height);
    }
    let src = l.src;
    if (src !== undefined) {
      if (!isRect(src) || src.x < 0 || src.y < 0 || src.width <= 0 || src.height <= 0) throw new RangeError(`${at}: src must be an integer rectangle inside the buffer with width, height > 0`);
      if (size && (src.x + src.width > size.w || src.y + src.height > size.h)) throw new RangeError(`${at}: src ${src.width}x${src.height}+${src.x}+${src.y} reaches outside the ${size.w}x${size.h} picture`);
    } else if (size) src = { x: 0, y: 0, width: size.w, height: size.h };
    // A guest source's src defaults to its whole plane, known only when it is queried.
    out.push({ ...l, src: src ?? { x: 0, y: 0, width: 0, height: 0 }, dst: { ...l.dst } });
  }
  return out;
}

export function isHostBuffer(b: CheckedLayer['buffer']): b is HostBuffer {
  return !isSourceBuffer(b);
}

/** A host buffer as the plane description the caches and composers take. */
export function toPlane(b: HostBuffer): GuestPlaneInfo {
  return {
    kind: 'primary',
    bufferId: b.bufferId,
    transport: 'dmabuf',
    format: b.format,
    modifier: b.modifier,
    width: b.width,
    height: b.height,
    stride: b.stride,
    offset: b.offset,
    size: 0,
    x: 0,
    y: 0,
    hotX: -1,
    hotY: -1,
    generation: b.generation ?? 0,
    transform: withYInvert(b.transform ?? 0, b.yInverted === true),
  };
}

/**
 * One host layer's buffers seen as a GuestSource: exportDmabuf dups the caller's fd of
 * the buffer as last presented. It never changes by itself (present() refreshes).
 */
export class HostLayerSource extends EventEmitter<GuestSourceEvents> implements GuestSource {
  readonly changeEvents = true;
  readonly name: string;
  private readonly fds = new Map<number, { fd: number; generation: number }>();

  constructor(readonly layerId: string) {
    super();
    this.name = `host layer "${layerId}"`;
  }

  /** The fd a buffer is reached through now (the caller may hand a new fd number per frame). */
  update(b: HostBuffer): void {
    this.fds.set(b.bufferId, { fd: b.fd, generation: b.generation ?? 0 });
  }

  forget(bufferId: number): void {
    this.fds.delete(bufferId);
  }

  query(): PlaneQuery {
    return { state: 'disabled' };
  }

  exportDmabuf(plane: GuestPlaneInfo): number {
    const e = this.fds.get(plane.bufferId);
    if (!e || e.generation !== plane.generation) throw new Error(`${this.name}: buffer ${plane.bufferId} generation ${plane.generation} is not in the presented frame`);
    return libc.dup(e.fd, `${this.name} buffer ${plane.bufferId} (fd ${e.fd}; the caller must keep it open until 'release')`);
  }

  close(): void {
    this.fds.clear();
  }
}

/** Whether a buffer format carries alpha (premultiplied, Wayland's rule). */
export function hasAlpha(format: number): boolean {
  return drm.formatInfo(format)?.hasAlpha ?? false;
}
