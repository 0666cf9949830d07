// What another process holds, read from /proc and debugfs: its fds (sockets, dma-bufs and
// the rest counted apart), the KMS framebuffers of a device and its RSS. For the kiosk
// child process of the hostile-QEMU tests: everything a peer brought must be gone again.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { readFramebuffers } from './debugfs.js';

export interface Usage {
  /** Open fds other than sockets (files, DRM nodes, dma-bufs, memfds, pipes, epoll…). */
  fds: number;
  /** Sockets (the bus connection, listener sockets, Node's own). */
  sockets: number;
  /** Fds of dma-bufs ('/dmabuf:…' or 'anon_inode:dmabuf'). */
  dmabufs: number;
  /** Framebuffers on the device (anyone's: the test process makes none meanwhile). */
  fbs: number;
  rssMiB: number;
  /** Fds whose target matches the caller's `mark` (e.g. a memfd name the peer used). */
  marked: number;
}

export function usageOf(pid: number, card: string, mark: RegExp | null = null): Usage {
  let fds = 0;
  let marked = 0;
  let sockets = 0;
  let dmabufs = 0;
  for (const n of readdirSync(`/proc/${pid}/fd`)) {
    let t: string;
    try {
      t = readlinkSync(`/proc/${pid}/fd/${n}`);
    } catch {
      continue; // closed meanwhile
    }
    if (t.startsWith('socket:')) sockets++;
    else fds++;
    if (t.startsWith('/dmabuf:') || t === 'anon_inode:dmabuf') dmabufs++;
    if (mark?.test(t)) marked++;
  }
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return { fds, sockets, dmabufs, fbs: readFramebuffers(card).length, rssMiB: m ? Number(m[1]) / 1024 : NaN, marked };
}

export const formatUsage = (u: Usage) => `fds ${u.fds} (dma-bufs ${u.dmabufs}), sockets ${u.sockets}, FBs ${u.fbs}, RSS ${u.rssMiB.toFixed(1)} MiB`;

/** Polls `pred` every `everyMs` (cheap for a loaded 2-CPU VM) until true or `timeoutMs`; returns whether it held. */
export async function pollUntil(pred: () => boolean, timeoutMs: number, everyMs = 50): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (pred()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
