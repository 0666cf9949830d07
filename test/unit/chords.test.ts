// The chords as every reader of host keys meets them (passKey): the kiosk's set
// (Ctrl+Alt+Q/G/Fn) and the compositor's (Ctrl+Alt+Fn only). The real path (uinput,
// libinput, seatd, a VT switch) is test/integration/seat.test.ts.
import { describe, it, expect } from 'vitest';
import { Chords, parseChords, passKey, type ChordHandlers, type ChordName } from '../../plugin/input/chords.js';

const CTRL = 29, ALT = 56, Q = 16, G = 34, F2 = 60, A = 30;

function reader(chords: Chords) {
  const calls: string[] = [];
  const h: ChordHandlers = { quit: () => calls.push('quit'), grab: () => calls.push('grab'), vt: (vt) => calls.push(`vt ${vt}`) };
  const sent: string[] = [];
  const press = (code: number, down: boolean) => {
    if (passKey(chords, code, down, h)) sent.push(`${code} ${down ? 1 : 0}`);
  };
  return { calls, sent, press };
}

describe('chords', () => {
  it('kiosk: Ctrl+Alt+Q, G and F2 run their handlers; the chord key is sent neither down nor up, Ctrl and Alt are', () => {
    const r = reader(new Chords(true));
    for (const k of [CTRL, ALT]) r.press(k, true);
    for (const k of [Q, G, F2]) {
      r.press(k, true);
      r.press(k, false);
    }
    for (const k of [ALT, CTRL]) r.press(k, false);
    r.press(A, true);
    r.press(A, false);
    expect(r.calls).toEqual(['quit', 'grab', 'vt 2']);
    expect(r.sent).toEqual([`${CTRL} 1`, `${ALT} 1`, `${ALT} 0`, `${CTRL} 0`, `${A} 1`, `${A} 0`]);
  });

  it('without a seat Ctrl+Alt+F2 is a key (the kernel switches VTs itself)', () => {
    const r = reader(new Chords(false));
    for (const [k, d] of [[CTRL, true], [ALT, true], [F2, true], [F2, false]] as const) r.press(k, d);
    expect(r.calls).toEqual([]);
    expect(r.sent).toContain(`${F2} 1`);
    expect(r.sent).toContain(`${F2} 0`);
  });

  it('compositor: Ctrl+Alt+Q and G reach the client, press and release; only Ctrl+Alt+Fn is a chord', () => {
    const r = reader(new Chords(true, false));
    for (const [k, d] of [[CTRL, true], [ALT, true], [Q, true], [Q, false], [G, true], [G, false], [F2, true], [F2, false]] as const) r.press(k, d);
    expect(r.calls).toEqual(['vt 2']);
    expect(r.sent).toEqual([`${CTRL} 1`, `${ALT} 1`, `${Q} 1`, `${Q} 0`, `${G} 1`, `${G} 0`]);
  });

  it('chords turned off are keys like others: each subset of quit, grab, vt', () => {
    const all: ChordName[] = ['quit', 'grab', 'vt'];
    for (let mask = 0; mask < 8; mask++) {
      const on = all.filter((_, i) => mask & (1 << i));
      const r = reader(new Chords(true, true, on));
      for (const k of [CTRL, ALT]) r.press(k, true);
      for (const k of [Q, G, F2]) {
        r.press(k, true);
        r.press(k, false);
      }
      const want = [on.includes('quit') ? 'quit' : null, on.includes('grab') ? 'grab' : null, on.includes('vt') ? 'vt 2' : null].filter((x) => x !== null);
      expect(r.calls, on.join(',')).toEqual(want);
      // What is off reaches the guest, press and release; what is on does not.
      for (const [k, name] of [[Q, 'quit'], [G, 'grab'], [F2, 'vt']] as const) {
        const sent = r.sent.includes(`${k} 1`) && r.sent.includes(`${k} 0`);
        expect(sent, `${name} with ${on.join(',') || 'none'}`).toBe(!on.includes(name));
      }
    }
  });

  it('parseChords: all, none, a list; a wrong word is named with the right ones', () => {
    expect(parseChords('all')).toEqual(['quit', 'grab', 'vt']);
    expect(parseChords('none')).toEqual([]);
    expect(parseChords('grab')).toEqual(['grab']);
    expect(parseChords('vt,quit,vt')).toEqual(['vt', 'quit']);
    expect(() => parseChords('quit,reboot')).toThrow("'reboot' is not a chord: give all, none, or a comma-separated list of quit, grab, vt");
    expect(() => parseChords('')).toThrow(/'' is not a chord/);
    expect(() => parseChords('all,quit')).toThrow(/'all' is not a chord/);
  });
});
