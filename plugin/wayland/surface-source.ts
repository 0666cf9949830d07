// A client's surface as a GuestSource, so the kiosk shows it through the same Output as
// a VM's display: dma-buf wl_buffers go the dmabuf transport (scanned out zero-copy when
// the plane takes them), wl_shm buffers the region transport (copied by the CPU).
//
// Buffer lifetime: a committed buffer stays held (no wl_buffer.release) until a later
// commit of the surface has been presented. The output may read a buffer at any refresh
// up to then: a dma-buf is on the plane until the next flip completes, and a region
// plane is copied again on every refresh. Holding is a buffer use (buffer.ts): the client
// gets one release per attach, however many damage-only commits show the buffer again.
//
// Frame numbers: every commit with a buffer is a new frame (its compositor-wide seq),
// even when the same wl_buffer is committed again, so the output commits it and the
// page-flip event that follows completes exactly that commit's callbacks and feedback.
// Commits superseded before they reached the screen are discarded at that flip.
//
// Ownership: client buffers are the client's (held = a use, buffer.ts); exportDmabuf's dups
// are the caller's; close() ends every use and says 'buffers-gone' so importers drop theirs;
// a dma-buf wl_buffer the client destroys says 'buffer-gone', so its FB (which pins the
// client's memory) goes then, not at eviction (wlroots ties an FB to its buffer the same way).
import { EventEmitter } from 'node:events';
import * as libc from '../../ffi/libc.js';
import type { GuestPlaneInfo, GuestPlaneKind, GuestSource, GuestSourceEvents, PlaneQuery, CpuView } from '../sources/source.js';
import { WlShmError, type WlOutput } from '../../protocols/generated/wayland.js';
import { pictureSize, withYInvert } from '../transform.js';
import { cropOf } from '../output/picture.js';
import type { Rect } from '../geometry.js';
import { ZwpLinuxBufferParamsV1Flags } from '../../protocols/generated/linux_dmabuf_unstable_v1.js';
import { beginBufferUse, endBufferUse, releaseOwed, type ClientBuffer } from './buffer.js';
import { completeCallbacks, finishUnshown, type SurfaceCommit } from './surface.js';
import { sendDiscarded, sendPresented, type Presented } from './presentation.js';
import type { CursorPicture } from './cursor-image.js';

export interface SurfacePresent extends Presented {
  /** The frame (commit seq) the output put on screen; undefined: not ours (no-signal). */
  frame?: number;
}

/** The cursor image's buffer id (client buffers count up from 1). */
const CURSOR_BUFFER_ID = 0x7fff_0000;

/** A superseded commit no flip completed in this time is finished anyway (the client must not stall). */
const STALL_MS = 1000;

export class SurfaceSource extends EventEmitter<GuestSourceEvents> implements GuestSource {
  readonly name: string;
  readonly changeEvents = true;
  #current: SurfaceCommit | null = null;
  #commitTimeNs = 0n;
  #pending: SurfaceCommit[] = [];
  readonly #committedAt = new WeakMap<SurfaceCommit, bigint>();
  readonly #held = new Map<number, ClientBuffer>();
  /** Ids of the dma-buf wl_buffers committed here and not yet destroyed (each watched once). */
  readonly #watched = new Set<number>();
  #onScreen: ClientBuffer | null = null;
  #stallTimer: NodeJS.Timeout | null = null;
  #closed = false;
  #shown = true;
  /** Frames (commit seqs) that were waiting for a flip when the source went off screen. */
  #leaving: SurfaceCommit[] = [];
  /** The newest wl_shm frame's pixels, copied out of the client's pool (see cpuView). */
  readonly #snapshot: { buf: Buffer; bytes: Uint8Array | null; frame: number; bufferId: number } = { buf: Buffer.alloc(0), bytes: null, frame: -1, bufferId: -1 };
  /** Buffers whose client was already told they cannot be shown. */
  readonly #failed = new Set<number>();
  /** The pointer image over this surface and its place (wl_pointer.set_cursor), for the cursor plane. */
  #cursor: { plane: GuestPlaneInfo; bytes: Uint8Array } | null = null;
  /**
   * The window rectangle shown of the surface (window geometry, surface coordinates), or
   * null for all of it: the primary plane is cropped to it, in surface coordinates after
   * the buffer's transform, scale and viewport.
   */
  view: (() => Rect | null) | null = null;
  /** wl_output resources of the output, for wp_presentation_feedback.sync_output. */
  outputs: () => readonly WlOutput[] = () => [];

  constructor(name: string) {
    super();
    this.name = name;
  }

  /** A commit of the shown surface. */
  commit(c: SurfaceCommit): void {
    if (this.#closed) return finishUnshown(c);
    if (!c.buffer) {
      // Unmapped: nothing of it will be presented.
      this.#current = null;
      finishUnshown(c);
      this.emit('changed');
      return;
    }
    this.#current = c;
    this.#watch(c.buffer);
    this.#commitTimeNs = process.hrtime.bigint();
    this.#committedAt.set(c, this.#commitTimeNs);
    // A damage-only commit of a buffer already released shows what we took from it (our
    // copy of a wl_shm frame); the client owns that memory again, so it is not held.
    if (releaseOwed(c.buffer)) this.#hold(c.buffer);
    if (!this.#shown) {
      // Not on any output: nothing will present it, so the frame is done now (a hidden
      // client keeps running, as on any compositor that throttles nothing).
      finishUnshown(c);
      this.#releaseUnused(this.#onScreen);
      return;
    }
    this.#pending.push(c);
    if (this.#pending.length > 1) this.#armStallTimer();
    this.emit('changed');
  }

  /** Whether an output shows this source (the kiosk's newest toplevel). */
  get shown(): boolean {
    return this.#shown;
  }
  /**
   * The source goes on or off screen. Going off, its waiting commits are done at once
   * (feedback discarded); their buffers stay held until the output has flipped past them.
   */
  setShown(shown: boolean): void {
    if (shown === this.#shown || this.#closed) return;
    this.#shown = shown;
    if (shown) return;
    this.#clearStallTimer();
    const waiting = this.#pending.splice(0);
    this.#leaving = waiting;
    for (const c of waiting) finishUnshown(c);
  }

  /** The output presented something: complete the commits it covers, release what left the screen. */
  presented(p: SurfacePresent): void {
    if (!this.#shown) {
      // Off screen: a flip of one of the frames that were waiting when we left puts its
      // buffer on screen; any other flip means none of ours is there any more.
      const c = this.#leaving.find((x) => x.seq === p.frame);
      if (!c) this.#leaving = [];
      this.#releaseUnused(c ? c.buffer : null);
      return;
    }
    if (p.frame === undefined) {
      if (!this.#current) this.#releaseUnused(null);
      return;
    }
    const idx = this.#pending.findIndex((c) => c.seq === p.frame);
    if (idx < 0) return; // a repeat of a frame already completed (the copy path refreshes)
    const done = this.#pending.splice(0, idx + 1);
    const shown = done[done.length - 1]!;
    // Releases go out before the frame callbacks: a client redraws from its callback and
    // needs the buffer that just left the screen (weston-simple-shm has only two).
    this.#releaseUnused(shown.buffer);
    for (const c of done) {
      completeCallbacks(c.frameCallbacks, p.timestampNs);
      for (const fb of c.feedbacks) {
        if (c === shown) sendPresented(fb, p, this.outputs());
        else sendDiscarded(fb);
      }
    }
    if (this.#pending.length === 0) this.#clearStallTimer();
  }

  #releaseUnused(onScreen: ClientBuffer | null): void {
    this.#onScreen = onScreen;
    const keep = new Set<number>(this.#pending.map((c) => c.buffer!.id));
    if (onScreen) keep.add(onScreen.id);
    if (this.#current?.buffer) keep.add(this.#current.buffer.id);
    for (const [id, b] of this.#held) if (!keep.has(id)) this.#letGo(b);
  }

  #watch(b: ClientBuffer): void {
    if (b.kind !== 'dmabuf' || this.#watched.has(b.id)) return;
    this.#watched.add(b.id);
    b.resource.onDestroy(() => {
      this.#watched.delete(b.id);
      if (!this.#closed) this.emit('buffer-gone', b.id);
    });
  }

  #hold(b: ClientBuffer): void {
    if (this.#held.has(b.id)) return;
    this.#held.set(b.id, b);
    beginBufferUse(b);
  }
  #letGo(b: ClientBuffer): void {
    if (this.#held.delete(b.id)) endBufferUse(b);
  }

  #armStallTimer(): void {
    if (this.#stallTimer) return;
    this.#stallTimer = setTimeout(() => {
      this.#stallTimer = null;
      // Superseded commits the output never turned into a flip (it skipped or refused
      // them): their callbacks fire and their buffers go back, no feedback. The newest
      // commit always waits for its flip: completing it early would make a client with
      // two buffers draw while both are still held.
      const limit = process.hrtime.bigint() - BigInt(STALL_MS) * 1_000_000n;
      let n = 0;
      while (this.#pending.length > 1 && this.#committedAt.get(this.#pending[0]!)! <= limit) {
        finishUnshown(this.#pending.shift()!);
        n++;
      }
      if (n) this.#releaseUnused(this.#onScreen);
      if (this.#pending.length > 1) this.#armStallTimer();
    }, STALL_MS);
    this.#stallTimer.unref?.();
  }
  #clearStallTimer(): void {
    if (this.#stallTimer) clearTimeout(this.#stallTimer);
    this.#stallTimer = null;
  }

  get onScreen(): ClientBuffer | null {
    return this.#onScreen;
  }

  /** The buffer of a frame still held (on screen or pending), for tests and screenshots. */
  heldBuffer(id: number): ClientBuffer | null {
    return this.#held.get(id) ?? null;
  }

  /**
   * The pointer image with its top-left at (x, y) in surface coordinates (the output maps
   * the hotspot through the fit placement, unscaled); null: no image.
   */
  setCursor(c: { picture: CursorPicture; x: number; y: number; hotX: number; hotY: number } | null): void {
    const old = this.#cursor?.plane;
    if (!c) {
      if (!old) return;
      this.#cursor = null;
      return void this.emit('changed');
    }
    const p = c.picture;
    if (old && old.generation === p.generation && old.x === c.x && old.y === c.y && old.hotX === c.hotX && old.hotY === c.hotY) return;
    const hot = (h: number, lim: number) => (h >= 0 && h < lim ? h : -1);
    const plane: GuestPlaneInfo = {
      kind: 'cursor',
      transport: 'region',
      bufferId: CURSOR_BUFFER_ID,
      generation: p.generation,
      frame: p.generation,
      format: p.format,
      modifier: 0n,
      width: p.width,
      height: p.height,
      stride: p.stride,
      offset: 0,
      size: p.bytes.byteLength,
      x: c.x,
      y: c.y,
      hotX: hot(c.hotX, p.width),
      hotY: hot(c.hotY, p.height),
    };
    this.#cursor = { plane, bytes: p.bytes };
    this.emit('changed');
  }

  query(kind: GuestPlaneKind): PlaneQuery {
    if (this.#closed) return { state: 'lost', error: new Error(`${this.name} is closed`) };
    if (kind === 'cursor') return this.#cursor ? { state: 'ok', plane: this.#cursor.plane } : { state: 'disabled' };
    const c = this.#current;
    if (kind !== 'primary' || !c?.buffer) return { state: 'disabled' };
    const b = c.buffer;
    // The client destroyed the buffer it shows: its content is undefined, show nothing
    // (unless it is a wl_shm frame we already copied: it was released, and may be destroyed).
    if (b.resource.destroyed && !this.#copied(c.seq, b.id) && !this.#releasedCopy(b.id)) return { state: 'disabled' };
    const base = {
      kind,
      bufferId: b.id,
      format: b.format,
      width: b.width,
      height: b.height,
      x: 0,
      y: 0,
      hotX: -1,
      hotY: -1,
      generation: 1,
      flipTimeNs: this.#commitTimeNs,
      frame: c.seq,
      transform: c.transform,
      ...this.#cropOf(c),
    };
    if (b.kind === 'solid') {
      return { state: 'ok', plane: { ...base, transport: 'region', modifier: 0n, stride: 4, offset: 0, size: 4 } };
    }
    if (b.kind === 'dmabuf') {
      const p0 = b.planes[0]!;
      const transform = withYInvert(c.transform, (b.flags & ZwpLinuxBufferParamsV1Flags.Y_INVERT) !== 0);
      return { state: 'ok', plane: { ...base, transport: 'dmabuf', modifier: b.modifier, stride: p0.stride, offset: p0.offset, size: 0, transform } };
    }
    // The region is the whole pool; the buffer starts `offset` bytes into it.
    return { state: 'ok', plane: { ...base, transport: 'region', modifier: 0n, stride: b.stride, offset: b.offset, size: b.pool.size } };
  }

  /**
   * The commit's crop (picture pixels) and display size (surface coordinates): the window
   * rectangle's, cut out of what the surface shows after its buffer transform, scale and
   * viewport; or the viewport's alone.
   */
  #cropOf(c: SurfaceCommit): { crop?: Rect; displaySize?: { width: number; height: number } } {
    const b = c.buffer!;
    const v = this.view?.() ?? null;
    const pic = pictureSize(c.transform, b.width, b.height);
    const size = c.size ?? pic;
    if (v && (v.x !== 0 || v.y !== 0 || v.width !== size.w || v.height !== size.h)) {
      const shown = { crop: c.crop ?? { x: 0, y: 0, width: pic.w, height: pic.h }, shown: { width: size.w, height: size.h } };
      return { crop: cropOf(v, shown), displaySize: { width: v.width, height: v.height } };
    }
    return { ...(c.crop ? { crop: c.crop } : {}), ...(c.size ? { displaySize: { width: c.size.w, height: c.size.h } } : {}) };
  }

  exportDmabuf(plane: GuestPlaneInfo): number {
    const b = this.#held.get(plane.bufferId);
    if (!b || b.kind !== 'dmabuf' || b.resource.destroyed) {
      throw new Error(`${this.name}: wl_buffer ${plane.bufferId} is not a live dma-buf buffer of this surface`);
    }
    return libc.dup(b.planes[0]!.fd, `dma-buf of wl_buffer ${b.id}`);
  }

  /**
   * Pixels of a wl_shm (or single-pixel) frame for the copy path. A wl_shm frame is
   * copied out of the client's pool once, and the client gets its buffer back at once
   * (as Weston and wlroots release a wl_shm buffer once uploaded): the output may read
   * the frame again at later refreshes, from our copy. Clients with few buffers (Mesa's
   * software EGL has four) keep drawing while a slow output is still composing.
   */
  cpuView(plane: GuestPlaneInfo): CpuView | null {
    if (plane.kind === 'cursor') return this.#cursor?.plane.generation === plane.generation ? { bytes: this.#cursor.bytes, offset: 0 } : null;
    const copied = this.#copied(plane.frame, plane.bufferId);
    if (copied) return { bytes: copied, offset: 0 };
    const snap = this.#snapshot;
    const b = this.#held.get(plane.bufferId);
    if (!b) {
      // A damage-only commit of the wl_shm buffer we copied and released: the frame is our copy.
      if (!this.#releasedCopy(plane.bufferId) || !snap.bytes) return null;
      snap.frame = plane.frame ?? -1;
      return { bytes: snap.bytes, offset: 0 };
    }
    if (b.kind === 'dmabuf' || b.resource.destroyed) return null;
    if (b.kind === 'solid') return { bytes: b.pixel, offset: 0 };
    const span = b.stride * (b.height - 1) + b.width * 4;
    let bytes: Uint8Array | null = null;
    let why = '';
    try {
      bytes = b.pool.copy(b.offset, span, snap);
      if (!bytes) why = `its pool's file is now shorter than the ${b.offset + span} bytes the buffer reaches (the client shrank it)`;
    } catch (e) {
      why = `reading its pool failed: ${(e as Error).message}`;
    }
    if (!bytes) {
      snap.bytes = null;
      this.#fail(b, WlShmError.INVALID_FD, why);
      return null;
    }
    snap.bytes = bytes;
    snap.frame = plane.frame ?? -1;
    snap.bufferId = b.id;
    // Committed again in a later frame: that frame reads it again, keep it held till then.
    if (!this.#pending.some((c) => c.seq > snap.frame && c.buffer === b)) this.#letGo(b);
    return { bytes, offset: 0 };
  }

  /** The pixels of a wl_shm frame as the output read them (tests, screenshots); null when not that frame's. */
  shmPixels(frame: number): { bytes: Uint8Array; stride: number; width: number; height: number } | null {
    const b = this.#current?.buffer;
    const bytes = b?.kind === 'shm' ? this.#copied(frame, b.id) : null;
    return bytes && b?.kind === 'shm' ? { bytes, stride: b.stride, width: b.width, height: b.height } : null;
  }

  /** Whether the copy taken is of `bufferId`, since released (a damage-only commit shows that copy). */
  #releasedCopy(bufferId: number): boolean {
    return this.#snapshot.bytes !== null && this.#snapshot.bufferId === bufferId && !this.#held.has(bufferId);
  }

  /** The copy of frame `frame` of buffer `bufferId`, if that is the one taken. */
  #copied(frame: number | undefined, bufferId: number): Uint8Array | null {
    const snap = this.#snapshot;
    return snap.bytes && snap.frame === frame && snap.bufferId === bufferId ? snap.bytes : null;
  }

  /**
   * The output cannot show this commit's buffer (it keeps what it showed before): the
   * commit and those before it are complete now, and the client is told why — a buffer
   * the compositor cannot use is a protocol error, never silence.
   */
  refused(plane: GuestPlaneInfo, cause: string, message: string): void {
    const idx = this.#pending.findIndex((c) => c.seq === plane.frame);
    if (idx >= 0) {
      for (const c of this.#pending.splice(0, idx + 1)) finishUnshown(c);
      this.#releaseUnused(this.#onScreen);
      if (this.#pending.length === 0) this.#clearStallTimer();
    }
    const b = this.#held.get(plane.bufferId) ?? (this.#current?.buffer?.id === plane.bufferId ? this.#current.buffer : null);
    if (b) this.#fail(b, null, `${cause}: ${message}`);
  }

  /**
   * Disconnects the client of `b` with a protocol error: `code` of wl_shm on the buffer (as
   * libwayland's wl_shm does), or wl_display's implementation error when null. Deferred:
   * the output asks from inside its planning, and the client's teardown changes what is shown.
   */
  #fail(b: ClientBuffer, code: WlShmError | null, why: string): void {
    if (this.#failed.has(b.id)) return;
    this.#failed.add(b.id);
    setImmediate(() => {
      if (b.resource.destroyed) return;
      const msg = `${b.resource} cannot be shown: ${why}`;
      if (code !== null) b.resource.postError(code, msg);
      else b.resource.client.postImplementationError(msg);
    });
  }

  close(): void {
    if (this.#closed) return;
    // Whoever imported its dma-bufs (the output's FB cache, as an attached source or a host
    // layer) lets go now: nothing of a client that went outlives it.
    this.emit('buffers-gone');
    this.#closed = true;
    this.#clearStallTimer();
    for (const c of this.#pending.splice(0)) finishUnshown(c);
    for (const b of [...this.#held.values()]) this.#letGo(b);
    this.#current = null;
    this.#cursor = null;
  }
}
