// The kiosk's key chords, read off the host's key stream before any key goes to a guest:
// Ctrl+Alt+G (grab toggle), Ctrl+Alt+Q (quit), Ctrl+Alt+F1…F12 (VT switch, on a seat).
// A chord's own key never reaches a guest, nor does its release; Ctrl and Alt do (the
// guest sees them go down, and up when the grab or the seat lets go).
//
// Kept apart from the routing so the single-guest kiosk and the multi-head router read
// chords the same way, whatever guest the keys then go to.

export type ChordAction = { kind: 'quit' } | { kind: 'grab' } | { kind: 'vt'; vt: number };

/** The chords by name: Ctrl+Alt+Q, Ctrl+Alt+G, Ctrl+Alt+F1…F12. */
export type ChordName = 'quit' | 'grab' | 'vt';
export const CHORD_NAMES: readonly ChordName[] = ['quit', 'grab', 'vt'];

/**
 * A chord list as the command line gives it: 'all', 'none', or names joined by commas
 * ('quit,grab,vt', e.g. 'grab' for a kiosk that cannot be quit nor left for another VT).
 * Throws naming the word that is not a chord and the words that are.
 */
export function parseChords(s: string): ChordName[] {
  if (s === 'all') return [...CHORD_NAMES];
  if (s === 'none') return [];
  const names = s.split(',').map((w) => w.trim());
  for (const w of names) {
    if (!(CHORD_NAMES as readonly string[]).includes(w)) throw new Error(`'${w}' is not a chord: give all, none, or a comma-separated list of ${CHORD_NAMES.join(', ')}`);
  }
  return [...new Set(names as ChordName[])];
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

export class Chords {
  /** Host keys down now, whichever guest (if any) they went to: Ctrl and Alt are read here. */
  readonly #down = new Set<number>();
  /** Chord keys pressed: their release is the chord's too, and is dropped. */
  readonly #swallowed = new Set<number>();

  /**
   * vtSwitch: Ctrl+Alt+Fn is a chord only on a seat (without one the kernel switches itself).
   * kiosk: Ctrl+Alt+Q and Ctrl+Alt+G are chords (the guest kiosks'); in the Wayland
   * compositor they are keys for the client, press and release alike.
   * enabled: the chords turned on (default all); a chord turned off is a key like others.
   */
  constructor(
    private readonly vtSwitch: boolean,
    private readonly kiosk = true,
    private readonly enabled: readonly ChordName[] = CHORD_NAMES,
  ) {}

  /** 'send': pass the key on; 'drop': it belongs to a chord; else the chord pressed. */
  key(code: number, pressed: boolean): 'send' | 'drop' | ChordAction {
    if (pressed && this.#modifiers()) {
      const vt = functionKey(code);
      const action = this.#action(code, vt);
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

  #action(code: number, vt: number): ChordAction | null {
    const on = (c: ChordName) => this.enabled.includes(c);
    if (vt) return this.vtSwitch && on('vt') ? { kind: 'vt', vt } : null;
    if (!this.kiosk) return null;
    if (code === KEY_Q) return on('quit') ? { kind: 'quit' } : null;
    return code === KEY_G && on('grab') ? { kind: 'grab' } : null;
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
