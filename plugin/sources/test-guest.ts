// Test guests that animate on their own clock, as a VM does: they render the numbered
// pattern into their next buffer and page-flip at a fixed rate, unaware of the host's
// refresh. Used by the kiosk's --udmabuf mode, the demo and the benchmarks.
import type { UdmabufSource } from './udmabuf.js';
import type { BochsTestGuest } from './bochs.js';

export interface Animation {
  /** Guest frames flipped so far. */
  readonly frames: number;
  stop(): void;
}

/** One guest frame: render into the back buffer and flip to it. Returns the frame number. */
export type GuestStep = () => number;

/**
 * `inUse` says which buffers the host still holds (Output.buffersInUse): the guest then
 * renders only into a free one and, when none is free, drops the frame — as a guest whose
 * flush the VMM blocks until the host lets go. Without it the guest round-robins blindly.
 */
export function udmabufStep(source: UdmabufSource, inUse?: () => ReadonlySet<number>): GuestStep {
  let frame = 0;
  let next = 0;
  return () => {
    frame++;
    const busy = inUse?.();
    let i = next;
    for (let tries = 0; busy?.has(i) && tries < source.bufferCount; tries++) i = (i + 1) % source.bufferCount;
    if (busy?.has(i)) return frame; // every buffer is held by the host: this frame is dropped
    source.render(i, frame);
    source.flip(i, frame);
    next = (i + 1) % source.bufferCount;
    return frame;
  };
}

export function bochsStep(guest: BochsTestGuest): GuestStep {
  return () => guest.step();
}

/**
 * Steps the guest at `fps` on a drift-free schedule (a late tick does not push later
 * ones back), like a guest's own vsync timer. Errors from the step stop the animation and
 * go to onError: a test guest that fails must not take the host down.
 */
export function animate(step: GuestStep, fps: number, onError: (e: Error) => void = () => {}): Animation {
  if (!(fps > 0 && fps <= 1000)) throw new RangeError(`guest frame rate must be in (0, 1000] Hz, got ${fps}`);
  const periodNs = BigInt(Math.round(1e9 / fps));
  let due = process.hrtime.bigint();
  let frames = 0;
  let timer: NodeJS.Timeout | null = null;
  const tick = () => {
    timer = null;
    try {
      step();
      frames++;
    } catch (e) {
      onError(e as Error);
      return;
    }
    due += periodNs;
    const now = process.hrtime.bigint();
    if (due < now - periodNs * 4n) due = now; // suspended or starved: do not burst to catch up
    timer = setTimeout(tick, Math.max(0, Number(due - now) / 1e6));
  };
  timer = setTimeout(tick, 0);
  return {
    get frames() {
      return frames;
    },
    stop() {
      if (timer) clearTimeout(timer);
      timer = null;
    },
  };
}
