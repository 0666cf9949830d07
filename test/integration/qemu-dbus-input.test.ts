// Issue 14 (input) with issue 13's QEMU source: virtual keyboards and mice made with
// /dev/uinput, tagged by the real udevd, read by libinput on seat0 inside the kiosk, and
// seen by an unmodified QEMU (Debian's 7.2 and the rig's 10.0.x) in its own input trace: keys as QEMU key codes, relative
// motion after the fit mapping, buttons; a keyboard plugged in later works too; the quit
// chord stops the kiosk.
import { describe, it, expect } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startKiosk } from '../../plugin/modes/kiosk.js';
import { QemuGuest } from '../../plugin/sources/qemu-guest.js';
import { BTN_LEFT } from '../../ffi/uinput.js';
import { cleanupAfterEach } from './helpers/cleanup.js';
import { waitFor } from './helpers/faults.js';
import { createSmallMdev } from './helpers/mdev.js';
import { mdpyInit, qemuDbusMissing, qmpCont, startQemu, startSessionBus } from './helpers/qemu.js';
import { qemuBuilds } from './helpers/qemu-builds.js';
import { keyboardAndMouse, keyboard, uinputMissing, TouchScreen } from './helpers/uinput.js';

const cleanup = cleanupAfterEach();
const builds = qemuBuilds().map((qemu) => ({ qemu, label: qemu.label, missing: qemuDbusMissing({ parents: ['mdpy'], gl: false }, qemu) ?? uinputMissing() }));
for (const b of builds) if (b.missing) console.log(`qemu-dbus-input on ${b.label}: skipped: ${b.missing}`);

for (const { qemu, missing } of builds) describe(`${qemu.label}: kiosk input into a QEMU guest (libinput, uinput, udev)`, () => {
  it.skipIf(missing)('keys, motion and buttons from uinput devices reach QEMU exactly; a hot-plugged keyboard works; Ctrl+Alt+Q quits', async () => {
    const { kbd, rat } = keyboardAndMouse(cleanup);
    const dir = mkdtempSync(join(tmpdir(), 'gpi-'));
    const mdev = createSmallMdev('mdpy');
    cleanup.push(() => mdev.remove());
    const bus = startSessionBus(dir);
    cleanup.push(() => bus.close());
    const qmp = join(dir, 'qmp.sock');
    const vm = await startQemu({ mdev, gl: false, busAddress: bus.address, dir, qemu, extraArgs: ['-qmp', `unix:${qmp},server=on,wait=off`, '-trace', 'enable=input_event_*'] });
    cleanup.push(async () => {
      await vm.close();
    });
    await vm.waitForDisplay();
    const mode = await mdpyInit(vm.qtest);
    await qmpCont(qmp);
    const log: string[] = [];
    const k = startKiosk({ source: { kind: 'qemu-dbus', address: bus.address }, connector: 'Virtual-1', mode: { width: mode.width, height: mode.height }, fit: 'native', statsIntervalMs: 0, log: (l) => log.push(l) });
    cleanup.push(async () => {
      await k.stop();
    });
    const guest = k.guest as QemuGuest;
    await guest.attached();
    await waitFor(() => guest.query('primary').state === 'ok', 'the first Scanout', 10_000);
    await waitFor(() => log.some((l) => l.includes('(guestplane test keyboard)')) && log.some((l) => l.includes('(guestplane test mouse)')), 'libinput to add the devices', 10_000).catch((e: Error) => {
      throw new Error(`${e.message}; kiosk log: ${log.join(' | ')}`);
    });

    const trace = () => vm.stderr.split('\n').filter((l) => l.includes('input_event_') && !l.includes('input_event_sync'));
    const t0 = trace().length;
    kbd.key(30, true); // KEY_A
    kbd.key(30, false);
    kbd.key(103, true); // KEY_UP
    kbd.key(103, false);
    rat.move(10, 0);
    rat.key(BTN_LEFT, true);
    rat.key(BTN_LEFT, false);
    // A relative guest (PS/2 mouse) gets the device's unaccelerated counts; QEMU traces both axes.
    const want = [/qcode a, down 1/, /qcode a, down 0/, /qcode up, down 1/, /qcode up, down 0/, /axis x, value 10\b/i, /axis y, value 0\b/i, /button left, down 1/, /button left, down 0/];
    await waitFor(() => trace().length - t0 >= want.length, 'the events in QEMU', 10_000).catch((e: Error) => {
      throw new Error(`${e.message}; QEMU saw: ${trace().slice(t0).join(' | ') || '(nothing)'}; kiosk log: ${log.join(' | ')}`);
    });
    const seen = trace().slice(t0);
    expect(seen.length, seen.join(' | ')).toBe(want.length);
    want.forEach((re, i) => expect(seen[i]).toMatch(re));

    // Hot-plug: a second keyboard after the kiosk started (libinput's udev backend).
    const kbd2 = keyboard('guestplane test keyboard 2');
    cleanup.push(() => kbd2.close());
    await waitFor(() => log.some((l) => l.includes('(guestplane test keyboard 2)')), 'the new keyboard', 10_000);
    kbd2.key(48, true); // KEY_B
    kbd2.key(48, false);
    await waitFor(() => /qcode b, down 0/.test(vm.stderr), 'the new keyboard in QEMU', 10_000);

    // Ctrl+Alt+Q: the kiosk stops and restores the screen.
    kbd.key(29, true);
    kbd.key(56, true);
    kbd.key(16, true);
    expect(await Promise.race([k.done, new Promise((r) => setTimeout(() => r('still running'), 10_000))])).toBe(0);
    expect(vm.stderr).not.toMatch(/qcode q, down 1/);
  });
});

// MultiTouch came with QEMU 8.1: the rig's 10.0.x has it, Debian's 7.2 not.
const touchBuilds = builds.filter((b) => Number(b.qemu.version?.split('.')[0] ?? 0) >= 9);
for (const { qemu, missing } of touchBuilds) describe(`${qemu.label}: kiosk --touch multitouch into a QEMU guest`, () => {
  it.skipIf(missing)('two fingers of a uinput touchscreen reach QEMU as MultiTouch slots at their guest pixels: begin, update, end', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gpt-'));
    const mdev = createSmallMdev('mdpy');
    cleanup.push(() => mdev.remove());
    const bus = startSessionBus(dir);
    cleanup.push(() => bus.close());
    const qmp = join(dir, 'qmp.sock');
    const vm = await startQemu({
      mdev,
      gl: false,
      busAddress: bus.address,
      dir,
      qemu,
      extraArgs: ['-qmp', `unix:${qmp},server=on,wait=off`, '-device', 'virtio-multitouch-pci', '-trace', 'enable=dbus_touch_send_event', '-trace', 'enable=input_event_mtt'],
    });
    cleanup.push(async () => {
      await vm.close();
    });
    await vm.waitForDisplay();
    const mode = await mdpyInit(vm.qtest);
    await qmpCont(qmp);
    const ts = new TouchScreen(mode.width, mode.height);
    cleanup.push(() => ts.close());
    const log: string[] = [];
    const k = startKiosk({ source: { kind: 'qemu-dbus', address: bus.address }, connector: 'Virtual-1', mode: { width: mode.width, height: mode.height }, fit: 'native', touch: 'multitouch', statsIntervalMs: 0, log: (l) => log.push(l) });
    cleanup.push(async () => {
      await k.stop();
    });
    const guest = k.guest as QemuGuest;
    await guest.attached();
    await waitFor(() => guest.query('primary').state === 'ok', 'the first Scanout', 10_000);
    await waitFor(() => log.some((l) => l.includes('(guestplane test touchscreen)')), 'libinput to add the touchscreen', 10_000).catch((e: Error) => {
      throw new Error(`${e.message}; kiosk log: ${log.join(' | ')}`);
    });
    ts.down(0, 100, 50);
    ts.down(1, 300, 200);
    ts.sync();
    ts.slide(0, 120, 60);
    ts.sync();
    ts.up(0);
    ts.sync();
    ts.up(1);
    ts.sync();
    const sent = () => [...vm.stderr.matchAll(/dbus_touch_send_event kind=(\d+), num_slot=(\d+), x=(-?\d+), y=(-?\d+)/g)].map((m) => m.slice(1).map(Number));
    await waitFor(() => sent().length >= 5, 'five touch events in QEMU', 10_000).catch((e: Error) => {
      throw new Error(`${e.message}; QEMU saw: ${JSON.stringify(sent())}; kiosk log: ${log.join(' | ')}`);
    });
    // kind: 0 begin, 1 update, 2 end; (x, y) in guest pixels (native fit: the screen's).
    const want = [
      [0, 0, 100, 50],
      [0, 1, 300, 200],
      [1, 0, 120, 60],
      [2, 0, 120, 60],
      [2, 1, 300, 200],
    ];
    const got = sent();
    expect(got.length, JSON.stringify(got)).toBe(want.length);
    got.forEach((g, i) => {
      expect(g.slice(0, 2), JSON.stringify(got)).toEqual(want[i]!.slice(0, 2));
      expect(Math.abs(g[2]! - want[i]![2]!) + Math.abs(g[3]! - want[i]![3]!), JSON.stringify(got)).toBeLessThanOrEqual(2);
    });
    // QEMU's input layer took them as multitouch events (to the virtio-multitouch device).
    expect(vm.stderr).toMatch(/input_event_mtt /);
    expect(log.join('\n')).not.toMatch(/MultiTouch refused/);
  });
});
