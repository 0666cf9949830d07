// wp_presentation: tells clients when their frame reached the screen, from the page-flip
// event of the commit that showed it (not from a timer). Flags are what the kernel path
// guarantees: an atomic non-async flip is vsync'd; its timestamp comes from the vblank
// (hw_clock) and its completion from the flip event (hw_completion); zero_copy only when
// the client's own buffer was on the plane (Output's 'scanout' path).
import type { Display, Global } from '../../protocols/runtime.js';
import { WpPresentation, WpPresentationFeedbackKind, type WpPresentationFeedback } from '../../protocols/generated/presentation_time.js';
import type { WlOutput } from '../../protocols/generated/wayland.js';
import { Surface } from './surface.js';

const CLOCK_MONOTONIC = 1;

export interface Presented {
  timestampNs: bigint;
  refreshNs: number;
  sequence: number;
  zeroCopy: boolean;
}

export function presentationFlags(p: Presented): number {
  let flags = WpPresentationFeedbackKind.VSYNC | WpPresentationFeedbackKind.HW_CLOCK | WpPresentationFeedbackKind.HW_COMPLETION;
  if (p.zeroCopy) flags |= WpPresentationFeedbackKind.ZERO_COPY;
  return flags;
}

/** Sends sync_output (for the client's wl_outputs of that output) and presented; destroys `fb`. */
export function sendPresented(fb: WpPresentationFeedback, p: Presented, outputs: readonly WlOutput[]): void {
  if (fb.destroyed) return;
  for (const o of outputs) if (!o.destroyed && o.client === fb.client) fb.sendSyncOutput(o);
  const sec = p.timestampNs / 1_000_000_000n;
  const nsec = Number(p.timestampNs % 1_000_000_000n);
  const seq = BigInt(p.sequence >>> 0);
  fb.sendPresented(
    Number((sec >> 32n) & 0xffffffffn),
    Number(sec & 0xffffffffn),
    nsec,
    Math.max(0, Math.min(p.refreshNs, 0xffffffff)),
    Number(seq >> 32n),
    Number(seq & 0xffffffffn),
    presentationFlags(p),
  );
  fb.destroy();
}

export function sendDiscarded(fb: WpPresentationFeedback): void {
  if (fb.destroyed) return;
  fb.sendDiscarded();
  fb.destroy();
}

export function createPresentationGlobal(display: Display): Global<WpPresentation> {
  return WpPresentation.global(display, 1, (id) => {
    const r = id.create({
      feedback(_res, surface, callback) {
        Surface.of(surface).addFeedback(callback.create({}));
      },
    });
    r.sendClockId(CLOCK_MONOTONIC);
  });
}
