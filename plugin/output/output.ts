// One host output (connector + CRTC + its planes) showing one guest source, and the host
// layers around it. This is the public face of the output room (plugin/output/): it
// wires the steps of a frame and keeps the refresh loop.
//
// Refresh is driven by the host's page-flip events, not a timer: after each flip
// completes (or when the guest says it flipped, or at the next vblank for sources that
// cannot say), the guest is queried; a new buffer becomes one atomic commit of its cached
// FB; an unchanged guest costs no commit at all. One commit is in flight per CRTC.
//
// The path of a frame, one file per step (ARCHITECTURE.md tells it in full):
//   output/gather.ts     the sources and the host frame → a frame description
//   output/planner.ts    description → plan: layers, planes (allocator.ts), composition
//                        (compose/composer.ts), the path and why
//   output/committer.ts  plan → atomic commit; in flight → on screen at its flip event;
//                        refused commits, device loss, master loss
//   output/presentation.ts  the flip → the 'present' event and the counters
// Around them: host-frames.ts (present()'s layers and buffer releases), capture.ts
// (writeback), crtc-state.ts (save/restore of what was on screen), claims.ts (which
// output holds which CRTC and plane), own-buffers.ts (no-signal and background).
//
// Ownership: the output owns its FB cache (FBs and EGLImages), composer, cursor buffers,
// background and no-signal buffers, mode blob and writeback capture, and the planes it
// lit (released when it stops using them); the device and the sources are the caller's.
import { EventEmitter } from 'node:events';
import * as drm from '../../ffi/drm.js';
import type { KmsConnector, KmsCrtc, KmsDevice, KmsPlane } from '../kms/device.js';
import type { FlipEvent } from '../kms/events.js';
import type { DumbFramebuffer } from '../kms/dumb.js';
import { FramebufferCache } from '../buffers/fb-cache.js';
import type { FitMode } from '../geometry.js';
import { DmabufMaps } from '../compose/dmabuf-map.js';
import { Composer } from '../compose/composer.js';
import { OutputStats, type OutputStatsSnapshot } from '../stats.js';
import { PlaneAllocator } from '../planes/allocator.js';
import { CursorBuffers } from '../planes/cursor.js';
import type { GuestPlaneInfo, GuestSource } from '../sources/source.js';
import { forgetBuffer, forgetSource, type Imports } from './imports.js';
import type { HostLayer } from '../planes/host-layers.js';
import { checkPaths, claimPipe, holdPipe, pickMode, releasePipe, usablePlanes } from './claims.js';
import { HostFrames } from './host-frames.js';
import { gatherFrame } from './gather.js';
import { FramePlanner } from './planner.js';
import { Committer } from './committer.js';
import { Captures, type CaptureResult } from './capture.js';
import { presented, statsSnapshot } from './presentation.js';
import { restoreCrtc, saveCrtc, untilGone, type SavedCrtc } from './crtc-state.js';
import { noSignalBuffer, solidBuffer } from './own-buffers.js';
import { LateLatch } from './latch.js';
import type { GuestOutput } from './interface.js';
import { nextCookie, type FramePath, type FramePlan, type OutputEvents, type OutputOptions, type PlaneState } from './types.js';

export type { HostBuffer, HostLayer, HostBufferRelease } from '../planes/host-layers.js';
export type { GuestOutput, GuestOutputEvents } from './interface.js';
export { DEFAULT_PATHS, NO_SIGNAL_PIXEL } from './types.js';
export type { FramePath, FramePlan, ModeRequest, OutputErrorEvent, OutputEvents, OutputOptions, PlaneState, PresentEvent, PresentedLayer } from './types.js';
export { pickMode } from './claims.js';

export class Output extends EventEmitter<OutputEvents> implements GuestOutput {
  readonly crtc: KmsCrtc;
  readonly connector: KmsConnector;
  readonly primary: KmsPlane;
  readonly mode: drm.DrmModeInfo;
  readonly stats = new OutputStats();
  readonly cache: FramebufferCache;
  readonly paths: ReadonlySet<FramePath>;
  readonly allocator: PlaneAllocator;
  readonly refreshNs: number;
  private readonly maps = new DmabufMaps();
  private readonly composer: Composer;
  private readonly cursor: CursorBuffers;
  private readonly backgroundPixel: number;
  private readonly hostFrames: HostFrames;
  private readonly planner: FramePlanner;
  private readonly committer: Committer;
  private readonly captures: Captures;
  private modeBlob = 0;
  private saved: SavedCrtc | null = null;
  private enabled = false;
  private closed = false;
  private source: GuestSource | null = null;
  private fit: FitMode = 'fit';
  private onChanged = () => this.scheduleRefresh();
  private dirty = false;
  private vblankPending = false;
  private refreshQueued = false;
  private readonly reported = new Set<string>();
  private noSignal: DumbFramebuffer | null = null;
  private background: DumbFramebuffer | null = null;
  private readonly onFlip = (ev: FlipEvent) => this.handleEvent(ev);
  private readonly onDeviceError = (e: Error) => this.report('device-lost', e.message);
  private readonly vblankCookie = nextCookie() | (1n << 62n);
  /** Null when lateLatch is off: polled guests are asked at the vblank itself. */
  readonly latch: LateLatch | null;

  /** The properties of the last commit ("plane 31.FB_ID=42" …), for diagnostics and tests. */
  get lastCommit(): string[] {
    const r = this.committer.lastRequest;
    return r ? r.entryList() : [];
  }

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
    const { crtc, primary } = claimPipe(dev, conn, opts.crtcId);
    this.crtc = crtc;
    this.primary = primary;
    this.cache = new FramebufferCache(dev.fd);
    this.refreshNs = Math.round(1e9 * (this.mode.htotal * this.mode.vtotal) / (this.mode.clock * 1000)) || Math.round(1e9 / (this.mode.vrefresh || 60));
    this.backgroundPixel = (opts.background ?? 0xff000000) | 0xff000000;
    this.composer = new Composer(dev, this.width, this.height, this.cache, this.maps);
    this.cursor = new CursorBuffers(dev);
    this.allocator = new PlaneAllocator(
      {
        planes: () => usablePlanes(dev, crtc, primary, this),
        test: (uses, layers) => this.committer.test(this.planner.planesFor(uses, layers, undefined)),
      },
      { crtcIndex: crtc.index, width: this.width, height: this.height, cursorWidth: dev.caps.cursorWidth, cursorHeight: dev.caps.cursorHeight, budgetMs: opts.allocatorBudgetMs },
    );
    this.captures = new Captures(dev, crtc, this.width, this.height, () => this.scheduleRefresh());
    this.hostFrames = new HostFrames({ cache: this.cache, maps: this.maps, onChanged: this.onChanged, release: (r) => this.emit('release', r), fbsOnScreen: () => this.committer.fbsOnScreen() });
    this.latch = opts.lateLatch === false ? null : new LateLatch(this.refreshNs, () => this.refresh());
    this.committer = this.makeCommitter();
    this.planner = this.makePlanner();
    holdPipe(dev, crtc, primary, this);
  }

  private makeCommitter(): Committer {
    return new Committer({
      dev: this.dev,
      crtc: this.crtc,
      connector: this.connector,
      primary: this.primary,
      owner: this,
      captures: this.captures,
      allocator: this.allocator,
      composer: this.composer,
      report: (cause, message) => this.report(cause, message),
      replan: () => this.plan(true),
      isClosed: () => this.closed,
      modeBlob: () => this.modeBlob,
      relit: () => {
        this.dirty = true;
        this.scheduleRefresh();
      },
    });
  }

  private makePlanner(): FramePlanner {
    return new FramePlanner({
      width: this.width,
      height: this.height,
      primaryId: this.primary.id,
      paths: this.paths,
      primeImport: this.dev.caps.prime.import,
      backgroundPixel: this.backgroundPixel,
      cache: this.cache,
      maps: this.maps,
      composer: this.composer,
      allocator: this.allocator,
      cursor: this.cursor,
      hostFrames: this.hostFrames,
      stats: this.stats,
      fit: () => this.fit,
      committed: () => this.committer.committed,
      fbsOnScreen: () => this.committer.fbsOnScreen(),
      onScreenKey: () => this.committer.onScreen?.contentKey,
      background: () => (this.background ??= solidBuffer(this.dev, this.width, this.height, this.backgroundPixel)),
      report: (cause, message) => this.report(cause, message),
      refuse: (source, plane, cause, message, remembered) => this.refuse(source, plane, cause, message, remembered),
    });
  }

  get name(): string {
    return this.connector.name;
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
    this.saved = saveCrtc(this);
    this.noSignal = noSignalBuffer(d, this.width, this.height);
    this.modeBlob = d.createModeBlob(this.mode);
    this.committer.light(this.noSignalPlan(this.noSignal));
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
    source.on('buffers-gone', this.onBuffersGone);
    source.on('buffer-gone', this.onBufferGone);
    this.scheduleRefresh();
  }

  /** One buffer of the attached source is gone for good: its imports go now (see FramebufferCache.forgetBuffer). */
  private readonly onBufferGone = (bufferId: number) => {
    if (!this.source) return;
    forgetBuffer(this.imports, this.source, bufferId, this.committer.fbsOnScreen());
  };

  /**
   * The attached source's producer went away with all its buffers: let go of them as on
   * detach, and of the GPU compositor made for them (its own DRM fd, targets and FBs; made
   * again if a later producer needs it).
   */
  private readonly onBuffersGone = () => {
    if (!this.source) return;
    forgetSource(this.imports, this.source);
    this.composer.dropGpu();
  };

  /** The attached source's imports (FB cache and CPU mappings), for output/imports.ts. */
  private get imports(): Imports {
    return { cache: this.cache, maps: this.maps };
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
    s.off('buffers-gone', this.onBuffersGone);
    s.off('buffer-gone', this.onBufferGone);
    this.source = null;
    forgetSource(this.imports, s);
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
    const id = this.hostFrames.present(layers, this.plansHeld());
    this.scheduleRefresh();
    return id;
  }

  /** The plans the kernel holds: on screen and in flight. */
  private plansHeld(): (FramePlan | null | undefined)[] {
    return [this.committer.onScreen, this.committer.inflight?.content];
  }

  /** The next presented frame, captured through the writeback connector. */
  captureNext(): Promise<CaptureResult> {
    const p = this.captures.next();
    this.dirty = true;
    this.scheduleRefresh();
    return p;
  }

  statsSnapshot(): OutputStatsSnapshot {
    return statsSnapshot(this.stats, this.cache, this.allocator, this.dev);
  }

  /** What is on screen now (path, buffer, frame, planes). */
  get current(): Readonly<FramePlan> | null {
    return this.committer.onScreen;
  }

  /**
   * Guest primary buffers the host still needs: the one on screen and the one in flight. A
   * guest must not draw into these (a real VMM blocks the guest's flush until the host
   * lets go; the test guests ask this), or the screen shows a half-drawn frame.
   */
  buffersInUse(): Set<number> {
    const ids = new Set<number>();
    for (const c of this.plansHeld()) if (c?.bufferId !== undefined) ids.add(c.bufferId);
    return ids;
  }

  /**
   * The seat's session went away (another VT has the screen; DRM master is gone): stop
   * committing. Sources go on; their frames are shown again after resume().
   */
  suspend(): void {
    this.latch?.cancel();
    this.committer.pause();
  }

  /** The session is back (master too): the screen is lit again with the current frame. */
  resume(): void {
    this.committer.resume(this.enabled);
  }

  /** True between suspend() and resume(). */
  get suspended(): boolean {
    return this.committer.paused;
  }

  scheduleRefresh(): void {
    if (this.refreshQueued || this.closed) return;
    this.refreshQueued = true;
    // A microtask, not an immediate: changes made in one callback (a flip and a cursor
    // move) still make one refresh, and the frame is committed as soon as that callback
    // is done, without an Immediate and a turn of the loop's check phase per frame.
    queueMicrotask(this.runQueuedRefresh);
  }

  private readonly runQueuedRefresh = (): void => {
    this.refreshQueued = false;
    this.refresh();
  };

  private handleEvent(ev: FlipEvent): void {
    if (this.closed) return;
    if (ev.crtcId !== 0 && ev.crtcId !== this.crtc.id) return;
    if (ev.kind === 'vblank') {
      if (ev.userData !== this.vblankCookie) return;
      this.vblankPending = false;
      if (this.latch && !this.dirty) this.latch.schedule(ev.timestampNs);
      else this.refresh();
      return;
    }
    const shown = this.committer.flipped(ev.userData);
    if (!shown) return;
    this.latch?.landed(ev.timestampNs);
    if (shown.composed) this.composer.displayed(shown.composed);
    const event = presented(this.stats, shown, ev, this.refreshNs);
    if (this.captures.armed) void this.captures.finish(shown);
    this.hostFrames.shown(shown.frameId ?? 0, this.plansHeld());
    this.source?.frameShown?.(shown.frame);
    this.emit('present', event);
    // Something to show now only if a change came while the commit was in flight (its
    // refresh was deferred and marked dirty) or a source must be polled; otherwise the
    // next 'changed' refreshes (and a plan that finds nothing new is not free).
    if (this.dirty || this.captures.waiting) this.refresh();
    else if (this.mustPoll()) {
      if (this.latch) this.latch.schedule(ev.timestampNs);
      else this.refresh();
    }
  }

  /** A source shown cannot say when it changes: it is asked at every vblank. */
  private mustPoll(): boolean {
    if (this.source !== null && !this.source.changeEvents) return true;
    for (const s of this.hostFrames.layerSources) if (!s.changeEvents) return true;
    return false;
  }

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
    const c = this.committer;
    if (this.closed || !this.enabled || c.deviceGone) return;
    // Not master: no commit (not even TEST_ONLY, whose EACCES would read as a refusal).
    // A commit in flight or a capture being written: after it.
    if (c.masterWait || c.paused || c.inflight || this.captures.hold) {
      this.dirty = true;
      return;
    }
    const force = this.dirty || this.captures.waiting;
    this.dirty = false;
    this.stats.refreshes++;
    const polled = this.latch !== null && this.mustPoll();
    const t0 = polled ? performance.now() : 0;
    this.cache.tick(c.fbsOnScreen());
    let content = this.plan(false);
    if (!content && force && c.onScreen && this.captures.waiting) content = c.onScreen;
    if (content) {
      try {
        c.commit(content);
      } catch (e) {
        // Commit errors on the copy/no-signal path: keep the last frame, say why once.
        if (!c.fault(e)) this.report('commit-failed', (e as Error).message);
      }
    }
    if (polled) {
      this.latch!.noteCost(performance.now() - t0);
      if (!c.inflight) this.latch!.noCommit();
    }
    if (!c.inflight && this.mustPoll()) this.requestVblank();
  }

  private noSignalPlan(fb: DumbFramebuffer): FramePlan {
    const full = { x: 0, y: 0, width: this.width, height: this.height };
    const planes = new Map<number, PlaneState | null>([[this.primary.id, { fbId: fb.fbId, src: full, dst: full }]]);
    return { path: 'no-signal', fbId: fb.fbId, src: full, dst: full, contentKey: 'no-signal', planes };
  }

  /** Decides what the next frame shows; null = nothing to change. `force` ignores "unchanged". */
  private plan(force: boolean): FramePlan | null {
    const g = gatherFrame(this.source, this.hostFrames.newest, (s) => this.cache.sourceId(s));
    if (g.kind !== 'not-ready' && g.lost) {
      this.onLost(g.lost);
      this.detach();
    }
    if (g.kind === 'not-ready') {
      this.stats.error('not-ready');
      return null;
    }
    if (g.kind === 'no-signal') return this.committer.onScreen?.path === 'no-signal' || !this.noSignal ? null : this.noSignalPlan(this.noSignal);
    return this.planner.plan(g.frame, force);
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

  /** Waits for the commit in flight (if any) to complete, up to `timeoutMs`. */
  async idle(timeoutMs = 1000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (this.committer.inflight && Date.now() < end) await new Promise((r) => setTimeout(r, 2));
  }

  private closing: Promise<void> | null = null;

  /** Stops presenting, restores the CRTC (by default) and frees every kernel object it holds. */
  close(restore = true): Promise<void> {
    // A second close() while the first waits for its flip gets the same promise.
    this.closing ??= this.closeOnce(restore);
    return this.closing;
  }

  private async closeOnce(restore: boolean): Promise<void> {
    if (this.closed) return;
    this.emit('closed');
    await this.idle();
    this.closed = true;
    this.committer.stopWaiting();
    this.latch?.cancel();
    this.detach();
    // Everything is let go at once (no 'release' events after close).
    this.hostFrames.close();
    this.dev.events.off('flip', this.onFlip);
    this.dev.events.off('error', this.onDeviceError);
    this.captures.rejectAll(new Error('output closed'));
    // Suspended: master is another session's, which owns the screen's state now.
    const restoring = this.enabled && restore && !this.committer.paused && !this.dev.isClosed && this.dev.present;
    // The FBs the kernel may still hold after the restore: what was on screen.
    const shown = restoring ? [...this.committer.fbsOnScreen()] : [];
    if (restoring && this.saved) await restoreCrtc(this, this.saved, { others: this.committer.otherPlanes(), writeback: this.captures.routedConnector, report: (c, m) => this.report(c, m) });
    this.freeAll();
    // The restore's completion event comes before the kernel drops the state it replaced
    // (and with it the last references to those FBs): wait until they are really gone, so
    // that when close() resolves nothing of this output is left on the device.
    await untilGone(this.dev, shown);
  }

  /** Frees every buffer and object the output made, and gives its CRTC and planes back. */
  private freeAll(): void {
    this.composer.close();
    this.cursor.close();
    this.cache.close();
    this.maps.close();
    this.noSignal?.close(true);
    this.background?.close(true);
    this.captures.close();
    if (this.modeBlob) {
      try {
        this.dev.destroyBlob(this.modeBlob);
      } catch {
        /* device gone */
      }
    }
    releasePipe(this.dev, this.crtc, this.primary, this);
    this.committer.forget();
  }
}
