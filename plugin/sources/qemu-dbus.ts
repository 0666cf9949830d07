// An unmodified QEMU (or libvirt) with `-display dbus` as a guest source. QEMU exports each
// console on the bus (org.qemu.Display1.Console_N); we register a listener per console,
// over a socketpair whose other end QEMU takes (it becomes the D-Bus server on it) and
// then calls us with the guest's frames:
//   ScanoutDMABUF (a dma-buf of the guest plane, or a udmabuf of guest memory) + UpdateDMABUF
//     → the dmabuf transport: imported once, scanned out zero-copy where the plane takes it;
//     ScanoutDMABUF2 (QEMU 10.1+, offered: then QEMU sends it instead) adds the shown
//     rectangle of a larger buffer (the plane's crop) and planes (qemu-scanout.ts);
//   Scanout / Update (pixels in the message, guests without dma-bufs)
//     → the region transport: a shadow copy the CPU path copies from;
//   ScanoutMap / UpdateMap (Unix.Map, QEMU 9.2+: the surface as a memfd, then only the
//     damaged rectangle's coordinates) → the same shadow, read from the memfd (qemu-map.ts).
//
// What is shown (the buffers, the shadow, the shared map) is kept in qemu-scanout.ts.
// Buffer identity: a dma-buf is known by its inode, however many fds QEMU sends for it
// (qemu-dmabufs.ts): each guest buffer is imported once, fds stay flat.
//
// One flip per guest frame: QEMU follows a ScanoutDMABUF with UpdateDMABUF (in the same
// main-loop pass for a virtio-gpu flip), and 8.2+ sends one UpdateDMABUF per damage
// rectangle. Each used to be a frame of its own, so a flip often cost two or more commits
// (when the calls came in separate reads). Now a ScanoutDMABUF waits (SCANOUT_WAIT_MS) for
// its UpdateDMABUF, which makes the frame; UpdateDMABUFs that follow one still held within
// UPDATE_BURST_MS join its frame and its answer (no 'changed', no commit of their own).
//
// Pacing: QEMU blocks the console's GL updates until UpdateDMABUF is answered
// (graphic_hw_gl_block). The answer is held until the output has shown that frame (or
// refused it, or a newer one replaced it), so a GL-rendering device (virtio-gpu) renders
// at the screen's pace, as under a real compositor. QEMU's VFIO display is not paced by
// it: it polls the device on its refresh timer and sends UpdateDMABUF before the check
// (measured with mbochs: held answers are superseded by the next update). The hold is
// capped well below QEMU's 1 s call timeout, so QEMU never logs a timed-out update.
//
// Cursor: CursorDefine's image (straight alpha, premultiplied here) is a region plane of
// kind 'cursor', placed by MouseSet's pointer position less the hotspot: the output puts
// it on the cursor plane (copied once per image into a cursor-sized buffer).
//
// Disable means the display went off, or (QEMU 7.2+) the release of the dma-buf a page flip
// replaced (see #handle). QEMU 9.2+ also drop display messages still queued when a Disable
// is sent, and a virtio-gpu flip queues ScanoutDMABUF(new) then Disable(release of old):
// with QEMU 10.0.2 in the rig 8-25 of 30 flips came as Disable + UpdateDMABUF, ScanoutDMABUF
// gone (QEMU's dbus_filter trace names each). So a Disable without a ScanoutDMABUF before it
// waits (DISABLE_GRACE_MS): an UpdateDMABUF next means the guest shows a buffer we were not
// told of, which only a new listener learns (QEMU sends it the current scanout), so the
// source registers one. Nothing following: the display really went off, "no signal".
//
// y0_top: QEMU's own GL viewers blit flipped when y0_top is false, because a GL window's
// row 0 is its bottom. So false means the buffer's row 0 is the picture's top (mbochs,
// plain guest framebuffers: shown as is) and true means GL's bottom-up order (reflect-y).
//
// Ownership: the source owns the listener connection and its QemuScanout (one fd per known
// dma-buf inode, a shared map's memfd, the shadow pixels); exportDmabuf() returns dups the
// caller closes. The QemuDisplay (qemu-display.ts, which opens console sources) owns the
// bus connection; closing it closes every console source it opened.
import { EventEmitter } from 'node:events';
import { DRM_FORMAT } from '../../ffi/drm.js';
import type { DbusArg, DbusConnection, IncomingCall } from '../dbus/connection.js';
import { QemuScanout, type QemuIdSpace } from './qemu-scanout.js';
import { QemuPeerVersion } from './qemu-version.js';
import { BUTTONS, CONSOLE_IFACE, KEYBOARD_IFACE, MAX_TOUCH_SLOTS, MOUSE_IFACE, MULTITOUCH_IFACE, MultiTouchRefused, multiTouchRefusal, TOUCH_KINDS, type TouchKind, decodeListenerCall, evdevToQnum, premultiplied, LISTENER_IFACE, LISTENER_INTERFACES, LISTENER_METHODS, LISTENER_PATH, ListenerError, PROPERTIES_IFACE, type ListenerCall, type QemuButton, type QemuConsoleInfo } from './qemu-dbus-protocol.js';
import { registerListener } from './qemu-listener.js';
import type { CpuView, GuestPlaneInfo, GuestPlaneKind, GuestSource, GuestSourceEvents, PlaneQuery } from './source.js';

export { evdevToQnum, type QemuButton, type QemuConsoleInfo, type QemuVmInfo, type TouchKind } from './qemu-dbus-protocol.js';
export type { QemuIdSpace } from './qemu-scanout.js';

/** An UpdateDMABUF not shown within this time is answered anyway: QEMU must not stall on us (its own call timeout is 1 s). */
const HOLD_MS = 500;
/** How long a Disable without a ScanoutDMABUF before it waits for the UpdateDMABUF of a flip (QEMU sends both in one main-loop pass). */
const DISABLE_GRACE_MS = 100;
/**
 * A ScanoutDMABUF with no UpdateDMABUF after it (a new listener's current buffer) is a frame
 * after this long. Only such a lone scanout waits; under TCG with a loaded host the pair
 * came more than 20 ms apart now and then (the rig: 1063 commits for 1000 frames).
 */
const SCANOUT_WAIT_MS = 50;
/**
 * UpdateDMABUFs this close together, the first still held, are one refresh's damage
 * rectangles: one frame. A paced QEMU (virtio-gpu) sends no update while one is held, so
 * any update then is of the same refresh; the bound keeps an unpaced one (VFIO displays,
 * an update every ~30 ms, answered or not) from merging its frames. 4 ms was too short
 * for TCG in the rig (171 commits for 118 frames of 4 rectangles).
 */
const UPDATE_BURST_NS = 16_000_000n;

interface Held {
  frame: number;
  call: IncomingCall;
  /** When it was held (performance.now(), ms): the backstop answers it HOLD_MS later. */
  at: number;
}

/** Counters for tests and the kiosk's status line. */
export interface QemuConsoleStats {
  scanouts: number;
  updates: number;
  /** ScanoutDMABUF calls whose dma-buf was already known (by inode): the fd was closed at once. */
  reusedBuffers: number;
  buffersKnown: number;
  /** Scanout calls whose pixels were those already shown (QEMU resends the surface every refresh). */
  unchanged: number;
  /** Disable calls taken as the release of the buffer a ScanoutDMABUF replaced (ignored). */
  releaseDisables: number;
  /** Flips whose ScanoutDMABUF QEMU (9.2+) dropped: a Disable then an UpdateDMABUF with no ScanoutDMABUF before. */
  lostScanouts: number;
  /** Listeners registered again to learn the current scanout after a lost one. */
  relistens: number;
  refusedCalls: number;
  /** UpdateDMABUF calls taken into the frame of the one before (QEMU 8.2+: one per damage rectangle). */
  coalesced: number;
  /** UpdateDMABUF answers given after the frame was shown / refused / on the backstop timer. */
  answered: { shown: number; refused: number; timeout: number; superseded: number };
}

/** One QEMU console as a GuestSource (see the file comment). */
export class QemuConsoleSource extends EventEmitter<GuestSourceEvents> implements GuestSource {
  readonly name: string;
  readonly changeEvents = true;
  readonly info: QemuConsoleInfo;
  #listener: DbusConnection;
  readonly #bus: DbusConnection;
  readonly #dest: string | null;
  readonly #scanout: QemuScanout;
  #enabled = false;
  /** Buffer ids, generations and frames: shared by the sources of one QemuGuest, so they never repeat across reconnections. */
  readonly #ids: QemuIdSpace;
  #flipTimeNs = 0n;
  #held: Held[] = [];
  #lost: Error | null = null;
  #closed = false;
  readonly #warned = new Set<string>();
  /** What QEMU said that the source refused (bad fd, lying sizes, unknown format…), once per kind. */
  readonly warnings: string[] = [];
  onWarning: ((message: string) => void) | null = null;
  onClosed: (() => void) | null = null;
  /**
   * Every listener call QEMU made, in order, before it is handled (tests and debugging: what
   * a QEMU version really sends, e.g. which Disables follow which ScanoutDMABUF). `version`:
   * which QEMU this is, as far as those calls tell.
   */
  onListenerCall: ((member: string) => void) | null = null;
  readonly version: QemuPeerVersion;
  #absolute: Promise<boolean> | null = null;
  #cursor: { bufferId: number; generation: number; width: number; height: number; hotX: number; hotY: number; pixels: Buffer } | null = null;
  #mouse = { x: 0, y: 0, on: false };
  readonly stats: QemuConsoleStats = { scanouts: 0, updates: 0, reusedBuffers: 0, buffersKnown: 0, unchanged: 0, releaseDisables: 0, lostScanouts: 0, relistens: 0, refusedCalls: 0, coalesced: 0, answered: { shown: 0, refused: 0, timeout: 0, superseded: 0 } };

  /** @internal QemuDisplay.open() makes these. */
  constructor(info: QemuConsoleInfo, listener: DbusConnection, bus: DbusConnection, dest: string | null, ids: QemuIdSpace = { bufferId: 0, generation: 0, frame: 0 }) {
    super();
    this.#ids = ids;
    this.#scanout = new QemuScanout(ids);
    this.info = info;
    this.version = new QemuPeerVersion(info.interfaces);
    this.name = `QEMU console ${info.id} (${info.label || info.type})`;
    this.#listener = listener;
    this.#bus = bus;
    this.#dest = dest;
    this.#serve(listener);
    bus.on('closed', () => this.#gone(`the D-Bus connection to QEMU closed`));
  }

  #serve(listener: DbusConnection): void {
    listener.addObject(LISTENER_PATH, (call) => this.#onCall(call, listener), LISTENER_METHODS);
    listener.on('error', (e) => {
      this.stats.refusedCalls++;
      this.#warn(`listener:${e.message.replace(/\d+/g, 'N')}`, `${this.name}: ${e.message}`);
    });
    // A listener we replaced (see #relisten) closing is not QEMU going away.
    listener.on('closed', (e) => {
      if (listener === this.#listener) this.#gone(`QEMU closed the display connection of console ${this.info.id}${e ? ` (${e.message})` : ''}: QEMU exited or dropped the listener`);
    });
  }

  /** Registers a second listener (QEMU sends it the current scanout), then drops the first. */
  async #relisten(): Promise<void> {
    if (this.#relistening || this.#closed || this.#lost) return;
    this.#relistening = true;
    this.stats.relistens++;
    try {
      const next = await registerListener(this.#bus, this.#dest, this.info.path, `QEMU console ${this.info.id} listener`, (l) => {
        this.#serve(l);
        this.#unflipped.add(l);
      });
      const old = this.#listener;
      this.#listener = next;
      if (this.#closed) return next.close();
      // Held answers belong to the old connection: give them before it closes.
      this.#answerHeld(Infinity, 'superseded');
      old.close();
    } catch (e) {
      this.#warn('relisten', `${this.name}: registering a new listener to learn the current scanout failed: ${(e as Error).message}`);
    } finally {
      this.#relistening = false;
    }
  }

  #onCall(call: IncomingCall, from: DbusConnection): void {
    const member = call.interface === PROPERTIES_IFACE ? `Properties.${call.member}` : call.member;
    this.onListenerCall?.(member);
    this.version.saw(member);
    if (call.interface === PROPERTIES_IFACE) return this.#properties(call);
    let c: ListenerCall;
    try {
      c = decodeListenerCall(call.member, call.signature, call.args);
    } catch (e) {
      this.stats.refusedCalls++;
      const msg = (e as Error).message;
      this.#warn(`${call.member}:${e instanceof ListenerError ? msg.replace(/\d+/g, 'N') : 'x'}`, `${this.name}: ${msg}; the last good frame stays`);
      return call.fail('org.freedesktop.DBus.Error.InvalidArgs', msg);
    }
    try {
      this.#handle(c, call, from);
    } catch (e) {
      this.stats.refusedCalls++;
      const msg = (e as Error).message;
      this.#warn(`${call.member}:handle`, `${this.name}: ${msg}; the last good frame stays`);
      if (!call.answered) call.fail('org.freedesktop.DBus.Error.Failed', msg);
    }
  }

  /** org.freedesktop.DBus.Properties of the listener object: its one property, Interfaces. */
  #properties(call: IncomingCall): void {
    const iface = call.args[0];
    if (iface !== LISTENER_IFACE) return call.fail('org.freedesktop.DBus.Error.UnknownInterface', `the listener has no interface ${String(iface)}`);
    const interfaces: DbusArg = { type: 'as', value: LISTENER_INTERFACES };
    // a{sv} values are variants already (another wrapping: QEMU 10 warns "type v" and drops it).
    if (call.member === 'GetAll') return call.reply([{ type: 'a{sv}', value: new Map([['Interfaces', interfaces]]) }]);
    if (call.args[1] !== 'Interfaces') return call.fail('org.freedesktop.DBus.Error.UnknownProperty', `the listener has no property ${String(call.args[1])}`);
    call.reply([{ type: 'v', value: interfaces }]);
  }

  /** A ScanoutDMABUF came and no UpdateDMABUF/Scanout/Update since (see Disable). */
  #freshScanout = false;
  /** A Disable without a fresh ScanoutDMABUF, waiting to be told apart (file comment); its timer turns the display off. */
  #pendingOff: NodeJS.Timeout | null = null;
  #relistening = false;
  /** New listeners whose first ScanoutDMABUF (the current buffer, not a flip: no release Disable follows it) is yet to come. */
  readonly #unflipped = new WeakSet<DbusConnection>();

  #handle(c: ListenerCall, call: IncomingCall, from: DbusConnection): void {
    const display = c.member !== 'Disable' && c.member !== 'CursorDefine' && c.member !== 'MouseSet';
    const dmabufScanout = c.member === 'ScanoutDMABUF' || c.member === 'ScanoutDMABUF2';
    if (display) this.#freshScanout = dmabufScanout && !this.#unflipped.delete(from);
    if (this.#pendingOff && display) {
      clearTimeout(this.#pendingOff);
      this.#pendingOff = null;
      // QEMU dropped the flip's ScanoutDMABUF: an update of a buffer we do not have, answered
      // at once (holding it would stall the guest); the new listener brings the current one.
      if (c.member === 'UpdateDMABUF') {
        this.stats.lostScanouts++;
        call.reply();
        return void this.#relisten();
      }
    }
    switch (c.member) {
      case 'ScanoutMap':
        this.#scanout.map(c, call.takeFd(c.fd));
        return this.#shown(call);
      case 'UpdateMap':
      case 'Update':
        return this.#updateShadow(c, call);
      case 'ScanoutDMABUF':
        return this.#scanoutDmabuf(this.#scanout.dmabuf(c, call.takeFd(c.fd)), call);
      case 'ScanoutDMABUF2':
        return this.#scanoutDmabuf(this.#scanout.dmabuf2(c, (fd) => call.takeFd(fd)), call);
      case 'UpdateDMABUF':
        if (this.#scanout.kind !== 'dmabuf') return call.reply();
        this.stats.updates++;
        return this.#updateDmabuf(call);
      case 'Scanout':
        if (this.#scanout.pixels(c, this.#enabled) === 'unchanged') {
          this.stats.unchanged++;
          return call.reply();
        }
        return this.#shown(call);
      case 'Disable':
        call.reply();
        // QEMU also sends Disable when it releases the dma-buf a new ScanoutDMABUF replaced
        // (virtio-gpu's page flip: dpy_gl_scanout_dmabuf(new), dpy_gl_release_dmabuf(old)):
        // right after a ScanoutDMABUF it is that release, not the display going off.
        if (this.#freshScanout) {
          this.#freshScanout = false;
          this.stats.releaseDisables++;
          return;
        }
        if (this.#pendingOff || this.#scanout.kind !== 'dmabuf') return this.#displayOff();
        this.#pendingOff = setTimeout(() => this.#offUnlessRelistening(), DISABLE_GRACE_MS);
        return;
      case 'CursorDefine': {
        const pixels = premultiplied(c.data);
        this.#cursor = { bufferId: ++this.#ids.bufferId, generation: ++this.#ids.generation, width: c.width, height: c.height, hotX: c.hotX, hotY: c.hotY, pixels };
        call.reply();
        this.emit('changed');
        return;
      }
      case 'MouseSet':
        // The pointer's tip in guest pixels; the image hangs from it by its hotspot.
        this.#mouse = { x: c.x, y: c.y, on: c.on };
        call.reply();
        this.emit('changed');
        return;
    }
  }

  /** The damaged rectangle into the shadow: from the message (Update) or the memfd (UpdateMap). */
  #updateShadow(c: Extract<ListenerCall, { member: 'Update' | 'UpdateMap' }>, call: IncomingCall): void {
    if (!this.#scanout.update(c)) return call.reply();
    call.reply();
    this.stats.updates++;
    this.#newFrame();
  }

  /**
   * The grace after a lone Disable ended. While a new listener is being registered (after a
   * lost scanout) its current scanout is yet to come: wait for it. Under load in the rig the
   * registration took longer than the grace and a flip's Disable showed "no signal" once.
   */
  #offUnlessRelistening(): void {
    if (this.#relistening) this.#pendingOff = setTimeout(() => this.#offUnlessRelistening(), DISABLE_GRACE_MS);
    else this.#displayOff();
  }

  #displayOff(): void {
    if (this.#pendingOff) clearTimeout(this.#pendingOff);
    this.#pendingOff = null;
    this.#stopScanoutWait();
    this.#enabled = false;
    this.#answerHeld(Infinity, 'superseded');
    this.emit('changed');
  }

  /** A new surface (Scanout, ScanoutMap) is what the console shows: answered, a frame. */
  #shown(call: IncomingCall): void {
    call.reply();
    this.#enabled = true;
    this.stats.scanouts++;
    this.#newFrame();
  }

  /** A (new or known) dma-buf is the console's scanout now; its UpdateDMABUF makes the frame (file comment). */
  #scanoutDmabuf(r: { known: boolean }, call: IncomingCall): void {
    if (r.known) this.stats.reusedBuffers++;
    this.stats.buffersKnown = this.#scanout.buffersKnown;
    call.reply();
    this.#enabled = true;
    this.stats.scanouts++;
    if (this.#scanoutWaiting) return;
    this.#scanoutWaiting = true;
    // One timer for the source's life, re-armed (refresh) rather than made and cleared per
    // frame: at 60 frames a second that churn was a measurable part of the path under TCG.
    if (this.#scanoutTimer) this.#scanoutTimer.refresh();
    else this.#scanoutTimer = setTimeout(() => this.#scanoutWaited(), SCANOUT_WAIT_MS);
  }

  /** A ScanoutDMABUF waits for its UpdateDMABUF (#scanoutTimer: fires harmlessly when none waits). */
  #scanoutWaiting = false;
  #scanoutTimer: NodeJS.Timeout | null = null;
  #lastUpdateNs = 0n;

  #scanoutWaited(): void {
    if (this.#scanoutWaiting) this.#newFrame();
  }

  /** An UpdateDMABUF: a new frame, or one more damage rectangle of the frame held now. */
  #updateDmabuf(call: IncomingCall): void {
    const now = process.hrtime.bigint();
    const burst = !this.#scanoutWaiting && now - this.#lastUpdateNs < UPDATE_BURST_NS && this.#held.some((h) => h.frame === this.#ids.frame);
    this.#lastUpdateNs = now;
    if (burst) this.stats.coalesced++;
    else this.#newFrame();
    this.#hold(call);
  }

  #stopScanoutWait(): void {
    this.#scanoutWaiting = false;
  }

  #newFrame(): void {
    this.#stopScanoutWait();
    this.#ids.frame++;
    this.#flipTimeNs = process.hrtime.bigint();
    // A newer frame replaces every held one: the output shows the newest only.
    this.#answerHeld(this.#ids.frame - 1, 'superseded');
    this.emit('changed');
  }

  #hold(call: IncomingCall): void {
    // The ScanoutDMABUF answer of this read (QEMU sends it just before) leaves with this one.
    call.answerSoon();
    this.#held.push({ frame: this.#ids.frame, call, at: performance.now() });
    this.#holdTimer ??= setTimeout(() => this.#holdBackstop(), HOLD_MS);
  }

  /** One backstop timer for every held answer (not one per call: see #scanoutTimer). */
  #holdTimer: NodeJS.Timeout | null = null;

  /** Answers what was held HOLD_MS or longer, then waits for the oldest left. */
  #holdBackstop(): void {
    this.#holdTimer = null;
    const now = performance.now();
    let upTo = -1;
    for (const h of this.#held) if (now - h.at >= HOLD_MS - 1) upTo = Math.max(upTo, h.frame);
    if (upTo >= 0) this.#answerHeld(upTo, 'timeout');
    const oldest = this.#held[0];
    if (oldest && !this.#closed) this.#holdTimer = setTimeout(() => this.#holdBackstop(), Math.max(1, HOLD_MS - (now - oldest.at)));
  }

  #answerHeld(upTo: number, why: keyof QemuConsoleStats['answered']): void {
    const keep: Held[] = [];
    for (const h of this.#held) {
      if (h.frame > upTo) {
        keep.push(h);
        continue;
      }
      h.call.reply();
      this.stats.answered[why]++;
    }
    this.#held = keep;
  }

  query(kind: GuestPlaneKind): PlaneQuery {
    if (this.#lost) return { state: 'lost', error: this.#lost };
    if (kind === 'cursor') return this.#queryCursor();
    const plane = this.#enabled ? this.#scanout.primary(this.#ids.frame, this.#flipTimeNs) : null;
    return plane ? { state: 'ok', plane } : { state: 'disabled' };
  }

  exportDmabuf(plane: GuestPlaneInfo): number {
    const fd = this.#scanout.exportDmabuf(plane.bufferId, `${this.name} dma-buf ${plane.bufferId}`);
    if (fd !== null) return fd;
    throw new Error(`${this.name}: buffer ${plane.bufferId} is no longer known (QEMU replaced it)`);
  }

  #queryCursor(): PlaneQuery {
    const c = this.#cursor;
    if (!c || !this.#mouse.on || !this.#enabled) return { state: 'disabled' };
    return {
      state: 'ok',
      plane: {
        kind: 'cursor',
        bufferId: c.bufferId,
        transport: 'region',
        format: DRM_FORMAT.ARGB8888!,
        modifier: 0n,
        width: c.width,
        height: c.height,
        stride: c.width * 4,
        offset: 0,
        size: c.pixels.length,
        x: this.#mouse.x - c.hotX,
        y: this.#mouse.y - c.hotY,
        hotX: c.hotX,
        hotY: c.hotY,
        generation: c.generation,
      },
    };
  }

  cpuView(plane: GuestPlaneInfo): CpuView | null {
    if (plane.kind === 'cursor') return this.#cursor?.bufferId === plane.bufferId ? { bytes: this.#cursor.pixels, offset: 0 } : null;
    return this.#scanout.cpuView(plane.bufferId);
  }

  refused(plane: GuestPlaneInfo, cause: string, message: string): void {
    this.#warn(`refused:${cause}`, `${this.name}: the output cannot show QEMU's buffer (${cause}): ${message}`);
    this.stats.refusedCalls++;
    this.#answerHeld(plane.frame ?? this.#ids.frame, 'refused');
  }

  /** The output put `frame` of this source on screen: QEMU may render the next one. */
  frameShown(frame: number | undefined): void {
    if (frame !== undefined) this.#answerHeld(frame, 'shown');
  }

  /** Tells the guest the size of the screen it is shown on (it may pick that mode). */
  async setUIInfo(width: number, height: number, widthMm = 0, heightMm = 0): Promise<void> {
    await this.#bus.call(this.#dest, this.info.path, CONSOLE_IFACE, 'SetUIInfo', [
      { type: 'q', value: widthMm },
      { type: 'q', value: heightMm },
      { type: 'i', value: 0 },
      { type: 'i', value: 0 },
      { type: 'u', value: width },
      { type: 'u', value: height },
    ]);
  }

  // --- input (org.qemu.Display1.Keyboard / Mouse on the console object) ---

  /**
   * Input calls leave in the order they were made (a pointer move waits for the first
   * IsAbsolute answer; a key behind it must not overtake it), each without waiting for the
   * previous one's reply.
   */
  #inputOrder: Promise<unknown> = Promise.resolve();
  #input(send: (absolute: boolean) => Promise<unknown> | null): Promise<void> {
    const sent = this.#inputOrder.then(async () => ({ reply: send(await this.isAbsolute()) }));
    this.#inputOrder = sent.catch(() => {});
    return sent.then(async (s) => void (await s.reply));
  }

  /** A key by Linux evdev code (KEY_A = 30…), as QEMU key numbers. */
  key(evdevCode: number, down: boolean): Promise<void> {
    const qnum = evdevToQnum(evdevCode);
    if (qnum === undefined) return Promise.reject(new Error(`evdev key code ${evdevCode} has no QEMU key number`));
    return this.#input(() => this.#bus.call(this.#dest, this.info.path, KEYBOARD_IFACE, down ? 'Press' : 'Release', [{ type: 'u', value: qnum }]));
  }

  button(button: QemuButton, down: boolean): Promise<void> {
    return this.#input(() => this.#bus.call(this.#dest, this.info.path, MOUSE_IFACE, down ? 'Press' : 'Release', [{ type: 'u', value: BUTTONS[button] }]));
  }

  /**
   * Whether the guest's pointer takes absolute positions (a tablet) or only motion. Asked
   * once per attachment (QEMU 7.2 says when it changes only through a property signal,
   * which is not watched yet).
   */
  isAbsolute(): Promise<boolean> {
    this.#absolute ??= this.#bus
      .call(this.#dest, this.info.path, 'org.freedesktop.DBus.Properties', 'Get', [{ type: 's', value: MOUSE_IFACE }, { type: 's', value: 'IsAbsolute' }])
      .then(([v]) => v === true);
    return this.#absolute;
  }

  /** Moves the guest's pointer to (x, y) in guest pixels: absolute where the guest can, else relative. */
  pointerTo(x: number, y: number, from?: { x: number; y: number }, rel?: { dx: number; dy: number }): Promise<void> {
    return this.#input((absolute) => {
      if (absolute) {
        return this.#bus.call(this.#dest, this.info.path, MOUSE_IFACE, 'SetAbsPosition', [
          { type: 'u', value: Math.max(0, Math.round(x)) },
          { type: 'u', value: Math.max(0, Math.round(y)) },
        ]);
      }
      if (rel) return rel.dx || rel.dy ? this.#relMotion(rel.dx, rel.dy) : null;
      return from ? this.#relMotion(x - from.x, y - from.y) : null;
    });
  }

  /**
   * One touch point (slot) into QEMU's MultiTouch (QEMU 8.1+), at guest pixel (x, y). QEMU
   * 7.x has no such interface: its error reply rejects with MultiTouchRefused (input/touch.ts
   * then falls back to the pointer); a connection that went rejects with its own error.
   */
  touch(kind: TouchKind, slot: number, x: number, y: number): Promise<void> {
    if (!Number.isInteger(slot) || slot < 0 || slot >= MAX_TOUCH_SLOTS) return Promise.reject(new MultiTouchRefused(`touch slot ${slot} is not within 0..${MAX_TOUCH_SLOTS - 1} (QEMU's slots)`));
    const args: DbusArg[] = [{ type: 'u', value: TOUCH_KINDS[kind] }, { type: 't', value: BigInt(slot) }, { type: 'd', value: Math.max(0, x) }, { type: 'd', value: Math.max(0, y) }];
    return this.#input(() => this.#bus.call(this.#dest, this.info.path, MULTITOUCH_IFACE, 'SendEvent', args).catch(multiTouchRefusal));
  }

  pointerBy(dx: number, dy: number): Promise<void> {
    return this.#input(() => this.#relMotion(dx, dy));
  }

  #relMotion(dx: number, dy: number): Promise<unknown> {
    return this.#bus.call(this.#dest, this.info.path, MOUSE_IFACE, 'RelMotion', [
      { type: 'i', value: Math.round(dx) },
      { type: 'i', value: Math.round(dy) },
    ]);
  }

  #warn(kind: string, message: string): void {
    if (this.#warned.has(kind)) return;
    this.#warned.add(kind);
    this.warnings.push(message);
    this.onWarning?.(message);
  }

  #gone(message: string): void {
    if (this.#lost || this.#closed) return;
    this.#lost = new Error(message);
    this.#stopScanoutWait();
    this.#answerHeld(Infinity, 'superseded');
    this.emit('lost', this.#lost);
    // The output learns it from the next query: make there be one.
    this.emit('changed');
  }

  /** A new listener is being registered (#relisten): two listener sockets are open meanwhile. */
  get relistening(): boolean {
    return this.#relistening;
  }

  /** Open dma-buf fds the source holds (tests: flat over many scanouts). */
  get heldFds(): number {
    return this.#scanout.heldFds;
  }

  close(): void {
    if (this.#closed) return;
    clearTimeout(this.#pendingOff ?? undefined);
    clearTimeout(this.#scanoutTimer ?? undefined);
    clearTimeout(this.#holdTimer ?? undefined);
    this.#holdTimer = null;
    this.#stopScanoutWait();
    this.#answerHeld(Infinity, 'superseded');
    this.#closed = true;
    this.#listener.close();
    this.#scanout.close();
    this.onClosed?.();
  }
}
