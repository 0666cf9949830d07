// What every kind of output offers the layers above it. A KMS output (output.ts: a
// connector, a CRTC and its planes) and a window on a desktop compositor (a Wayland
// client's toplevel) both show one guest and say when its frames reached the screen; the
// modes (kiosk, heads, window) and the sources talk only to this. wlroots' wlr_output, with
// its drm and wayland backends behind one interface, is the model.
import type { FitMode } from '../geometry.js';
import type { GuestSource } from '../sources/source.js';
import type { OutputStatsSnapshot } from '../stats.js';
import type { OutputErrorEvent, PresentEvent } from './types.js';

export interface GuestOutputEvents {
  /** A frame reached the screen (or, for a window, the desktop compositor presented or discarded it). */
  present: [PresentEvent];
  /** close() was called: the output takes no more frames. */
  closed: [];
  /** Once per distinct cause. */
  error: [OutputErrorEvent];
  /** The attached source failed for good (its device went away). */
  'source-lost': [Error];
}

/** Node's EventEmitter signatures, one per event (an output may emit more than these). */
interface Subscribe<R> {
  (event: 'present', listener: (e: PresentEvent) => void): R;
  (event: 'closed', listener: () => void): R;
  (event: 'error', listener: (e: OutputErrorEvent) => void): R;
  (event: 'source-lost', listener: (e: Error) => void): R;
}

export interface GuestOutput {
  readonly on: Subscribe<unknown>;
  readonly once: Subscribe<unknown>;
  readonly off: Subscribe<unknown>;
  /** The connector's name (KMS) or the window's title. */
  readonly name: string;
  /** What a guest is shown in, in device pixels (a window's current size). */
  readonly width: number;
  readonly height: number;
  /** One refresh of what shows it, ns. */
  readonly refreshNs: number;
  /** Shows `source` (its primary and cursor planes) from now on; `fit` places it. */
  attach(source: GuestSource, fit?: FitMode): void;
  /** Stops showing the source ("no signal"); the source stays the caller's. */
  detach(): void;
  statsSnapshot(): OutputStatsSnapshot;
  /** Another session has the seat (KMS) or the surface is hidden: no frames until resume(). */
  suspend(): void;
  resume(): void;
  /** Frees what the output holds; `restore` (KMS): put back what was on screen before. Idempotent. */
  close(restore?: boolean): Promise<void>;
}
