// The desktop's keyboard keymap (wl_keyboard.keymap) and its key codes as Linux evdev
// codes, which is what the guest path takes (QemuConsoleSource.key: evdev → QEMU key
// number). A key's meaning to the guest is its position (the guest applies its own layout),
// so a key code is translated by the key's name in the desktop's keymap (<AC01>, <ESC>, …)
// into the code that name has under the evdev keycodes, compiled once from xkbcommon's
// defaults. Every common desktop's keymap uses the evdev keycodes (a key code is evdev + 8),
// and then this is the identity; a keymap with other keycodes still lands on the right keys.
//
// Ownership: a DesktopKeymap owns its xkb context and the two keymaps; close() frees them.
// The keymap fd is the caller's (it reads it with readKeymapFd and closes it).
import * as libc from '../../ffi/libc.js';
import { xkb, XKB_CONTEXT_NO_FLAGS, XKB_KEYMAP_COMPILE_NO_FLAGS, XKB_KEYMAP_FORMAT_TEXT_V1 } from '../../ffi/xkbcommon.js';

/** xkb keycode − evdev code, for keymaps built on the evdev keycodes. */
const XKB_OFFSET = 8;
const XKB_KEYCODE_INVALID = 0xffffffff;
/** A keymap bigger than this is refused (the protocol puts no bound on it; xkeyboard-config's are ~60 KiB). */
export const MAX_KEYMAP_BYTES = 4 << 20;

/** The keymap text of a wl_keyboard.keymap fd of `size` bytes (NUL-terminated there). Does not close `fd`. */
export function readKeymapFd(fd: number, size: number): string {
  if (!Number.isInteger(size) || size <= 0 || size > MAX_KEYMAP_BYTES) throw new Error(`the desktop sent a keymap of ${size} bytes (expected 1..${MAX_KEYMAP_BYTES})`);
  const buf = Buffer.alloc(size);
  let got = 0;
  while (got < size) {
    const n = libc.pread(fd, buf.subarray(got), got, 'desktop keymap fd');
    if (n <= 0) break;
    got += n;
  }
  const end = buf.subarray(0, got).indexOf(0);
  return buf.subarray(0, end < 0 ? got : end).toString('utf8');
}

export class DesktopKeymap {
  #context: unknown;
  #desktop: unknown;
  #evdev: unknown;
  readonly #cache = new Map<number, number | null>();

  /** Compiles the desktop's keymap text; throws naming the problem when xkbcommon cannot. */
  constructor(text: string) {
    const b = xkb();
    this.#context = b.contextNew(XKB_CONTEXT_NO_FLAGS);
    if (!this.#context) throw new Error('xkb_context_new failed (is xkb-data installed? /usr/share/X11/xkb)');
    this.#desktop = b.keymapNewFromString(this.#context, text, XKB_KEYMAP_FORMAT_TEXT_V1, XKB_KEYMAP_COMPILE_NO_FLAGS);
    this.#evdev = this.#desktop ? b.keymapNewFromNames(this.#context, null, 0) : null;
    if (!this.#desktop || !this.#evdev) {
      const which = this.#desktop ? 'the evdev reference keymap (xkb-data defaults)' : `the desktop's keymap (${text.length} bytes)`;
      this.close();
      throw new Error(`xkbcommon could not compile ${which}`);
    }
  }

  /** The evdev code of the desktop's key code `key` (wl_keyboard.key), null for a key the evdev keycodes lack. */
  evdevCode(key: number): number | null {
    let code = this.#cache.get(key);
    if (code !== undefined) return code;
    const b = xkb();
    const name = b.keymapKeyGetName(this.#desktop, key + XKB_OFFSET) as string | null;
    const kc = name ? (b.keymapKeyByName(this.#evdev, name) as number) >>> 0 : XKB_KEYCODE_INVALID;
    code = kc === XKB_KEYCODE_INVALID || kc < XKB_OFFSET ? null : kc - XKB_OFFSET;
    this.#cache.set(key, code);
    return code;
  }

  close(): void {
    const b = xkb();
    if (this.#evdev) b.keymapUnref(this.#evdev);
    if (this.#desktop) b.keymapUnref(this.#desktop);
    if (this.#context) b.contextUnref(this.#context);
    this.#context = this.#desktop = this.#evdev = null;
  }
}
