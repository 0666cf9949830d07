// One host output (connector + CRTC + primary plane) showing one guest source.
//
// Refresh is driven by the host's page-flip events, not a timer: after each flip
// completes (or when the guest says it flipped, or at the next vblank for sources that
// cannot say), the guest is queried; a new buffer becomes one atomic commit of its cached
// FB; an unchanged guest costs no commit at all. One commit is in flight per CRTC.
//
// Path per frame, in order of preference: scanout (zero-copy, the guest buffer itself on
// the plane) → copy (CPU into a dumb buffer). Whether a buffer shape can be scanned out
// is learnt from the kernel (IN_FORMATS, then one TEST_ONLY the first time a shape is
// seen, then the real commit) and remembered per (plane, source, shape).
//
// Ownership: the output owns its FB cache, copy buffers, no-signal buffer, mode blob and
// writeback capture; the device and the sources belong to the caller.
import { EventEmitter } from 'node:events';
import * as drm from '../ffi/drm.js';
import type { KmsConnector, KmsCrtc, KmsDevice, KmsPlane } from './kms/device.js';
import { KmsDevice as Kms } from './kms/device.js';
import { COMMIT, type AtomicRequest } from './kms/atomic.js';
import type { FlipEvent } from './kms/events.js';
import { DumbFramebuffer } from './kms/dumb.js';
import { WritebackCapture, type Capture } from './kms/writeback.js';
import { FramebufferCache } from './fb-cache.js';
import { validatePlane } from './validate.js';
import { blit, fill, placement, type FitMode, type Rect } from './compose/cpu.js';
import { DmabufMaps } from './compose/dmabuf-map.js';
import { OutputStats, type OutputStatsSnapshot, type PresentPath } from './stats.js';
import { GlesCompositor, type GlesImage, type GlesTarget, type TargetRing } from './compose/gles.js';
import * as libc from '../ffi/libc.js';
import type { GuestPlaneInfo, GuestSource } from './sources/source.js';

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
}

export interface PresentEvent {
  sequence: number;
  timestampNs: bigint;
  /** Refresh period of the mode, ns. */
  refreshNs: number;
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
}

export interface OutputErrorEvent {
  cause: string;
  message: string;
}

export interface OutputEvents {
  present: [PresentEvent];
  /** Once per distinct cause (repeats are only counted in stats.errors). */
  error: [OutputErrorEvent];
  'source-lost': [Error];
}

/** Pixel of the defined "no signal" frame (XRGB8888): tests and users can recognise it. */
export const NO_SIGNAL_PIXEL = 0xff182030;
const NO_SIGNAL_MARK = 0xff5a6a80;

interface Content {
  path: PresentPath;
  fbId: number;
  src: Rect;
  dst: Rect;
  contentKey: string;
  bufferId?: number;
  frame?: number;
  flipTimeNs?: bigint;
  reason?: string;
  copyIndex?: number;
  glesTarget?: GlesTarget;
  gles?: PresentEvent['gles'];
}

interface Saved {
  modeBlob: Buffer | null;
  active: bigint;
  connectorCrtc: bigint;
  plane: Record<string, bigint>;
}

const PLANE_RECT_PROPS = ['FB_ID', 'CRTC_ID', 'SRC_X', 'SRC_Y', 'SRC_W', 'SRC_H', 'CRTC_X', 'CRTC_Y', 'CRTC_W', 'CRTC_H'];

let nextCookie = 1n;

export class Output extends EventEmitter<OutputEvents> {
  readonly crtc: KmsCrtc;
  readonly connector: KmsConnector;
  readonly primary: KmsPlane;
  readonly mode: drm.DrmModeInfo;
  readonly stats = new OutputStats();
  readonly cache: FramebufferCache;
  private readonly maps = new DmabufMaps();
  private modeBlob = 0;
  private saved: Saved | null = null;
  private enabled = false;
  private closed = false;
  private source: GuestSource | null = null;
  private fit: FitMode = 'fit';
  private onChanged = () => this.scheduleRefresh();
  private inflight: { cookie: bigint; content: Content } | null = null;
  private onScreen: Content | null = null;
  private dirty = false;
  private vblankPending = false;
  private refreshQueued = false;
  private readonly scanoutMemo = new Map<string, { ok: boolean; reason: string }>();
  private readonly reported = new Set<string>();
  private copyBuffers: DumbFramebuffer[] = [];
  private noSignal: DumbFramebuffer | null = null;
  private writeback: WritebackCapture | null = null;
  readonly paths: ReadonlySet<FramePath>;
  /** undefined: not tried yet; a string: why GPU composition is unavailable. */
  private gles: GlesCompositor | string | undefined;
  private glesRing: TargetRing<GlesTarget> | null = null;
  private readonly glesImages = new Map<string, { image: GlesImage; generation: number }>();
  private writebackRouted = false;
  private captureWaiters: { resolve: (c: Capture & { content: Content | null }) => void; reject: (e: Error) => void }[] = [];
  private readonly onFlip = (ev: FlipEvent) => this.handleEvent(ev);
  private readonly onDeviceError = (e: Error) => this.report('device-lost', e.message);
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
    const crtc = opts.crtcId !== undefined ? dev.crtc(opts.crtcId) : dev.crtcs.find((c) => (conn.possibleCrtcs & (1 << c.index)) !== 0 && (conn.crtcId === 0 || conn.crtcId === c.id) && !claimed.has(c.id)) ?? dev.crtcs.find((c) => (conn.possibleCrtcs & (1 << c.index)) !== 0 && !claimed.has(c.id));
    if (!crtc) throw new Error(`no free CRTC can drive ${conn.name}`);
    this.crtc = crtc;
    const primary = dev.planesFor(crtc, 'primary').find((p) => !claimedPlanes.has(p.id));
    if (!primary) throw new Error(`CRTC ${crtc.id} has no free primary plane`);
    this.primary = primary;
    this.cache = new FramebufferCache(dev.fd);
    this.paths = checkPaths(opts.paths);
    this.refreshNs = Math.round(1e9 * (this.mode.htotal * this.mode.vtotal) / (this.mode.clock * 1000)) || Math.round(1e9 / (this.mode.vrefresh || 60));
    claimed.add(crtc.id);
    claimedPlanes.add(primary.id);
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
    this.setPlane(req, this.noSignal.fbId, full, full);
    req.commit(COMMIT.ALLOW_MODESET);
    this.onScreen = { path: 'no-signal', fbId: this.noSignal.fbId, src: full, dst: full, contentKey: 'no-signal' };
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
    };
  }

  /** What is on screen now (path, buffer, frame). */
  get current(): Readonly<Content> | null {
    return this.onScreen;
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
    if (f.content.glesTarget) this.glesRing?.displayed(f.content.glesTarget);
    this.onScreen = f.content;
    this.stats.framesPresented++;
    this.stats.paths[f.content.path]++;
    let latencyNs: number | undefined;
    if (f.content.flipTimeNs && f.content.flipTimeNs > 0n && ev.timestampNs > 0n) {
      latencyNs = Number(ev.timestampNs - f.content.flipTimeNs);
      if (latencyNs >= 0) this.stats.latencyMs.add(latencyNs / 1e6);
    }
    if (this.writeback?.isArmed) this.finishCapture(f.content);
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
    });
    this.refresh();
  }

  private async finishCapture(content: Content): Promise<void> {
    const waiters = this.captureWaiters.splice(0);
    try {
      const cap = await this.writeback!.wait(3000);
      for (const w of waiters) w.resolve({ ...cap, content });
    } catch (e) {
      for (const w of waiters) w.reject(e as Error);
    }
  }

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
    if (this.closed || !this.enabled) return;
    if (this.inflight) {
      this.dirty = true;
      return;
    }
    const force = this.dirty || this.captureWaiters.length > 0;
    this.dirty = false;
    this.stats.refreshes++;
    const onScreenIds = new Set<number>(this.onScreen ? [this.onScreen.fbId] : []);
    this.cache.tick(onScreenIds);
    const next = this.plan(onScreenIds);
    let content = next;
    if (!content && force && this.onScreen && this.captureWaiters.length > 0) content = this.onScreen;
    if (content) {
      try {
        this.commit(content);
      } catch (e) {
        // Commit errors on the copy/no-signal path: keep the last frame, say why once.
        this.report('commit-failed', (e as Error).message);
      }
    }
    if (!this.inflight && this.source && !this.source.changeEvents) this.requestVblank();
  }

  /** Decides what the next frame shows; null = nothing to change. */
  private plan(onScreenIds: ReadonlySet<number>): Content | null {
    const src = this.source;
    const full = { x: 0, y: 0, w: this.width, h: this.height };
    const noSignal = (): Content | null =>
      this.onScreen?.path === 'no-signal' || !this.noSignal ? null : { path: 'no-signal', fbId: this.noSignal.fbId, src: full, dst: full, contentKey: 'no-signal' };
    if (!src) return noSignal();
    const q = src.query('primary');
    switch (q.state) {
      case 'lost':
        // A frozen last frame would look like a live guest; a monitor whose source went away
        // shows "no signal", and so do we (the source-lost event says why).
        this.onLost(q.error);
        this.detach();
        return noSignal();
      case 'disabled':
        return noSignal();
      case 'not-ready':
        this.stats.error('not-ready');
        return null;
    }
    const p = q.plane;
    const sid = this.cache.sourceId(src);
    const contentKey = `${sid}/${p.bufferId}/${p.generation}/${p.frame ?? ''}/${p.transport}`;
    if (this.onScreen?.contentKey === contentKey && p.transport !== 'region') return null;
    const pre = validatePlane(p, null);
    if (!pre.ok) {
      this.report(pre.cause, pre.message);
      return null; // keep the last good frame
    }
    const place = placement(this.fit, p.width, p.height, this.width, this.height);
    const base = { contentKey, bufferId: p.bufferId, frame: p.frame, flipTimeNs: p.flipTimeNs };
    const shape = `${this.primary.id}/${sid}/${p.format}/${p.modifier}/${p.width}x${p.height}/${p.stride}/${this.fit}`;
    let reason = '';
    if (!this.paths.has('scanout')) reason = 'scanout is not among options.paths';
    else if (p.transport !== 'dmabuf') reason = 'region plane (no dma-buf)';
    else if (!this.dev.caps.prime.import) reason = 'the KMS device cannot import dma-bufs (no PRIME import)';
    else if (!Kms.planeTakes(this.primary, p.format, p.modifier)) {
      reason = `plane ${this.primary.id} does not list ${drm.fourccName(p.format)} with modifier ${drm.formatModifierName(p.modifier)} (IN_FORMATS)`;
    } else {
      const memo = this.scanoutMemo.get(shape);
      if (memo && !memo.ok) reason = memo.reason;
      else {
        const fb = this.cache.get(this.primary.id, src, p, onScreenIds);
        if (fb.ok) {
          const content: Content = { ...base, path: 'scanout', fbId: fb.entry.fbId, src: place.src, dst: place.dst };
          if (!memo) {
            const req = this.dev.request();
            this.setPlane(req, content.fbId, content.src, content.dst);
            const err = req.test(COMMIT.NONBLOCK);
            req.dispose();
            if (err) {
              reason = `TEST_ONLY refused the buffer on plane ${this.primary.id}: ${err.message}`;
              this.scanoutMemo.set(shape, { ok: false, reason });
            } else {
              this.scanoutMemo.set(shape, { ok: true, reason: '' });
              return content;
            }
          } else return content;
        } else if (['buffer-too-small', 'claimed-size', 'export-failed'].includes(fb.cause) || fb.cause.startsWith('format') || fb.cause.endsWith('range')) {
          if (!fb.remembered) this.report(fb.cause, fb.message);
          return null; // invalid guest data: keep the last good frame
        } else {
          reason = `import failed: ${fb.message}`;
          if (!fb.remembered) this.report(fb.cause, fb.message);
          this.scanoutMemo.set(shape, { ok: false, reason });
        }
      }
    }
    return this.planFallback(src, sid, p, place, base, reason);
  }

  /** GPU composition, else the CPU copy, as options.paths allow. */
  private planFallback(src: GuestSource, sid: number, p: GuestPlaneInfo, place: { src: Rect; dst: Rect }, base: Omit<Content, 'path' | 'fbId' | 'src' | 'dst'>, reason: string): Content | null {
    let why = reason;
    if (this.paths.has('gles')) {
      const g = this.planGles(src, sid, p, place, base, reason);
      if ('content' in g) return g.content;
      why = `${reason}; GPU composition: ${g.error}`;
      this.report(g.cause, g.error);
    }
    if (this.paths.has('copy')) return this.planCopy(src, sid, p, place, base, why);
    this.report('no-path', `no allowed path can show ${src.name}: ${why} (options.paths: ${[...this.paths].join(', ')})`);
    return null;
  }

  private glesCompositor(): GlesCompositor | string {
    if (this.gles === undefined) {
      const c = GlesCompositor.create(this.dev);
      this.gles = 'unavailable' in c ? c.unavailable : c;
    }
    return this.gles;
  }

  private glesImage(comp: GlesCompositor, src: GuestSource, sid: number, p: GuestPlaneInfo): GlesImage {
    const key = `${sid}/${p.bufferId}`;
    const hit = this.glesImages.get(key);
    if (hit && hit.generation === p.generation && !hit.image.closed) return hit.image;
    hit?.image.close();
    this.glesImages.delete(key);
    const fd = src.exportDmabuf(p);
    try {
      const image = comp.importDmabuf({ fd, format: p.format, modifier: p.modifier, width: p.width, height: p.height, stride: p.stride, offset: p.offset });
      this.glesImages.set(key, { image, generation: p.generation });
      return image;
    } finally {
      libc.close(fd, `${src.name} dma-buf`);
    }
  }

  private planGles(src: GuestSource, sid: number, p: GuestPlaneInfo, place: { src: Rect; dst: Rect }, base: Omit<Content, 'path' | 'fbId' | 'src' | 'dst'>, reason: string): { content: Content } | { cause: string; error: string } {
    if (p.transport !== 'dmabuf') return { cause: 'gles-no-dmabuf', error: 'the plane is a region, not a dma-buf' };
    const comp = this.glesCompositor();
    if (typeof comp === 'string') return { cause: 'gles-unavailable', error: comp };
    let image: GlesImage;
    try {
      image = this.glesImage(comp, src, sid, p);
    } catch (e) {
      return { cause: 'gles-import-failed', error: (e as Error).message };
    }
    let target: GlesTarget;
    try {
      this.glesRing ??= comp.createRing(this.width, this.height, { count: 3 });
      target = this.glesRing.acquire();
    } catch (e) {
      return { cause: 'gles-target-failed', error: (e as Error).message };
    }
    try {
      const r = comp.compose(target, [{ image, src: place.src, dst: place.dst }]);
      this.stats.bytesUploaded += r.uploadedBytes;
      const full = { x: 0, y: 0, w: this.width, h: this.height };
      return {
        content: {
          ...base,
          path: 'gles',
          fbId: target.fbId,
          src: full,
          dst: full,
          reason: reason || undefined,
          glesTarget: target,
          gles: { uploadedBytes: r.uploadedBytes, composeMs: r.ms, imagePath: image.path, uploadReason: image.uploadReason },
        },
      };
    } catch (e) {
      this.glesRing.release(target);
      return { cause: 'gles-compose-failed', error: (e as Error).message };
    }
  }

  private planCopy(src: GuestSource, sid: number, p: GuestPlaneInfo, place: { src: Rect; dst: Rect }, base: Omit<Content, 'path' | 'fbId' | 'src' | 'dst'>, reason: string): Content | null {
    const acc = this.maps.access(src, sid, p);
    if ('error' in acc) {
      this.report('no-cpu-access', acc.error);
      return null;
    }
    const v = validatePlane(p, acc.view.bytes.byteLength - acc.view.offset + p.offset);
    if (!v.ok) {
      this.report(v.cause, v.message);
      return null;
    }
    if (v.format.cpp[0] !== 4) {
      this.report('copy-format', `the copy path handles 32-bit formats only, not ${v.format.code}`);
      return null;
    }
    if (this.copyBuffers.length === 0) {
      for (let i = 0; i < 2; i++) this.copyBuffers.push(new DumbFramebuffer(this.dev.fd, this.width, this.height, drm.fourcc('XR24')));
    }
    // The buffer not on screen (one commit in flight at most, so two suffice).
    const idx = this.onScreen?.copyIndex === 0 ? 1 : 0;
    const target = this.copyBuffers[idx];
    const dstImg = { bytes: target.bytes, offset: 0, stride: target.pitch, width: target.width, height: target.height };
    const d = place.dst;
    if (d.x > 0 || d.y > 0 || d.w < this.width || d.h < this.height) {
      // Borders: black, as a monitor shows outside the picture.
      fill(dstImg, { x: 0, y: 0, w: this.width, h: d.y }, 0xff000000);
      fill(dstImg, { x: 0, y: d.y + d.h, w: this.width, h: this.height - d.y - d.h }, 0xff000000);
      fill(dstImg, { x: 0, y: d.y, w: d.x, h: d.h }, 0xff000000);
      fill(dstImg, { x: d.x + d.w, y: d.y, w: this.width - d.x - d.w, h: d.h }, 0xff000000);
    }
    acc.begin();
    try {
      const srcImg = { bytes: acc.view.bytes, offset: acc.view.offset, stride: p.stride, width: p.width, height: p.height };
      this.stats.bytesCopied += blit(srcImg, place.src, dstImg, place.dst);
    } finally {
      acc.end();
    }
    const full = { x: 0, y: 0, w: this.width, h: this.height };
    return { ...base, path: 'copy', fbId: target.fbId, src: full, dst: full, reason: reason || undefined, copyIndex: idx };
  }

  private setPlane(req: AtomicRequest, fbId: number, src: Rect, dst: Rect): void {
    const pl = this.primary;
    req
      .set(pl, 'FB_ID', fbId)
      .set(pl, 'CRTC_ID', this.crtc.id)
      .set(pl, 'SRC_X', src.x * 65536)
      .set(pl, 'SRC_Y', src.y * 65536)
      .set(pl, 'SRC_W', src.w * 65536)
      .set(pl, 'SRC_H', src.h * 65536)
      .set(pl, 'CRTC_X', dst.x)
      .set(pl, 'CRTC_Y', dst.y)
      .set(pl, 'CRTC_W', dst.w)
      .set(pl, 'CRTC_H', dst.h);
  }

  private commit(content: Content): void {
    const cookie = nextCookie++;
    const attempt = (c: Content) => {
      const req = this.dev.request();
      this.setPlane(req, c.fbId, c.src, c.dst);
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
    };
    try {
      attempt(content);
    } catch (e) {
      if (content.glesTarget) this.glesRing?.release(content.glesTarget);
      if (content.path !== 'scanout') throw e;
      // The kernel refused the real commit although TEST_ONLY (or memory) said yes: remember
      // the shape as not scannable and show this very frame through the copy path now.
      const src = this.source!;
      const q = src.query('primary');
      const reason = `the kernel refused the commit on plane ${this.primary.id}: ${(e as Error).message}`;
      this.report('scanout-commit-refused', reason);
      if (q.state !== 'ok') throw e;
      const shape = `${this.primary.id}/${this.cache.sourceId(src)}/${q.plane.format}/${q.plane.modifier}/${q.plane.width}x${q.plane.height}/${q.plane.stride}/${this.fit}`;
      this.scanoutMemo.set(shape, { ok: false, reason });
      const place = placement(this.fit, q.plane.width, q.plane.height, this.width, this.height);
      const copy = this.planFallback(src, this.cache.sourceId(src), q.plane, place, { contentKey: content.contentKey, bufferId: content.bufferId, frame: content.frame, flipTimeNs: content.flipTimeNs }, reason);
      if (!copy) throw e;
      content = copy;
      attempt(content);
    }
    this.inflight = { cookie, content };
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

  /** Puts back the CRTC configuration found at enable(); falls back to switching it off. */
  private restore(): void {
    const s = this.saved;
    if (!s) return;
    const d = this.dev;
    let blob = 0;
    const wbConn = this.writebackRouted ? this.writeback?.connector : undefined;
    const full = () => {
      const req = d.request();
      if (s.modeBlob && s.active !== 0n) blob = drm.createPropertyBlob(d.fd, s.modeBlob);
      req.set(this.crtc, 'MODE_ID', blob).set(this.crtc, 'ACTIVE', s.active).set(this.connector, 'CRTC_ID', s.connectorCrtc);
      for (const n of PLANE_RECT_PROPS) req.set(this.primary, n, s.plane[n]);
      if (wbConn) req.set(wbConn, 'CRTC_ID', 0);
      return req;
    };
    const off = () => {
      const req = d.request().set(this.crtc, 'MODE_ID', 0).set(this.crtc, 'ACTIVE', 0).set(this.connector, 'CRTC_ID', 0).set(this.primary, 'FB_ID', 0).set(this.primary, 'CRTC_ID', 0);
      if (wbConn) req.set(wbConn, 'CRTC_ID', 0);
      return req;
    };
    try {
      full().commit(COMMIT.ALLOW_MODESET);
    } catch (e) {
      this.report('restore-failed', `could not restore the previous configuration (${(e as Error).message}); switching ${this.connector.name} off`);
      try {
        off().commit(COMMIT.ALLOW_MODESET);
      } catch {
        /* device gone */
      }
    } finally {
      if (blob) drm.destroyPropertyBlob(d.fd, blob);
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
    this.detach();
    this.dev.events.off('flip', this.onFlip);
    this.dev.events.off('error', this.onDeviceError);
    for (const w of this.captureWaiters.splice(0)) w.reject(new Error('output closed'));
    if (this.enabled && restore && !this.dev.isClosed) this.restore();
    this.cache.close();
    this.maps.close();
    for (const b of this.copyBuffers) b.close(true);
    this.copyBuffers = [];
    this.noSignal?.close(true);
    this.writeback?.close();
    if (this.gles instanceof GlesCompositor) {
      // CLOSEFB: a target still on screen stays lit until restore()/the next owner moves on.
      this.gles.close({ keepOnScreen: true });
    }
    this.glesImages.clear();
    this.glesRing = null;
    if (this.modeBlob) {
      try {
        this.dev.destroyBlob(this.modeBlob);
      } catch {
        /* device gone */
      }
    }
    claimed.delete(this.crtc.id);
    claimedPlanes.delete(this.primary.id);
  }
}

function checkPaths(paths: readonly FramePath[] | undefined): ReadonlySet<FramePath> {
  if (paths === undefined) return new Set(DEFAULT_PATHS);
  const bad = paths.filter((p) => !DEFAULT_PATHS.includes(p));
  if (bad.length > 0) throw new Error(`options.paths: unknown path(s) ${bad.map((b) => JSON.stringify(b)).join(', ')}; allowed: ${DEFAULT_PATHS.join(', ')}`);
  if (paths.length === 0) throw new Error(`options.paths is empty: allow at least one of ${DEFAULT_PATHS.join(', ')}`);
  return new Set(paths);
}

const claimed = new Set<number>();
const claimedPlanes = new Set<number>();

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
