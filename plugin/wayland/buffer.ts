// Client buffers (wl_buffer) as the kiosk compositor holds them: a dma-buf the client
// made through zwp_linux_dmabuf_v1, or a range of a wl_shm pool. The wl_buffer resource
// owns its dma-buf fds (closed when the client destroys it); an shm buffer holds a
// reference on its pool's mapping so the pool outlives the wl_shm_pool resource.
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
  readonly pool: ShmPoolMapping;
}

export type ClientBuffer = DmabufBuffer | ShmBuffer;

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
    } else {
      buffer.pool.unref();
    }
  });
}

/**
 * A wl_shm pool's file and its mapping, reference-counted: the pool resource holds one
 * reference and every buffer made from it one more, as libwayland's own wl_shm does.
 */
export class ShmPoolMapping {
  #fd: number;
  #map: libc.Mapping | null;
  #refs = 1;
  #size: number;

  constructor(fd: number, size: number) {
    this.#fd = fd;
    this.#size = size;
    this.#map = libc.mmap(fd, size, libc.PROT_READ, 0, 'wl_shm pool');
  }
  get size(): number {
    return this.#size;
  }
  /** The pool's bytes; valid until the next resize() or the last unref(). */
  get bytes(): Uint8Array {
    if (!this.#map) throw new Error('wl_shm pool: used after release');
    return this.#map.bytes;
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
  /** Grows the mapping (wl_shm_pool.resize: pools only grow). */
  resize(size: number): void {
    if (!this.#map) throw new Error('wl_shm pool: resized after release');
    const map = libc.mmap(this.#fd, size, libc.PROT_READ, 0, 'wl_shm pool');
    this.#map.unmap();
    this.#map = map;
    this.#size = size;
  }
  /** Current size of the file: a client that shrinks it under us would make reads fault. */
  fileSize(): number {
    return Number(libc.lseek(this.#fd, 0, libc.SEEK_END, 'wl_shm pool fd'));
  }
}
