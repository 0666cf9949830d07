// One host output (connector + CRTC + its planes) showing one guest source.
//
// Refresh is driven by the host's page-flip events, not a timer: after each flip
// completes (or when the guest says it flipped, or at the next vblank for sources that
// cannot say), the guest is queried; a new buffer becomes one atomic commit of its cached
// FB; an unchanged guest costs no commit at all. One commit is in flight per CRTC.
//
// A frame is a stack of layers: a host background where the guest does not cover the
// screen, the guest's primary, the guest's cursor. The plane allocator (allocator.ts)
// puts them on KMS planes (zero-copy), checked by TEST_ONLY only when the frame's shape
// is new; layers without a plane are composed into one buffer on the primary plane, by
// the GPU (GLES) and else the CPU (compose/composer.ts). Order of preference for the
// guest's pixels: scanout → gles → copy, restricted by options.paths. Commits carry only
// the plane properties that changed, so a cursor move is a commit of CRTC_X/CRTC_Y.
//
// Ownership: the output owns its FB cache (FBs and EGLImages), composer, cursor buffers,
// background and no-signal buffers, mode blob and writeback capture, and the planes it
// lit (released when it stops using them); the device and the sources are the caller's.
import { EventEmitter } from 'node:events';
import * as drm from '../ffi/drm.js';
import type { KmsConnector, KmsCrtc, KmsDevice, KmsPlane } from './kms/device.js';
import { COMMIT, type AtomicRequest } from './kms/atomic.js';
import type { FlipEvent } from './kms/events.js';
import { DumbFramebuffer } from './kms/dumb.js';
import { WritebackCapture, type Capture } from './kms/writeback.js';
import { FramebufferCache } from './fb-cache.js';
import { validatePlane } from './validate.js';
import { fill, placement, rectKey, type FitMode, type Rect } from './compose/cpu.js';
import { DmabufMaps } from './compose/dmabuf-map.js';
import { Composer, type ComposeInput, type Composed } from './compose/composer.js';
import { OutputStats, type OutputStatsSnapshot, type PresentPath } from './stats.js';
import { PlaneAllocator, type Allocation, type Layer, type LayerReport, type PlaneUse } from './allocator.js';
import { CursorBuffers } from './cursor.js';
import { NORMAL, TRANSFORM_NAMES, bufferRect, pictureSize, planeRotationFor, type Transform } from './transform.js';
import type { GuestPlaneInfo, GuestSource, PlaneQuery } from './sources/source.js';
import { checkHostLayers, hasAlpha, HostLayerSource, isHostBuffer, toPlane, type CheckedLayer, type HostBufferRelease, type HostLayer } from './host-layers.js';

export type { HostBuffer, HostLayer, HostBufferRelease } from './host-layers.js';

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
  /** Once per distinct cause (repeats are only counted in stats.errors). */
  error: [OutputErrorEvent];
  'source-lost': [Error];
  /** A host buffer given to present() is no longer on screen nor about to be: reuse or close it. */
  release: [HostBufferRelease];
}

/** Pixel of the defined "no signal" frame (XRGB8888): tests and users can recognise it. */
export const NO_SIGNAL_PIXEL = 0xff182030;
const NO_SIGNAL_MARK = 0xff5a6a80;

/** FB-cache plane tag of guest primary buffers (FBs are not tied to a plane). */
const GUEST_PRIMARY_TAG = -1;
/** How long close() waits for the restoring modeset (the kernel's own flip_done timeout is 10 s). */
const RESTORE_TIMEOUT_MS = 12_000;
/** FB-cache plane tag of host layers' buffers (cursor.ts has -2). */
const HOST_LAYER_TAG = -3;

/** rotationValue per plane and transform: it runs for every plane of every commit. */
const rotationValues = new WeakMap<KmsPlane, Map<Transform, number>>();

/** The rotation property's bitmask (bits = 1 << enum value) that shows a buffer stored with `t` upright. */
function rotationValue(pl: KmsPlane, t: Transform): number {
  let m = rotationValues.get(pl);
  if (!m) rotationValues.set(pl, (m = new Map()));
  let v = m.get(t);
  if (v === undefined) {
    const names = planeRotationFor(t, pl.rotations);
    // The allocator only gives a plane a layer whose transform it can undo.
    if (!names) throw new Error(`plane ${pl.id} cannot undo transform ${TRANSFORM_NAMES[t]} (rotations: ${pl.rotations.join(', ')})`);
    v = names.reduce((acc, n) => acc | (1 << Number(pl.props.enumValue('rotation', n))), 0);
    m.set(t, v);
  }
  return v;
}

/**
 * A source rectangle in picture coordinates (as shown, upright) as the buffer pixels that
 * hold it. Planes and composers take rectangles in buffer coordinates and undo the
 * transform as they read.
 */
function srcInBuffer(r: Rect, p: GuestPlaneInfo): Rect {
  const t = p.transform ?? NORMAL;
  const pic = pictureSize(t, p.width, p.height);
  return bufferRect(t, r, pic.w, pic.h);
}

/**
 * What a plane shows and at what size: its crop of the picture (default all of it) and
 * the size it is shown at before the output's fit (a wp_viewport destination; default the
 * crop's).
 */
function viewOf(p: GuestPlaneInfo): { crop: Rect; shown: { w: number; h: number } } {
  const pic = pictureOf(p);
  const crop = p.crop ?? { x: 0, y: 0, w: pic.w, h: pic.h };
  return { crop, shown: p.displaySize ?? { w: crop.w, h: crop.h } };
}

/** A rectangle of the shown surface as picture pixels of the crop (rounded to whole pixels). */
function cropOf(r: Rect, v: { crop: Rect; shown: { w: number; h: number } }): Rect {
  if (v.shown.w === v.crop.w && v.shown.h === v.crop.h) return { x: v.crop.x + r.x, y: v.crop.y + r.y, w: r.w, h: r.h };
  const sx = v.crop.w / v.shown.w;
  const sy = v.crop.h / v.shown.h;
  const x0 = Math.round(v.crop.x + r.x * sx);
  const y0 = Math.round(v.crop.y + r.y * sy);
  return { x: x0, y: y0, w: Math.max(1, Math.round(v.crop.x + (r.x + r.w) * sx) - x0), h: Math.max(1, Math.round(v.crop.y + (r.y + r.h) * sy) - y0) };
}

/** The size of the picture a plane shows (its buffer's, swapped for 90° and 270°). */
function pictureOf(p: GuestPlaneInfo): { w: number; h: number } {
  return pictureSize(p.transform ?? NORMAL, p.width, p.height);
}

/** FB-cache failures that mean the guest described its buffer wrongly (not that the device refused it). */
function isInvalidGuestData(cause: string): boolean {
  return ['buffer-too-small', 'claimed-size', 'export-failed'].includes(cause) || cause.startsWith('format') || cause.endsWith('range');
}

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

interface Content {
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

interface Saved {
  modeBlob: Buffer | null;
  active: bigint;
  connectorCrtc: bigint;
  plane: Record<string, bigint>;
}

const PLANE_RECT_PROPS = ['FB_ID', 'CRTC_ID', 'SRC_X', 'SRC_Y', 'SRC_W', 'SRC_H', 'CRTC_X', 'CRTC_Y', 'CRTC_W', 'CRTC_H'];
const GUEST_Z = 0;
const BACKGROUND_Z = -1_000_000;

let nextCookie = 1n;

export class Output extends EventEmitter<OutputEvents> {
  readonly crtc: KmsCrtc;
  readonly connector: KmsConnector;
  readonly primary: KmsPlane;
  readonly mode: drm.DrmModeInfo;
  readonly stats = new OutputStats();
  readonly cache: FramebufferCache;
  readonly paths: ReadonlySet<FramePath>;
  readonly allocator: PlaneAllocator;
  private readonly maps = new DmabufMaps();
  private readonly composer: Composer;
  private readonly cursor: CursorBuffers;
  private readonly backgroundPixel: number;
  private modeBlob = 0;
  private saved: Saved | null = null;
  private enabled = false;
  private closed = false;
  /** Set when the DRM device went away: nothing more is committed. */
  private deviceGone = false;
  /** Polls for DRM master to come back while another process holds it. */
  private masterWait: NodeJS.Timeout | null = null;
  private source: GuestSource | null = null;
  private fit: FitMode = 'fit';
  private onChanged = () => this.scheduleRefresh();
  private inflight: { cookie: bigint; content: Content } | null = null;
  private onScreen: Content | null = null;
  /** What the last successful commit set on each plane this output has lit. */
  private committed = new Map<number, PlaneState>();
  /** Cursor hotspots of this frame's layers, for the planes that take them. */
  private hotspots = new Map<string, { x: number; y: number }>();
  private dirty = false;
  private vblankPending = false;
  private refreshQueued = false;
  private readonly reported = new Set<string>();
  private noSignal: DumbFramebuffer | null = null;
  private background: DumbFramebuffer | null = null;
  private writeback: WritebackCapture | null = null;
  private writebackRouted = false;
  private captureWaiters: { resolve: (c: Capture & { content: Content | null }) => void; reject: (e: Error) => void }[] = [];
  private readonly onFlip = (ev: FlipEvent) => this.handleEvent(ev);
  private readonly onDeviceError = (e: Error) => this.report('device-lost', e.message);
  /** The newest present() frame (shown, in flight or waiting for the next refresh). */
  private hostFrame: { id: number; layers: CheckedLayer[] } | null = null;
  private nextFrameId = 1;
  /** One buffer adapter per host layer id (the FB cache keys and evicts per source). */
  private readonly hostSources = new Map<string, HostLayerSource>();
  /** Guest sources shown as host layers, listened to for 'changed'. */
  private readonly layerSources = new Set<GuestSource>();
  /** Host buffer ids the output holds (on screen, in flight, or in the newest frame). */
  private held = new Set<number>();
  /**
   * Per host buffer, bumped when it is presented again after its release: only then may
   * its pixels have changed (the caller owns them again), so only then is a composition of
   * it stale.
   */
  private readonly contentSerial = new Map<number, number>();
  /** Properties set by the last real commit ("plane 42.CRTC_X=10" …), for tests and debugging. */
  private lastRequest: AtomicRequest | null = null;
  /** The properties of the last commit ("plane 31.FB_ID=42" …), for diagnostics and tests. */
  get lastCommit(): string[] {
    return this.lastRequest ? this.lastRequest.entryList() : [];
  }
  readonly refreshNs: number;

  constructor(
    readonly dev: KmsDevice,
    opts: OutputOptions,
  ) {
    super();
    const conn = dev.connectorByName(opts.connector);
    if (conn.writeback) throw new Error(`${opts.connector} is a writeback connector, not a display`);
    if (conn.connection !== 'connected') throw new Error(`connector ${conn.name} is ${conn.connection}; plug a display in or pick another (connected: ${dev.connectors.filter((c) => c.connection === 'connected' && !c.writeback).map((c) => c.name).join(', ') || 'none'})`);
    this.connector = conn;
    this.mode = pickMode(conn, opts.mode);
    this.paths = checkPaths(opts.paths);
    const claims = claimsOf(dev);
    const crtc = opts.crtcId !== undefined ? dev.crtc(opts.crtcId) : dev.crtcs.find((c) => (conn.possibleCrtcs & (1 << c.index)) !== 0 && (conn.crtcId === 0 || conn.crtcId === c.id) && !claims.crtcs.has(c.id)) ?? dev.crtcs.find((c) => (conn.possibleCrtcs & (1 << c.index)) !== 0 && !claims.crtcs.has(c.id));
    if (!crtc) throw new Error(`no free CRTC can drive ${conn.name}`);
    this.crtc = crtc;
    const primary = dev.planesFor(crtc, 'primary').find((p) => !claims.primaries.has(p.id) && (claims.planeOwner.get(p.id) ?? null) === null);
    if (!primary) throw new Error(`CRTC ${crtc.id} has no free primary plane`);
    this.primary = primary;
    this.cache = new FramebufferCache(dev.fd);
    this.refreshNs = Math.round(1e9 * (this.mode.htotal * this.mode.vtotal) / (this.mode.clock * 1000)) || Math.round(1e9 / (this.mode.vrefresh || 60));
    this.backgroundPixel = (opts.background ?? 0xff000000) | 0xff000000;
    this.composer = new Composer(dev, this.width, this.height, this.cache, this.maps);
    this.cursor = new CursorBuffers(dev);
    this.allocator = new PlaneAllocator(
      {
        planes: () => this.usablePlanes(),
        test: (uses, layers) => this.testUses(uses, layers),
      },
      { crtcIndex: crtc.index, width: this.width, height: this.height, cursorWidth: dev.caps.cursorWidth, cursorHeight: dev.caps.cursorHeight, budgetMs: opts.allocatorBudgetMs },
    );
    claims.crtcs.add(crtc.id);
    claims.primaries.add(primary.id);
    claims.planeOwner.set(primary.id, this);
  }

  get width(): number {
    return this.mode.hdisplay;
  }
  get height(): number {
    return this.mode.vdisplay;
  }

  /** Lights the output (a modeset showing the "no signal" frame). Saves what was there. */
  enable(): void {
    if (this.enabled) return;
    const d = this.dev;
    this.saved = this.saveState();
    this.noSignal = new DumbFramebuffer(d.fd, this.width, this.height);
    drawNoSignal(this.noSignal);
    this.modeBlob = d.createModeBlob(this.mode);
    const full = { x: 0, y: 0, w: this.width, h: this.height };
    const req = d.request().set(this.connector, 'CRTC_ID', this.crtc.id).set(this.crtc, 'MODE_ID', this.modeBlob).set(this.crtc, 'ACTIVE', 1);
    const planes = new Map<number, PlaneState | null>([[this.primary.id, { fbId: this.noSignal.fbId, src: full, dst: full }]]);
    this.applyPlanes(req, planes, true);
    req.commit(COMMIT.ALLOW_MODESET);
    this.committed = new Map([[this.primary.id, planes.get(this.primary.id)!]]);
    this.onScreen = { path: 'no-signal', fbId: this.noSignal.fbId, src: full, dst: full, contentKey: 'no-signal', planes };
    d.events.on('flip', this.onFlip);
    d.events.on('error', this.onDeviceError);
    this.enabled = true;
    this.scheduleRefresh();
  }

  /** Shows `source` on this output (replacing any other). */
  attach(source: GuestSource, fit: FitMode = 'fit'): void {
    this.detach();
    this.source = source;
    this.fit = fit;
    source.on('changed', this.onChanged);
    source.on('lost', this.onLost);
    this.scheduleRefresh();
  }

  private lostFrom: GuestSource | null = null;
  private readonly onLost = (e: Error) => {
    // Sources say it through an event and again through the next query: report once.
    if (this.lostFrom === this.source) return;
    this.lostFrom = this.source;
    this.report('source-lost', e.message);
    this.emit('source-lost', e);
  };

  detach(): void {
    const s = this.source;
    if (!s) return;
    s.off('changed', this.onChanged);
    s.off('lost', this.onLost);
    this.source = null;
    this.maps.invalidateSource(this.cache.sourceId(s));
    // FBs of this source may be on screen: CLOSEFB keeps them lit until replaced.
    this.cache.invalidateSource(s);
    this.composer.dropGpu();
  }

  /**
   * Presents a frame of host layers (dma-bufs, or guest sources, with rectangles and z
   * order) around the attached guest (zIndex 0). Returns the frame id the 'present' event
   * will carry. Frames coalesce: at most one commit per refresh, and the newest present()
   * wins (a superseded frame is never shown, and its buffers are released).
   *
   * Buffers: the fds stay yours; keep each open and its pixels unchanged until the
   * 'release' event for its bufferId (a buffer presented again in the next frame is simply
   * kept). Reuse a bufferId for another buffer only with a new generation. Throws (naming
   * the layer and field) on an invalid description; nothing is changed then.
   */
  present(layers: readonly HostLayer[]): number {
    if (this.closed) throw new Error('present(): this output is closed; enable a new one');
    const checked = checkHostLayers(layers);
    const id = this.nextFrameId++;
    for (const l of checked) {
      if (!isHostBuffer(l.buffer)) continue;
      const b = l.buffer.bufferId;
      if (!this.held.has(b)) this.contentSerial.set(b, (this.contentSerial.get(b) ?? 0) + 1);
      this.hostSourceFor(l.id).update(l.buffer);
    }
    this.hostFrame = { id, layers: checked };
    this.watchLayerSources();
    // The frame it supersedes may never reach the screen: its buffers go back now.
    this.updateHeld(id);
    this.scheduleRefresh();
    return id;
  }

  private hostSourceFor(layerId: string): HostLayerSource {
    let s = this.hostSources.get(layerId);
    if (!s) {
      s = new HostLayerSource(layerId);
      this.hostSources.set(layerId, s);
    }
    return s;
  }

  /** Listens to the guest sources of the newest frame, and only those. */
  private watchLayerSources(): void {
    const want = new Set<GuestSource>();
    for (const l of this.hostFrame?.layers ?? []) if (!isHostBuffer(l.buffer)) want.add(l.buffer.source);
    for (const s of this.layerSources) if (!want.has(s)) s.off('changed', this.onChanged);
    for (const s of want) if (!this.layerSources.has(s)) s.on('changed', this.onChanged);
    this.layerSources.clear();
    for (const s of want) this.layerSources.add(s);
  }

  /**
   * Recomputes which host buffers are held and emits 'release' for those let go; drops the
   * buffer adapters (and their FBs) of layers that are on screen nowhere any more.
   */
  private updateHeld(frameId: number): void {
    const frames = [this.onScreen, this.inflight?.content];
    const now = new Set<number>();
    for (const c of frames) for (const b of c?.hostBufferIds ?? []) now.add(b);
    for (const l of this.hostFrame?.layers ?? []) if (isHostBuffer(l.buffer)) now.add(l.buffer.bufferId);
    const gone = [...this.held].filter((b) => !now.has(b));
    this.held = now;
    const liveLayers = new Set<string>(this.hostFrame?.layers.map((l) => l.id));
    for (const c of frames) for (const id of c?.hostLayerIds ?? []) liveLayers.add(id);
    for (const [id, src] of this.hostSources) {
      if (liveLayers.has(id)) continue;
      this.hostSources.delete(id);
      this.maps.invalidateSource(this.cache.sourceId(src));
      this.cache.invalidateSource(src);
      src.close();
    }
    for (const b of gone) {
      for (const src of this.hostSources.values()) src.forget(b);
      this.emit('release', { bufferId: b, frameId });
    }
  }

  /** The next presented frame, captured through the writeback connector. */
  captureNext(): Promise<Capture & { content: Content | null }> {
    if (!this.writeback) this.writeback = new WritebackCapture(this.dev, this.crtc);
    return new Promise((resolve, reject) => {
      this.captureWaiters.push({ resolve, reject });
      this.dirty = true;
      this.scheduleRefresh();
    });
  }

  statsSnapshot(): OutputStatsSnapshot {
    const c = this.cache.stats;
    const lat = this.stats.latencyMs;
    const a = this.allocator.stats;
    return {
      framesPresented: this.stats.framesPresented,
      paths: { ...this.stats.paths },
      imports: c.imports,
      cacheHits: c.hits,
      cacheMisses: c.misses,
      bytesCopied: this.stats.bytesCopied,
      bytesUploaded: this.stats.bytesUploaded,
      commits: this.dev.counters.commits,
      testOnlyCommits: this.dev.counters.testOnly,
      failedCommits: this.dev.counters.failed,
      refreshes: this.stats.refreshes,
      latencyMs: { p50: lat.percentile(50), p95: lat.percentile(95), p99: lat.percentile(99), samples: lat.count },
      errors: { ...this.stats.errors },
      layers: { ...this.stats.layers },
      allocator: { allocations: a.allocations, reuses: a.reuses, searches: a.searches, tests: a.tests, testCacheHits: a.testCacheHits, commitFailures: a.commitFailures, lastSearchMs: a.lastSearchMs, maxSearchMs: a.maxSearchMs },
    };
  }

  /** What is on screen now (path, buffer, frame, planes). */
  get current(): Readonly<Content> | null {
    return this.onScreen;
  }

  /**
   * Guest primary buffers the host still needs: the one on screen and the one in flight. A
   * guest must not draw into these (a real VMM blocks the guest's flush until the host
   * lets go; the test guests ask this), or the screen shows a half-drawn frame.
   */
  buffersInUse(): Set<number> {
    const ids = new Set<number>();
    if (this.onScreen?.bufferId !== undefined) ids.add(this.onScreen.bufferId);
    if (this.inflight?.content.bufferId !== undefined) ids.add(this.inflight.content.bufferId);
    return ids;
  }

  scheduleRefresh(): void {
    if (this.refreshQueued || this.closed) return;
    this.refreshQueued = true;
    setImmediate(() => {
      this.refreshQueued = false;
      this.refresh();
    });
  }

  private handleEvent(ev: FlipEvent): void {
    if (this.closed) return;
    if (ev.crtcId !== 0 && ev.crtcId !== this.crtc.id) return;
    if (ev.kind === 'vblank') {
      if (ev.userData !== this.vblankCookie) return;
      this.vblankPending = false;
      this.refresh();
      return;
    }
    const f = this.inflight;
    if (!f || ev.userData !== f.cookie) return;
    this.inflight = null;
    if (f.content.composed) this.composer.displayed(f.content.composed);
    this.onScreen = f.content;
    this.stats.framesPresented++;
    this.stats.paths[f.content.path]++;
    for (const l of f.content.layers ?? []) {
      const k = l.how === 'composed' ? `composed:${l.reason?.code ?? '?'}` : l.how === 'plane' ? `plane:${l.planeType}` : 'hidden';
      this.stats.layers[k] = (this.stats.layers[k] ?? 0) + 1;
    }
    let latencyNs: number | undefined;
    if (f.content.flipTimeNs && f.content.flipTimeNs > 0n && ev.timestampNs > 0n) {
      latencyNs = Number(ev.timestampNs - f.content.flipTimeNs);
      if (latencyNs >= 0) this.stats.latencyMs.add(latencyNs / 1e6);
    }
    if (this.writeback?.isArmed) this.finishCapture(f.content);
    if (this.held.size > 0 || this.hostSources.size > 0) this.updateHeld(f.content.frameId ?? 0);
    this.source?.frameShown?.(f.content.frame);
    const a = f.content.alloc;
    this.emit('present', {
      sequence: ev.sequence,
      timestampNs: ev.timestampNs,
      refreshNs: this.refreshNs,
      path: f.content.path,
      zeroCopy: f.content.path === 'scanout',
      bufferId: f.content.bufferId,
      frame: f.content.frame,
      latencyNs,
      reason: f.content.reason,
      gles: f.content.gles,
      layers: f.content.layers,
      frameId: f.content.frameId,
      allocation: a ? { reused: a.reused, tests: a.tests, searchMs: a.searchMs } : undefined,
    });
    // Something to show now only if a change came while the commit was in flight (its
    // refresh was deferred and marked dirty) or a source must be polled; otherwise the
    // next 'changed' refreshes (and a plan that finds nothing new is not free).
    if (this.dirty || this.captureWaiters.length > 0 || (this.source && !this.source.changeEvents) || [...this.layerSources].some((s) => !s.changeEvents)) this.refresh();
  }

  private async finishCapture(content: Content): Promise<void> {
    const waiters = this.captureWaiters.splice(0);
    // vkms composes a writeback frame in a worker that reads the CRTC's *current* state: a
    // commit landing before that worker ran (a guest flipping every vblank while a frame
    // takes ~110 ms to compose under TCG) loses the job and its fence never signals
    // (measured: 0 of 3 captures at 60 guest fps, 3 of 3 at 20). So presentation pauses
    // until the captured frame is written; captures are a diagnostic, not a video path.
    this.captureHold = true;
    try {
      const cap = await this.writeback!.wait(10_000); // a composed frame costs ~0.1 s under TCG, far more on a loaded host
      for (const w of waiters) w.resolve({ ...cap, content });
    } catch (e) {
      for (const w of waiters) w.reject(e as Error);
    } finally {
      this.captureHold = false;
      this.scheduleRefresh();
    }
  }
  private captureHold = false;
  /** The last full plan, when it can stand for the next frame of the same shape (see plan()). */
  private lastPlan: { key: string; epoch: number; planeId: number; content: Content } | null = null;

  private readonly vblankCookie = nextCookie++ | (1n << 62n);

  private requestVblank(): void {
    if (this.vblankPending) return;
    try {
      drm.requestVblankEvent(this.dev.fd, this.crtc.index, this.vblankCookie);
      this.vblankPending = true;
    } catch (e) {
      this.report('vblank-request-failed', (e as Error).message);
    }
  }

  private refresh(): void {
    if (this.closed || !this.enabled || this.deviceGone) return;
    if (this.masterWait) {
      // Not master: no commit (not even TEST_ONLY, whose EACCES would read as a refusal).
      this.dirty = true;
      return;
    }
    if (this.inflight || this.captureHold) {
      this.dirty = true;
      return;
    }
    const force = this.dirty || this.captureWaiters.length > 0;
    this.dirty = false;
    this.stats.refreshes++;
    this.cache.tick(this.fbsOnScreen());
    const next = this.plan(false);
    let content = next;
    if (!content && force && this.onScreen && this.captureWaiters.length > 0) content = this.onScreen;
    if (content) {
      try {
        this.commit(content);
      } catch (e) {
        // Commit errors on the copy/no-signal path: keep the last frame, say why once.
        if (!this.commitFault(e)) this.report('commit-failed', (e as Error).message);
      }
    }
    if (!this.inflight && ((this.source && !this.source.changeEvents) || [...this.layerSources].some((s) => !s.changeEvents))) this.requestVblank();
  }

  private fbsOnScreen(): Set<number> {
    const ids = new Set<number>();
    for (const st of this.committed.values()) ids.add(st.fbId);
    for (const st of this.onScreen?.planes.values() ?? []) if (st) ids.add(st.fbId);
    return ids;
  }

  /** Planes the allocator may use: this CRTC's, minus other outputs' primaries and planes in use elsewhere. */
  private usablePlanes(): KmsPlane[] {
    return this.dev.planesFor(this.crtc).filter((p) => {
      if (p.type === 'primary' && p.id !== this.primary.id) return false;
      const owner = claimsOf(this.dev).planeOwner.get(p.id);
      return owner === undefined || owner === this;
    });
  }

  private noSignalContent(): Content | null {
    if (this.onScreen?.path === 'no-signal' || !this.noSignal) return null;
    const full = { x: 0, y: 0, w: this.width, h: this.height };
    const planes = new Map<number, PlaneState | null>([[this.primary.id, { fbId: this.noSignal.fbId, src: full, dst: full }]]);
    return { path: 'no-signal', fbId: this.noSignal.fbId, src: full, dst: full, contentKey: 'no-signal', planes };
  }

  /** Decides what the next frame shows; null = nothing to change. `force` ignores "unchanged". */
  private plan(force: boolean): Content | null {
    const host = this.hostFrame;
    const src = this.source;
    if (!src && !host) return this.noSignalContent();
    let p: GuestPlaneInfo | null = null;
    if (src) {
      const q = src.query('primary');
      switch (q.state) {
        case 'lost':
          // A frozen last frame would look like a live guest; a monitor whose source went away
          // shows "no signal", and so do we (the source-lost event says why). With host
          // layers, the host's frame goes on without the guest.
          this.onLost(q.error);
          this.detach();
          if (!host) return this.noSignalContent();
          break;
        case 'disabled':
          if (!host) return this.noSignalContent();
          break;
        case 'not-ready':
          this.stats.error('not-ready');
          return null;
        case 'ok':
          p = q.plane;
      }
    }
    const cq = p && src ? src.query('cursor') : null;
    const cur = cq?.state === 'ok' ? cq.plane : null;
    const sid = src ? this.cache.sourceId(src) : 0;
    // Guest sources shown as host layers: asked once per frame, like the attached guest.
    const sourced = new Map<string, PlaneQuery>();
    for (const l of host?.layers ?? []) if (!isHostBuffer(l.buffer)) sourced.set(l.id, l.buffer.source.query('primary'));
    let region = p?.transport === 'region';
    const keys: string[] = [];
    if (p) {
      const cursorKey = cur ? `${cur.bufferId}/${cur.generation}/${cur.frame ?? ''}/${cur.x},${cur.y}/${cur.hotX},${cur.hotY}` : '-';
      keys.push(`${sid}/${p.bufferId}/${p.generation}/${p.frame ?? ''}/${p.transport}|${cursorKey}`);
    }
    if (host) {
      keys.push(`host:${host.id}`);
      for (const [id, q] of sourced) {
        if (q.state !== 'ok') keys.push(`${id}:${q.state}`);
        else {
          const s = (host.layers.find((l) => l.id === id)!.buffer as { source: GuestSource }).source;
          keys.push(`${id}:${this.cache.sourceId(s)}/${q.plane.bufferId}/${q.plane.generation}/${q.plane.frame ?? ''}`);
          region ||= q.plane.transport === 'region';
        }
      }
    }
    const contentKey = keys.join('|');
    if (!force && this.onScreen?.contentKey === contentKey && !region) return null;
    // Steady state: the guest only flipped to another buffer of the same shape, alone on
    // its plane. The last plan stands with the new FB; no layers, allocation or reports
    // to rebuild (under TCG that rebuilding was most of the host's per-frame CPU).
    const steadyKey = p && src && !host && !cur && p.transport === 'dmabuf' ? this.steadyKey(sid, p) : null;
    const last = this.lastPlan;
    if (!force && steadyKey !== null && last && last.key === steadyKey && last.epoch === this.allocator.epoch) {
      const fb = this.cache.get(GUEST_PRIMARY_TAG, src!, p!, this.fbsOnScreen());
      if (fb.ok) {
        this.allocator.noteReuse();
        const planes = new Map(last.content.planes);
        planes.set(last.planeId, { ...planes.get(last.planeId)!, fbId: fb.entry.fbId });
        const a = last.content.alloc!;
        return { ...last.content, contentKey, planes, fbId: fb.entry.fbId, bufferId: p!.bufferId, frame: p!.frame, flipTimeNs: p!.flipTimeNs, alloc: { ...a, reused: true, tests: 0, searchMs: 0 } };
      }
    }
    this.lastPlan = null;
    const pre = p ? validatePlane(p, null) : null;
    if (pre && !pre.ok) {
      this.refuse(src!, p!, pre.cause, pre.message);
      return null; // keep the last good frame
    }
    const onScreenIds = this.fbsOnScreen();
    const full = { x: 0, y: 0, w: this.width, h: this.height };
    const scanout = this.paths.has('scanout');
    const layers: Layer[] = [];
    const inputs = new Map<string, ComposeInput>();
    const copied = new Set<string>();
    const hiddenReports: PresentedLayer[] = [];
    this.hotspots.clear();
    let covered = false;
    const coversScreen = (r: Rect) => r.x <= 0 && r.y <= 0 && r.x + r.w >= this.width && r.y + r.h >= this.height;
    const noScanout = (plane: GuestPlaneInfo): string | undefined => {
      if (!scanout) return 'scanout is not among options.paths';
      if (plane.transport !== 'dmabuf') return 'region plane (no dma-buf)';
      if (!this.dev.caps.prime.import) return 'the KMS device cannot import dma-bufs (no PRIME import)';
      return undefined;
    };

    // The guest's primary.
    const view = p ? viewOf(p) : null;
    const place = p && view ? placement(this.fit, view.shown.w, view.shown.h, this.width, this.height) : null;
    if (p && src && place && pre?.ok) {
      covered ||= coversScreen(place.dst) && !pre.format.hasAlpha;
      const gsrc = srcInBuffer(cropOf(place.src, view!), p);
      const guest: Layer = { id: 'guest', zIndex: GUEST_Z, buffer: null, src: gsrc, dst: place.dst, changesOften: true, transform: p.transform ?? NORMAL };
      guest.noBufferReason = noScanout(p);
      if (!guest.noBufferReason) {
        const fb = this.cache.get(GUEST_PRIMARY_TAG, src, p, onScreenIds);
        if (fb.ok) {
          const e = fb.entry;
          guest.buffer = { fbId: e.fbId, format: e.format, modifier: e.modifier, width: e.width, height: e.height };
        } else if (isInvalidGuestData(fb.cause)) {
          this.refuse(src, p, fb.cause, fb.message, fb.remembered);
          return null; // invalid guest data: keep the last good frame
        } else {
          guest.noBufferReason = `import failed: ${fb.message}`;
          if (!fb.remembered) this.report(fb.cause, fb.message);
        }
      }
      layers.push(guest);
      inputs.set('guest', { kind: 'guest', id: 'guest', source: src, sourceId: sid, plane: p, src: gsrc, dst: place.dst, key: `${sid}/${p.bufferId}/${p.generation}/${p.frame ?? ''}` });
    }

    // The host's layers.
    const hostBufferIds: number[] = [];
    for (const l of host?.layers ?? []) {
      const alpha = l.alpha ?? 1;
      if (isHostBuffer(l.buffer)) {
        const b = l.buffer;
        const hs = this.hostSourceFor(l.id);
        const plane: GuestPlaneInfo = { ...toPlane(b), frame: this.contentSerial.get(b.bufferId) ?? 0 };
        hostBufferIds.push(b.bufferId);
        covered ||= coversScreen(l.dst) && !hasAlpha(b.format) && alpha >= 1;
        const hsrc = srcInBuffer(l.src, plane);
        const layer: Layer = { id: l.id, zIndex: l.zIndex, buffer: null, src: hsrc, dst: l.dst, alpha, transform: plane.transform ?? NORMAL };
        layer.noBufferReason = scanout ? (this.dev.caps.prime.import ? undefined : 'the KMS device cannot import dma-bufs (no PRIME import)') : 'scanout is not among options.paths';
        if (!layer.noBufferReason) {
          const fb = this.cache.get(HOST_LAYER_TAG, hs, plane, onScreenIds);
          if (fb.ok) layer.buffer = { fbId: fb.entry.fbId, format: fb.entry.format, modifier: fb.entry.modifier, width: fb.entry.width, height: fb.entry.height };
          else {
            layer.noBufferReason = `import failed: ${fb.message}`;
            if (!fb.remembered) this.report(`host-${fb.cause}`, `${hs.name}: ${fb.message}`);
          }
        }
        layers.push(layer);
        const hsid = this.cache.sourceId(hs);
        inputs.set(l.id, { kind: 'guest', id: l.id, source: hs, sourceId: hsid, plane, src: hsrc, dst: l.dst, alpha, key: `${hsid}/${b.bufferId}/${plane.generation}/${plane.frame}` });
        continue;
      }
      const s = l.buffer.source;
      const q = sourced.get(l.id)!;
      if (q.state !== 'ok') {
        const why = q.state === 'lost' ? `its source is lost: ${q.error.message}` : q.state === 'not-ready' ? `its source is not ready: ${q.reason}` : 'its source has no plane enabled';
        if (q.state === 'lost') this.report('layer-source-lost', `layer "${l.id}" (${s.name}): ${q.error.message}`);
        hiddenReports.push({ id: l.id, planeId: null, planeType: null, how: 'hidden', reason: { code: 'no-buffer', message: why }, path: null, zeroCopy: false });
        continue;
      }
      const gp = q.plane;
      const v = validatePlane(gp, null);
      if (!v.ok) {
        this.refuse(s, gp, v.cause, `layer "${l.id}" (${s.name}): ${v.message}`);
        return null;
      }
      const gpic = pictureOf(gp);
      const lsrc = l.src.w > 0 ? l.src : { x: 0, y: 0, w: gpic.w, h: gpic.h };
      if (lsrc.x + lsrc.w > gpic.w || lsrc.y + lsrc.h > gpic.h) {
        this.report('layer-src-range', `layer "${l.id}": src ${lsrc.w}x${lsrc.h}+${lsrc.x}+${lsrc.y} reaches outside ${s.name}'s ${gpic.w}x${gpic.h} picture`);
        return null;
      }
      covered ||= coversScreen(l.dst) && !v.format.hasAlpha && alpha >= 1;
      const ssid = this.cache.sourceId(s);
      const msrc = srcInBuffer(lsrc, gp);
      const layer: Layer = { id: l.id, zIndex: l.zIndex, buffer: null, src: msrc, dst: l.dst, alpha, changesOften: true, transform: gp.transform ?? NORMAL };
      layer.noBufferReason = noScanout(gp);
      if (!layer.noBufferReason) {
        const fb = this.cache.get(GUEST_PRIMARY_TAG, s, gp, onScreenIds);
        if (fb.ok) layer.buffer = { fbId: fb.entry.fbId, format: fb.entry.format, modifier: fb.entry.modifier, width: fb.entry.width, height: fb.entry.height };
        else if (isInvalidGuestData(fb.cause)) {
          this.refuse(s, gp, fb.cause, `layer "${l.id}": ${fb.message}`, fb.remembered);
          return null;
        } else {
          layer.noBufferReason = `import failed: ${fb.message}`;
          if (!fb.remembered) this.report(fb.cause, fb.message);
        }
      }
      layers.push(layer);
      inputs.set(l.id, { kind: 'guest', id: l.id, source: s, sourceId: ssid, plane: gp, src: msrc, dst: l.dst, alpha, key: `${ssid}/${gp.bufferId}/${gp.generation}/${gp.frame ?? ''}` });
    }

    // The host background, where nothing opaque covers the screen.
    if (!covered) {
      this.background ??= this.makeBackground();
      layers.push({ id: 'background', zIndex: BACKGROUND_Z, buffer: { fbId: this.background.fbId, format: this.background.format, modifier: drm.DRM_FORMAT_MOD_LINEAR, width: this.width, height: this.height }, src: full, dst: full, hostBuffer: true });
      inputs.set('background', { kind: 'solid', id: 'background', pixel: this.backgroundPixel, dst: full });
    }

    // The guest's cursor.
    if (cur && src && place) {
      const c = this.cursor.frame(src, sid, cur, place, this.cache, this.maps, scanout, onScreenIds);
      if ('error' in c) this.report(`cursor-${c.cause}`, c.error);
      else {
        layers.push(c.layer);
        inputs.set('cursor', c.input);
        this.hotspots.set('cursor', { x: c.hotX, y: c.hotY });
        if (c.copied) {
          copied.add('cursor');
          this.report('cursor-copied', `the guest cursor is copied into a cursor-sized buffer: ${c.copied}`);
        }
      }
    }

    const alloc = this.allocator.allocate(layers, scanout ? {} : { composeOnly: 'scanout is not among options.paths' });
    const planes = new Map<number, PlaneState | null>();
    for (const id of this.committed.keys()) planes.set(id, null);
    let composed: Composed | undefined;
    if (alloc.composition) {
      const ins = alloc.composed.map((id) => inputs.get(id)!);
      const c = this.composer.compose(ins, this.committed.get(this.primary.id)?.fbId ?? 0, this.paths.has('gles'), this.paths.has('copy'));
      if ('error' in c) {
        const failed = c.layer !== undefined ? inputs.get(c.layer) : undefined;
        if (failed?.kind === 'guest') this.refuse(failed.source, failed.plane, c.cause, c.error);
        else this.report(c.cause, c.error);
        return null; // nothing can show it: keep the last frame
      }
      composed = c;
      if (c.fallback) this.report('gles-fallback', `GPU composition failed, the CPU composed: ${c.fallback}`);
      this.stats.bytesCopied += c.bytesCopied;
      this.stats.bytesUploaded += c.gles?.uploadedBytes ?? 0;
    }
    const byId = new Map(layers.map((l) => [l.id, l]));
    for (const u of alloc.uses) planes.set(u.planeId, this.stateFor(u, byId, composed?.fbId));
    const frameOf = (id: string) => {
      const q = sourced.get(id);
      return q?.state === 'ok' && q.plane.frame !== undefined ? { frame: q.plane.frame } : {};
    };
    const reports: PresentedLayer[] = [
      ...alloc.layers.map((r): PresentedLayer => {
        if (r.how === 'plane') return { ...r, path: 'scanout', zeroCopy: !copied.has(r.id), ...frameOf(r.id) };
        if (r.how === 'composed') return { ...r, path: composed!.path, zeroCopy: false, ...frameOf(r.id) };
        return { ...r, path: null, zeroCopy: false, ...frameOf(r.id) };
      }),
      ...hiddenReports,
    ];
    const frameInfo = { contentKey, frameId: host?.id, hostBufferIds, hostLayerIds: (host?.layers ?? []).map((l) => l.id), planes, layers: reports, alloc, allocLayers: layers, composed };
    const g = p ? alloc.layers.find((l) => l.id === 'guest') : undefined;
    if (!p || !g || !place) {
      // No guest in this frame: the frame's path is composition's if anything was composed.
      const path: PresentPath = composed ? composed.path : 'scanout';
      return { ...frameInfo, path, fbId: planes.get(this.primary.id)?.fbId ?? 0, src: full, dst: full, gles: composed?.path === 'gles' ? composed.gles : undefined };
    }
    const onPlane = g.how === 'plane';
    const path: PresentPath = onPlane ? 'scanout' : composed!.path;
    let reason = g.reason?.message;
    if (composed?.fallback && !onPlane) reason = `${reason}; GPU composition: ${composed.fallback}`;
    const planned: Content = {
      ...frameInfo,
      bufferId: p.bufferId,
      frame: p.frame,
      flipTimeNs: p.flipTimeNs,
      path,
      fbId: onPlane ? byId.get('guest')!.buffer!.fbId : composed!.fbId,
      src: onPlane ? place.src : full,
      dst: onPlane ? place.dst : full,
      reason: onPlane ? undefined : reason,
      gles: !onPlane && composed?.path === 'gles' ? composed.gles : undefined,
    };
    if (steadyKey !== null && onPlane && !composed && g.planeId !== null) this.lastPlan = { key: steadyKey, epoch: this.allocator.epoch, planeId: g.planeId, content: planned };
    return planned;
  }

  /** What must stay the same for the last plan to stand when only the guest's buffer changes. */
  private steadyKey(sid: number, p: GuestPlaneInfo): string {
    return `${sid}|${p.generation}|${p.format}|${p.modifier}|${p.width}x${p.height}|${p.stride}|${p.offset}|${p.size}|${p.transform ?? 0}|${p.crop ? rectKey(p.crop) : '-'}|${p.displaySize ? `${p.displaySize.w}x${p.displaySize.h}` : '-'}|${p.x},${p.y}|${p.hotX},${p.hotY}|${this.fit}|${this.width}x${this.height}`;
  }

  private makeBackground(): DumbFramebuffer {
    const b = new DumbFramebuffer(this.dev.fd, this.width, this.height);
    fill({ bytes: b.bytes, offset: 0, stride: b.pitch, width: b.width, height: b.height }, { x: 0, y: 0, w: b.width, h: b.height }, this.backgroundPixel);
    return b;
  }

  /** A plane's state for one use of an assignment; `compositionFb` for the composition buffer. */
  private stateFor(u: PlaneUse, layers: ReadonlyMap<string, Layer>, compositionFb: number | undefined): PlaneState {
    const full = { x: 0, y: 0, w: this.width, h: this.height };
    if (u.layer === null) return { fbId: compositionFb ?? this.composer.standIn(), src: full, dst: full, zpos: u.zpos };
    const l = layers.get(u.layer)!;
    const hot = this.hotspots.get(u.layer);
    return { fbId: l.buffer!.fbId, src: l.src, dst: l.dst, transform: l.transform, zpos: u.zpos, hotX: hot?.x, hotY: hot?.y };
  }

  /** TEST_ONLY of an assignment (allocator callback): the committed state changed to `uses`. */
  private testUses(uses: readonly PlaneUse[], layers: ReadonlyMap<string, Layer>): Error | null {
    const planes = new Map<number, PlaneState | null>();
    for (const id of this.committed.keys()) planes.set(id, null);
    for (const u of uses) planes.set(u.planeId, this.stateFor(u, layers, undefined));
    const req = this.dev.request();
    try {
      this.applyPlanes(req, planes, false);
      return req.test(COMMIT.NONBLOCK);
    } finally {
      req.dispose();
    }
  }

  private planeById(id: number): KmsPlane {
    const p = this.dev.planes.find((x) => x.id === id);
    if (!p) throw new Error(`${this.dev.path}: no plane ${id}`);
    return p;
  }

  /** Sets on `req` what differs between the committed planes and `want` (everything if `full`). */
  private applyPlanes(req: AtomicRequest, want: ReadonlyMap<number, PlaneState | null>, full: boolean): void {
    const ids = new Set([...this.committed.keys(), ...want.keys()]);
    for (const id of ids) {
      const w = want.has(id) ? want.get(id)! : (this.committed.get(id) ?? null);
      const have = full ? null : (this.committed.get(id) ?? null);
      const pl = this.planeById(id);
      if (!w) {
        if (have || full) req.set(pl, 'FB_ID', 0).set(pl, 'CRTC_ID', 0);
        continue;
      }
      const put = (name: string, v: number, old: number | undefined) => {
        if (!have || old !== v) req.set(pl, name, v);
      };
      put('FB_ID', w.fbId, have?.fbId);
      if (!have) req.set(pl, 'CRTC_ID', this.crtc.id);
      put('SRC_X', w.src.x * 65536, have ? have.src.x * 65536 : undefined);
      put('SRC_Y', w.src.y * 65536, have ? have.src.y * 65536 : undefined);
      put('SRC_W', w.src.w * 65536, have ? have.src.w * 65536 : undefined);
      put('SRC_H', w.src.h * 65536, have ? have.src.h * 65536 : undefined);
      put('CRTC_X', w.dst.x, have?.dst.x);
      put('CRTC_Y', w.dst.y, have?.dst.y);
      put('CRTC_W', w.dst.w, have?.dst.w);
      put('CRTC_H', w.dst.h, have?.dst.h);
      if (w.zpos !== undefined && pl.props.has('zpos') && !pl.zpos?.immutable) put('zpos', w.zpos, have?.zpos);
      // Always written where the plane has it: whoever used the plane before may have
      // left it rotated, and a reflected layer's plane goes back to rotate-0 after it.
      if (pl.props.has('rotation')) put('rotation', rotationValue(pl, w.transform ?? NORMAL), have ? rotationValue(pl, have.transform ?? NORMAL) : undefined);
      if (w.hotX !== undefined && pl.props.has('HOTSPOT_X')) put('HOTSPOT_X', w.hotX, have?.hotX);
      if (w.hotY !== undefined && pl.props.has('HOTSPOT_Y')) put('HOTSPOT_Y', w.hotY, have?.hotY);
    }
  }

  private commit(content: Content): void {
    const cookie = nextCookie++;
    const attempt = (c: Content) => {
      const req = this.dev.request();
      this.applyPlanes(req, c.planes, false);
      // A capture of an unchanged screen still needs the CRTC in the commit.
      if (req.size === 0) req.set(this.primary, 'FB_ID', this.committed.get(this.primary.id)?.fbId ?? c.fbId);
      let flags = COMMIT.NONBLOCK | COMMIT.PAGE_FLIP_EVENT;
      if (this.writeback && this.captureWaiters.length > 0 && !this.writeback.isArmed) {
        this.writeback.attach(req, this.crtc, this.width, this.height);
        // Routing the writeback connector to the CRTC the first time is a modeset.
        if (!this.writebackRouted) flags |= COMMIT.ALLOW_MODESET;
      }
      try {
        req.commit(flags, cookie);
        if (this.writeback?.isArmed) this.writebackRouted = true;
      } catch (e) {
        this.writeback?.disarm();
        throw e;
      }
      this.lastRequest = req;
      this.adopt(c.planes);
    };
    try {
      attempt(content);
    } catch (e) {
      if (content.composed) this.composer.abandon(content.composed);
      const placedGuest = content.alloc?.uses.some((u) => u.layer !== null && !content.allocLayers?.find((l) => l.id === u.layer)?.hostBuffer);
      // Lost master or a vanished device say nothing about the buffers: don't distrust them.
      if (!content.alloc || !placedGuest || this.dev.commitFailure(e)) throw e;
      // The kernel refused the real commit although TEST_ONLY (or memory) said yes: the
      // allocator distrusts the guest buffers it placed, and this very frame is planned
      // again (those layers composed) and committed now.
      const reason = `the kernel refused the commit: ${(e as Error).message}`;
      this.report('scanout-commit-refused', reason);
      this.allocator.commitFailed(content.alloc, content.allocLayers ?? [], e as Error);
      const again = this.plan(true);
      if (!again) throw e;
      content = again;
      try {
        attempt(content);
      } catch (e2) {
        if (content.composed) this.composer.abandon(content.composed);
        throw e2;
      }
    }
    this.inflight = { cookie, content };
  }

  /** Commit failures that are not about the frame (device gone, master lost); true if handled. */
  private commitFault(e: unknown): boolean {
    const kind = this.dev.commitFailure(e);
    if (kind === 'device-gone') {
      this.deviceGone = true;
      this.report('device-lost', `${this.dev.path} is gone (${(e as Error).message}); close this output, and open the device again once it is back`);
    } else if (kind === 'not-master') {
      this.report('master-lost', `${this.dev.path}: another process is DRM master (a VT switch, another compositor), so frames cannot be shown (${(e as Error).message}); the guest is shown again as soon as master comes back`);
      this.masterWait ??= setInterval(() => this.masterBack(), 50);
    }
    return kind !== null;
  }

  /**
   * Master is ours again. The other master may have changed anything (switched the CRTC
   * off, unrouted connectors), so re-light with a full modeset of what we last committed,
   * then show the guest's current frame.
   */
  private masterBack(): void {
    if (!this.closed && !this.deviceGone && !drm.isMaster(this.dev.fd)) return;
    clearInterval(this.masterWait!);
    this.masterWait = null;
    if (this.closed || this.deviceGone) return;
    const req = this.dev.request().set(this.connector, 'CRTC_ID', this.crtc.id).set(this.crtc, 'MODE_ID', this.modeBlob).set(this.crtc, 'ACTIVE', 1);
    this.applyPlanes(req, new Map(), true);
    this.writebackRouted = false;
    try {
      req.commit(COMMIT.ALLOW_MODESET);
    } catch (e) {
      if (!this.commitFault(e)) this.report('relight-failed', `could not light ${this.connector.name} again after regaining DRM master: ${(e as Error).message}`);
      return;
    }
    this.dirty = true;
    this.scheduleRefresh();
  }

  /** After a successful commit: remember what the planes show; take and give back planes. */
  private adopt(planes: ReadonlyMap<number, PlaneState | null>): void {
    const owner = claimsOf(this.dev).planeOwner;
    for (const [id, st] of planes) {
      if (st) {
        this.committed.set(id, st);
        owner.set(id, this);
      } else {
        this.committed.delete(id);
        if (id !== this.primary.id && owner.get(id) === this) owner.delete(id);
      }
    }
  }

  /** The frame cannot show `plane` of `source`: reported (once per cause), and the source is told. */
  private refuse(source: GuestSource, plane: GuestPlaneInfo, cause: string, message: string, remembered = false): void {
    if (!remembered) this.report(cause, message);
    source.refused?.(plane, cause, message);
  }

  /** Reports an error once per cause (counted every time). */
  private report(cause: string, message: string): void {
    this.stats.error(cause);
    if (this.reported.has(cause)) return;
    this.reported.add(cause);
    if (this.listenerCount('error') > 0) this.emit('error', { cause, message });
  }

  private saveState(): Saved {
    const d = this.dev;
    const crtcProps = d.crtc(this.crtc.id).props;
    crtcProps.refreshValues(d.fd, drm.DRM_MODE_OBJECT_CRTC);
    this.connector.props.refreshValues(d.fd, drm.DRM_MODE_OBJECT_CONNECTOR);
    this.primary.props.refreshValues(d.fd, drm.DRM_MODE_OBJECT_PLANE);
    const modeId = crtcProps.get('MODE_ID')?.value ?? 0n;
    // Keep the mode's bytes, not its blob id: the blob dies with its creator's reference.
    let modeBlob: Buffer | null = null;
    if (modeId !== 0n) {
      try {
        modeBlob = drm.getPropertyBlob(d.fd, Number(modeId));
      } catch {
        modeBlob = null;
      }
    }
    const plane: Record<string, bigint> = {};
    for (const n of PLANE_RECT_PROPS) plane[n] = this.primary.props.get(n)?.value ?? 0n;
    return { modeBlob, active: crtcProps.get('ACTIVE')?.value ?? 0n, connectorCrtc: this.connector.props.get('CRTC_ID')?.value ?? 0n, plane };
  }

  /**
   * Puts back what was on screen before enable() (else switches the CRTC off), without
   * blocking the event loop: a non-blocking modeset whose completion event is awaited.
   * When it resolves the kernel has let go of every FB this output showed (callers and
   * the leak tests count them), and other outputs kept presenting meanwhile (a modeset
   * takes frames; after a vkms unplug the kernel waits 10 s for a flip that never comes).
   * A kernel that refuses the non-blocking form gets the blocking one.
   */
  private async restore(): Promise<void> {
    const s = this.saved;
    if (!s) return;
    const d = this.dev;
    let blob = 0;
    const wbConn = this.writebackRouted ? this.writeback?.connector : undefined;
    const full = () => {
      const req = d.request();
      if (s.modeBlob && s.active !== 0n && !blob) blob = drm.createPropertyBlob(d.fd, s.modeBlob);
      req.set(this.crtc, 'MODE_ID', s.active !== 0n ? blob : 0).set(this.crtc, 'ACTIVE', s.active).set(this.connector, 'CRTC_ID', s.connectorCrtc);
      for (const n of PLANE_RECT_PROPS) req.set(this.primary, n, s.plane[n]);
      this.offOthers(req);
      if (wbConn) req.set(wbConn, 'CRTC_ID', 0);
      return req;
    };
    const off = () => {
      const req = d.request().set(this.crtc, 'MODE_ID', 0).set(this.crtc, 'ACTIVE', 0).set(this.connector, 'CRTC_ID', 0).set(this.primary, 'FB_ID', 0).set(this.primary, 'CRTC_ID', 0);
      this.offOthers(req);
      if (wbConn) req.set(wbConn, 'CRTC_ID', 0);
      return req;
    };
    const commit = async (make: () => AtomicRequest) => {
      const cookie = nextCookie++;
      let done: (ok: boolean) => void = () => {};
      const completed = new Promise<boolean>((r) => (done = r));
      const onFlip = (ev: FlipEvent) => {
        if (ev.userData === cookie) done(true);
      };
      const timer = setTimeout(() => done(false), RESTORE_TIMEOUT_MS);
      d.events.on('flip', onFlip);
      try {
        try {
          make().commit(COMMIT.ALLOW_MODESET | COMMIT.NONBLOCK | COMMIT.PAGE_FLIP_EVENT, cookie);
        } catch (e) {
          // EBUSY (a commit still pending), or a driver that sends no event for this
          // change: the blocking form, which returns once the kernel is done.
          if (d.commitFailure(e)) throw e;
          make().commit(COMMIT.ALLOW_MODESET);
          return;
        }
        if (!(await completed)) {
          this.report('restore-slow', `the restoring modeset of ${this.connector.name} did not complete within ${RESTORE_TIMEOUT_MS / 1000} s; its buffers are released anyway`);
        }
      } finally {
        clearTimeout(timer);
        d.events.off('flip', onFlip);
      }
    };
    try {
      await commit(full);
    } catch (e) {
      this.report('restore-failed', `could not restore the previous configuration (${(e as Error).message}); switching ${this.connector.name} off`);
      try {
        await commit(off);
      } catch {
        /* device gone */
      }
    } finally {
      if (blob) drm.destroyPropertyBlob(d.fd, blob);
    }
  }

  /** Switches off the planes other than the primary that this output lit. */
  private offOthers(req: AtomicRequest): void {
    for (const id of this.committed.keys()) {
      if (id === this.primary.id) continue;
      const pl = this.planeById(id);
      req.set(pl, 'FB_ID', 0).set(pl, 'CRTC_ID', 0);
    }
  }

  /** Waits for the commit in flight (if any) to complete, up to `timeoutMs`. */
  async idle(timeoutMs = 1000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (this.inflight && Date.now() < end) await new Promise((r) => setTimeout(r, 2));
  }

  /** Stops presenting, restores the CRTC (by default) and frees every kernel object it holds. */
  async close(restore = true): Promise<void> {
    if (this.closed) return;
    await this.idle();
    this.closed = true;
    if (this.masterWait) clearInterval(this.masterWait);
    this.masterWait = null;
    this.detach();
    for (const s of this.layerSources) s.off('changed', this.onChanged);
    this.layerSources.clear();
    // Everything is let go at once (no 'release' events after close).
    for (const s of this.hostSources.values()) s.close();
    this.hostSources.clear();
    this.held.clear();
    this.hostFrame = null;
    this.dev.events.off('flip', this.onFlip);
    this.dev.events.off('error', this.onDeviceError);
    for (const w of this.captureWaiters.splice(0)) w.reject(new Error('output closed'));
    const restoring = this.enabled && restore && !this.dev.isClosed && this.dev.present;
    // The FBs the kernel may still hold after the restore: what was on screen.
    const shown = restoring ? [...this.fbsOnScreen()] : [];
    if (restoring) await this.restore();
    this.composer.close();
    this.cursor.close();
    this.cache.close();
    this.maps.close();
    this.noSignal?.close(true);
    this.background?.close(true);
    this.writeback?.close();
    if (this.modeBlob) {
      try {
        this.dev.destroyBlob(this.modeBlob);
      } catch {
        /* device gone */
      }
    }
    const claims = claimsOf(this.dev);
    claims.crtcs.delete(this.crtc.id);
    claims.primaries.delete(this.primary.id);
    for (const [id, o] of [...claims.planeOwner]) if (o === this) claims.planeOwner.delete(id);
    this.committed.clear();
    // The restore's completion event comes before the kernel drops the state it replaced
    // (and with it the last references to those FBs): wait until they are really gone, so
    // that when close() resolves nothing of this output is left on the device.
    await this.untilGone(shown);
  }

  private async untilGone(fbIds: readonly number[]): Promise<void> {
    const end = Date.now() + 1000;
    let left = fbIds.filter((id) => id !== 0);
    while (left.length > 0 && Date.now() < end && !this.dev.isClosed && this.dev.present) {
      left = left.filter((id) => drm.fbExists(this.dev.fd, id));
      if (left.length > 0) await new Promise((r) => setTimeout(r, 2));
    }
  }
}

function checkPaths(paths: readonly FramePath[] | undefined): ReadonlySet<FramePath> {
  if (paths === undefined) return new Set(DEFAULT_PATHS);
  const bad = paths.filter((p) => !DEFAULT_PATHS.includes(p));
  if (bad.length > 0) throw new Error(`options.paths: unknown path(s) ${bad.map((b) => JSON.stringify(b)).join(', ')}; allowed: ${DEFAULT_PATHS.join(', ')}`);
  if (paths.length === 0) throw new Error(`options.paths is empty: allow at least one of ${DEFAULT_PATHS.join(', ')}`);
  return new Set(paths);
}

/** What the outputs of one device hold. Object ids are per device: two devices often use the same ones. */
interface DeviceClaims {
  crtcs: Set<number>;
  primaries: Set<number>;
  /** Which output uses a plane now (planes that several CRTCs can take are shared). */
  planeOwner: Map<number, Output>;
}
const claimsByDevice = new WeakMap<KmsDevice, DeviceClaims>();
function claimsOf(dev: KmsDevice): DeviceClaims {
  let c = claimsByDevice.get(dev);
  if (!c) {
    c = { crtcs: new Set(), primaries: new Set(), planeOwner: new Map() };
    claimsByDevice.set(dev, c);
  }
  return c;
}

/** The connector mode matching a request (or the preferred one). */
export function pickMode(conn: KmsConnector, want?: ModeRequest): drm.DrmModeInfo {
  if (conn.modes.length === 0) throw new Error(`connector ${conn.name} reports no modes`);
  if (!want) return conn.modes.find((m) => m.type & drm.DRM_MODE_TYPE_PREFERRED) ?? conn.modes[0];
  const matches = conn.modes.filter((m) => m.hdisplay === want.width && m.vdisplay === want.height && (!want.refresh || m.vrefresh === want.refresh));
  if (matches.length === 0) {
    const list = [...new Set(conn.modes.map((m) => `${m.hdisplay}x${m.vdisplay}@${m.vrefresh}`))].join(', ');
    throw new Error(`connector ${conn.name} has no mode ${want.width}x${want.height}${want.refresh ? `@${want.refresh}` : ''}; it has: ${list}`);
  }
  return matches.find((m) => m.type & drm.DRM_MODE_TYPE_PREFERRED) ?? matches[0];
}

function drawNoSignal(fb: DumbFramebuffer): void {
  const img = { bytes: fb.bytes, offset: 0, stride: fb.pitch, width: fb.width, height: fb.height };
  fill(img, { x: 0, y: 0, w: fb.width, h: fb.height }, NO_SIGNAL_PIXEL);
  // A frame inset by 1/8 marks it as deliberate, not a dead screen.
  const ix = Math.floor(fb.width / 8);
  const iy = Math.floor(fb.height / 8);
  const t = Math.max(2, Math.floor(fb.height / 100));
  fill(img, { x: ix, y: iy, w: fb.width - 2 * ix, h: t }, NO_SIGNAL_MARK);
  fill(img, { x: ix, y: fb.height - iy - t, w: fb.width - 2 * ix, h: t }, NO_SIGNAL_MARK);
  fill(img, { x: ix, y: iy, w: t, h: fb.height - 2 * iy }, NO_SIGNAL_MARK);
  fill(img, { x: fb.width - ix - t, y: iy, w: t, h: fb.height - 2 * iy }, NO_SIGNAL_MARK);
}
