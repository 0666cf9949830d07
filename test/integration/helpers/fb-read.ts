// Reads the pixels of a KMS framebuffer another process (a desktop compositor holding DRM
// master) put on a plane: drmModeGetFB2 (root: CAP_SYS_ADMIN gets the GEM handles without
// master), PRIME export of its handle, mmap of the dma-buf. The writeback connector needs
// a commit by the master, so while Weston runs this is how a test sees what a plane scans.
// Also returns the dma-buf's inode: an FB made from an imported dma-buf exports that very
// dma-buf again, so equal inodes mean the plane scans the client's own buffer (zero copy).
//
// Ownership: the GEM handle is closed, the dma-buf fd closed and the mapping unmapped
// before readFramebuffer returns; the card fd is the caller's.
import koffi from 'koffi';
import { fstatSync } from 'node:fs';
import * as libc from '../../../ffi/libc.js';
import { primeHandleToFD, gemClose } from '../../../ffi/drm.js';

const libdrm = koffi.load('libdrm.so.2');
const FB2 = koffi.struct('gp_test_drmModeFB2', {
  fb_id: 'uint32_t',
  width: 'uint32_t',
  height: 'uint32_t',
  pixel_format: 'uint32_t',
  modifier: 'uint64_t',
  flags: 'uint32_t',
  handles: koffi.array('uint32_t', 4),
  pitches: koffi.array('uint32_t', 4),
  offsets: koffi.array('uint32_t', 4),
});
const getFB2 = libdrm.func('void *drmModeGetFB2(int fd, uint32_t fb_id)');
const freeFB2 = libdrm.func('void drmModeFreeFB2(void *fb)');
const PROT_READ = 1;

export interface FramebufferPixels {
  fbId: number;
  width: number;
  height: number;
  format: number;
  modifier: bigint;
  stride: number;
  offset: number;
  /** A copy of the pixels (stride × height from offset). */
  bytes: Uint8Array;
  /** Inode of the FB's dma-buf (see the file comment). */
  inode: number;
}

export function readFramebuffer(cardFd: number, fbId: number): FramebufferPixels {
  const p = getFB2(cardFd, fbId);
  if (p === null) throw new Error(`drmModeGetFB2(${fbId}) failed: errno ${koffi.errno()} (root needed; is the FB still there?)`);
  const fb = koffi.decode(p, FB2) as { width: number; height: number; pixel_format: number; modifier: bigint | number; handles: number[]; pitches: number[]; offsets: number[] };
  freeFB2(p);
  const handle = fb.handles[0]!;
  if (!handle) throw new Error(`FB ${fbId}: no GEM handle returned (not root?)`);
  let dmabuf = -1;
  try {
    dmabuf = primeHandleToFD(cardFd, handle);
    const stride = fb.pitches[0]!;
    const offset = fb.offsets[0]!;
    const length = offset + stride * fb.height;
    const map = libc.mmap(dmabuf, length, PROT_READ, 0, `FB ${fbId} dma-buf`);
    const bytes = map.bytes.slice(offset, length);
    map.unmap();
    return { fbId, width: fb.width, height: fb.height, format: fb.pixel_format, modifier: BigInt(fb.modifier), stride, offset: 0, bytes, inode: fstatSync(dmabuf).ino };
  } finally {
    if (dmabuf >= 0) libc.close(dmabuf);
    gemClose(cardFd, handle);
  }
}
