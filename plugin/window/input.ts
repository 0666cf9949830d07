// The desktop's keyboard, pointer and touch into the guest shown in the window (issue 28 item 4),
// through the same guest path the kiosk uses (input/guest-port.ts: GuestPort, Held, the
// fit mapping; the target is the QemuGuest, whose console source speaks QEMU's Keyboard
// and Mouse interfaces).
//
// Keyboard: wl_keyboard's keys while our window has the keyboard focus, translated through
// the desktop's keymap (keymap.ts: by key name into evdev codes) and sent as they are; the
// guest applies its own layout and repeats held keys itself. Keys held when the focus
// leaves (or the keyboard, the seat or this object goes) are released in the guest, as
// Held does for the kiosk. Keys already down when the focus comes are not pressed: their
// presses went elsewhere.
//
// Pointer: a position over the window (on the black parent, or on the guest subsurface)
// is mapped through the window's fit into guest pixels (guest-point.ts, the kiosk's
// toGuestPoint) and sent; the source sends it absolute where the guest's mouse is absolute
// (QEMU's Mouse.IsAbsolute), else the difference from the last position; for such a guest
// a click captures the pointer and its unaccelerated motion goes to the guest (capture.ts;
// Ctrl+Alt+G releases it).
// Buttons as the kiosk's (evdev codes); the vertical wheel in whole detents (value120,
// else axis_discrete, else 10 axis units per detent, what libinput-based desktops send).
// The guest's cursor image: cursor.ts. Touch (wl_touch while the seat has it): touch.ts,
// through the same GuestPort and Held, so a finger as the pointer and the mouse are one.
//
// Ownership: the wl_keyboard and wl_pointer proxies and the WindowTouch (released with the
// seat's capability going, or in close()), the DesktopKeymap and the WindowCursor are this object's. The
// Desktop, its seat and the window stay the caller's. Every fd the desktop sends
// (wl_keyboard.keymap) is closed in the handler that receives it.
import type { WlKeyboard, WlPointer, WlSurface } from '../../protocols/generated/client/wayland.js';
import { WlKeyboardKeymapFormat, WlKeyboardKeyState, WlPointerAxis, WlPointerButtonState, WlSeatCapability } from '../../protocols/generated/client/wayland.js';
import * as libc from '../../ffi/libc.js';
import { placement } from '../geometry.js';
import { BUTTONS, GuestPort, Held, wheel, type InputTarget, type Point } from '../input/guest-port.js';
import { windowToGuest, type WindowGeometry } from './guest-point.js';
import { WindowTouch, type TouchMode, type WindowTouchOptions } from './touch.js';
import type { GuestSource } from '../sources/source.js';
import type { Desktop } from './connection.js';
import { DesktopKeymap, readKeymapFd } from './keymap.js';
import { WindowCursor } from './cursor.js';
import { PointerCapture } from './capture.js';
import { Chords, passKey, type ChordHandlers } from '../input/chords.js';

/** wl_pointer.axis units per wheel detent (libinput's 15° click is 10 units on GNOME, KDE, wlroots, Weston). */
const AXIS_PER_DETENT = 10;

/** What input needs of the window (WindowOutput): its surfaces, size, fit and the guest's picture. */
export type WindowInputView = WindowGeometry;

export interface WindowInputOptions {
  /** Where the guest's cursor image comes from (null: the desktop's own pointer stays). */
  cursorSource?: GuestSource | null;
  /** Whether the guest's mouse is absolute (QEMU's Mouse.IsAbsolute); not given: taken as absolute, no capture. */
  isAbsolute?: () => Promise<boolean>;
  /** The pointer was captured (true) or released (capture.ts; the window's title says so). */
  onCapture?: (captured: boolean) => void;
  /** Touch: one finger as the guest's pointer (default), or every finger through QEMU's MultiTouch (touch.ts). */
  touch?: TouchMode;
  /** Whether QEMU offers MultiTouch on the console (a hint at the first touch when touch is the pointer). */
  offersMultiTouch?: () => boolean;
  log: (line: string) => void;
}

export class WindowInput {
  readonly #desktop: Desktop;
  readonly #view: WindowInputView;
  readonly #port: GuestPort;
  readonly #held = new Held();
  readonly #log: (line: string) => void;
  readonly #cursorSource: GuestSource | null;
  readonly #cursor: WindowCursor | null;
  #keyboard: WlKeyboard | null = null;
  #pointer: WlPointer | null = null;
  #touch: WindowTouch | null = null;
  readonly #target: InputTarget;
  readonly #touchOpts: WindowTouchOptions;
  #keymap: DesktopKeymap | null = null;
  #focused = false;
  /** The surface the pointer is over (ours), null when it is elsewhere. */
  #over: WlSurface | null = null;
  #scroll = 0;
  #axis: { v120: number | null; units: number } = { v120: null, units: 0 };
  #closed = false;
  readonly #unlisten: () => void;
  readonly #capture: PointerCapture;
  readonly #chords = new Chords(false, true, ['grab']);
  readonly #isAbsolute: (() => Promise<boolean>) | null;
  /** The guest mouse's kind as last asked (null: not known yet). */
  #absolute: boolean | null = null;
  /** Where the guest's pointer is while captured (moved by relative motion, kept on the picture). */
  #capturedAt: Point = { x: 0, y: 0 };
  /** Counts for stats and tests. */
  readonly counts = { keys: 0, motions: 0, buttons: 0, detents: 0 };

  constructor(desktop: Desktop, view: WindowInputView, target: InputTarget, opts: WindowInputOptions) {
    this.#desktop = desktop;
    this.#view = view;
    this.#log = opts.log;
    this.#target = target;
    this.#touchOpts = { mode: opts.touch ?? 'pointer', offersMultiTouch: opts.offersMultiTouch, log: opts.log };
    this.#port = new GuestPort(target, (e) => this.#log(`guestplane window: input to the guest: ${e.message}`));
    this.#cursorSource = opts.cursorSource ?? null;
    this.#cursor = this.#cursorSource ? new WindowCursor(desktop) : null;
    const changed = () => this.#updateCursor();
    this.#cursorSource?.on('changed', changed);
    this.#unlisten = () => this.#cursorSource?.off('changed', changed);
    this.#isAbsolute = opts.isAbsolute ?? null;
    this.#capture = new PointerCapture(desktop, {
      captured: (on) => {
        if (!on) this.#releaseButtons();
        opts.onCapture?.(on);
      },
      motion: (dx, dy) => this.#relativeMotion(dx, dy),
    });
    const seat = desktop.globals.seat;
    seat?.on({
      capabilities: (caps) => {
        desktop.seatCapabilities = caps;
        this.#capabilities(caps);
      },
    });
    if (seat) this.#capabilities(desktop.seatCapabilities);
  }

  /** Whether the window has the desktop's keyboard focus. */
  get focused(): boolean {
    return this.#focused;
  }

  /** The desktop's touch into the guest, while the seat has touch. */
  get touch(): WindowTouch | null {
    return this.#touch;
  }

  /** The guest's cursor (tests). */
  get cursor(): WindowCursor | null {
    return this.#cursor;
  }

  #capabilities(caps: number): void {
    if (this.#closed) return;
    const seat = this.#desktop.globals.seat!;
    const kb = (caps & WlSeatCapability.KEYBOARD) !== 0;
    const ptr = (caps & WlSeatCapability.POINTER) !== 0;
    if (kb && !this.#keyboard) this.#listenKeyboard((this.#keyboard = seat.getKeyboard()));
    if (!kb && this.#keyboard) this.#dropKeyboard();
    if (ptr && !this.#pointer) this.#listenPointer((this.#pointer = seat.getPointer()));
    if (!ptr && this.#pointer) this.#dropPointer();
    const touch = (caps & WlSeatCapability.TOUCH) !== 0;
    if (touch && !this.#touch) this.#touch = new WindowTouch(seat.getTouch(), this.#view, this.#target, this.#port, this.#held, this.#touchOpts);
    if (!touch && this.#touch) this.#dropTouch(true);
  }

  /** The seat lost touch (the points down end in the guest), or this input closes. */
  #dropTouch(live: boolean): void {
    this.#touch!.close(live);
    this.#touch = null;
  }

  // --- keyboard ---

  #listenKeyboard(k: WlKeyboard): void {
    k.on({
      keymap: (format, fd, size) => this.#keymapArrived(format, fd, size),
      enter: (_serial, surface) => (this.#focused = surface === this.#view.parent || surface === this.#view.guestSurface),
      leave: () => this.#focusLost(),
      key: (_serial, _time, key, state) => this.#key(key, state === WlKeyboardKeyState.PRESSED),
    });
  }

  #keymapArrived(format: number, fd: number, size: number): void {
    try {
      this.#keymap?.close();
      this.#keymap = null;
      if (format !== WlKeyboardKeymapFormat.XKB_V1) return this.#log('guestplane window: the desktop sent no XKB keymap: its key codes go to the guest as evdev codes');
      this.#keymap = new DesktopKeymap(readKeymapFd(fd, size));
    } catch (e) {
      this.#log(`guestplane window: the desktop's keymap is unusable (${(e as Error).message}): its key codes go to the guest as evdev codes`);
    } finally {
      libc.close(fd, 'desktop keymap fd');
    }
  }

  readonly #chordHandlers: ChordHandlers = { grab: () => this.#toggleCapture(), quit: () => {}, vt: () => {} };

  #key(key: number, pressed: boolean): void {
    const code = this.#keymap ? this.#keymap.evdevCode(key) : key;
    if (code === null) return;
    if (pressed && !this.#focused) return;
    if (!passKey(this.#chords, code, pressed, this.#chordHandlers)) return;
    this.counts.keys++;
    this.#held.key(pressed ? this.#port : null, code, pressed);
  }

  #focusLost(): void {
    this.#focused = false;
    this.#chords.clear();
    this.#releaseAll();
  }

  /** Lets the guest go of every key and button held through this window. */
  #releaseAll(): void {
    this.#held.release();
  }

  #dropKeyboard(): void {
    this.#focusLost();
    const k = this.#keyboard!;
    this.#keyboard = null;
    if (k.version >= 3) k.release();
    else k.destroyProxy();
  }

  // --- pointer ---

  #listenPointer(p: WlPointer): void {
    const framed = p.version >= 5;
    p.on({
      enter: (serial, surface, x, y) => this.#enter(p, serial, surface, x, y),
      leave: () => this.#leave(),
      motion: (_time, x, y) => this.#motion(x, y),
      button: (_serial, _time, button, state) => this.#button(button, state === WlPointerButtonState.PRESSED),
      axis: (_time, axis, value) => {
        if (axis !== WlPointerAxis.VERTICAL_SCROLL) return;
        this.#axis.units += value;
        if (!framed) this.#axisFrame();
      },
      axisDiscrete: (axis, discrete) => {
        if (axis === WlPointerAxis.VERTICAL_SCROLL) this.#axis.v120 = (this.#axis.v120 ?? 0) + discrete * 120;
      },
      axisValue120: (axis, v120) => {
        if (axis === WlPointerAxis.VERTICAL_SCROLL) this.#axis.v120 = (this.#axis.v120 ?? 0) + v120;
      },
      frame: () => this.#axisFrame(),
    });
  }

  #enter(p: WlPointer, serial: number, surface: WlSurface | null, x: number, y: number): void {
    if (surface !== this.#view.parent && surface !== this.#view.guestSurface) return;
    this.#over = surface;
    this.#askAbsolute();
    this.#cursor?.entered(p, serial);
    this.#updateCursor();
    this.#motion(x, y);
  }

  #leave(): void {
    this.#over = null;
    this.#cursor?.entered(null);
    // Buttons held as the pointer leaves would never see their release here.
    this.#releaseButtons();
  }

  #releaseButtons(): void {
    for (const b of Object.values(BUTTONS)) if (this.#held.isHeld(b)) this.#held.button(null, b, false);
  }

  /** The pointer at (x, y) on the surface it is over, as a point on the window. */
  #motion(x: number, y: number): void {
    if (!this.#over || this.#capture.captured) return;
    const g = windowToGuest(this.#view, this.#over, x, y);
    if (!g) return;
    this.counts.motions++;
    this.#port.moveTo(g.at);
  }

  #button(code: number, pressed: boolean): void {
    const b = BUTTONS[code];
    if (!b || (pressed && !this.#over)) return;
    // A relative guest: the click captures the pointer and is not the guest's (its release finds nothing held).
    if (pressed && this.#absolute === false && !this.#capture.pending && this.#capture.possible) return this.#startCapture();
    this.counts.buttons++;
    this.#held.button(pressed ? this.#port : null, b, pressed);
  }

  #axisFrame(): void {
    const { v120, units } = this.#axis;
    this.#axis = { v120: null, units: 0 };
    if (!this.#over) return;
    const add = v120 ?? (units * 120) / AXIS_PER_DETENT;
    if (!add) return;
    const before = this.#scroll;
    this.#scroll = wheel(this.#port, this.#scroll + add);
    this.counts.detents += Math.round(Math.abs(before + add - this.#scroll) / 120);
  }

  #dropPointer(): void {
    this.#capture.release(); // the lock and relative pointer hang off this wl_pointer
    this.#leave();
    const p = this.#pointer!;
    this.#pointer = null;
    if (p.version >= 3) p.release();
    else p.destroyProxy();
  }

  // --- capture (relative guests) ---

  #askAbsolute(): void {
    this.#isAbsolute?.()
      .then((a) => {
        if (this.#absolute === null && !a && this.#capture.possible) this.#log('guestplane window: the guest\'s mouse is relative: click in the window to capture the pointer, Ctrl+Alt+G releases it');
        this.#absolute = a;
      })
      .catch(() => {});
  }

  #startCapture(): void {
    if (!this.#pointer || !this.#over) return;
    const pic = this.#view.guestPicture();
    this.#capturedAt = this.#port.pointer ?? (pic ? { x: pic.width / 2, y: pic.height / 2 } : { x: 0, y: 0 });
    this.#capture.capture(this.#pointer, this.#over, this.#view.parent, this.#desktop.globals.seat);
  }

  #toggleCapture(): void {
    if (this.#capture.pending) return this.#capture.release();
    if (this.#absolute === false && this.#capture.possible) this.#startCapture();
  }

  #relativeMotion(dx: number, dy: number): void {
    const pic = this.#view.guestPicture();
    if (!pic) return;
    const at = this.#capturedAt;
    this.#capturedAt = { x: Math.min(Math.max(at.x + dx, 0), pic.width - 1), y: Math.min(Math.max(at.y + dy, 0), pic.height - 1) };
    this.counts.motions++;
    this.#port.moveTo({ x: Math.round(this.#capturedAt.x), y: Math.round(this.#capturedAt.y) }, { dx, dy });
  }

  /** Whether the pointer is captured (a relative guest). */
  get captured(): boolean {
    return this.#capture.captured;
  }

  // --- cursor ---

  #updateCursor(): void {
    if (!this.#cursor || this.#closed) return;
    const pic = this.#view.guestPicture();
    const scale = pic ? placement(this.#view.fit, pic.width, pic.height, this.#view.width, this.#view.height) : null;
    this.#cursor.update(this.#cursorSource, scale ? scale.dst.width / scale.src.width : 1);
  }

  /** Releases what the guest holds through this window and lets go of the desktop's input devices. */
  close(): void {
    if (this.#closed) return;
    this.#releaseAll();
    this.#capture.release();
    this.#closed = true;
    this.#unlisten();
    const live = !this.#desktop.connection.closed;
    if (live && this.#keyboard) this.#dropKeyboard();
    if (live && this.#pointer) this.#dropPointer();
    if (this.#touch) this.#dropTouch(live);
    this.#cursor?.destroy();
    this.#keymap?.close();
    this.#keymap = null;
  }
}
