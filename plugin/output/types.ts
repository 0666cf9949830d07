// The Output room's vocabulary: its public options and events, and the plan of one frame
// (what every plane of the CRTC is to show) that the planner makes and the committer puts
// on screen. Types and constants only, so that every file of the room can share them.
import type { Rect } from '../geometry.js';
import type { Transform } from '../transform.js';
import type { PresentPath } from '../stats.js';
import type { Allocation, Layer, LayerReport } from '../planes/allocator.js';
import type { Composed } from '../compose/composer.js';
import type { HostBufferRelease } from '../planes/host-layers.js';

export interface ModeRequest {
  width: number;
  height: number;
  refresh?: number;
}

/** Paths a frame may take; 'no-signal' is always allowed. */
export type FramePath = Exclude<PresentPath, 'no-signal'>;
export const DEFAULT_PATHS: readonly FramePath[] = ['scanout', 'gles', 'copy'];

export interface OutputOptions {
  connector: string;
  mode?: ModeRequest;
  crtcId?: number;
  /**
   * Paths frames may take, in the fixed order of preference scanout → gles → copy
   * (default all three). Restricting them forces a path on the same stream, for
   * benchmarks and tests: ['gles'] composes every frame on the GPU, ['copy'] copies.
   */
  paths?: readonly FramePath[];
  /** Host background where the guest does not cover the screen (XRGB8888), default black. */
  background?: number;
  /** Plane allocation search budget, ms (default 4). */
  allocatorBudgetMs?: number;
  /**
   * Guests without change events (polled): ask them at a learned deadline before the next
   * vblank (default true) instead of right at the vblank (false: the old way, for A/B).
   */
  lateLatch?: boolean;
}

export interface PresentEvent {
  sequence: number;
  timestampNs: bigint;
  /** Refresh period of the mode, ns. */
  refreshNs: number;
  /** How the guest's primary got on screen. */
  path: PresentPath;
  zeroCopy: boolean;
  bufferId?: number;
  frame?: number;
  /** Guest flip → flip complete, ns (when the source knows its flip time). */
  latencyNs?: number;
  /** Why the frame was not scanned out, when it was not. */
  reason?: string;
  /**
   * GLES frames: bytes copied into textures because the driver could not sample the
   * dma-buf itself (kms_swrast with foreign dma-bufs), and the compose time. A frame with
   * uploadedBytes > 0 went through a CPU copy on its way to the GPU.
   */
  gles?: { uploadedBytes: number; composeMs: number; imagePath: 'dmabuf' | 'upload'; uploadReason: string | null };
  /** Each layer: on which plane, or composed and why; its path, and whether it was zero-copy. */
  layers?: PresentedLayer[];
  /** The present() frame this flip showed (the newest presented before the commit). */
  frameId?: number;
  /** The plane assignment: reused (no TEST_ONLY) or searched (with how many). */
  allocation?: { reused: boolean; tests: number; searchMs: number };
  /**
   * Window outputs (plugin/window/): what the desktop compositor said of this frame.
   * scanoutTranche: its linux-dmabuf v4 feedback lists the buffer's format/modifier in a
   * scanout tranche (null: no v4 feedback, or no dma-buf handed over); zeroCopy: the
   * zero_copy flag of its wp_presentation feedback (null: no such feedback came).
   */
  desktop?: { scanoutTranche: boolean | null; zeroCopy: boolean | null };
}

/** One layer of a presented frame. */
export type PresentedLayer = LayerReport & {
  /** 'scanout' on a plane; the composition's path when composed; null when hidden. */
  path: 'scanout' | 'gles' | 'copy' | null;
  /** On a plane, with the layer's own buffer (not a copy of it). */
  zeroCopy: boolean;
  /** A layer showing a guest source: the source's frame number (GuestPlaneInfo.frame) shown. */
  frame?: number;
};

export interface OutputErrorEvent {
  cause: string;
  message: string;
}

export interface OutputEvents {
  present: [PresentEvent];
  /** close() was called: the output takes no more frames (its kernel objects are freed when close() resolves). */
  closed: [];
  /** Once per distinct cause (repeats are only counted in stats.errors). */
  error: [OutputErrorEvent];
  'source-lost': [Error];
  /** A host buffer given to present() is no longer on screen nor about to be: reuse or close it. */
  release: [HostBufferRelease];
}

/** Pixel of the defined "no signal" frame (XRGB8888): tests and users can recognise it. */
export const NO_SIGNAL_PIXEL = 0xff182030;

/** One plane's configuration. */
export interface PlaneState {
  fbId: number;
  /** In buffer coordinates; the plane shows it with `transform` undone. */
  src: Rect;
  dst: Rect;
  transform?: Transform;
  zpos?: number;
  hotX?: number;
  hotY?: number;
}

/** A planned frame: what the planner decided, what the committer commits, what 'present' reports. */
export interface FramePlan {
  path: PresentPath;
  /** The guest primary's FB (or the composition's) and where it is. */
  fbId: number;
  src: Rect;
  dst: Rect;
  contentKey: string;
  bufferId?: number;
  frame?: number;
  flipTimeNs?: bigint;
  reason?: string;
  gles?: PresentEvent['gles'];
  /** Wanted state of every plane this output touches (null = off). */
  planes: Map<number, PlaneState | null>;
  layers?: PresentedLayer[];
  /** present() frame shown, its host buffers and layer ids. */
  frameId?: number;
  hostBufferIds?: number[];
  hostLayerIds?: string[];
  alloc?: Allocation;
  allocLayers?: Layer[];
  composed?: Composed;
}

/** Issuer of atomic-commit and vblank cookies (flip events carry them back). */
let lastCookie = 0n;
export function nextCookie(): bigint {
  return ++lastCookie;
}
