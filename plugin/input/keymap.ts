// A keyboard's keymap and state, from RMLVO names (rules, model, layout, variant, options),
// as cage and sway take them: from options, else XKB_DEFAULT_* in the environment, else
// xkbcommon's defaults. Keys come as Linux evdev codes; xkbcommon's keycodes are those + 8.
//
// Ownership: a Keymap owns its xkb context, keymap and state; close() frees them.
import koffi from 'koffi';
import { xkb, XKB_CONTEXT_NO_FLAGS, XKB_KEY_DOWN, XKB_KEY_UP, XKB_KEYMAP_FORMAT_TEXT_V1, XKB_STATE_LAYOUT_EFFECTIVE, XKB_STATE_MODS_DEPRESSED, XKB_STATE_MODS_LATCHED, XKB_STATE_MODS_LOCKED } from '../../ffi/xkbcommon.js';

export interface RuleNames {
  rules?: string;
  model?: string;
  layout?: string;
  variant?: string;
  options?: string;
}

/** What wl_keyboard.modifiers carries. */
export interface ModifierState {
  depressed: number;
  latched: number;
  locked: number;
  group: number;
}

/** evdev code → xkb keycode. */
const XKB_OFFSET = 8;

/** RMLVO from the environment (XKB_DEFAULT_RULES, …), overridden field by field by `names`. */
export function ruleNamesFromEnv(names: RuleNames = {}, env: NodeJS.ProcessEnv = process.env): RuleNames {
  return {
    rules: names.rules ?? env.XKB_DEFAULT_RULES,
    model: names.model ?? env.XKB_DEFAULT_MODEL,
    layout: names.layout ?? env.XKB_DEFAULT_LAYOUT,
    variant: names.variant ?? env.XKB_DEFAULT_VARIANT,
    options: names.options ?? env.XKB_DEFAULT_OPTIONS,
  };
}

export class Keymap {
  readonly names: RuleNames;
  #context: unknown;
  #keymap: unknown;
  #state: unknown;
  #text: string | null = null;

  constructor(names: RuleNames = {}) {
    const b = xkb();
    this.names = names;
    this.#context = b.contextNew(XKB_CONTEXT_NO_FLAGS);
    if (!this.#context) throw new Error('xkb_context_new failed (is xkb-data installed? /usr/share/X11/xkb)');
    const n = { rules: names.rules ?? null, model: names.model ?? null, layout: names.layout ?? null, variant: names.variant ?? null, options: names.options ?? null };
    this.#keymap = b.keymapNewFromNames(this.#context, n, 0);
    if (!this.#keymap) {
      b.contextUnref(this.#context);
      const what = Object.entries(names)
        .filter(([, v]) => v)
        .map(([k, v]) => `${k} '${v}'`)
        .join(', ');
      throw new Error(`no keymap for ${what || 'the default names'}: xkbcommon could not compile it; check the layout/variant/options names (see /usr/share/X11/xkb/rules/evdev.lst)`);
    }
    this.#state = b.stateNew(this.#keymap);
  }

  /** The keymap as text (XKB_KEYMAP_FORMAT_TEXT_V1), NUL-free: what a client compiles. */
  get text(): string {
    if (this.#text !== null) return this.#text;
    const b = xkb();
    const p = b.keymapGetAsString(this.#keymap, XKB_KEYMAP_FORMAT_TEXT_V1);
    if (!p) throw new Error('xkb_keymap_get_as_string failed');
    try {
      this.#text = koffi.decode(p, 'char', -1) as string;
    } finally {
      b.free(p);
    }
    return this.#text;
  }

  /** A key by evdev code went down or up; returns the modifier state afterwards. */
  key(evdevCode: number, down: boolean): ModifierState {
    xkb().stateUpdateKey(this.#state, evdevCode + XKB_OFFSET, down ? XKB_KEY_DOWN : XKB_KEY_UP);
    return this.modifiers();
  }

  modifiers(): ModifierState {
    const b = xkb();
    return {
      depressed: b.stateSerializeMods(this.#state, XKB_STATE_MODS_DEPRESSED) as number,
      latched: b.stateSerializeMods(this.#state, XKB_STATE_MODS_LATCHED) as number,
      locked: b.stateSerializeMods(this.#state, XKB_STATE_MODS_LOCKED) as number,
      group: b.stateSerializeLayout(this.#state, XKB_STATE_LAYOUT_EFFECTIVE) as number,
    };
  }

  /** The keysym name of a key in the current state ('a', 'A', 'Return', …). */
  keysymName(evdevCode: number): string {
    const b = xkb();
    const sym = b.stateKeyGetOneSym(this.#state, evdevCode + XKB_OFFSET) as number;
    const buf = new Uint8Array(64);
    const n = b.keysymGetName(sym, buf, buf.length) as number;
    return n > 0 ? Buffer.from(buf.subarray(0, Math.min(n, 63))).toString('utf8') : '';
  }

  /** The text a key types in the current state ('' for none). */
  utf8(evdevCode: number): string {
    const buf = new Uint8Array(64);
    const n = xkb().stateKeyGetUtf8(this.#state, evdevCode + XKB_OFFSET, buf, buf.length) as number;
    return n > 0 ? Buffer.from(buf.subarray(0, Math.min(n, 63))).toString('utf8') : '';
  }

  repeats(evdevCode: number): boolean {
    return (xkb().keymapKeyRepeats(this.#keymap, evdevCode + XKB_OFFSET) as number) !== 0;
  }

  close(): void {
    if (!this.#context) return;
    const b = xkb();
    b.stateUnref(this.#state);
    b.keymapUnref(this.#keymap);
    b.contextUnref(this.#context);
    this.#context = this.#keymap = this.#state = null;
  }
}
