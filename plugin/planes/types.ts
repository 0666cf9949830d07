// The plane allocator's vocabulary: layers (what is to be shown), plane uses (what each
// plane shows), allocations and per-layer reports, and what the allocator needs of its
// device. Types only; allocator.ts re-exports them.
import type { PlaneType } from '../kms/device.js';
import type { Rect } from '../geometry.js';
import type { Transform } from '../transform.js';
import type { KmsPlane } from '../kms/device.js';

/** What a plane needs to know about a buffer (the FB id changes per frame, the rest is shape). */
export interface LayerBuffer {
  fbId: number;
  format: number;
  modifier: bigint;
  width: number;
  height: number;
}

export interface Layer {
  /** Stable across frames ('background', 'guest-1/primary', 'guest-1/cursor'…). */
  id: string;
  /** Stacking order, higher on top. */
  zIndex: number;
  /** The scanout buffer, or null when the layer can only be composed. */
  buffer: LayerBuffer | null;
  /** Why `buffer` is null (import failed, region plane…), for the report. */
  noBufferReason?: string;
  /** Source rectangle in buffer pixels (memory order: row 0 is the buffer's first row). */
  src: Rect;
  /**
   * How the buffer holds the picture (default normal): `src` is shown with the inverse
   * applied, so only planes whose rotation property can undo it take the layer. With a
   * 90°/270° transform, src's width is dst's height.
   */
  transform?: Transform;
  /** Destination rectangle in CRTC pixels (may reach outside the screen). */
  dst: Rect;
  /** Plane alpha 0..1 (default 1). */
  alpha?: number;
  /** Content changes often (a guest's primary, a video): decided first, gets planes first. */
  changesOften?: boolean;
  /**
   * Moves often without changing shape (a pointer): prefers the cursor plane, and on a
   * cursor plane its position is not part of the frame shape (moves reuse the layout).
   */
  cursor?: boolean;
  /**
   * The buffer is the host's own scanout memory (a dumb buffer): when a real commit fails
   * although TEST_ONLY agreed, it is not the suspect.
   */
  hostBuffer?: boolean;
}

export type ComposeReasonCode =
  | 'forced' // the caller asked for composition (options.paths without scanout)
  | 'no-buffer' // nothing a plane could scan out (import failed, region plane)
  | 'format' // no usable plane lists the format+modifier (IN_FORMATS)
  | 'alpha' // plane alpha < 1 and no plane with an alpha property takes it
  | 'transform' // a buffer transform (rotation, mirror, Y_INVERT) no plane that takes the format can undo
  | 'scaling' // scaled, and TEST_ONLY refused it on every plane that lists the format
  | 'test-only' // TEST_ONLY refused it on every plane tried
  | 'commit-refused' // a real commit failed with it on a plane although TEST_ONLY agreed
  | 'no-plane' // every plane that could take it was given to other layers
  | 'z-order' // a plane for it would break the stacking order with other layers
  | 'budget'; // the search ran out of time before finding it a plane

export interface LayerReport {
  id: string;
  /** KMS plane id, or null when composed or hidden. */
  planeId: number | null;
  planeType: PlaneType | null;
  how: 'plane' | 'composed' | 'hidden';
  reason?: { code: ComposeReasonCode; message: string };
}

/** One plane's content in an assignment: a layer, or the composition buffer. */
export interface PlaneUse {
  planeId: number;
  /** Layer id, or null for the composition buffer. */
  layer: string | null;
  /** zpos to set (mutable zpos planes only). */
  zpos?: number;
}

export interface Allocation {
  uses: PlaneUse[];
  /** Layers to compose (bottom first) into the composition buffer on the primary plane. */
  composed: string[];
  /** Whether the composition buffer is on the primary plane (may compose only a clear colour). */
  composition: boolean;
  layers: LayerReport[];
  /** Reused a remembered assignment: no TEST_ONLY was issued. */
  reused: boolean;
  tests: number;
  searchMs: number;
  signature: string;
}

/** The device surface the allocator needs: planes and a TEST_ONLY of an assignment. */
export interface AllocatorDevice {
  /** Planes this output may use now (its primary included), any order. */
  planes(): readonly KmsPlane[];
  /** TEST_ONLY of the whole output state for `uses` (planes not listed are off). */
  test(uses: readonly PlaneUse[], layers: ReadonlyMap<string, Layer>): Error | null;
}

export interface AllocatorOptions {
  crtcIndex: number;
  width: number;
  height: number;
  cursorWidth: number;
  cursorHeight: number;
  /** Search time budget, ms (libliftoff uses 1 ms; TEST_ONLY under a VM is slower). */
  budgetMs?: number;
  /** Remembered shapes (assignments) and TEST_ONLY answers. */
  memoShapes?: number;
  memoTests?: number;
}

export interface AllocatorStats {
  allocations: number;
  reuses: number;
  searches: number;
  tests: number;
  testCacheHits: number;
  commitFailures: number;
  budgetExhausted: number;
  /** Duration of the last search and the slowest, ms. */
  lastSearchMs: number;
  maxSearchMs: number;
}
