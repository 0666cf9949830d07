// wl_seat: the seat the clipboard and the host's input devices belong to. Its capabilities
// are what its devices give (the compositor says, on every device hot-add and removal, as
// wlroots does), sent to every wl_seat resource when they change.
//
// The protocol's rules for get_pointer/get_keyboard/get_touch (wayland.xml, wl_seat):
//  - on a seat that never had the capability: the missing_capability error;
//  - on a seat that had it once but not now: an object that gets no events;
//  - an object made before the latest time the capability was added gets no events (v5+
//    must not; for older ones the spec calls resuming a misinterpretation): so when a
//    capability goes, every object of it goes inert for good (dropAll), and only objects
//    made while the capability is there get events.
//
// Ownership: the seat owns its keyboard (keymap, keymap memfd); close() frees it.
import type { Client, Display, Global } from '../../protocols/runtime.js';
import { ProtocolViolation } from '../../protocols/runtime.js';
import { WlSeat, WlSeatCapability, WlSeatError } from '../../protocols/generated/wayland.js';
import type { RuleNames } from '../input/keymap.js';
import { callbackTime } from './surface.js';
import { SeatKeyboard, type SeatClock } from './keyboard.js';
import { SeatPointer } from './pointer.js';
import { SeatTouch } from './touch.js';

export const SEAT_NAME = 'seat0';
/** Input serials remembered per client for grabs (wlroots and Weston keep only the latest few). */
const SERIALS_KEPT = 64;

export interface SeatOptions {
  /** Keymap names (RMLVO; XKB_DEFAULT_* fill what is not given); false: no keyboard at all. */
  keymap?: RuleNames | false;
  log?: (m: string) => void;
}

const NAMES: [WlSeatCapability, string][] = [
  [WlSeatCapability.POINTER, 'pointer'],
  [WlSeatCapability.KEYBOARD, 'keyboard'],
  [WlSeatCapability.TOUCH, 'touch'],
];

export class Seat {
  readonly global: Global<WlSeat>;
  /** null: no keymap could be made (the seat then never has the keyboard capability). */
  readonly keyboard: SeatKeyboard | null;
  readonly pointer: SeatPointer;
  readonly touch: SeatTouch;
  readonly #seats = new Set<WlSeat>();
  #caps = 0;
  /** Every capability the seat ever had (get_* on one of these is no error). */
  #had = 0;

  constructor(display: Display, opts: SeatOptions = {}) {
    const clock: SeatClock = { serial: () => display.nextSerial(), time: () => callbackTime(), given: (c, s) => this.#given(c, s) };
    let keyboard: SeatKeyboard | null = null;
    if (opts.keymap !== false) {
      try {
        keyboard = new SeatKeyboard(opts.keymap ?? {}, clock);
      } catch (e) {
        opts.log?.(`no keyboard on the seat: ${(e as Error).message}`);
      }
    }
    this.keyboard = keyboard;
    this.pointer = new SeatPointer(clock);
    this.touch = new SeatTouch(clock);
    this.global = WlSeat.global(display, 8, (id) => {
      const seat = id.create({
        getPointer: (r, pid) => {
          this.#check(r, WlSeatCapability.POINTER);
          const p = pid.create(this.pointer.handlers());
          if (this.#caps & WlSeatCapability.POINTER) this.pointer.add(p);
        },
        getKeyboard: (r, kid) => {
          this.#check(r, WlSeatCapability.KEYBOARD);
          const k = kid.create({});
          if (this.#caps & WlSeatCapability.KEYBOARD) this.keyboard?.add(k);
        },
        getTouch: (r, tid) => {
          this.#check(r, WlSeatCapability.TOUCH);
          const t = tid.create({});
          if (this.#caps & WlSeatCapability.TOUCH) this.touch.add(t);
        },
      });
      this.#seats.add(seat);
      seat.onDestroy(() => this.#seats.delete(seat));
      seat.sendCapabilities(this.#caps as WlSeatCapability);
      if (seat.version >= 2) seat.sendName(SEAT_NAME);
    });
  }

  /** The latest input serials each client was given (xdg_popup.grab must quote one). */
  readonly #serials = new WeakMap<Client, number[]>();
  #given(client: Client, serial: number): void {
    const list = this.#serials.get(client) ?? [];
    list.push(serial);
    if (list.length > SERIALS_KEPT) list.shift();
    this.#serials.set(client, list);
  }
  /** Whether `serial` is one of the latest input serials the seat gave `client`. */
  inputSerial(client: Client, serial: number): boolean {
    return this.#serials.get(client)?.includes(serial) ?? false;
  }

  #check(r: WlSeat, cap: WlSeatCapability): void {
    if (this.#had & cap) return;
    const what = NAMES.find(([c]) => c === cap)![1];
    throw new ProtocolViolation(r, WlSeatError.MISSING_CAPABILITY, `${SEAT_NAME} has never had a ${what}`);
  }

  get capabilities(): WlSeatCapability {
    return this.#caps as WlSeatCapability;
  }

  /** The devices now give these capabilities (a keyboard only counts with a keymap). */
  setCapabilities(caps: { keyboard: boolean; pointer: boolean; touch: boolean }): void {
    const next = (caps.pointer ? WlSeatCapability.POINTER : 0) | (caps.keyboard && this.keyboard ? WlSeatCapability.KEYBOARD : 0) | (caps.touch ? WlSeatCapability.TOUCH : 0);
    if (next === this.#caps) return;
    const gone = this.#caps & ~next;
    if (gone & WlSeatCapability.POINTER) this.pointer.dropAll();
    if (gone & WlSeatCapability.KEYBOARD) this.keyboard?.dropAll();
    if (gone & WlSeatCapability.TOUCH) this.touch.dropAll();
    this.#caps = next;
    this.#had |= next;
    for (const s of this.#seats) if (!s.destroyed) s.sendCapabilities(next as WlSeatCapability);
  }

  close(): void {
    this.keyboard?.close();
    this.pointer.close();
    this.touch.close();
    this.#seats.clear();
  }
}
