// The kiosk's key chords, read off the host's key stream before any key goes to a guest:
// Ctrl+Alt+G (grab toggle), Ctrl+Alt+Q (quit), Ctrl+Alt+F1…F12 (VT switch, on a seat).
// A chord's own key never reaches a guest, nor does its release; Ctrl and Alt do (the
// guest sees them go down, and up when the grab or the seat lets go).
//
// Kept apart from the routing so the single-guest kiosk and the multi-head router read
// chords the same way, whatever guest the keys then go to.

export type ChordAction = { kind: 'quit' } | { kind: 'grab' } | { kind: 'vt'; vt: number };

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

export class Chords {
  /** Host keys down now, whichever guest (if any) they went to: Ctrl and Alt are read here. */
  readonly #down = new Set<number>();
  /** Chord keys pressed: their release is the chord's too, and is dropped. */
  readonly #swallowed = new Set<number>();

  /**
   * vtSwitch: Ctrl+Alt+Fn is a chord only on a seat (without one the kernel switches itself).
   * kiosk: Ctrl+Alt+Q and Ctrl+Alt+G are chords (the guest kiosks'); in the Wayland
   * compositor they are keys for the client, press and release alike.
   */
  constructor(
    private readonly vtSwitch: boolean,
    private readonly kiosk = true,
  ) {}

  /** 'send': pass the key on; 'drop': it belongs to a chord; else the chord pressed. */
  key(code: number, pressed: boolean): 'send' | 'drop' | ChordAction {
    if (pressed && this.#modifiers()) {
      const vt = functionKey(code);
      const action: ChordAction | null = vt && this.vtSwitch ? { kind: 'vt', vt } : !this.kiosk ? null : code === KEY_Q ? { kind: 'quit' } : code === KEY_G ? { kind: 'grab' } : null;
      if (action) {
        this.#swallowed.add(code);
        return action;
      }
    }
    if (pressed) {
      this.#down.add(code);
      this.#swallowed.delete(code);
      return 'send';
    }
    if (this.#down.delete(code)) return 'send';
    return this.#swallowed.delete(code) ? 'drop' : 'send';
  }

  /** The devices went away (seat lost): no releases will come for what is down now. */
  clear(): void {
    this.#down.clear();
  }

  #modifiers(): boolean {
    const ctrl = this.#down.has(KEY_LEFTCTRL) || this.#down.has(KEY_RIGHTCTRL);
    const alt = this.#down.has(KEY_LEFTALT) || this.#down.has(KEY_RIGHTALT);
    return ctrl && alt;
  }
}

/** What a kiosk does on each chord; `vt` absent: Ctrl+Alt+Fn are keys like others. */
export interface ChordHandlers {
  quit(): void;
  grab(): void;
  vt?(vt: number): void;
}

/**
 * One host key through the chords: runs the chord's handler and returns false when the
 * key belongs to a chord, true when it is to be passed on. The kiosk, the multi-head
 * router and the compositor all read keys this way.
 */
export function passKey(chords: Chords, code: number, pressed: boolean, h: ChordHandlers): boolean {
  const c = chords.key(code, pressed);
  if (c === 'send') return true;
  if (c === 'drop') return false;
  if (c.kind === 'vt') h.vt?.(c.vt);
  else if (c.kind === 'quit') h.quit();
  else h.grab();
  return false;
}
