// wl_keyboard of the kiosk's seat: the keymap (xkbcommon's text in a sealed memfd, format
// xkb_v1), the focus (the shown toplevel's surface: enter with the keys held, leave),
// keys and the modifier state xkbcommon keeps from them, and the repeat rate (clients
// repeat keys themselves).
//
// Ownership: owns its Keymap (xkb context, keymap, state) and the keymap memfd; clients get
// duplicates of the fd (libwayland dups on send). close() frees both.
import * as libc from '../../ffi/libc.js';
import type { Client } from '../../protocols/runtime.js';
import { WlKeyboardKeyState, WlKeyboardKeymapFormat, type WlKeyboard } from '../../protocols/generated/wayland.js';
import { Keymap, type ModifierState, type RuleNames } from '../input/keymap.js';
import type { Surface } from './surface.js';

/** Keys repeat 25 times a second after 600 ms (what sway and weston default to). */
export const REPEAT_RATE = 25;
export const REPEAT_DELAY_MS = 600;

/** The serials and the clock the seat hands out. */
export interface SeatClock {
  serial(): number;
  /** Milliseconds, wrapping at 2^32, as the protocol's `time` arguments. */
  time(): number;
  /** `serial` went to `client` in an input event (enter, key, button, touch down): a grab may quote it. */
  given?(client: Client, serial: number): void;
}

/** The pressed keys as wl_keyboard.enter's array (uint32 evdev codes, host byte order). */
export function keysArray(keys: Iterable<number>): Uint8Array {
  const list = [...keys];
  const out = new Uint8Array(list.length * 4);
  const view = new DataView(out.buffer);
  list.forEach((k, i) => view.setUint32(i * 4, k, true));
  return out;
}

export function sameModifiers(a: ModifierState, b: ModifierState): boolean {
  return a.depressed === b.depressed && a.latched === b.latched && a.locked === b.locked && a.group === b.group;
}

export class SeatKeyboard {
  readonly keymap: Keymap;
  readonly #fd: number;
  readonly #size: number;
  /** Live wl_keyboard resources (the seat drops those of a capability removed since). */
  readonly #resources = new Set<WlKeyboard>();
  readonly #down = new Set<number>();
  #mods: ModifierState;
  #focus: Surface | null = null;

  constructor(
    names: RuleNames,
    private readonly clock: SeatClock,
  ) {
    this.keymap = new Keymap(names);
    this.#mods = this.keymap.modifiers();
    const text = Buffer.from(`${this.keymap.text}\0`, 'utf8');
    const fd = libc.memfdCreate('guestplane-keymap', libc.MFD_ALLOW_SEALING);
    try {
      libc.pwrite(fd, text, 0, 'keymap memfd');
      // Sealed: every client maps the same file, none can change or shrink it under the others.
      const F_SEAL_WRITE = 0x0008;
      libc.fcntl(fd, libc.F_ADD_SEALS, libc.F_SEAL_SHRINK | libc.F_SEAL_GROW | F_SEAL_WRITE | libc.F_SEAL_SEAL, 'keymap memfd');
    } catch (e) {
      libc.close(fd, 'keymap memfd');
      this.keymap.close();
      throw e;
    }
    this.#fd = fd;
    this.#size = text.length;
  }

  get focus(): Surface | null {
    return this.#focus;
  }
  get pressed(): number[] {
    return [...this.#down];
  }

  /** A new live wl_keyboard: keymap, repeat info, and enter when its client has the focus. */
  add(r: WlKeyboard): void {
    this.#resources.add(r);
    r.onDestroy(() => this.#resources.delete(r));
    r.sendKeymap(WlKeyboardKeymapFormat.XKB_V1, this.#fd, this.#size);
    if (r.version >= 4) r.sendRepeatInfo(REPEAT_RATE, REPEAT_DELAY_MS);
    const f = this.#focus;
    if (f && !f.resource.destroyed && f.resource.client === r.client) this.#enter([r], f);
  }

  /** The capability went: these resources get no more events (the client should release them). */
  dropAll(): void {
    this.#resources.clear();
  }

  #of(client: Client): WlKeyboard[] {
    return [...this.#resources].filter((r) => r.client === client && !r.destroyed);
  }

  /** Moves the keyboard focus (null: nobody). A destroyed surface gets no leave: its client knows. */
  setFocus(s: Surface | null): void {
    if (s === this.#focus) return;
    const old = this.#focus;
    this.#focus = s;
    if (old && !old.resource.destroyed) {
      const serial = this.clock.serial();
      for (const r of this.#of(old.resource.client)) r.sendLeave(serial, old.resource);
    }
    if (s && !s.resource.destroyed) this.#enter(this.#of(s.resource.client), s);
  }

  #enter(rs: WlKeyboard[], s: Surface): void {
    if (rs.length === 0) return;
    const serial = this.clock.serial();
    const keys = keysArray(this.#down);
    this.clock.given?.(s.resource.client, serial);
    for (const r of rs) r.sendEnter(serial, s.resource, keys);
    const m = this.#mods;
    const mserial = this.clock.serial();
    for (const r of rs) r.sendModifiers(mserial, m.depressed, m.latched, m.locked, m.group);
  }

  /**
   * A key went down or up on any keyboard of the seat. A press of a key already down (a
   * second keyboard) or a release of one that is not is dropped: clients see each key once.
   */
  key(code: number, pressed: boolean): void {
    if (pressed ? this.#down.has(code) : !this.#down.has(code)) return;
    if (pressed) this.#down.add(code);
    else this.#down.delete(code);
    const mods = this.keymap.key(code, pressed);
    const f = this.#focus;
    const rs = f && !f.resource.destroyed ? this.#of(f.resource.client) : [];
    if (rs.length) {
      const serial = this.clock.serial();
      const time = this.clock.time();
      this.clock.given?.(f!.resource.client, serial);
      for (const r of rs) r.sendKey(serial, time, code, pressed ? WlKeyboardKeyState.PRESSED : WlKeyboardKeyState.RELEASED);
    }
    if (sameModifiers(mods, this.#mods)) return;
    this.#mods = mods;
    if (rs.length) {
      const serial = this.clock.serial();
      for (const r of rs) r.sendModifiers(serial, mods.depressed, mods.latched, mods.locked, mods.group);
    }
  }

  close(): void {
    this.#resources.clear();
    libc.close(this.#fd, 'keymap memfd');
    this.keymap.close();
  }
}
