// The dma-bufs QEMU handed a console, known by inode. QEMU sends a new fd for every
// ScanoutDMABUF, also for a buffer it sent before (its vfio display keeps a few): a known
// inode keeps its first fd and bufferId and the new fd is closed at once, so the FB cache
// imports each guest buffer once and fds stay flat over any number of scanouts.
//
// Ownership: one fd per known inode, at most MAX_BUFFERS, until evicted or close().
import { readlinkSync } from 'node:fs';
import * as libc from '../../ffi/libc.js';
import { ListenerError } from './qemu-dbus-protocol.js';

/** Dma-buf inodes kept (QEMU's vfio display keeps 5 buffers; a guest flips between 2-3). */
export const MAX_BUFFERS = 8;

export interface KnownBuffer {
  fd: number;
  bufferId: number;
  size: number;
}

/** The file behind a passed fd (device:inode), to tell whether two fds are one buffer. */
export function dmabufInode(fd: number): string {
  return libc.fileIdentity(fd, 'a dma-buf fd from QEMU').key;
}

export class KnownDmabufs {
  /** Most recently used last: eviction takes the oldest. */
  readonly #byInode = new Map<string, KnownBuffer>();

  get size(): number {
    return this.#byInode.size;
  }

  /**
   * Takes a ScanoutDMABUF(2) fd (closed here unless it is a new buffer's), checked against
   * the bytes its description reaches. `current` (the inode on screen) is never evicted;
   * `nextId` names a new buffer.
   */
  adopt(fd: number, layout: { offset: number; stride: number; height: number }, current: string | null, nextId: () => number, member = 'ScanoutDMABUF'): { buffer: KnownBuffer; inode: string; known: boolean } {
    let keep = false;
    try {
      // One statx a frame (Node's fstatSync built an fs.Stats with four Dates for it, a
      // measurable part of the frame under TCG).
      const { key: inode, size } = libc.fileIdentity(fd, 'a dma-buf fd from QEMU');
      const known = this.#byInode.get(inode);
      // A known inode was seen to be a dma-buf when it came first (the same file, whatever
      // the fd): only a new one is asked what it is (a readlink more per frame otherwise).
      if (!known) {
        let link = '';
        try {
          link = readlinkSync(`/proc/self/fd/${fd}`);
        } catch {
          /* reported below */
        }
        if (!link.startsWith('/dmabuf:')) throw new ListenerError(member, `the fd is not a dma-buf (${link || 'unreadable'})`);
      }
      const need = layout.offset + layout.stride * layout.height;
      const at = layout.offset ? `offset ${layout.offset} + ` : '';
      if (size > 0 && need > size) throw new ListenerError(member, `${at}stride ${layout.stride} × height ${layout.height} = ${need} bytes but the dma-buf has ${size}`);
      if (known) {
        this.#byInode.delete(inode);
        this.#byInode.set(inode, known);
        return { buffer: known, inode, known: true };
      }
      this.#evict(current);
      const buffer = { fd, bufferId: nextId(), size };
      this.#byInode.set(inode, buffer);
      keep = true;
      return { buffer, inode, known: false };
    } finally {
      if (!keep) libc.close(fd, 'duplicate ScanoutDMABUF fd');
    }
  }

  #evict(current: string | null): void {
    for (const [inode, b] of this.#byInode) {
      if (this.#byInode.size < MAX_BUFFERS) break;
      if (inode === current) continue;
      libc.close(b.fd, 'evicted QEMU dma-buf');
      this.#byInode.delete(inode);
    }
  }

  /** A new fd (the caller's) for a known buffer. */
  dup(bufferId: number, what: string): number | null {
    for (const b of this.#byInode.values()) if (b.bufferId === bufferId) return libc.fcntl(b.fd, libc.F_DUPFD_CLOEXEC, 3, what);
    return null;
  }

  close(): void {
    for (const b of this.#byInode.values()) libc.close(b.fd, 'QEMU dma-buf');
    this.#byInode.clear();
  }
}
