// Framebuffer cache: each guest dma-buf is imported once (PRIME fd → GEM handle → KMS FB)
// and every later flip to it reuses the FB. Keyed by (KMS plane id, source, buffer id):
// the buffer id is the guest's own (VFIO dmabuf_id, udmabuf index), never an fd, because
// VFIO_DEVICE_GET_GFX_DMABUF hands out a new fd for the same buffer on every call.
//
// GEM handles: closed right after AddFB2, the FB holds its own reference to the buffer.
// The kernel does not reference-count handles and drmPrimeFDToHandle returns the
// existing handle for an object already imported on this fd, so a handle kept open
// here could be closed under another user's feet (wlroots' lesson). Closing at once
// keeps exactly one owner per handle, for microseconds. Consequence: nothing else may
// hold GEM handles of guest buffers on the KMS fd (the GLES path opens its own fd).
//
// Bounded: at most `maxPerSource` entries per (plane, source), least recently used
// evicted first. 8 because guests flip between 2-3 buffers, mbochs makes one buffer per
// scanout offset (3 for triple buffering) and a mode change briefly has old and new
// sets alive; more than 8 live buffers means the guest allocates per frame, and then
// caching would only pin memory. Entries not used for `idleRefreshes` are released.
//
// A buffer whose import failed is remembered with its reason and not retried (no retry
// storm) until its source's generation changes.
import * as libc from '../../ffi/libc.js';
import * as drm from '../../ffi/drm.js';
import { dmabufSize } from '../../ffi/dmabuf.js';
import type { GuestPlaneInfo, GuestSource } from '../sources/source.js';
import { validatePlane } from './validate.js';

/**
 * What a buffer is imported for: entries of one kind and source are bounded together
 * (maxPerSource), and the same guest buffer may be imported once per kind.
 */
export type FbKind = 'guest-primary' | 'guest-cursor' | 'host-layer';

export interface FbEntry {
  readonly key: string;
  readonly kind: FbKind;
  readonly sourceId: number;
  readonly bufferId: number;
  readonly generation: number;
  readonly fbId: number;
  readonly format: number;
  readonly modifier: bigint;
  readonly width: number;
  readonly height: number;
  readonly stride: number;
  readonly offset: number;
  lastUsed: number;
}

export type FbLookup =
  | { ok: true; entry: FbEntry; imported: boolean }
  | { ok: false; cause: string; message: string; remembered: boolean };

export interface FbCacheStats {
  imports: number;
  hits: number;
  misses: number;
  importFailures: number;
  released: number;
  live: number;
}

interface Failed {
  generation: number;
  /** FB imports: the layout that failed (another layout of the same buffer may work). */
  layout?: string;
  cause: string;
  message: string;
}

/** Something made from a guest dma-buf other than an FB (an EGLImage texture), owned by the cache. */
export interface Imported {
  close(): void;
}

interface ImageEntry {
  key: string;
  sourceId: number;
  generation: number;
  value: Imported;
  lastUsed: number;
}

export type ImageLookup<T> = { ok: true; value: T; imported: boolean } | { ok: false; cause: string; message: string; remembered: boolean };

/** What an FB fixes about a buffer: a description differing in any of these needs its own FB. */
type Layout = Pick<FbEntry, 'format' | 'modifier' | 'width' | 'height' | 'stride' | 'offset'>;
function layoutOf(p: Layout): string {
  return `${p.format}/${p.modifier}/${p.width}x${p.height}/${p.stride}/${p.offset}`;
}
/** layoutOf(a) === layoutOf(b) without making the strings (this runs on every frame's lookup). */
function sameLayout(a: Layout, b: Layout): boolean {
  return a.format === b.format && a.modifier === b.modifier && a.width === b.width && a.height === b.height && a.stride === b.stride && a.offset === b.offset;
}

/** Failed imports remembered at most (see rememberFailure). */
export const MAX_REMEMBERED_FAILURES = 256;

export class FramebufferCache {
  private readonly entries = new Map<string, FbEntry>();
  private readonly failed = new Map<string, Failed>();
  private readonly images = new Map<string, ImageEntry>();
  private readonly sourceIds = new WeakMap<GuestSource, number>();
  private nextSourceId = 1;
  private clock = 0;
  private closeFbWorks: boolean | null = null;
  /** FBs of buffers gone for good that were on screen without CLOSEFB: released by tick() once off it. */
  private readonly doomed = new Set<FbEntry>();
  readonly stats: FbCacheStats = { imports: 0, hits: 0, misses: 0, importFailures: 0, released: 0, live: 0 };

  constructor(
    private readonly fd: number,
    readonly maxPerSource = 8,
    readonly idleRefreshes = 600,
  ) {}

  sourceId(source: GuestSource): number {
    let id = this.sourceIds.get(source);
    if (id === undefined) {
      id = this.nextSourceId++;
      this.sourceIds.set(source, id);
    }
    return id;
  }

  private key(kind: FbKind, sourceId: number, bufferId: number): string {
    return `${kind}/${sourceId}/${bufferId}`;
  }

  /** Advances the cache's clock (one tick per refresh) and releases idle entries. */
  tick(onScreen: ReadonlySet<number>): void {
    this.clock++;
    // Deleting the entry being visited is safe in a Map iteration: no copy of the maps per refresh.
    for (const e of this.entries.values()) {
      if (this.clock - e.lastUsed > this.idleRefreshes && !onScreen.has(e.fbId)) this.release(e);
    }
    for (const e of this.images.values()) if (this.clock - e.lastUsed > this.idleRefreshes) this.releaseImage(e);
    for (const e of this.doomed) if (!onScreen.has(e.fbId)) this.release(e);
  }

  /**
   * A non-FB import of a guest buffer (the GLES path's EGLImage textures), under the same
   * rules as the FBs: keyed by (kind, source, buffer id), stale when the generation moves,
   * bounded per source, failures remembered and not retried until the generation moves.
   * `make` gets a dma-buf fd it must not keep (the cache closes it).
   */
  image<T extends Imported>(kind: string, source: GuestSource, plane: GuestPlaneInfo, make: (fd: number) => T): ImageLookup<T> {
    const sid = this.sourceId(source);
    const key = `${kind}/${sid}/${plane.bufferId}`;
    const hit = this.images.get(key);
    if (hit && hit.generation === plane.generation) {
      hit.lastUsed = this.clock;
      this.stats.hits++;
      return { ok: true, value: hit.value as T, imported: false };
    }
    if (hit) this.releaseImage(hit);
    const bad = this.failed.get(key);
    if (bad && bad.generation === plane.generation) return { ok: false, cause: bad.cause, message: bad.message, remembered: true };
    this.stats.misses++;
    let fd = -1;
    try {
      fd = source.exportDmabuf(plane);
      const value = make(fd);
      this.images.set(key, { key, sourceId: sid, generation: plane.generation, value, lastUsed: this.clock });
      this.stats.imports++;
      const mine = [...this.images.values()].filter((e) => e.sourceId === sid && e.key.startsWith(`${kind}/`)).sort((a, b) => a.lastUsed - b.lastUsed);
      for (let i = 0; i < mine.length - this.maxPerSource; i++) this.releaseImage(mine[i]);
      return { ok: true, value, imported: true };
    } catch (e) {
      this.stats.importFailures++;
      const message = `${source.name}: ${(e as Error).message}`;
      this.rememberFailure(key, { generation: plane.generation, cause: `${kind}-import-failed`, message });
      return { ok: false, cause: `${kind}-import-failed`, message, remembered: false };
    } finally {
      if (fd >= 0) libc.close(fd, `${source.name} dma-buf`);
    }
  }

  private releaseImage(e: ImageEntry): void {
    this.images.delete(e.key);
    try {
      e.value.close();
    } catch {
      // Its owner (the compositor) is already closed and took it along.
    }
  }

  /** The FB for a guest buffer on a plane; imports it on first sight. */
  get(kind: FbKind, source: GuestSource, plane: GuestPlaneInfo, onScreen: ReadonlySet<number>): FbLookup {
    const sid = this.sourceId(source);
    const key = this.key(kind, sid, plane.bufferId);
    const hit = this.entries.get(key);
    // Same id and generation but another layout: the FB would show the buffer as it was
    // described at import, not as now (a source that forgot to bump its generation, a
    // guest moving its offset within one dma-buf). Only a matching FB is a hit.
    if (hit && hit.generation === plane.generation && sameLayout(hit, plane)) {
      hit.lastUsed = this.clock;
      this.stats.hits++;
      return { ok: true, entry: hit, imported: false };
    }
    if (hit) this.release(hit); // same id, older guest mode: stale
    const bad = this.failed.get(key);
    if (bad && bad.generation === plane.generation && bad.layout === layoutOf(plane)) return { ok: false, cause: bad.cause, message: bad.message, remembered: true };
    this.stats.misses++;
    const r = this.importBuffer(kind, sid, key, source, plane);
    if (!r.ok) {
      this.stats.importFailures++;
      this.rememberFailure(key, { generation: plane.generation, layout: layoutOf(plane), cause: r.cause, message: r.message });
      return r;
    }
    this.entries.set(key, r.entry);
    this.stats.live = this.entries.size;
    this.evict(kind, sid, onScreen);
    return r;
  }

  /** Failed imports remembered now (bounded: a guest picks its buffer ids). */
  get rememberedFailures(): number {
    return this.failed.size;
  }

  /**
   * Remembers a failed import so it is not retried every refresh. A guest names its own
   * buffer ids (a VFIO dmabuf_id is any 32-bit number): the oldest memories go first, so
   * a guest cycling through ids costs retries, never unbounded memory.
   */
  private rememberFailure(key: string, f: Failed): void {
    this.failed.delete(key);
    this.failed.set(key, f);
    if (this.failed.size > MAX_REMEMBERED_FAILURES) this.failed.delete(this.failed.keys().next().value as string);
  }

  private importBuffer(kind: FbKind, sourceId: number, key: string, source: GuestSource, plane: GuestPlaneInfo): FbLookup {
    let fd: number;
    try {
      fd = source.exportDmabuf(plane);
    } catch (e) {
      return { ok: false, cause: 'export-failed', message: `${source.name}: ${(e as Error).message}`, remembered: false };
    }
    try {
      const size = dmabufSize(fd, `${source.name} buffer ${plane.bufferId}`);
      const v = validatePlane(plane, size);
      if (!v.ok) return { ok: false, cause: v.cause, message: `${source.name}: ${v.message}`, remembered: false };
      let handle: number;
      try {
        handle = drm.primeFDToHandle(this.fd, fd);
      } catch (e) {
        return { ok: false, cause: 'prime-import-failed', message: `${source.name}: ${(e as Error).message}`, remembered: false };
      }
      let fbId: number;
      try {
        // Every plane of a multi-plane format is in this one dma-buf (validate.ts): one handle.
        const planes = [{ offset: plane.offset, stride: plane.stride }, ...(plane.planes ?? [])];
        const mods = plane.modifier === drm.DRM_FORMAT_MOD_INVALID ? null : planes.map(() => plane.modifier);
        fbId = drm.addFB2WithModifiers(this.fd, plane.width, plane.height, plane.format, planes.map(() => handle), planes.map((q) => q.stride), planes.map((q) => q.offset), mods);
      } catch (e) {
        return { ok: false, cause: 'addfb-failed', message: `${source.name}: ${(e as Error).message}`, remembered: false };
      } finally {
        drm.gemClose(this.fd, handle);
      }
      this.stats.imports++;
      return {
        ok: true,
        imported: true,
        entry: {
          key,
          kind,
          sourceId,
          bufferId: plane.bufferId,
          generation: plane.generation,
          fbId,
          format: plane.format,
          modifier: plane.modifier,
          width: plane.width,
          height: plane.height,
          stride: plane.stride,
          offset: plane.offset,
          lastUsed: this.clock,
        },
      };
    } catch (e) {
      return { ok: false, cause: 'import-failed', message: `${source.name}: ${(e as Error).message}`, remembered: false };
    } finally {
      libc.close(fd, `${source.name} dma-buf`);
    }
  }

  private evict(kind: FbKind, sourceId: number, onScreen: ReadonlySet<number>): void {
    const mine = [...this.entries.values()].filter((e) => e.kind === kind && e.sourceId === sourceId);
    let excess = mine.length - this.maxPerSource;
    mine.sort((a, b) => a.lastUsed - b.lastUsed);
    for (const e of mine) {
      if (excess <= 0) break;
      if (onScreen.has(e.fbId)) continue;
      this.release(e);
      excess--;
    }
  }

  /**
   * Frees an entry's FB. CLOSEFB (Linux 6.8+) drops our reference without switching off
   * a plane that still shows it; RmFB would blank that plane, so where CLOSEFB is missing
   * the caller must only release FBs that are not on screen (tick/evict check that).
   */
  private release(e: FbEntry): void {
    this.doomed.delete(e);
    if (this.entries.get(e.key) !== e) return; // released before (a doomed entry replaced or invalidated)
    this.entries.delete(e.key);
    this.stats.live = this.entries.size;
    this.stats.released++;
    if (this.closeFbWorks === null) this.closeFbWorks = drm.probeCloseFB(this.fd);
    try {
      if (this.closeFbWorks) drm.closeFB(this.fd, e.fbId);
      else drm.rmFB(this.fd, e.fbId);
    } catch {
      // The device is gone or the FB already is: nothing left to free.
    }
  }

  /** Drops every entry (and failure memory) of a source: mode change, removal. */
  invalidateSource(source: GuestSource): void {
    const sid = this.sourceIds.get(source);
    if (sid === undefined) return;
    for (const e of [...this.entries.values()]) if (e.sourceId === sid) this.release(e);
    for (const e of [...this.images.values()]) if (e.sourceId === sid) this.releaseImage(e);
    // FB keys are plane/source/buffer, image keys kind/source/buffer: the source is field 1 in both.
    for (const k of [...this.failed.keys()]) if (k.split('/')[1] === String(sid)) this.failed.delete(k);
  }

  /**
   * Buffer `bufferId` of `source` is gone for good (GuestSourceEvents 'buffer-gone'): its FBs,
   * images and remembered failures go now. An FB on screen goes too where CLOSEFB keeps it
   * lit until replaced; with RMFB only (before Linux 6.8) it waits for tick() to see it off
   * screen, as RMFB would switch the plane off.
   */
  forgetBuffer(source: GuestSource, bufferId: number, onScreen: ReadonlySet<number>): void {
    const sid = this.sourceIds.get(source);
    if (sid === undefined) return;
    if (this.closeFbWorks === null) this.closeFbWorks = drm.probeCloseFB(this.fd);
    for (const e of [...this.entries.values()]) {
      if (e.sourceId !== sid || e.bufferId !== bufferId) continue;
      if (this.closeFbWorks || !onScreen.has(e.fbId)) this.release(e);
      else this.doomed.add(e);
    }
    // Image and failure keys are kind/source/buffer (failures of FBs: plane/source/buffer).
    const ofBuffer = (k: string) => {
      const [, s, b] = k.split('/');
      return s === String(sid) && b === String(bufferId);
    };
    for (const e of [...this.images.values()]) if (ofBuffer(e.key)) this.releaseImage(e);
    for (const k of [...this.failed.keys()]) if (ofBuffer(k)) this.failed.delete(k);
  }

  /** FB ids alive in the cache (for leak checks). */
  liveFbIds(): number[] {
    return [...this.entries.values()].map((e) => e.fbId);
  }

  /** Live non-FB imports (for leak checks). */
  get liveImages(): number {
    return this.images.size;
  }

  /** Releases every non-FB import (before the GLES compositor that made them goes away). */
  releaseImages(): void {
    for (const e of [...this.images.values()]) this.releaseImage(e);
  }

  close(): void {
    for (const e of [...this.images.values()]) this.releaseImage(e);
    for (const e of [...this.entries.values()]) this.release(e);
    this.failed.clear();
  }
}
