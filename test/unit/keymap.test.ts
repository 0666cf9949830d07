// Keymaps and key state through the real libxkbcommon and xkb-data of this machine.
import { describe, it, expect } from 'vitest';
import { Keymap, ruleNamesFromEnv } from '../../plugin/input/keymap.js';

const KEY_A = 30;
const KEY_Q = 16;
const KEY_LEFTSHIFT = 42;
const KEY_CAPSLOCK = 58;
const KEY_ENTER = 28;
const KEY_Y = 21;

describe('Keymap (libxkbcommon)', () => {
  it('compiles a layout from RMLVO names, types text with shift and caps lock, serialises modifiers', () => {
    const k = new Keymap({ layout: 'us' });
    try {
      expect(k.text).toMatch(/^xkb_keymap \{/);
      expect(k.text).toContain('xkb_symbols');
      expect([k.keysymName(KEY_A), k.utf8(KEY_A)]).toEqual(['a', 'a']);
      const shifted = k.key(KEY_LEFTSHIFT, true);
      expect(shifted.depressed).not.toBe(0);
      expect([k.keysymName(KEY_A), k.utf8(KEY_A)]).toEqual(['A', 'A']);
      expect(k.key(KEY_LEFTSHIFT, false).depressed).toBe(0);
      k.key(KEY_CAPSLOCK, true);
      const locked = k.key(KEY_CAPSLOCK, false);
      expect(locked.locked).not.toBe(0);
      expect(k.utf8(KEY_A)).toBe('A');
      expect(k.keysymName(KEY_ENTER)).toBe('Return');
      expect(k.repeats(KEY_A)).toBe(true);
      expect(k.repeats(KEY_LEFTSHIFT)).toBe(false);
    } finally {
      k.close();
    }
  });

  it('a variant changes the symbols (de: y and z swap; fr: a and q)', () => {
    const de = new Keymap({ layout: 'de' });
    const fr = new Keymap({ layout: 'fr' });
    try {
      expect(de.utf8(KEY_Y)).toBe('z');
      expect(fr.utf8(KEY_Q)).toBe('a');
    } finally {
      de.close();
      fr.close();
    }
  });

  it('an unknown layout is an error naming it and where the names are listed', () => {
    expect(() => new Keymap({ layout: 'klingon' })).toThrow(/no keymap for layout 'klingon'.*evdev\.lst/);
  });

  it('takes RMLVO from XKB_DEFAULT_* where options do not say', () => {
    expect(ruleNamesFromEnv({ variant: 'nodeadkeys' }, { XKB_DEFAULT_LAYOUT: 'de', XKB_DEFAULT_OPTIONS: 'ctrl:nocaps' })).toEqual({ rules: undefined, model: undefined, layout: 'de', variant: 'nodeadkeys', options: 'ctrl:nocaps' });
  });
});
