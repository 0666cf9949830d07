// Thin koffi bindings to libxkbcommon: keymaps compiled from RMLVO names (as cage and sway
// take them from XKB_DEFAULT_* and options), their text form (what wl_keyboard.keymap
// sends), and the key state that turns evdev codes into keysyms, text and the serialised
// modifiers a Wayland client or a guest needs.
import koffi from 'koffi';
import type { AbiManifest } from './abi.js';

let lib: koffi.IKoffiLib | null = null;
let loadError = '';
try {
  lib = koffi.load('libxkbcommon.so.0');
} catch (e) {
  loadError = (e as Error).message;
}

/** Why libxkbcommon cannot be used here, or null. */
export function xkbcommonMissing(): string | null {
  return lib ? null : `libxkbcommon.so.0 could not be loaded (${loadError}): install Debian's libxkbcommon0 and xkb-data`;
}

export const xkb_rule_names = koffi.struct('xkb_rule_names', {
  rules: 'const char *',
  model: 'const char *',
  layout: 'const char *',
  variant: 'const char *',
  options: 'const char *',
});

export const XKB_CONTEXT_NO_FLAGS = 0;
export const XKB_KEYMAP_COMPILE_NO_FLAGS = 0;
export const XKB_KEYMAP_FORMAT_TEXT_V1 = 1;
export const XKB_KEY_UP = 0;
export const XKB_KEY_DOWN = 1;
export const XKB_STATE_MODS_DEPRESSED = 1 << 0;
export const XKB_STATE_MODS_LATCHED = 1 << 1;
export const XKB_STATE_MODS_LOCKED = 1 << 2;
export const XKB_STATE_MODS_EFFECTIVE = 1 << 3;
export const XKB_STATE_LAYOUT_EFFECTIVE = 1 << 7;

type Fn = koffi.KoffiFunction;
interface Bindings {
  contextNew: Fn;
  contextUnref: Fn;
  keymapNewFromNames: Fn;
  keymapNewFromString: Fn;
  keymapKeyGetName: Fn;
  keymapKeyByName: Fn;
  keymapMinKeycode: Fn;
  keymapMaxKeycode: Fn;
  keymapUnref: Fn;
  keymapGetAsString: Fn;
  keymapKeyRepeats: Fn;
  stateNew: Fn;
  stateUnref: Fn;
  stateUpdateKey: Fn;
  stateKeyGetOneSym: Fn;
  stateKeyGetUtf8: Fn;
  stateSerializeMods: Fn;
  stateSerializeLayout: Fn;
  keysymGetName: Fn;
  free: Fn;
}

let bound: Bindings | null = null;

/** The functions; throws naming the package when the library is missing. */
export function xkb(): Bindings {
  if (bound) return bound;
  if (!lib) throw new Error(xkbcommonMissing()!);
  const l = lib;
  const libc = koffi.load('libc.so.6');
  bound = {
    contextNew: l.func('void *xkb_context_new(int flags)'),
    contextUnref: l.func('void xkb_context_unref(void *context)'),
    keymapNewFromNames: l.func('void *xkb_keymap_new_from_names(void *context, const xkb_rule_names *names, int flags)'),
    keymapNewFromString: l.func('void *xkb_keymap_new_from_string(void *context, const char *string, int format, int flags)'),
    // The name is the keymap's own string (not to be freed).
    keymapKeyGetName: l.func('const char *xkb_keymap_key_get_name(void *keymap, uint32_t key)'),
    keymapKeyByName: l.func('uint32_t xkb_keymap_key_by_name(void *keymap, const char *name)'),
    keymapMinKeycode: l.func('uint32_t xkb_keymap_min_keycode(void *keymap)'),
    keymapMaxKeycode: l.func('uint32_t xkb_keymap_max_keycode(void *keymap)'),
    keymapUnref: l.func('void xkb_keymap_unref(void *keymap)'),
    // Returns malloc'd memory the caller frees: kept as a pointer, decoded, then freed.
    keymapGetAsString: l.func('void *xkb_keymap_get_as_string(void *keymap, int format)'),
    keymapKeyRepeats: l.func('int xkb_keymap_key_repeats(void *keymap, uint32_t key)'),
    stateNew: l.func('void *xkb_state_new(void *keymap)'),
    stateUnref: l.func('void xkb_state_unref(void *state)'),
    stateUpdateKey: l.func('int xkb_state_update_key(void *state, uint32_t key, int direction)'),
    stateKeyGetOneSym: l.func('uint32_t xkb_state_key_get_one_sym(void *state, uint32_t key)'),
    stateKeyGetUtf8: l.func('int xkb_state_key_get_utf8(void *state, uint32_t key, _Out_ uint8_t *buffer, size_t size)'),
    stateSerializeMods: l.func('uint32_t xkb_state_serialize_mods(void *state, int components)'),
    stateSerializeLayout: l.func('uint32_t xkb_state_serialize_layout(void *state, int components)'),
    keysymGetName: l.func('int xkb_keysym_get_name(uint32_t keysym, _Out_ uint8_t *buffer, size_t size)'),
    free: libc.func('void free(void *p)'),
  };
  return bound;
}

export const ABI: AbiManifest = {
  headers: ['xkbcommon/xkbcommon.h'],
  structs: { 'struct xkb_rule_names': { type: xkb_rule_names } },
  constants: {
    XKB_CONTEXT_NO_FLAGS,
    XKB_KEYMAP_COMPILE_NO_FLAGS,
    XKB_KEYMAP_FORMAT_TEXT_V1,
    XKB_KEY_UP,
    XKB_KEY_DOWN,
    XKB_STATE_MODS_DEPRESSED,
    XKB_STATE_MODS_LATCHED,
    XKB_STATE_MODS_LOCKED,
    XKB_STATE_MODS_EFFECTIVE,
    XKB_STATE_LAYOUT_EFFECTIVE,
  },
};
