// Forwarding into one guest, shared by the single-guest kiosk (guest-input.ts) and the
// multi-head router (heads-router.ts):
//  - toGuestPoint: a point on the area a picture is shown in → guest pixels, through the
//    same fit/fill placement the output uses, so the guest's pointer lands under the host's;
//  - GuestPort: one guest's input channel, remembering where the guest's pointer is (a
//    relative guest is moved by differences, so the last position sent matters);
//  - Held: what one stream of host input holds down, and in which guest. A release goes to
//    the guest the press went to, and letting go (grab released, seat lost, focus moved to
//    another guest) releases there what is held, so no guest is left with a stuck key.
import type { QemuButton, TouchKind } from '../sources/qemu-dbus.js';
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
  /** A touch point (slot) at guest pixel (x, y), where the guest takes touch (QEMU's MultiTouch). */
  touch?(kind: TouchKind, slot: number, x: number, y: number): Promise<void>;
}

export interface Size {
  width: number;
  height: number;
}

export interface Point {
  x: number;
  y: number;
}

/** evdev button codes → QEMU's buttons. */
export const BUTTONS: Readonly<Record<number, QemuButton>> = { 0x110: 'left', 0x111: 'right', 0x112: 'middle', 0x113: 'side', 0x114: 'extra' };

/**
 * A point `p` on an area of size `area` (relative to its corner) in pixels of a picture of
 * size `picture` shown there with `fit`; clamped into the picture (outside it, the guest's
 * pointer stays on its edge).
 */
export function toGuestPoint(p: Point, area: Size, picture: Size, fit: FitMode): Point {
  const pl = placement(fit, picture.width, picture.height, area.width, area.height);
  const x = pl.src.x + ((p.x - pl.dst.x) * pl.src.width) / pl.dst.width;
  const y = pl.src.y + ((p.y - pl.dst.y) * pl.src.height) / pl.dst.height;
  return { x: Math.round(Math.min(Math.max(x, 0), picture.width - 1)), y: Math.round(Math.min(Math.max(y, 0), picture.height - 1)) };
}

export class GuestPort {
  #pointer: Point | null = null;

  constructor(
    readonly target: InputTarget,
    private readonly onError: (e: Error) => void,
  ) {}

  /** Where the guest's pointer was sent last (null before the first move). */
  get pointer(): Point | null {
    return this.#pointer ? { ...this.#pointer } : null;
  }

  key(code: number, down: boolean): void {
    this.#send(this.target.key(code, down));
  }

  button(b: QemuButton, down: boolean): void {
    this.#send(this.target.button(b, down));
  }

  /**
   * The guest's pointer to `g`. Before the first move the guest's pointer is taken to be
   * at `fromHint` (under the host's), so a relative guest gets the first motion in full;
   * without a hint either, nothing is known of it: an absolute guest is put at `g`, a
   * relative one gets `rel` alone.
   */
  moveTo(g: Point, rel?: { dx: number; dy: number }, fromHint?: Point | null): void {
    const from = this.#pointer ?? fromHint ?? undefined;
    if (from && g.x === from.x && g.y === from.y && !(rel && (rel.dx || rel.dy))) return;
    this.#send(this.target.pointerTo(g.x, g.y, from, rel));
    this.#pointer = g;
  }

  #send(p: Promise<void>): void {
    p.catch((e: Error) => this.onError(e));
  }
}

export class Held {
  readonly #keys = new Map<number, GuestPort>();
  readonly #buttons = new Map<QemuButton, GuestPort>();

  /** A press goes to `port` (none: dropped); a release to where the press went, if it is still held. */
  key(port: GuestPort | null, code: number, down: boolean): void {
    if (down) {
      if (!port) return;
      this.#keys.set(code, port);
      port.key(code, true);
      return;
    }
    const p = this.#keys.get(code);
    if (!p) return;
    this.#keys.delete(code);
    p.key(code, false);
  }

  button(port: GuestPort | null, b: QemuButton, down: boolean): void {
    if (down) {
      if (!port) return;
      this.#buttons.set(b, port);
      port.button(b, true);
      return;
    }
    const p = this.#buttons.get(b);
    if (!p) return;
    this.#buttons.delete(b);
    p.button(b, false);
  }

  isHeld(b: QemuButton): boolean {
    return this.#buttons.has(b);
  }

  /** Releases everything held (in `port` only, when given): keys first, then buttons. */
  release(port?: GuestPort | null): void {
    for (const [code, p] of [...this.#keys]) {
      if (port !== undefined && p !== port) continue;
      this.#keys.delete(code);
      p.key(code, false);
    }
    for (const [b, p] of [...this.#buttons]) {
      if (port !== undefined && p !== port) continue;
      this.#buttons.delete(b);
      p.button(b, false);
    }
  }
}

/** Wheel detents into a guest: whole detents only (high-resolution wheels send fractions); returns what is left over. */
export function wheel(port: GuestPort | null, acc: number): number {
  while (Math.abs(acc) >= 120) {
    const b: QemuButton = acc > 0 ? 'wheel-down' : 'wheel-up';
    port?.button(b, true);
    port?.button(b, false);
    acc -= Math.sign(acc) * 120;
  }
  return acc;
}
