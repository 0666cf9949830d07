// Host input into a guest (the kiosk): keys as they are (evdev codes; the guest source
// turns them into its own numbers), buttons and wheel, and a pointer that lives on the
// host screen and is mapped through the output's fit/fill placement into guest pixels, so
// the guest's pointer lands under the host's.
//
// Chords (documented in the README and the CLI help): Ctrl+Alt+G releases the keyboard
// and pointer to the host and takes them back; Ctrl+Alt+Q quits the kiosk; Ctrl+Alt+F1…F12
// switches to that VT when the kiosk runs on a seat (the kernel's own VT keys are off
// then). A chord's own key is not sent; releasing the grab or losing the seat releases
// every key and button the guest holds down.
import type { InputEvent } from './devices.js';
import type { QemuButton } from '../sources/qemu-dbus.js';
import { placement, type FitMode } from '../geometry.js';

export interface InputTarget {
  key(evdevCode: number, down: boolean): Promise<void>;
  button(button: QemuButton, down: boolean): Promise<void>;
  /**
   * The pointer to guest pixel (x, y). A guest that takes only relative motion gets `rel`
   * where given (the device's unaccelerated counts: the guest accelerates them itself),
   * else the move from `from`.
   */
  pointerTo(x: number, y: number, from?: { x: number; y: number }, rel?: { dx: number; dy: number }): Promise<void>;
}

export interface Geometry {
  screen: { width: number; height: number };
  /** The guest picture's size (its primary plane), null while there is none. */
  guest(): { width: number; height: number } | null;
  fit: FitMode;
}

const KEY_LEFTCTRL = 29;
const KEY_RIGHTCTRL = 97;
const KEY_LEFTALT = 56;
const KEY_RIGHTALT = 100;
const KEY_G = 34;
const KEY_Q = 16;
/** KEY_F1…KEY_F10 are 59…68, KEY_F11 87, KEY_F12 88. */
function functionKey(code: number): number {
  if (code >= 59 && code <= 68) return code - 58;
  return code === 87 ? 11 : code === 88 ? 12 : 0;
}
const BUTTONS: Record<number, QemuButton> = { 0x110: 'left', 0x111: 'right', 0x112: 'middle', 0x113: 'side', 0x114: 'extra' };

export class GuestInput {
  #pointer: { x: number; y: number };
  #guestPointer: { x: number; y: number } | null = null;
  readonly #down = new Set<number>();
  readonly #buttons = new Set<QemuButton>();
  #grabbed = true;
  #scroll = 0;
  readonly #touches = new Map<number, boolean>();

  constructor(
    private readonly target: InputTarget,
    private readonly geo: Geometry,
    private readonly actions: { quit(): void; grab?(grabbed: boolean): void; switchSession?(vt: number): void; error(e: Error): void },
  ) {
    this.#pointer = { x: geo.screen.width / 2, y: geo.screen.height / 2 };
  }

  get grabbed(): boolean {
    return this.#grabbed;
  }

  /** Host pointer position on the screen. */
  get pointer(): { x: number; y: number } {
    return { ...this.#pointer };
  }

  handle(e: InputEvent): void {
    switch (e.kind) {
      case 'key':
        return this.#key(e.code, e.pressed);
      case 'motion':
        return this.#moveTo(this.#pointer.x + e.dx, this.#pointer.y + e.dy, { dx: e.dxRaw, dy: e.dyRaw });
      case 'absolute':
        return this.#moveTo(e.x * this.geo.screen.width, e.y * this.geo.screen.height);
      case 'button': {
        const b = BUTTONS[e.button];
        if (!b || !this.#grabbed) return;
        if (e.pressed) this.#buttons.add(b);
        else this.#buttons.delete(b);
        this.#send(this.target.button(b, e.pressed));
        return;
      }
      case 'scroll': {
        if (e.axis !== 'vertical' || !this.#grabbed) return;
        // Whole detents only (high-resolution wheels send fractions).
        this.#scroll += e.v120;
        while (Math.abs(this.#scroll) >= 120) {
          const b: QemuButton = this.#scroll > 0 ? 'wheel-down' : 'wheel-up';
          this.#send(this.target.button(b, true));
          this.#send(this.target.button(b, false));
          this.#scroll -= Math.sign(this.#scroll) * 120;
        }
        return;
      }
      case 'touch': {
        // One finger as the pointer: down = move there and press, up = release.
        if (e.phase === 'down' || e.phase === 'motion') this.#moveTo(e.x * this.geo.screen.width, e.y * this.geo.screen.height);
        if (e.phase === 'down' && this.#touches.size === 0 && this.#grabbed) this.#send(this.target.button('left', true));
        if (e.phase === 'down') this.#touches.set(e.slot, true);
        if (e.phase === 'up' || e.phase === 'cancel') {
          if (e.phase === 'up') this.#touches.delete(e.slot);
          else this.#touches.clear();
          if (this.#touches.size === 0 && this.#grabbed) this.#send(this.target.button('left', false));
        }
        return;
      }
    }
  }

  #key(code: number, pressed: boolean): void {
    const ctrl = this.#down.has(KEY_LEFTCTRL) || this.#down.has(KEY_RIGHTCTRL);
    const alt = this.#down.has(KEY_LEFTALT) || this.#down.has(KEY_RIGHTALT);
    const vt = functionKey(code);
    if (pressed && ctrl && alt && vt && this.actions.switchSession) {
      this.#chordKeys.add(code);
      this.actions.switchSession(vt);
      return;
    }
    if (pressed && ctrl && alt && (code === KEY_G || code === KEY_Q)) {
      if (code === KEY_Q) return this.actions.quit();
      this.#grabbed = !this.#grabbed;
      if (!this.#grabbed) this.#releaseGuest();
      this.actions.grab?.(this.#grabbed);
      return;
    }
    if (pressed) this.#down.add(code);
    else if (!this.#down.delete(code) && (code === KEY_G || code === KEY_Q || this.#chordKeys.delete(code))) return; // the chord key's release
    if (this.#grabbed) this.#send(this.target.key(code, pressed));
  }

  readonly #chordKeys = new Set<number>();

  /**
   * Lets go of everything the guest holds down: keys, buttons, a touch. Called when the
   * grab is released and when the seat goes to another session (the keys' releases would
   * never come: the devices are closed meanwhile).
   */
  releaseAll(): void {
    if (this.#grabbed) this.#releaseGuest();
    this.#down.clear();
    this.#touches.clear();
  }

  #releaseGuest(): void {
    for (const k of this.#down) this.#send(this.target.key(k, false));
    if (this.#touches.size) this.#buttons.add('left');
    for (const b of this.#buttons) this.#send(this.target.button(b, false));
    this.#buttons.clear();
  }

  #moveTo(x: number, y: number, rel?: { dx: number; dy: number }): void {
    const before = this.#pointer;
    this.#pointer = { x: Math.min(Math.max(x, 0), this.geo.screen.width - 1), y: Math.min(Math.max(y, 0), this.geo.screen.height - 1) };
    if (!this.#grabbed) return;
    const g = this.toGuest(this.#pointer);
    if (!g) return;
    // Before the first move the guest's pointer is taken to be under the host's (a relative
    // guest then gets the first motion in full).
    const from = this.#guestPointer ?? this.toGuest(before) ?? g;
    if (g.x === from.x && g.y === from.y && !(rel && (rel.dx || rel.dy))) return;
    this.#send(this.target.pointerTo(g.x, g.y, from, rel));
    this.#guestPointer = g;
  }

  /** A host screen position in guest pixels (clamped into the picture), null without a picture. */
  toGuest(p: { x: number; y: number }): { x: number; y: number } | null {
    const gs = this.geo.guest();
    if (!gs) return null;
    const pl = placement(this.geo.fit, gs.width, gs.height, this.geo.screen.width, this.geo.screen.height);
    const x = pl.src.x + ((p.x - pl.dst.x) * pl.src.w) / pl.dst.w;
    const y = pl.src.y + ((p.y - pl.dst.y) * pl.src.h) / pl.dst.h;
    return { x: Math.round(Math.min(Math.max(x, 0), gs.width - 1)), y: Math.round(Math.min(Math.max(y, 0), gs.height - 1)) };
  }

  #send(p: Promise<void>): void {
    p.catch((e: Error) => this.actions.error(e));
  }
}
