// What the presentation loop needs from a guest display, whatever produces it.
import type { EventEmitter } from 'node:events';
import type { Rect } from '../geometry.js';
import type { Transform } from '../transform.js';

export type GuestPlaneKind = 'primary' | 'cursor';

/** One guest plane as the guest described it. Untrusted until validated (validate.ts). */
export interface GuestPlaneInfo {
  kind: GuestPlaneKind;
  /** Stable id of the buffer within its source (VFIO dmabuf_id, udmabuf buffer index). */
  bufferId: number;
  /** How the pixels are reached: a dma-buf to import, or a mapped region to copy from. */
  transport: 'dmabuf' | 'region';
  format: number;
  modifier: bigint;
  width: number;
  height: number;
  stride: number;
  /** Offset of the first pixel within the buffer. */
  offset: number;
  /**
   * Planes 1.. of a multi-plane format (NV12's chroma…), in the same dma-buf: each its own
   * offset and stride (plane 0 is offset/stride above). Absent for single-plane formats.
   */
  planes?: readonly { offset: number; stride: number }[];
  /** Size the guest claims for the buffer, 0 if it says nothing. */
  size: number;
  /** Position on the guest screen (cursor) and hotspot; -1 = none. */
  x: number;
  y: number;
  hotX: number;
  hotY: number;
  /**
   * Bumped by the source when the guest changed mode or re-created its buffers: every
   * cached import of this source with an older generation is stale.
   */
  generation: number;
  /** CLOCK_MONOTONIC ns at which the guest flipped to this buffer, if the source knows. */
  flipTimeNs?: bigint;
  /** Guest frame counter, if the source knows (the test guests do). */
  frame?: number;
  /**
   * How the buffer stores the picture (default normal): a wl_output.transform, Y_INVERT
   * (rows bottom-up, a GL renderer's order) folded in as flipped-180. The picture is
   * shown upright: through the plane's rotation property, else composed. width and
   * height are the buffer's; the picture is height×width for 90°/270°. Primary only.
   */
  transform?: Transform;
  /** The part of the picture to show (picture pixels; default all of it). Primary only. */
  crop?: Rect;
  /** The size to show the crop at, before the output's fit (default the crop's size): a client's wp_viewport destination. */
  displaySize?: { width: number; height: number };
}

export type PlaneQuery =
  | { state: 'ok'; plane: GuestPlaneInfo }
  /** The guest has no plane enabled: show the "no signal" frame. */
  | { state: 'disabled' }
  /** Nothing to show yet (mbochs' first ENOMEM after a mode change, GVT-g's unfilled reply): retry next refresh. */
  | { state: 'not-ready'; reason: string }
  /** The source is gone or broken: stop using it. */
  | { state: 'lost'; error: Error };

export interface GuestSourceEvents {
  /** The guest flipped or changed something: a refresh is worth doing now. */
  changed: [];
  /** The source went away (device removed, fd closed): it will answer 'lost' from now on. */
  lost: [Error];
  /**
   * Every buffer the source handed out so far is gone for good, though the source lives on
   * (a QEMU connection ended; the next one brings new buffers with new ids): whoever
   * imported or mapped them lets go now, as on detach, so nothing of a producer that went
   * away outlives it in our process (FBs still on screen stay lit until replaced).
   */
  'buffers-gone': [];
  /**
   * One buffer is gone for good (a client destroyed its wl_buffer): it will never be shown
   * again, so whoever imported or mapped it lets go now (an FB still on screen stays lit
   * until replaced), rather than keeping the producer's memory pinned until eviction.
   */
  'buffer-gone': [bufferId: number];
}

/** CPU-readable pixels of a plane, valid until the next query of that plane. */
export interface CpuView {
  bytes: Uint8Array;
  /** Offset of the plane's first pixel in `bytes`. */
  offset: number;
}

export interface GuestSource extends EventEmitter<GuestSourceEvents> {
  /** A human name for errors and stats, e.g. "mbochs 1a2b…" or "udmabuf 1024x768". */
  readonly name: string;
  /**
   * True when the source emits 'changed' on every guest flip. Otherwise (VFIO: the kernel
   * has no flip notification) the output polls it once per host vblank.
   */
  readonly changeEvents: boolean;
  /** Asks the guest for a plane's current state. Must be cheap when nothing changed. */
  query(kind: GuestPlaneKind): PlaneQuery;
  /**
   * A new dma-buf fd for a buffer the last query returned. The caller owns the fd and
   * closes it (after importing it; the import holds its own reference).
   */
  exportDmabuf(plane: GuestPlaneInfo): number;
  /**
   * The plane's pixels for the CPU copy path: required for 'region' planes; for dma-buf
   * planes only where the dma-buf itself cannot be mapped (mbochs exports read-only
   * dma-bufs without mmap, but its VRAM BAR can be mapped). Null when not possible.
   */
  cpuView?(plane: GuestPlaneInfo): CpuView | null;
  /**
   * The output could not show this plane's buffer (it is invalid, or no path can show it;
   * the screen keeps its last frame) and will not show it later either. Sources that pace
   * their producer (a Wayland client waiting for its frame callback) finish that frame here.
   */
  refused?(plane: GuestPlaneInfo, cause: string, message: string): void;
  /**
   * A flip put this source's `frame` (GuestPlaneInfo.frame) on screen; undefined when the
   * frame shown was not one of the source's (no signal). Sources that pace their producer
   * (QEMU waits for its UpdateDMABUF answer) let it go on here.
   */
  frameShown?(frame: number | undefined): void;
  /** Releases everything the source holds. */
  close(): void;
}
