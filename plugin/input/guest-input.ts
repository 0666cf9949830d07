// Host input into one guest (the single-guest kiosk): keys as they are (evdev codes; the
// guest source turns them into its own numbers), buttons and wheel, and a pointer that
// lives on the host screen and is mapped through the output's fit/fill placement into
// guest pixels, so the guest's pointer lands under the host's. The pieces (chords, the
// mapping, what is held where) are shared with the multi-head router (heads-router.ts).
//
// Touch (touch.ts, shared with the window): one finger as the pointer, or, with `multiTouch`
// (kiosk --touch multitouch), every finger its own slot of QEMU's MultiTouch.
//
// Chords (documented in the README and the CLI help): Ctrl+Alt+G releases the keyboard
// and pointer to the host and takes them back; Ctrl+Alt+Q quits the kiosk; Ctrl+Alt+F1…F12
// switches to that VT when the kiosk runs on a seat (the kernel's own VT keys are off
// then). A chord's own key is not sent; releasing the grab or losing the seat releases
// every key and button the guest holds down.
import type { InputEvent } from './devices.js';
import type { FitMode } from '../geometry.js';
import { Chords, passKey, type ChordHandlers, type ChordName } from './chords.js';
import { BUTTONS, GuestPort, Held, toGuestPoint, wheel, type InputTarget, type Point } from './guest-port.js';
import { GuestTouch } from './touch.js';

export type { InputTarget } from './guest-port.js';

export interface Geometry {
  screen: { width: number; height: number };
  /** The guest picture's size (its primary plane), null while there is none. */
  guest(): { width: number; height: number } | null;
  fit: FitMode;
}

export interface GuestInputActions {
  quit(): void;
  grab?(grabbed: boolean): void;
  switchSession?(vt: number): void;
  error(e: Error): void;
}

export class GuestInput {
  #pointer: Point;
  readonly #port: GuestPort;
  readonly #held = new Held();
  readonly #chords: Chords;
  #grabbed = true;
  #scroll = 0;
  /** Touch points (normalised screen positions): as the pointer, or MultiTouch slots (touch.ts). */
  readonly #touch: GuestTouch<{ x: number; y: number }>;

  constructor(
    readonly target: InputTarget,
    private readonly geo: Geometry,
    private readonly actions: GuestInputActions,
    opts: { chords?: readonly ChordName[]; multiTouch?: boolean } = {},
  ) {
    this.#pointer = { x: geo.screen.width / 2, y: geo.screen.height / 2 };
    this.#port = new GuestPort(target, (e) => actions.error(e));
    this.#chords = new Chords(!!actions.switchSession, true, opts.chords);
    const onScreen = (p: Point): Point => ({ x: p.x * geo.screen.width, y: p.y * geo.screen.height });
    this.#touch = new GuestTouch(
      {
        toGuest: (p) => this.toGuest(onScreen(p)),
        pointerTo: (p) => {
          const s = onScreen(p);
          this.#moveTo(s.x, s.y);
        },
        press: (b, down) => this.#held.button(down && this.#grabbed ? this.#port : null, b, down),
        ...(target.touch ? { send: target.touch.bind(target) } : {}),
        error: (e) => actions.error(e),
      },
      !!opts.multiTouch,
    );
  }

  get grabbed(): boolean {
    return this.#grabbed;
  }

  /** Host pointer position on the screen. */
  get pointer(): Point {
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
        if (b && (this.#grabbed || !e.pressed)) this.#held.button(this.#grabbed ? this.#port : null, b, e.pressed);
        return;
      }
      case 'scroll':
        if (e.axis === 'vertical' && this.#grabbed) this.#scroll = wheel(this.#port, this.#scroll + e.v120);
        return;
      case 'touch':
        if (e.phase === 'down') return this.#touch.start(e.slot, e, this.#grabbed);
        if (e.phase === 'motion') return this.#touch.move(e.slot, e);
        return e.phase === 'up' ? this.#touch.end(e.slot) : this.#touch.cancel();
    }
  }

  readonly #chordHandlers: ChordHandlers = {
    quit: () => this.actions.quit(),
    vt: (vt) => this.actions.switchSession?.(vt),
    grab: () => {
      this.#grabbed = !this.#grabbed;
      if (!this.#grabbed) this.#touch.cancel();
      if (!this.#grabbed) this.#held.release();
      this.actions.grab?.(this.#grabbed);
    },
  };

  #key(code: number, pressed: boolean): void {
    if (!passKey(this.#chords, code, pressed, this.#chordHandlers)) return;
    this.#held.key(this.#grabbed ? this.#port : null, code, pressed);
  }

  /**
   * Lets go of everything the guest holds down: keys, buttons, a touch. Called when the
   * grab is released and when the seat goes to another session (the keys' releases would
   * never come: the devices are closed meanwhile).
   */
  releaseAll(): void {
    this.#touch.cancel();
    this.#held.release();
    this.#chords.clear();
  }

  #moveTo(x: number, y: number, rel?: { dx: number; dy: number }): void {
    const before = this.#pointer;
    this.#pointer = { x: Math.min(Math.max(x, 0), this.geo.screen.width - 1), y: Math.min(Math.max(y, 0), this.geo.screen.height - 1) };
    if (!this.#grabbed) return;
    const g = this.toGuest(this.#pointer);
    if (g) this.#port.moveTo(g, rel, this.toGuest(before));
  }

  /** A host screen position in guest pixels (clamped into the picture), null without a picture. */
  toGuest(p: Point): Point | null {
    const gs = this.geo.guest();
    return gs ? toGuestPoint(p, this.geo.screen, gs, this.geo.fit) : null;
  }
}
