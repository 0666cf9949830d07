// Shared pieces of the fault and guest-input tests (test/integration/faults-*.test.ts):
// waiting for output events with a timeout, and resource snapshots that say what leaked.
import { readFileSync } from 'node:fs';
import type { Output, PresentEvent } from '../../../plugin/output.js';
import { fdSnapshot, readFramebuffers, readClients, type OpenFd } from './debugfs.js';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `pred` every few ms; rejects naming `what` after `timeoutMs`. */
export async function waitFor(pred: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(2);
  }
}

/** The next present matching `pred`; listens from the call on, so call it before acting. */
export function nextPresent(out: Output, pred: (p: PresentEvent) => boolean = () => true, timeoutMs = 5000): Promise<PresentEvent> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      out.off('present', on);
      reject(new Error(`no matching present within ${timeoutMs} ms (on screen: ${JSON.stringify(out.current && { path: out.current.path, frame: out.current.frame })})`));
    }, timeoutMs);
    const on = (p: PresentEvent) => {
      if (!pred(p)) return;
      clearTimeout(t);
      out.off('present', on);
      resolve(p);
    };
    out.on('present', on);
  });
}

export function rssMiB(): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : process.memoryUsage().rss / 2 ** 20;
}

/** FBs a device has, as debugfs lists them (ours and everyone's). */
export function fbIds(cardPath: string): number[] {
  return readFramebuffers(cardPath).map((f) => f.id);
}

/** Our open DRM files on a device (debugfs clients with our pid). */
export function ourClients(cardPath: string): number {
  return readClients(cardPath).filter((c) => c.pid === process.pid).length;
}

export interface Baseline {
  /** Kernel-object fds (DRM, dma-buf, memfd, udmabuf, VFIO...) opened since, with targets. */
  leakedFds(): OpenFd[];
  /** FB ids on the device that did not exist at the snapshot. */
  newFbs(): number[];
  rssGrowthMiB(): number;
}

/** Resource snapshot to compare against after a fault: fds, FBs of `cardPath`, RSS. */
export function baseline(cardPath: string | null): Baseline {
  const fds = fdSnapshot();
  const fbs = new Set(cardPath ? fbIds(cardPath) : []);
  const rss = rssMiB();
  return {
    leakedFds: () => fds.leakedSince(),
    newFbs: () => (cardPath ? fbIds(cardPath).filter((id) => !fbs.has(id)) : []),
    rssGrowthMiB: () => rssMiB() - rss,
  };
}
