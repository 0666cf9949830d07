// Client buffers (wl_buffer) as the kiosk compositor holds them: a dma-buf the client
// made through zwp_linux_dmabuf_v1, or a range of a wl_shm pool. The wl_buffer resource
// owns its dma-buf fds (closed when the client destroys it); an shm buffer holds a
// reference on its pool so the pool outlives the wl_shm_pool resource.
import { fstatSync } from 'node:fs';
import * as libc from '../../ffi/libc.js';
import type { WlBuffer } from '../../protocols/generated/wayland.js';

export interface DmabufPlane {
  fd: number;
  offset: number;
  stride: number;
}

interface Common {
  /** Unique per wl_buffer for the life of the process: the FB cache's buffer id. */
  readonly id: number;
  readonly resource: WlBuffer;
  readonly width: number;
  readonly height: number;
  /** DRM fourcc. */
  readonly format: number;
}

export interface DmabufBuffer extends Common {
  readonly kind: 'dmabuf';
  readonly modifier: bigint;
  readonly planes: readonly DmabufPlane[];
  /** zwp_linux_buffer_params_v1 flags (y_invert, interlaced, bottom_first). */
  readonly flags: number;
}

export interface ShmBuffer extends Common {
  readonly kind: 'shm';
  readonly offset: number;
  readonly stride: number;
  readonly pool: ShmPool;
}

/** wp_single_pixel_buffer_v1: one premultiplied pixel, shown stretched to the surface size. */
export interface SolidBuffer extends Common {
  readonly kind: 'solid';
  /** The pixel as the copy path reads it: B, G, R, A bytes (AR24, premultiplied). */
  readonly pixel: Uint8Array;
}

export type ClientBuffer = DmabufBuffer | ShmBuffer | SolidBuffer;

let nextBufferId = 1;
export function newBufferId(): number {
  return nextBufferId++;
}

/** The client buffer behind a wl_buffer resource made by this compositor (else null). */
export function bufferOf(resource: WlBuffer): ClientBuffer | null {
  const d = resource.data as { buffer?: ClientBuffer } | undefined;
  return d?.buffer ?? null;
}

/** Marks `resource` as the wl_buffer of `buffer` and frees the buffer with it. */
export function bindBuffer(buffer: ClientBuffer): void {
  buffer.resource.data = { buffer };
  buffer.resource.onDestroy(() => {
    if (buffer.kind === 'dmabuf') {
      for (const p of buffer.planes) libc.close(p.fd, `dma-buf plane of wl_buffer ${buffer.id}`);
    } else if (buffer.kind === 'shm') {
      buffer.pool.unref();
    }
  });
}

/**
 * wl_buffer.release bookkeeping, as wlroots' buffer locks. The protocol gives the client one
 * release per attach+commit; a client that keeps a free list (mpv's wlshm puts a buffer on
 * it at each release) breaks on a second one: the buffer is handed out twice and freed twice.
 * So: a commit that attaches a buffer makes the release owed; whatever reads the buffer's
 * contents holds a use; the last use to end sends the owed release, once. A commit without
 * attach (damage only) owes nothing: the compositor keeps what it took from that buffer.
 */
const uses = new WeakMap<ClientBuffer, { owed: boolean; count: number }>();

function useOf(b: ClientBuffer): { owed: boolean; count: number } {
  let u = uses.get(b);
  if (!u) uses.set(b, (u = { owed: false, count: 0 }));
  return u;
}

/** A commit attached `b`: the client is owed one wl_buffer.release once no use reads it. */
export function bufferAttached(b: ClientBuffer): void {
  useOf(b).owed = true;
}

/** Whether the client is still owed a release for `b` (its contents are the commit's, untouched). */
export function releaseOwed(b: ClientBuffer): boolean {
  return uses.get(b)?.owed ?? false;
}

/** Something reads `b` until the matching endBufferUse. */
export function beginBufferUse(b: ClientBuffer): void {
  useOf(b).count++;
}

/** Ends a beginBufferUse; the last one sends the owed release (if the client has not destroyed `b`). */
export function endBufferUse(b: ClientBuffer): void {
  const u = useOf(b);
  if (u.count > 0) u.count--;
  if (u.count > 0 || !u.owed) return;
  u.owed = false;
  if (!b.resource.destroyed) b.resource.sendRelease();
}

/** A pool's file is, or became, shorter than the pool: reads would fault (wl_shm.error invalid_fd). */
export class ShortPoolError extends Error {
  constructor(
    readonly fileSize: number,
    readonly poolSize: number,
  ) {
    super(`the pool's file has ${fileSize} bytes, fewer than the pool's ${poolSize}`);
    this.name = 'ShortPoolError';
  }
}

/**
 * A wl_shm pool's file, reference-counted: the pool resource holds one reference and every
 * buffer made from it one more, as libwayland's own wl_shm does.
 *
 * Reading a client's memory must never fault this process. A client may shrink the file
 * under us at any time (ftruncate), and a read of a mapping past the new end is a SIGBUS
 * that kills the compositor. So the pool is mapped only when the file is sealed against
 * shrinking (memfd F_SEAL_SHRINK: what weston's and foot's clients do), and is otherwise
 * read through the fd (pread: a shrunk file gives a short read, not a signal). Either
 * way a frame's pixels are copied out once (see SurfaceSource.cpuView).
 */
export class ShmPool {
  #fd: number;
  #map: libc.Mapping | null = null;
  readonly #sealed: boolean;
  #refs = 1;
  #size: number;

  /** Takes `fd` (closed with the last unref, or here when it throws). Throws ShortPoolError. */
  constructor(fd: number, size: number) {
    this.#fd = fd;
    this.#size = size;
    try {
      // Seals first: once sealed, the size checked next cannot go down any more.
      this.#sealed = sealedAgainstShrink(fd);
      this.#checkFile(size);
      if (this.#sealed) this.#map = libc.mmap(fd, size, libc.PROT_READ, 0, 'wl_shm pool');
    } catch (e) {
      libc.close(fd, 'refused wl_shm pool fd');
      this.#fd = -1;
      throw e;
    }
  }
  get size(): number {
    return this.#size;
  }
  /** Whether the pool is read through a mapping (the file cannot shrink) rather than the fd. */
  get mapped(): boolean {
    return this.#sealed;
  }
  ref(): void {
    this.#refs++;
  }
  unref(): void {
    if (--this.#refs > 0) return;
    this.#map?.unmap();
    this.#map = null;
    libc.close(this.#fd, 'wl_shm pool fd');
    this.#fd = -1;
  }
  /** Grows the pool (wl_shm_pool.resize: pools only grow). Throws ShortPoolError. */
  resize(size: number): void {
    if (this.#fd < 0) throw new Error('wl_shm pool: resized after release');
    this.#checkFile(size);
    if (this.#map) {
      const map = libc.mmap(this.#fd, size, libc.PROT_READ, 0, 'wl_shm pool');
      this.#map.unmap();
      this.#map = map;
    }
    this.#size = size;
  }
  /**
   * Copies `length` bytes from `offset` into `into` (grown as needed; the caller keeps
   * it): from the mapping when the file is sealed, else through the fd. Returns the
   * copied bytes, or null when the file is now shorter than that range.
   */
  copy(offset: number, length: number, into: { buf: Buffer }): Uint8Array | null {
    if (this.#fd < 0) throw new Error('wl_shm pool: used after release');
    if (into.buf.length < length) into.buf = Buffer.allocUnsafe(length);
    const dst = into.buf.subarray(0, length);
    if (this.#map) {
      dst.set(this.#map.bytes.subarray(offset, offset + length));
      return dst;
    }
    let got = 0;
    while (got < length) {
      const n = libc.pread(this.#fd, dst.subarray(got), offset + got, 'wl_shm pool fd');
      if (n === 0) return null; // end of file: the client shrank it
      got += n;
    }
    return dst;
  }
  /** Reads `length` bytes from `offset` into a new buffer (tests, screenshots); null if the file is too short. */
  read(offset: number, length: number): Uint8Array | null {
    return this.copy(offset, length, { buf: Buffer.alloc(0) });
  }
  #checkFile(size: number): void {
    const fileSize = fstatSync(this.#fd).size;
    if (fileSize < size) throw new ShortPoolError(fileSize, size);
  }
}

/** Whether `fd` is a memfd sealed against shrinking (any other file can shrink). */
function sealedAgainstShrink(fd: number): boolean {
  try {
    return (libc.fcntl(fd, libc.F_GET_SEALS, 0, 'wl_shm pool fd') & libc.F_SEAL_SHRINK) !== 0;
  } catch {
    return false; // EINVAL: not a file that takes seals
  }
}
