// The copy path's read of a client's wl_shm pool (issue 18): before, the composer read
// the pool's mapping directly (a client shrinking its file made that a SIGBUS); now a
// frame is copied out of the pool once — from the mapping when the file is sealed
// against shrinking, through pread otherwise — and composed from that copy. Each path
// here does one frame's work into a real vkms dumb buffer: read (and copy) the pool,
// then the row blit the composer does. Paths take turns, so they share conditions.
import * as libc from '../../ffi/libc.js';
import * as drm from '../../ffi/drm.js';
import { KmsDevice } from '../../plugin/kms/device.js';
import { DumbFramebuffer } from '../../plugin/kms/dumb.js';
import { ShmPool } from '../../plugin/wayland/buffer.js';
import { blit } from '../../plugin/compose/cpu.js';

export const SHM_PATHS = ['mapped-direct (before)', 'sealed: map + copy', 'unsealed: pread'] as const;
export type ShmPath = (typeof SHM_PATHS)[number];

export interface ShmReadResult {
  path: ShmPath;
  frames: number;
  cpuMsPerFrame: number;
}

function pool(size: number, sealed: boolean): { pool: ShmPool; map: libc.Mapping } {
  const fd = libc.memfdCreate('gp-bench-pool', libc.MFD_ALLOW_SEALING);
  libc.ftruncate(fd, size);
  libc.pwrite(fd, Buffer.alloc(size, 0x5a), 0); // real pages, as a client's drawn buffer
  if (sealed) libc.fcntl(fd, libc.F_ADD_SEALS, libc.F_SEAL_SHRINK);
  const map = libc.mmap(fd, size, libc.PROT_READ, 0, 'bench pool');
  return { pool: new ShmPool(libc.dup(fd), size), map: (libc.close(fd), map) };
}

export function runShmRead(opts: { card: string; width: number; height: number; ms: number; rounds: number }): ShmReadResult[] {
  const { width: w, height: h } = opts;
  const stride = w * 4;
  const size = stride * h;
  const dev = KmsDevice.open(opts.card, { master: false });
  const target = new DumbFramebuffer(dev.fd, w, h, drm.fourcc('XR24'));
  const sealed = pool(size, true);
  const unsealed = pool(size, false);
  const snapshot = { buf: Buffer.alloc(0) };
  const dst = { bytes: target.bytes, offset: 0, stride: target.pitch, width: w, height: h };
  const rect = { x: 0, y: 0, width: w, height: h };
  const frame: Record<ShmPath, () => void> = {
    'mapped-direct (before)': () => void blit({ bytes: sealed.map.bytes, offset: 0, stride, width: w, height: h }, rect, dst, rect),
    'sealed: map + copy': () => void blit({ bytes: sealed.pool.copy(0, size, snapshot)!, offset: 0, stride, width: w, height: h }, rect, dst, rect),
    'unsealed: pread': () => void blit({ bytes: unsealed.pool.copy(0, size, snapshot)!, offset: 0, stride, width: w, height: h }, rect, dst, rect),
  };
  const acc = new Map<ShmPath, { frames: number; cpuUs: number }>(SHM_PATHS.map((p) => [p, { frames: 0, cpuUs: 0 }]));
  try {
    for (const p of SHM_PATHS) frame[p](); // warm-up (page faults, JIT)
    for (let r = 0; r < opts.rounds; r++) {
      for (const p of SHM_PATHS) {
        const a = acc.get(p)!;
        const c0 = process.cpuUsage();
        const end = Date.now() + opts.ms;
        while (Date.now() < end) {
          frame[p]();
          a.frames++;
        }
        const c = process.cpuUsage(c0);
        a.cpuUs += c.user + c.system;
      }
    }
  } finally {
    target.close();
    sealed.pool.unref();
    sealed.map.unmap();
    unsealed.pool.unref();
    unsealed.map.unmap();
    void dev.close();
  }
  return SHM_PATHS.map((path) => {
    const a = acc.get(path)!;
    return { path, frames: a.frames, cpuMsPerFrame: a.cpuUs / 1000 / Math.max(1, a.frames) };
  });
}
