// Issue 13 as an operator meets it: `guestplane info --qemu-dbus` and the kiosk showing an
// unmodified QEMU's console (Debian's 7.2 and the rig's 10.0.x, each its own test) (mdpy, gl=off: pixels checked through writeback), keyboard and
// mouse reaching QEMU (its own input trace events), QEMU killed and started again: the
// kiosk shows no signal meanwhile, keeps running and reattaches.
import { describe, it, expect } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startKiosk } from '../../plugin/modes/kiosk.js';
import { runHeads } from '../../plugin/modes/heads.js';
import { parseHeadsConfig } from '../../plugin/modes/heads-config.js';
import { QemuGuest } from '../../plugin/sources/qemu-guest.js';
import { drawPattern, decodeFrameNumber } from '../../plugin/sources/pattern.js';
import type { Output } from '../../plugin/output/output.js';
import { cleanupAfterEach } from './helpers/cleanup.js';
import { patternMismatches, waitFor } from './helpers/faults.js';
import { createSmallMdev } from './helpers/mdev.js';
import { mdpyInit, mdpyShowPattern, qemuDbusMissing, qmpCont, startQemu, startSessionBus, type QemuVm } from './helpers/qemu.js';
import { qemuAtLeast, qemuBuilds } from './helpers/qemu-builds.js';

const cleanup = cleanupAfterEach();
const CLI = join(process.cwd(), 'dist/plugin/cli.js');
const builds = qemuBuilds().map((qemu) => ({ qemu, label: qemu.label, missing: qemuDbusMissing({ parents: ['mdpy'], gl: false }, qemu) }));
for (const b of builds) if (b.missing) console.log(`qemu-dbus-kiosk on ${b.label}: skipped: ${b.missing}`);

async function showsFrame(out: Output, n: number, w: number, h: number): Promise<number> {
  let mismatches = -1;
  for (let tries = 0; tries < 80 && mismatches !== 0; tries++) {
    const cap = await out.captureNext();
    if (decodeFrameNumber({ bytes: cap.pixels, offset: 0, width: w, height: h, stride: cap.stride }) === n) mismatches = patternMismatches(cap, n, w, h, drawPattern);
  }
  return mismatches;
}

for (const { qemu, missing } of builds) describe(`${qemu.label}: kiosk --qemu-dbus`, () => {
  it.skipIf(missing)('info lists the console; the kiosk shows it pixel-exact, sends keys and mouse to QEMU, and reattaches after QEMU is killed and restarted', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gpk-'));
    const mdev = createSmallMdev('mdpy');
    cleanup.push(() => mdev.remove());
    const bus = startSessionBus(dir);
    cleanup.push(() => bus.close());
    const qmp = join(dir, 'qmp.sock');
    const boot = async (): Promise<QemuVm> => {
      const vm = await startQemu({ mdev, gl: false, busAddress: bus.address, dir, qemu, extraArgs: ['-qmp', `unix:${qmp},server=on,wait=off`, '-trace', 'enable=input_event_*'] });
      cleanup.push(async () => {
        await vm.close();
      });
      await vm.waitForDisplay();
      return vm;
    };
    let vm = await boot();
    const mode = await mdpyInit(vm.qtest);
    const show = (n: number) => mdpyShowPattern(vm.qtest, mode, n);
    await show(5);

    // What an operator runs first.
    const info = await promisify(execFile)(process.execPath, [CLI, 'info', '--qemu-dbus', bus.address]);
    expect(info.stdout).toMatch(/console 0: Graphic "vfio-pci" 640x480, device pci\/0000\/05\.0/);
    expect(info.stdout).toMatch(/interfaces: .*org\.qemu\.Display1\.Keyboard.*org\.qemu\.Display1\.Mouse|interfaces: .*Mouse.*Keyboard/);
    // QEMU does not say its version over D-Bus: info bounds it by what 8.1 added (MultiTouch).
    const since81 = qemuAtLeast(qemu, 8, 1);
    expect(info.stdout).toMatch(since81 ? /QEMU 8\.1 or later \(its consoles offer MultiTouch\)/ : /QEMU before 8\.1 \(no console offers MultiTouch/);

    const log: string[] = [];
    const k = startKiosk({ source: { kind: 'qemu-dbus', address: bus.address }, connector: 'Virtual-1', mode: { width: mode.width, height: mode.height }, fit: 'native', statsIntervalMs: 0, log: (l) => log.push(l) });
    cleanup.push(async () => {
      await k.stop();
    });
    const guest = k.guest;
    expect(guest).toBeInstanceOf(QemuGuest);
    if (!(guest instanceof QemuGuest)) return;
    await guest.attached();
    expect(await showsFrame(k.output, 5, mode.width, mode.height)).toBe(0);

    // Input: QEMU key numbers from evdev codes, buttons, relative motion (mdpy's VM has a PS/2 mouse: not absolute).
    await qmpCont(qmp);
    await guest.key(30, true); // KEY_A
    await guest.key(30, false);
    await guest.key(103, true); // KEY_UP: an extended (0xe0) key
    await guest.button('left', true);
    await guest.pointerTo(105, 97, { x: 100, y: 100 });
    await waitFor(() => /input_event_rel.*axis x, value 5\b/i.test(vm.stderr) && /input_event_rel.*axis y, value -3\b/i.test(vm.stderr), 'relative motion in QEMU', 10_000).catch((e: Error) => {
      throw new Error(`${e.message}; QEMU's input trace: ${vm.stderr.split('\n').filter((l) => l.includes('input_event')).slice(-12).join(' | ') || '(none)'}`);
    });
    expect(vm.stderr).toMatch(/input_event_key_qcode.*qcode a, down 1/);
    expect(vm.stderr).toMatch(/input_event_key_qcode.*qcode a, down 0/);
    expect(vm.stderr).toMatch(/input_event_key_qcode.*qcode up, down 1/);
    expect(vm.stderr).toMatch(/input_event_btn.*button left, down 1/);

    // QEMU dies: no signal, the kiosk runs on; QEMU comes back: the kiosk reattaches.
    let stopped = false;
    void k.done.then(() => (stopped = true));
    await vm.kill('SIGKILL');
    await waitFor(() => guest.state === 'waiting', 'the kiosk to notice QEMU is gone', 10_000);
    const noSignal = await k.output.captureNext();
    expect(noSignal.content?.path).toBe('no-signal');
    expect(stopped).toBe(false);
    vm = await boot();
    await mdpyInit(vm.qtest);
    await show(9);
    await guest.attached();
    expect(guest.attachments).toBe(2);
    expect(await showsFrame(k.output, 9, mode.width, mode.height)).toBe(0);
    expect(stopped).toBe(false);
    expect(log.filter((l) => /showing no signal until QEMU is back/.test(l))).toHaveLength(1);
    // Each attach line names the QEMU and the listener interfaces it may use (8.1+: its consoles offer MultiTouch).
    const attached = log.filter((l) => /attached \(vfio-pci, 640x480\)/.test(l));
    const version = since81 ? /attached \(vfio-pci, 640x480\); QEMU 8\.1 or later: it reads our listener interfaces \(Listener\.Unix\.Map, Listener\.Unix\.ScanoutDMABUF2\)/ : /attached \(vfio-pci, 640x480\); QEMU before 8\.1 \(its console has no MultiTouch\): none of our listener interfaces/;
    expect(attached, attached.join('\n')).toEqual([expect.stringMatching(version), expect.stringMatching(version)]);
    expect(await k.stop()).toBe(0);
  });

  it.skipIf(missing)('a multi-head config entry of type qemu-dbus shows the QEMU console on its head', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gph-'));
    const mdev = createSmallMdev('mdpy');
    cleanup.push(() => mdev.remove());
    const bus = startSessionBus(dir);
    cleanup.push(() => bus.close());
    const vm = await startQemu({ mdev, gl: false, busAddress: bus.address, dir, qemu });
    cleanup.push(async () => {
      await vm.close();
    });
    await vm.waitForDisplay();
    const mode = await mdpyInit(vm.qtest);
    await mdpyShowPattern(vm.qtest, mode, 21);
    const config = parseHeadsConfig({ guests: { vm: { type: 'qemu-dbus', address: bus.address } }, heads: [{ guest: 'vm', connector: 'Virtual-1', mode: { width: mode.width, height: mode.height }, scale: 'native' }] });
    const log: string[] = [];
    const mgr = await runHeads(config, { log: (l) => log.push(l) });
    cleanup.push(() => mgr.close());
    await waitFor(() => mgr.output('Virtual-1') !== null, 'the head to come up', 10_000);
    expect(await showsFrame(mgr.output('Virtual-1')!, 21, mode.width, mode.height)).toBe(0);
    expect(log.some((l) => /guests\.vm: .*attached \(vfio-pci, 640x480\)/.test(l))).toBe(true);
  });
});
