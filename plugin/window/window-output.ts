// A guest shown in a window on the user's desktop compositor: the GuestOutput of window
// mode (plugin/output/interface.ts). Each guest flip becomes attach + damage + commit of
// the guest's own dma-buf as a wl_buffer (buffers.ts: imported once per guest buffer);
// the compositor composites it or puts it on a plane, its business. One commit is in
// flight at a time; it ends with wp_presentation feedback (`presented` or `discarded`),
// and only then is the source told the frame was shown (source.frameShown: what answers
// QEMU's UpdateDMABUF), so the guest is paced by the desktop's real presentation. Newer
// guest flips meanwhile collapse into one (the newest is shown next).
//
// Paths in `present` events: 'scanout' means the guest's own dma-buf was handed to the
// compositor (zeroCopy true: nothing copied by us; whether the compositor then scans it
// out or composites it is reported by the compositor, not here); 'no-signal' the
// "no signal" colour; 'gles' a GPU blit into a buffer of a format/modifier the compositor
// does take (gles-blit.ts) because it cannot take the guest's dma-buf, with why in the
// event's `reason`, per frame; 'copy' a CPU copy into a wl_shm buffer (shm-copy.ts) when
// GLES cannot do it either (no device, no EGL, import failed: said once as an `error`
// event of cause 'gles-unavailable', and in each copied frame's reason). The order is the
// KMS output's: scanout, gles, copy. A frame that no way can show is refused
// (source.refused and one `error` event per cause).
// Whether the compositor takes it: linux-dmabuf v4 feedback where it sends one (the guest
// surface's own, else the default: the pair in any tranche; dmabuf-feedback.ts), else its
// v3 format list. Each event's `desktop` says what the compositor said of the frame: the
// pair in a scanout tranche, and the zero_copy flag of its presentation feedback.
//
// Ownership: the surfaces (surfaces.ts), the wl_buffer cache (buffers.ts), the GLES blits
// (gles-blit.ts: its device, targets and their wl_buffers) and the copy buffers
// (shm-copy.ts) are this output's and go in close(); the Desktop and the source
// stay the caller's. A frame whose feedback never comes (a hidden window may get none) is
// let go after FEEDBACK_TIMEOUT_MS.
import { EventEmitter } from 'node:events';
import type { GuestOutput, GuestOutputEvents } from '../output/interface.js';
import type { OutputErrorEvent, PresentEvent } from '../output/types.js';
import { NO_SIGNAL_PIXEL } from '../output/types.js';
import type { GuestPlaneInfo, GuestSource } from '../sources/source.js';
import { placement, type FitMode } from '../geometry.js';
import { pictureSize } from '../transform.js';
import { OutputStats, type OutputStatsSnapshot } from '../stats.js';
import type { Desktop } from './connection.js';
import { WindowBuffers } from './buffers.js';
import { WindowSurfaces } from './surfaces.js';
import { ShmCopies } from './shm-copy.js';
import { GlesBlits } from './gles-blit.js';
import { DeviceSize } from './size.js';
import type { WlBuffer, WlSurface } from '../../protocols/generated/client/wayland.js';
import type { ZwpLinuxDmabufFeedbackV1 } from '../../protocols/generated/client/linux_dmabuf_unstable_v1.js';
import { offers, type DmabufFeedback, type FeedbackReader } from './dmabuf-feedback.js';

const FEEDBACK_TIMEOUT_MS = 1000;
/** wp_presentation_feedback.kind's zero_copy bit: the compositor scanned the client's buffer out. */
const PRESENTED_ZERO_COPY = 0x8;
const DEFAULT_SIZE = { width: 1024, height: 768 };
/** DRM fourccs whose alpha is padding (X formats): the guest surface is declared opaque. */
const OPAQUE_FORMATS = new Set(['XR24', 'XB24', 'RX24', 'BX24', 'XR30', 'XB30', 'XR48', 'XB48', 'RG16', 'BG16', 'RG24', 'BG24']);
const fourccName = (f: number): string => String.fromCharCode(f & 0xff, (f >> 8) & 0xff, (f >> 16) & 0xff, (f >>> 24) & 0xff);

interface InFlight {
  frame?: number;
  bufferId?: number;
  flipTimeNs?: bigint;
  path: 'scanout' | 'gles' | 'copy' | 'no-signal';
  /** Why the frame was not handed over (paths 'gles' and 'copy'). */
  copyReason?: string;
  gles?: PresentEvent['gles'];
  /** The buffer's pair is in a scanout tranche of the dma-buf feedback (null: no v4 feedback, or copied). */
  scanoutTranche: boolean | null;
  timer: NodeJS.Timeout;
}

interface Shown {
  buffer: WlBuffer;
  path: 'scanout' | 'gles' | 'copy';
  bytes: number;
  reason?: string;
  scanoutTranche: boolean | null;
  gles?: PresentEvent['gles'];
}

type WindowPath = 'scanout' | 'gles' | 'copy';

export interface WindowOutputOptions {
  title: string;
  fit?: FitMode;
  /** Ask for a fullscreen window (xdg_toplevel.set_fullscreen on the compositor's choice of output). */
  fullscreen?: boolean;
  /**
   * Paths frames may take, in the order scanout → gles → copy (default all), as
   * OutputOptions.paths: ['copy'] forces the copy path, ['gles'] the GPU blit (with no
   * copy behind it: a frame GLES cannot show is refused), for tests and benchmarks.
   */
  paths?: readonly WindowPath[];
  /** Device nodes the GLES blit may open (default: the desktop's main device, then /dev/dri's render and card nodes). */
  glesNodes?: (mainDevice: bigint | null) => string[];
  /** How long a frame waits for its presentation feedback before it is let go (default 1000 ms). */
  feedbackTimeoutMs?: number;
}

interface WindowOutputEvents extends GuestOutputEvents {
  /** The user closed the window. */
  'close-requested': [];
}

/** Sources that can be told the window's size (QemuGuest: SetUIInfo). */
interface SizedSource {
  setUISize(width: number, height: number): void;
}
const isSized = (s: GuestSource): s is GuestSource & SizedSource => typeof (s as Partial<SizedSource>).setUISize === 'function';

export class WindowOutput extends EventEmitter<WindowOutputEvents> implements GuestOutput {
  readonly name: string;
  readonly #desktop: Desktop;
  readonly #surfaces: WindowSurfaces;
  readonly #buffers: WindowBuffers | null;
  readonly #copies: ShmCopies;
  readonly #blits: GlesBlits | null;
  /** The window's size in device pixels, told to the guest (size.ts). */
  readonly #deviceSize: DeviceSize;
  readonly #stats = new OutputStats();
  #fit: FitMode;
  readonly #paths: ReadonlySet<WindowPath>;
  readonly #feedbackTimeoutMs: number;
  #size = { ...DEFAULT_SIZE };
  #refreshNs = 16_666_667;
  #source: GuestSource | null = null;
  #sourceId = 0;
  #unlisten: (() => void) | null = null;
  #inFlight: InFlight | null = null;
  #dirty = false;
  #scheduled = false;
  #lastKey = '';
  #suspended = false;
  #closed = false;
  #sequence = 0;
  #commits = 0;
  readonly #reported = new Set<string>();
  /** linux-dmabuf v4 feedback for the guest surface (the compositor may change it, e.g. fullscreen). */
  readonly #guestFeedback: { proxy: ZwpLinuxDmabufFeedbackV1; reader: FeedbackReader } | null;
  /** Frames the desktop presented with its zero_copy flag, and handed over in a scanout tranche's pair. */
  readonly desktopCounts = { zeroCopy: 0, scanoutTranche: 0 };
  /** The newest presented frame's reason per path that has one (gles, copy: why the dma-buf was not handed over). */
  readonly pathReasons: Partial<Record<'gles' | 'copy', string>> = {};

  constructor(desktop: Desktop, opts: WindowOutputOptions) {
    super();
    this.name = opts.title;
    this.#desktop = desktop;
    this.#fit = opts.fit ?? 'fit';
    this.#paths = new Set(opts.paths ?? ['scanout', 'gles', 'copy']);
    this.#feedbackTimeoutMs = opts.feedbackTimeoutMs ?? FEEDBACK_TIMEOUT_MS;
    const dmabuf = desktop.globals.dmabuf;
    this.#buffers = dmabuf ? new WindowBuffers(dmabuf, () => this.#schedule()) : null;
    this.#copies = new ShmCopies(desktop);
    this.#blits = dmabuf ? new GlesBlits(desktop, () => this.#schedule(), opts.glesNodes ? { nodes: opts.glesNodes } : {}) : null;
    this.#surfaces = new WindowSurfaces(desktop, opts.title, {
      configured: (w, h) => this.#configured(w, h),
      closeRequested: () => this.emit('close-requested'),
    }, opts.fullscreen);
    this.#deviceSize = new DeviceSize(desktop.connection, this.#surfaces.parent, {
      send: (w, h) => {
        if (this.#source && isSized(this.#source)) this.#source.setUISize(w, h);
      },
    });
    // A new feedback may change the path of the frame on screen: decide it again.
    this.#guestFeedback = desktop.surfaceFeedback(this.#surfaces.guest, () => {
      this.#lastKey = '';
      this.#schedule();
    });
  }

  get width(): number {
    return this.#size.width;
  }
  get height(): number {
    return this.#size.height;
  }
  get refreshNs(): number {
    return this.#refreshNs;
  }
  /** The window's size in device pixels (its logical size times the scale of the outputs it is on): what the guest is asked to render at. */
  get deviceSize(): { width: number; height: number } {
    return this.#deviceSize.device;
  }
  /** wl_buffers of this window's connection not yet destroyed (guest imports, copies, solid colours): for leak checks. */
  liveBuffers(): number {
    return this.#desktop.connection.liveProxies('wl_buffer');
  }
  /** Guest dma-bufs imported as wl_buffers and not yet destroyed (the import cache; 0 once the guest went away): for leak checks. */
  guestBuffers(): number {
    return this.#buffers?.size ?? 0;
  }

  // What window/input.ts needs (WindowInputView): where the pointer may be and how the guest is placed.
  get parent(): WlSurface {
    return this.#surfaces.parent;
  }
  get guestSurface(): WlSurface {
    return this.#surfaces.guest;
  }
  get letterbox(): boolean {
    return this.#surfaces.letterbox;
  }
  get fit(): FitMode {
    return this.#fit;
  }
  /** The window's title (input says there when the pointer is captured). */
  setTitle(title: string): void {
    if (!this.#closed && !this.#desktop.connection.closed) this.#surfaces.setTitle(title);
  }
  /** The attached guest's picture size (after its transform), null while it shows none. */
  guestPicture(): { width: number; height: number } | null {
    const q = this.#source?.query('primary');
    if (q?.state !== 'ok') return null;
    const pic = pictureSize(q.plane.transform ?? 0, q.plane.width, q.plane.height);
    return { width: pic.w, height: pic.h };
  }

  attach(source: GuestSource, fit?: FitMode): void {
    if (this.#closed) throw new Error(`${this.name}: attach after close()`);
    this.detach();
    if (fit) this.#fit = fit;
    this.#source = source;
    this.#sourceId++;
    const sid = this.#sourceId;
    const changed = () => this.#schedule();
    const gone = () => {
      this.#buffers?.invalidate(sid);
      this.#blits?.invalidate(sid);
      this.#copies.invalidate(sid);
    };
    const lost = (e: Error) => this.emit('source-lost', e);
    source.on('changed', changed);
    source.on('buffers-gone', gone);
    source.on('lost', lost);
    this.#unlisten = () => {
      source.off('changed', changed);
      source.off('buffers-gone', gone);
      source.off('lost', lost);
    };
    this.#deviceSize.resend();
    this.#schedule();
  }

  detach(): void {
    if (!this.#source) return;
    this.#unlisten?.();
    this.#unlisten = null;
    this.#buffers?.invalidate(this.#sourceId);
    this.#blits?.invalidate(this.#sourceId);
    this.#copies.invalidate(this.#sourceId);
    this.#source = null;
    this.#lastKey = '';
    this.#schedule();
  }

  /** Guest buffer ids the compositor still holds (not released): the test guest renders into others. */
  buffersInUse(): ReadonlySet<number> {
    return this.#buffers?.inUse(this.#sourceId) ?? new Set();
  }

  suspend(): void {
    this.#suspended = true;
  }
  resume(): void {
    this.#suspended = false;
    this.#schedule();
  }

  statsSnapshot(): OutputStatsSnapshot {
    const s = this.#stats;
    const lat = s.latencyMs;
    return {
      framesPresented: s.framesPresented,
      paths: { ...s.paths },
      imports: this.#buffers?.imports ?? 0,
      cacheHits: this.#buffers?.hits ?? 0,
      cacheMisses: this.#buffers?.imports ?? 0,
      bytesCopied: s.bytesCopied,
      bytesUploaded: s.bytesUploaded,
      commits: this.#commits,
      testOnlyCommits: 0,
      failedCommits: 0,
      refreshes: s.refreshes,
      latencyMs: { p50: lat.percentile(50), p95: lat.percentile(95), p99: lat.percentile(99), samples: lat.count },
      errors: { ...s.errors },
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#inFlight) clearTimeout(this.#inFlight.timer);
    this.#inFlight = null;
    this.#unlisten?.();
    this.#source = null;
    this.#buffers?.close();
    this.#blits?.close();
    this.#copies.close();
    this.#deviceSize.close();
    if (!this.#desktop.connection.closed) this.#guestFeedback?.proxy.destroy();
    this.#surfaces.destroy();
    this.emit('closed');
  }

  #configured(w: number, h: number): void {
    if (w > 0 && h > 0) this.#size = { width: w, height: h };
    else if (!this.#surfaces.letterbox || this.#lastKey === '') {
      // Our choice: the guest's own size when known (1:1 is what planes want).
      const q = this.#source?.query('primary');
      if (q?.state === 'ok') this.#size = pictureSize(q.plane.transform ?? 0, q.plane.width, q.plane.height) as never;
    }
    const { width, height } = this.#size;
    this.#size = { width: width || DEFAULT_SIZE.width, height: height || DEFAULT_SIZE.height };
    this.#deviceSize.logical(this.#size.width, this.#size.height);
    this.#surfaces.layoutBackground(this.#size.width, this.#size.height);
    this.#lastKey = ''; // the placement changed: show the current frame again
    this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled || this.#closed) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#refresh();
    });
  }

  #refresh(): void {
    if (this.#closed || this.#suspended || !this.#surfaces.configured || this.#desktop.connection.closed) return;
    if (this.#inFlight) {
      this.#dirty = true;
      return;
    }
    if (this.#desktop.connection.congested) {
      this.#dirty = true;
      this.#desktop.connection.once('drain', () => this.#schedule());
      return;
    }
    this.#dirty = false;
    this.#stats.refreshes++;
    const source = this.#source;
    if (!source) return this.#noSignal();
    const q = source.query('primary');
    if (q.state === 'lost' || q.state === 'disabled') return this.#noSignal();
    if (q.state === 'not-ready') return;
    const p = q.plane;
    const key = `${p.bufferId}/${p.generation}/${p.frame ?? ''}`;
    if (key === this.#lastKey) return;
    const shown = this.#bufferFor(source, p);
    if (shown) {
      this.#lastKey = key;
      this.#showGuest(p, shown);
    }
  }

  /** GPU blits so far and their total ms (compose, uploads and glFinish). */
  get glesCounts(): { blits: number; ms: number } {
    return { blits: this.#blits?.blits ?? 0, ms: this.#blits?.blitMs ?? 0 };
  }

  /** The GLES blit's device (node and driver), once it was set up; for messages and tests. */
  get glesDevice(): string | null {
    return this.#blits?.device ?? null;
  }

  /**
   * The guest's wl_buffer: its own dma-buf (path 'scanout'), else a GPU blit into a buffer
   * the compositor takes (path 'gles', with why), else a wl_shm copy (path 'copy', with
   * why), or null (import or target on its way: retried when it lands; buffers all held
   * by the compositor: retried on release; refused: said once).
   */
  #bufferFor(source: GuestSource, p: GuestPlaneInfo): Shown | null {
    // The guest surface's own feedback where the compositor sent one, else its default.
    const feedback: DmabufFeedback | null = this.#guestFeedback?.reader.current ?? this.#desktop.defaultFeedback;
    const handed = this.#handOverOrWhy(source, p, feedback);
    if (typeof handed !== 'string') return 'kind' in handed ? null : handed;
    let why = handed;
    if (this.#paths.has('gles') && this.#blits && p.transport === 'dmabuf') {
      const b = this.#blits.blit(source, this.#sourceId, p, feedback);
      if (b.kind === 'ok') {
        return {
          buffer: b.buffer, path: 'gles', bytes: 0, reason: why, scanoutTranche: feedback ? b.pair.scanout : null,
          gles: { uploadedBytes: b.uploadedBytes, composeMs: b.ms, imagePath: b.imagePath, uploadReason: b.uploadReason },
        };
      }
      if (b.kind === 'pending') return null;
      if (b.kind === 'busy') return this.#retryOnRelease();
      this.#sayOnce('gles-unavailable', `${source.name}: no GLES blit, ${this.#paths.has('copy') ? 'frames are copied instead' : 'frames are not shown'}: ${b.reason}`);
      why = `${why}; no GLES blit: ${b.reason}`;
    } else if (this.#paths.has('gles')) {
      const no = p.transport !== 'dmabuf' ? 'the guest plane is no dma-buf' : 'the desktop compositor offers no linux-dmabuf';
      if (!why.includes(no)) why = `${why}; no GLES blit: ${no}`;
    }
    if (!this.#paths.has('copy')) {
      this.#refuse(source, p, 'no-path', `${source.name}: frame not shown: ${why}, and the copy path is not among the paths asked for`);
      return null;
    }
    const c = this.#copies.copy(source, this.#sourceId, p);
    if (c.kind === 'ok') return { buffer: c.buffer, path: 'copy', bytes: c.bytes, reason: why, scanoutTranche: null };
    if (c.kind === 'busy') return this.#retryOnRelease();
    this.#refuse(source, p, c.cause, `${c.message} (${why})`);
    return null;
  }

  /** The guest's own dma-buf as a wl_buffer ('pending' while the import is on its way), else why it is not handed over. */
  #handOverOrWhy(source: GuestSource, p: GuestPlaneInfo, feedback: DmabufFeedback | null): Shown | { kind: 'pending' } | string {
    const modifier = p.transport === 'dmabuf' && this.#buffers ? this.#desktop.modifierFor(p.format, p.modifier, feedback) : null;
    if (!this.#paths.has('scanout')) return `the ${[...this.#paths].join('/')} path was asked for (paths option)`;
    if (p.transport !== 'dmabuf') return 'the guest plane is no dma-buf';
    if (!this.#buffers) return 'the desktop compositor offers no linux-dmabuf';
    if (modifier === null) return `the desktop compositor ${feedback ? 'lists in no tranche of its dma-buf feedback' : 'does not import'} ${fourccName(p.format)} with modifier 0x${p.modifier.toString(16)}`;
    const got = this.#buffers.get(source, this.#sourceId, p, modifier);
    const scanoutTranche = feedback ? offers(feedback, p.format, modifier).scanout : null;
    if (got.kind === 'ready') return { buffer: got.buffer, path: 'scanout', bytes: 0, scanoutTranche };
    if (got.kind === 'pending') return { kind: 'pending' };
    return `the desktop compositor failed to import buffer ${p.bufferId}: ${got.reason}`;
  }

  #sayOnce(cause: string, message: string): void {
    if (this.#reported.has(cause)) return;
    this.#reported.add(cause);
    this.emit('error', { cause, message } as OutputErrorEvent);
  }

  /** All copy buffers are held by the compositor: look again shortly (a release comes with its next repaint). */
  #retryOnRelease(): null {
    setTimeout(() => this.#schedule(), 4).unref();
    return null;
  }

  #refuse(source: GuestSource, p: GuestPlaneInfo, cause: string, message: string): void {
    this.#stats.error(cause);
    source.refused?.(p, cause, message);
    if (this.#reported.has(cause)) return;
    this.#reported.add(cause);
    const e: OutputErrorEvent = { cause, message } as OutputErrorEvent;
    this.emit('error', e);
  }

  #showGuest(p: GuestPlaneInfo, shown: Shown): void {
    const buffer = shown.buffer;
    const s = this.#surfaces;
    const t = p.transform ?? 0;
    const pic = pictureSize(t, p.width, p.height);
    const { src, dst } = placement(this.#fit, pic.w, pic.h, this.#size.width, this.#size.height);
    s.guest.attach(buffer, 0, 0);
    s.setGuestTransform(t);
    s.guest.damageBuffer(0, 0, p.width, p.height);
    s.setGuestOpaque(OPAQUE_FORMATS.has(fourccName(p.format)), s.letterbox ? dst.width : pic.w, s.letterbox ? dst.height : pic.h);
    s.placeGuest(src, dst);
    if (shown.path === 'scanout') this.#buffers!.attached(buffer);
    this.#stats.bytesCopied += shown.bytes;
    this.#stats.bytesUploaded += shown.gles?.uploadedBytes ?? 0;
    this.#commit({ frame: p.frame, bufferId: p.bufferId, flipTimeNs: p.flipTimeNs, path: shown.path, scanoutTranche: shown.scanoutTranche, ...(shown.reason ? { copyReason: shown.reason } : {}), ...(shown.gles ? { gles: shown.gles } : {}) });
  }

  #noSignal(): void {
    if (this.#lastKey === 'no-signal') return;
    this.#lastKey = 'no-signal';
    const s = this.#surfaces;
    s.guest.attach(s.solid(NO_SIGNAL_PIXEL & 0xffffff), 0, 0);
    s.setGuestTransform(0);
    s.guest.damageBuffer(0, 0, 1, 1);
    s.placeGuest({ x: 0, y: 0, width: 1, height: 1 }, { x: 0, y: 0, width: this.#size.width, height: this.#size.height });
    this.#commit({ path: 'no-signal', scanoutTranche: null });
  }

  /** Commits the guest surface with a presentation feedback (or frame callback) that ends the frame. */
  #commit(f: Omit<InFlight, 'timer'>): void {
    const s = this.#surfaces;
    const g = this.#desktop.globals;
    const inFlight: InFlight = { ...f, timer: setTimeout(() => this.#finish(inFlight, null, `no presentation feedback within ${this.#feedbackTimeoutMs} ms (window hidden?)`, null), this.#feedbackTimeoutMs) };
    if (g.presentation) {
      const fb = g.presentation.feedback(s.guest);
      fb.on({
        presented: (secHi, secLo, nsec, refresh, seqHi, seqLo, flags) => {
          if (refresh > 0) this.#refreshNs = refresh;
          const ts = (BigInt(secHi >>> 0) * 2n ** 32n + BigInt(secLo >>> 0)) * 1_000_000_000n + BigInt(nsec);
          this.#sequence = Number((BigInt(seqHi >>> 0) << 32n) | BigInt(seqLo >>> 0));
          this.#finish(inFlight, ts, null, (flags & PRESENTED_ZERO_COPY) !== 0);
        },
        discarded: () => this.#finish(inFlight, null, 'discarded by the desktop compositor', null),
      });
    } else {
      const cb = s.guest.frame();
      cb.on({ done: () => this.#finish(inFlight, process.hrtime.bigint(), null, null) });
    }
    s.guest.commit();
    this.#commits++;
    this.#inFlight = inFlight;
  }

  /** The frame in flight ended: presented at `ts` (zero-copy by the desktop's word), or not shown (`reason`). */
  #finish(f: InFlight, ts: bigint | null, reason: string | null, desktopZeroCopy: boolean | null): void {
    if (this.#inFlight !== f) return;
    clearTimeout(f.timer);
    this.#inFlight = null;
    const st = this.#stats;
    const monotonic = this.#desktop.clockId === 1;
    const latencyNs = ts !== null && monotonic && f.flipTimeNs !== undefined ? Number(ts - f.flipTimeNs) : undefined;
    if (ts !== null) {
      st.framesPresented++;
      st.paths[f.path]++;
      if (latencyNs !== undefined) st.latencyMs.add(latencyNs / 1e6);
      if (desktopZeroCopy) this.desktopCounts.zeroCopy++;
      if (f.scanoutTranche) this.desktopCounts.scanoutTranche++;
      if ((f.path === 'gles' || f.path === 'copy') && f.copyReason) this.pathReasons[f.path] = f.copyReason;
    } else st.error(reason?.startsWith('discarded') ? 'discarded' : 'feedback-timeout');
    const e: PresentEvent = {
      sequence: this.#sequence,
      timestampNs: ts ?? process.hrtime.bigint(),
      refreshNs: this.#refreshNs,
      path: f.path,
      zeroCopy: f.path === 'scanout',
      ...(f.bufferId !== undefined ? { bufferId: f.bufferId } : {}),
      ...(f.frame !== undefined ? { frame: f.frame } : {}),
      ...(latencyNs !== undefined ? { latencyNs } : {}),
      ...(reason || f.copyReason ? { reason: reason ?? f.copyReason } : {}),
      desktop: { scanoutTranche: f.scanoutTranche, zeroCopy: desktopZeroCopy },
      ...(f.gles ? { gles: f.gles } : {}),
    };
    // Presented or discarded, the guest may go on: QEMU's UpdateDMABUF is answered here.
    if (f.path !== 'no-signal') this.#source?.frameShown?.(f.frame);
    this.emit('present', e);
    if (this.#dirty || this.#source) this.#schedule();
  }
}
