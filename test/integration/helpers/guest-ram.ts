// Guest memory as a VMM has it (a sealed memfd) and udmabufs of parts of it: the dma-bufs
// QEMU hands over for a virtio-gpu blob scanout. Many distinct ones are cheap (each is a
// page-aligned window of the same memory).
//
// Ownership: a GuestRam owns its memfd, its mapping, the /dev/udmabuf fd and every
// dma-buf fd it made; close() closes them all. Fds passed to a peer are sent as duplicates.
import * as libc from '../../../ffi/libc.js';
import { udmabufCreate } from '../../../ffi/dmabuf.js';

const PAGE = 4096;

export class GuestRam {
  readonly size: number;
  readonly bytes: Uint8Array;
  readonly #memfd: number;
  readonly #map: libc.Mapping;
  readonly #dev: number;
  readonly #dmabufs = new Set<number>();

  constructor(size: number) {
    this.size = Math.ceil(size / PAGE) * PAGE;
    this.#memfd = libc.memfdCreate('gp-fake-guest-ram', libc.MFD_ALLOW_SEALING | libc.MFD_CLOEXEC);
    try {
      libc.ftruncate(this.#memfd, this.size);
      libc.fcntl(this.#memfd, libc.F_ADD_SEALS, libc.F_SEAL_SHRINK);
      this.#map = libc.mmap(this.#memfd, this.size, libc.PROT_READ | libc.PROT_WRITE, 0);
    } catch (e) {
      libc.close(this.#memfd);
      throw e;
    }
    try {
      this.#dev = libc.open('/dev/udmabuf', libc.O_RDWR | libc.O_CLOEXEC);
    } catch (e) {
      this.#map.unmap();
      libc.close(this.#memfd);
      throw e;
    }
    this.bytes = this.#map.bytes;
  }

  /** A new dma-buf of `size` bytes at `offset` (both rounded up to pages); the RAM owns it. */
  dmabuf(offset: number, size: number): number {
    const off = Math.ceil(offset / PAGE) * PAGE;
    const len = Math.ceil(size / PAGE) * PAGE;
    if (off + len > this.size) throw new RangeError(`udmabuf ${off}+${len} beyond the ${this.size} bytes of guest RAM`);
    const fd = udmabufCreate(this.#dev, this.#memfd, off, len);
    this.#dmabufs.add(fd);
    return fd;
  }

  /** Closes one dma-buf made here (a peer that received it keeps its own copy). */
  drop(fd: number): void {
    if (this.#dmabufs.delete(fd)) libc.close(fd);
  }

  /** A plain memfd (not a dma-buf): for fds a message carries but does not declare. */
  memfd(): number {
    const fd = libc.memfdCreate('gp-fake-undeclared', libc.MFD_CLOEXEC);
    this.#dmabufs.add(fd);
    return fd;
  }

  close(): void {
    for (const fd of this.#dmabufs) libc.close(fd);
    this.#dmabufs.clear();
    this.#map.unmap();
    libc.close(this.#dev);
    libc.close(this.#memfd);
  }
}
