// Issue 30: the kiosk's chords can be turned off. The kiosk CLI with a QEMU D-Bus guest (the
// fake QEMU) and a uinput keyboard read by libinput (udev-tagged, as on a real seat):
//  - --chords grab (quit and VT switching off): Ctrl+Alt+Q does not stop the kiosk, and Q
//    reaches the guest as a key; SIGTERM then stops it cleanly (exit 0);
//  - the default (all chords): the same keys stop it (exit 0, "Ctrl+Alt+Q"), and Q does not
//    reach the guest: the check above is not one that cannot fail.
import { describe, it, expect } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cleanupAfterEach } from './helpers/cleanup.js';
import { waitFor } from './helpers/faults.js';
import { FakeQemu } from './helpers/fake-qemu.js';
import { KioskProcess } from './helpers/kiosk-process.js';
import { startSessionBus } from './helpers/qemu.js';
import { keyboard, startUdevd, udevSettle, uinputMissing } from './helpers/uinput.js';

const cleanup = cleanupAfterEach();
const missing = uinputMissing();
if (missing) console.log(`kiosk-chords: skipped: ${missing}`);
const KEY_LEFTCTRL = 29, KEY_LEFTALT = 56, KEY_Q = 16;

/** A kiosk of a fake QEMU with one uinput keyboard as its only input device; resolves once the guest is attached and the keyboard added. */
async function kioskWithKeyboard(name: string, chords: string[]) {
  startUdevd();
  const kbd = keyboard(name);
  cleanup.push(() => kbd.close());
  udevSettle();
  const bus = startSessionBus(mkdtempSync(join(tmpdir(), 'gp-chords-')));
  cleanup.push(() => bus.close());
  const k = new KioskProcess(['--qemu-dbus', bus.address, '--input-devices', kbd.node, '--mode', '640x480', '--fit', 'native', '--stats', 'none', ...chords]);
  cleanup.push(() => k.kill());
  const fake = await FakeQemu.start(bus.address, { width: 640, height: 480 });
  cleanup.push(() => fake.close());
  await fake.nextListener(30_000);
  await k.waitLine((l) => l.includes(`(${name})`), 30_000);
  const qKeys = () => fake.input.filter((i) => i.member === 'Press' && i.args[0] === KEY_Q).length;
  const chord = () => {
    kbd.key(KEY_LEFTCTRL, true);
    kbd.key(KEY_LEFTALT, true);
    kbd.key(KEY_Q, true);
    kbd.key(KEY_Q, false);
    kbd.key(KEY_LEFTALT, false);
    kbd.key(KEY_LEFTCTRL, false);
  };
  return { k, fake, qKeys, chord };
}

const running = (k: KioskProcess) => k.child.exitCode === null && k.child.signalCode === null;

describe.skipIf(missing)('kiosk chords turned off (uinput keyboard, fake QEMU)', () => {
  it('--chords grab: Ctrl+Alt+Q does not quit, Q goes to the guest; SIGTERM stops it (exit 0)', async () => {
    const { k, fake, qKeys, chord } = await kioskWithKeyboard('guestplane chords keyboard 1', ['--chords', 'grab']);
    chord();
    await waitFor(() => qKeys() === 1, 'Q in the guest', 10_000).catch((e: Error) => {
      throw new Error(`${e.message}; guest input: ${JSON.stringify(fake.input.map((i) => [i.member, i.args]))}; kiosk: ${k.lines.join(' | ')}`);
    });
    // The chord would have stopped it at once; a few seconds more of running is the proof.
    await new Promise((r) => setTimeout(r, 3000));
    expect(running(k), k.lines.join('\n')).toBe(true);
    expect(k.lines.join('\n')).not.toMatch(/Ctrl\+Alt\+Q/);
    k.child.kill('SIGTERM');
    expect(await k.exited).toEqual({ code: 0, signal: null });
    expect(k.lines.join('\n')).toMatch(/SIGTERM received.*screen restored/);
  }, 120_000);

  it('the default (all chords): the same keys stop the kiosk (exit 0), and Q does not reach the guest', async () => {
    const { k, qKeys, chord } = await kioskWithKeyboard('guestplane chords keyboard 2', []);
    chord();
    const ex = await Promise.race([k.exited, new Promise((r) => setTimeout(() => r('still running'), 15_000))]);
    expect(ex, k.lines.join('\n')).toEqual({ code: 0, signal: null });
    expect(k.lines.join('\n')).toMatch(/Ctrl\+Alt\+Q.*screen restored/);
    expect(qKeys()).toBe(0);
  }, 120_000);
});
