// Touch into one guest, shared by the kiosk (guest-input.ts: libinput's touch points) and
// the window (window/input.ts: the desktop's wl_touch). Two ways in:
//  - pointer: one finger is the guest's pointer (down = move there and press the left
//    button, every finger moves it, the last one up releases): any guest takes that;
//  - multitouch: every touch point its own slot of QEMU's MultiTouch (8.1+), at its place
//    in guest pixels; the guest needs a touch device (e.g. -device virtio-multitouch-pci),
//    which QEMU does not tell (it offers MultiTouch on every console), so it is the user's
//    choice. If QEMU refuses it (7.x has no MultiTouch: an error reply, MultiTouchRefused),
//    touch falls back to the pointer; a call lost with the connection changes nothing.
//
// Touch point ids are the caller's (libinput's seat slots, a desktop's wl_touch ids: any
// int32); each down takes the lowest free slot of QEMU's 10 (INPUT_EVENT_SLOTS_MAX) and a
// point beyond those is not sent, so no id can make QEMU refuse a slot.
//
// A cancelled point is ended with MultiTouch 'end', not 'cancel': QEMU's
// console_handle_touch_event resets a slot's tracking id only on END, and a virtio touch
// device passes CANCEL on with the contact's tracking id still set, so the guest's finger
// would stay down; QEMU's own GTK display ends cancelled touches the same way.
import type { QemuButton } from '../sources/qemu-dbus.js';
import { MAX_TOUCH_SLOTS, MultiTouchRefused, type TouchKind } from '../sources/qemu-dbus-protocol.js';
import type { Point } from './guest-port.js';

/** Where a stream of touch points goes besides MultiTouch: the caller's pointer path and mapping. */
export interface TouchRoute<P> {
  /** A point in guest pixels (for MultiTouch), null while there is no picture. */
  toGuest(p: P): Point | null;
  /** One finger as the pointer: the guest's pointer to `p`, through the caller's own pointer path. */
  pointerTo(p: P): void;
  /** …and the pointer's left button (the caller's Held: released where it was pressed). */
  press(button: QemuButton, down: boolean): void;
  /** QEMU's MultiTouch, where the target has it. */
  send?(kind: TouchKind, slot: number, x: number, y: number): Promise<void>;
  error(e: Error): void;
}

export class GuestTouch<P> {
  /** Points down as the pointer (pointer way). */
  readonly #fingers = new Set<number>();
  /** MultiTouch: touch point id → its slot and where it was last sent (guest pixels). */
  readonly #slots = new Map<number, { slot: number; at: Point }>();
  #multiTouch: boolean;

  constructor(
    private readonly route: TouchRoute<P>,
    multiTouch: boolean,
  ) {
    this.#multiTouch = multiTouch && !!route.send;
  }

  /** Whether touch goes to MultiTouch (false: asked for the pointer, or QEMU refused). */
  get multiTouch(): boolean {
    return this.#multiTouch;
  }

  /** Points down in the guest (either way). */
  get down(): number {
    return this.#multiTouch ? this.#slots.size : this.#fingers.size;
  }

  /** A point goes down at `p`; `take`: the guest takes new input now (the kiosk's grab). */
  start(id: number, p: P, take = true): void {
    if (!this.#multiTouch) {
      this.route.pointerTo(p);
      if (this.#fingers.size === 0 && take) this.route.press('left', true);
      this.#fingers.add(id);
      return;
    }
    if (!take || this.#slots.has(id)) return;
    const slot = this.#freeSlot();
    const g = this.route.toGuest(p);
    if (slot === null || !g) return;
    this.#slots.set(id, { slot, at: g });
    this.#send('begin', slot, g);
  }

  move(id: number, p: P): void {
    if (!this.#multiTouch) return this.route.pointerTo(p);
    const s = this.#slots.get(id);
    const g = s && this.route.toGuest(p);
    if (!s || !g) return;
    s.at = g;
    this.#send('update', s.slot, g);
  }

  end(id: number): void {
    if (!this.#multiTouch) {
      this.#fingers.delete(id);
      if (this.#fingers.size === 0) this.route.press('left', false);
      return;
    }
    const s = this.#slots.get(id);
    if (!s) return;
    this.#slots.delete(id);
    this.#send('end', s.slot, s.at);
  }

  /** Every point is gone without its up (a cancel, the device or focus lost, the grab released). */
  cancel(): void {
    for (const s of this.#slots.values()) this.#send('end', s.slot, s.at);
    this.#slots.clear();
    if (this.#fingers.size > 0) this.route.press('left', false);
    this.#fingers.clear();
  }

  #freeSlot(): number | null {
    const taken = new Set([...this.#slots.values()].map((s) => s.slot));
    for (let i = 0; i < MAX_TOUCH_SLOTS; i++) if (!taken.has(i)) return i;
    return null;
  }

  #send(kind: TouchKind, slot: number, g: Point): void {
    this.route.send!(kind, slot, g.x, g.y).catch((err: Error) => {
      // Not QEMU's answer (the connection went): said as any input error, MultiTouch stays.
      if (!(err instanceof MultiTouchRefused)) return this.route.error(err);
      if (!this.#multiTouch) return;
      this.#multiTouch = false;
      this.#slots.clear();
      this.route.error(new Error(`MultiTouch refused (${err.message}); touch goes to the guest as its pointer from now on`));
    });
  }
}
