// Shared pieces of the fault and guest-input tests (test/integration/faults-*.test.ts):
// waiting for output events with a timeout, and resource snapshots that say what leaked.
import { readFileSync } from 'node:fs';
import * as drm from '../../../ffi/drm.js';
import type { Output, PresentEvent } from '../../../plugin/output/output.js';
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
/** The next 'present' of `out` matching `pred`; rejects after `timeoutMs` (first GLES frames take seconds under TCG). */
export function nextPresent(out: Output, pred: (p: PresentEvent) => boolean = () => true, timeoutMs = 30_000): Promise<PresentEvent> {
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

/** Something that renders numbered frames into N buffers and flips them (a UdmabufSource). */
export interface FlippingGuest {
  readonly bufferCount: number;
  render(i: number, frame: number): void;
  flip(i: number, frame?: number): void;
}

/**
 * Drives a test guest at its own pace: every `periodMs` it renders the next numbered frame
 * into the next buffer and flips. Errors stop it and are kept (a fault must not make the
 * guest's side throw either).
 */
export class GuestDriver {
  frame = 0;
  error: Error | null = null;
  private timer: NodeJS.Timeout | null = null;
  constructor(
    private readonly guest: FlippingGuest,
    private readonly periodMs = 16,
    private readonly render = true,
  ) {}
  step(): number {
    const n = ++this.frame;
    const i = n % this.guest.bufferCount;
    if (this.render) this.guest.render(i, n);
    this.guest.flip(i, n);
    return n;
  }
  start(): this {
    this.timer = setInterval(() => {
      try {
        this.step();
      } catch (e) {
        this.error = e as Error;
        this.stop();
      }
    }, this.periodMs);
    return this;
  }
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

/** Counts pixels of a capture that differ (RGB) from the numbered pattern of `frame` at (ox, oy). */
export function patternMismatches(cap: { pixels: Uint8Array; stride: number }, frame: number, w: number, h: number, draw: (t: { bytes: Uint8Array; offset: number; width: number; height: number; stride: number }, frame: number) => void, ox = 0, oy = 0): number {
  const ref = new Uint8Array(w * 4 * h);
  draw({ bytes: ref, offset: 0, width: w, height: h, stride: w * 4 }, frame);
  const a = new Uint32Array(cap.pixels.buffer, cap.pixels.byteOffset, cap.pixels.byteLength / 4);
  const b = new Uint32Array(ref.buffer);
  let bad = 0;
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) if ((a[((y + oy) * cap.stride) / 4 + x + ox] & 0xffffff) !== (b[y * w + x] & 0xffffff)) bad++;
  return bad;
}

/**
 * GEM handles this DRM file still holds, or rather whether it holds any: the kernel hands
 * out the lowest free handle from 1 (drm_gem_handle_create_tail: idr_alloc(.., 1, 0)), so a
 * fresh dumb buffer gets handle 1 exactly when no handle is open. vkms has no fdinfo memory
 * stats to count them otherwise. Returns the probe's handle (1 = none held).
 */
export function lowestFreeGemHandle(fd: number): number {
  const d = drm.createDumb(fd, 16, 16, 32);
  drm.destroyDumb(fd, d.handle);
  return d.handle;
}
