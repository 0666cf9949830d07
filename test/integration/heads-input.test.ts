// Issue 14 item 5, multi-head input, against real parts: two heads on two connectors of a
// vkms ConfigFS device, each showing an unmodified QEMU (an mdpy mdev over -display dbus);
// uinput keyboards and a mouse tagged by the real udevd and read by libinput; what each
// QEMU receives is read from its own input trace (-trace enable=input_event_*).
//  - each head shows its own QEMU, pixel-exact (checked before `cont`: under qtest QEMU
//    stops refreshing mdpy's display once the VM runs);
//  - the pointer crossing the shared edge: the first QEMU gets the motion before the edge,
//    the second after it (raw counts: both guests are relative), once each;
//  - keyboard focus follows the pointer: the guest losing it gets its held key released;
//  - devices bound to a head in the config: each of two keyboards types into its own guest
//    wherever the pointer is, and a tablet's positions map onto its head;
//  - a head whose guest is no QEMU takes the focus (the QEMU losing it lets go) and no input;
//  - the same kiosk as uid 65534 through seatd, with a VT switch (seat-using: the rig runs
//    integration files one at a time, so seatd's one socket is not fought over).
import { describe, it, expect, afterAll } from 'vitest';
import { chmodSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as libc from '../../ffi/libc.js';
import { parseHeadsConfig } from '../../plugin/modes/heads-config.js';
import { runHeads } from '../../plugin/modes/heads.js';
import { HeadsInput } from '../../plugin/modes/heads-input.js';
import { cleanupAfterEach } from './helpers/cleanup.js';
import { patternMismatches, sleep, waitFor } from './helpers/faults.js';
import { createSmallMdev } from './helpers/mdev.js';
import { mdpyInit, mdpyShowPattern, qemuDbusMissing, qmpAddDbusClient, qmpCont, startQemu, startSessionBus, type QemuVm } from './helpers/qemu.js';
import { decodeFrameNumber, drawPattern } from '../../plugin/sources/pattern.js';
import type { Output } from '../../plugin/output/output.js';
import { keyboard, mouse, startUdevd, udevSettle, uinputMissing, VirtualDevice } from './helpers/uinput.js';
import { ABS_X, ABS_Y, BTN_LEFT, EV_ABS } from '../../ffi/uinput.js';
import { createVkmsDevice, removeVkmsDevicesWithPrefix, type VkmsConfigfsDevice } from './helpers/vkms-configfs.js';
import { activeVt, chvt, fKeyOf, seatdAndHomeVt, seatdMissing } from './helpers/seat.js';
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
/** A vkms device with one connector per entry; `true`: that CRTC has a writeback connector (captures). */
function vkms(writeback: boolean[]): VkmsConfigfsDevice {
  const vd = createVkmsDevice({ name: `${PREFIX}-${seq++}`, crtcs: writeback.map((w) => ({ writeback: w })) });
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
/** Captures `out` until it shows the 640x480 pattern frame `n`; the mismatching pixels then (-1: never shown). */
async function showsFrame(out: Output, n: number): Promise<number> {
  let mismatches = -1;
  for (let tries = 0; tries < 80 && mismatches !== 0; tries++) {
    const cap = await out.captureNext();
    if (decodeFrameNumber({ bytes: cap.pixels, offset: 0, width: 640, height: 480, stride: cap.stride }) === n) mismatches = patternMismatches(cap, n, 640, 480, drawPattern);
  }
  return mismatches;
}

const keysOf = (vm: QemuVm) => traced(vm).filter((t) => !t.startsWith('x '));
const motionsOf = (vm: QemuVm) => traced(vm).filter((t) => t.startsWith('x '));

describe('multi-head input (two QEMUs on two connectors, uinput, udevd, libinput)', { timeout: 180_000 }, () => {
  it.skipIf(missing)('each head shows its QEMU pixel-exact; the pointer crosses into the second head and its QEMU gets the motion (raw counts); keys follow it; the first guest gets its held key released; keyboards and a tablet bound per head go to their own guest; a head without a QEMU takes the focus and nothing else', async () => {
    startUdevd();
    const kbd = device(() => keyboard('gp heads shared keyboard'));
    const rat = device(() => mouse('gp heads shared mouse'));
    const kbdA = device(() => keyboard('gp heads keyboard A'));
    const kbdB = device(() => keyboard('gp heads keyboard B'));
    // An absolute pointer (as QEMU's usb-tablet is to a guest; udev calls it a mouse).
    const tablet = device(() => new VirtualDevice({ name: 'gp heads tablet', keys: [BTN_LEFT], abs: [{ code: ABS_X, min: 0, max: 1000 }, { code: ABS_Y, min: 0, max: 1000 }] }));
    udevSettle();
    const vd = vkms([true, true, false]);
    const [c0, c1, c2] = vd.connectorNames;
    const vms: QemuVm[] = [];
    const qmps: string[] = [];
    const addresses: string[] = [];
    for (const n of [0, 1]) {
      const dir = mkdtempSync(join(tmpdir(), `gphi${n}-`));
      const bus = startSessionBus(dir);
      cleanup.push(() => bus.close());
      const { vm, qmp } = await qemu(dir, { busAddress: bus.address });
      await vm.waitForDisplay();
      // Each guest shows its own numbered pattern (5, 6), checked on screen before `cont`.
      const mode = await mdpyInit(vm.qtest);
      await mdpyShowPattern(vm.qtest, mode, 5 + n);
      vms.push(vm);
      qmps.push(qmp);
      addresses.push(bus.address);
    }
    const [qa, qb] = vms;
    const config = parseHeadsConfig({
      device: vd.cardPath,
      guests: { a: { type: 'qemu-dbus', address: addresses[0] }, b: { type: 'qemu-dbus', address: addresses[1] }, demo: { type: 'udmabuf', width: 320, height: 240, fps: 5 } },
      heads: [
        { guest: 'a', connector: c0, mode: { width: 640, height: 480 }, scale: 'native', input: { devices: ['gp heads keyboard A'] } },
        { guest: 'b', connector: c1, mode: { width: 640, height: 480 }, scale: 'native', input: { devices: ['gp heads keyboard B', 'gp heads tablet'] } },
        { guest: 'demo', connector: c2, mode: { width: 640, height: 480 }, scale: 'native' },
      ],
    });
    const log: string[] = [];
    const mgr = await runHeads(config, { hotplug: false, log: (l) => log.push(l) });
    cleanup.push(() => mgr.close());
    let quits = 0;
    const hi = new HeadsInput(mgr, { quit: () => quits++, log: (l) => log.push(l) });
    cleanup.push(() => hi.close());
    const kioskLog = () => log.join(' | ');
    for (const g of ['a', 'b']) {
      await waitFor(() => mgr.guest(g)!.query('primary').state === 'ok', `guest ${g}'s first Scanout`, 20_000).catch((e: Error) => {
        throw new Error(`${e.message}; log: ${kioskLog()}`);
      });
    }
    expect(await showsFrame(mgr.output(c0)!, 5), `${c0} shows guest a`).toBe(0);
    expect(await showsFrame(mgr.output(c1)!, 6), `${c1} shows guest b`).toBe(0);
    for (const q of qmps) await qmpCont(q); // input reaches QEMU's input layer only while the VM runs
    await waitFor(() => ['shared keyboard)', 'shared mouse)', 'keyboard A) belongs to heads[0]', 'keyboard B) belongs to heads[1]', 'tablet) belongs to heads[1]'].every((s) => log.some((l) => l.includes(s))), 'libinput to add the five devices', 10_000).catch((e: Error) => {
      throw new Error(`${e.message}; log: ${kioskLog()}`);
    });
    expect(hi.router.screens.map((s) => [s.name, s.rect])).toEqual([
      [c0, { x: 0, y: 0, width: 640, height: 480 }],
      [c1, { x: 640, y: 0, width: 640, height: 480 }],
      [c2, { x: 1280, y: 0, width: 640, height: 480 }],
    ]);
    expect(log).toContain('guests.demo is not a QEMU D-Bus guest: heads[2] take no input');
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

    // The tablet bound to head b: its positions map onto head b (native: 1:1); the
    // relative guest gets the difference from where its pointer was left.
    const gx = Math.round(hi.router.pointer!.x - 640);
    const nb = motionsOf(qb).length;
    const pointer = hi.router.pointer;
    for (const [x, n] of [[500, 1], [250, 2]] as const) {
      tablet.emit(EV_ABS, ABS_X, x);
      if (n === 1) tablet.emit(EV_ABS, ABS_Y, 500);
      tablet.sync();
      await waitFor(() => motionsOf(qb).length >= nb + n, `tablet motion ${n} in QEMU b`, 10_000).catch((e: Error) => {
        throw new Error(`${e.message}; ${seen()}`);
      });
    }
    expect(motionsOf(qb).slice(nb)).toEqual([`x ${320 - gx}`, 'x -160']); // 500/1001 of 640 → 320, 250/1001 → 160
    expect(motionsOf(qa).length).toBe(firstB);
    expect(hi.router.pointer).toEqual(pointer);
    expect(hi.router.focus).toBe(1);

    // On to the third head, whose guest is no QEMU: it takes the focus (b lets go of its
    // held F), and keys and motion there reach no QEMU.
    kbd.key(33, true); // KEY_F
    await waitFor(() => keysOf(qb).includes('f 1'), 'f down in QEMU b', 10_000);
    for (let i = 0; i < 80 && hi.router.focus !== 2; i++) {
      rat.move(20, 0);
      await sleep(30);
    }
    expect(hi.router.focus, seen()).toBe(2);
    await waitFor(() => keysOf(qb).includes('f 0'), 'f released in QEMU b', 10_000);
    expect(log).toContain(`keyboard focus: heads[2] (demo) on ${c2}, which takes no input`);
    const still = traced(qa).length + traced(qb).length;
    kbd.key(33, false);
    kbd.key(35, true); // KEY_H: nowhere
    kbd.key(35, false);
    rat.move(20, 0); // further onto head 2
    rat.move(20, 0);
    await sleep(500);
    expect(traced(qa).length + traced(qb).length, seen()).toBe(still);
    expect(hi.router.focus).toBe(2);

    // Back left across two edges: keys go to guest a again.
    for (let i = 0; i < 150 && hi.router.focus !== 0; i++) {
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
    await waitFor(() => quits === 1 && keysOf(qa).length >= 6 && keysOf(qb).length >= 8, 'E in QEMU a and the quit chord', 10_000).catch((e: Error) => {
      throw new Error(`${e.message}; quits ${quits}; ${seen()}`);
    });
    await sleep(300); // nothing more may come
    expect(keysOf(qa)).toEqual(['b 1', 'b 0', 'c 1', 'c 0', 'e 1', 'e 0']);
    expect(keysOf(qb)).toEqual(['a 1', 'a 0', 'd 1', 'd 0', 'f 1', 'f 0', 'ctrl 1', 'alt 1']);
    expect(quits).toBe(1);
    console.log(`heads-input: ${order.length} motions of 20 counts, ${firstB} into QEMU a (last at host x ${order[firstB - 1].x.toFixed(1)}), ${order.length - firstB} into QEMU b (first at host x ${order[firstB].x.toFixed(1)})`);
  });
  it.skipIf(missing)('hotplug: an unplugged screen leaves the layout (the pointer and focus go to the screen left), and comes back at its place', async () => {
    startUdevd();
    const rat = device(() => mouse('gp heads hotplug mouse'));
    udevSettle();
    const vd = vkms([false, false]);
    const [c0, c1] = vd.connectorNames;
    const config = parseHeadsConfig({
      device: vd.cardPath,
      guests: { a: { type: 'udmabuf', width: 320, height: 240, fps: 5 }, b: { type: 'udmabuf', width: 320, height: 240, fps: 5 } },
      heads: [
        { guest: 'a', connector: c0, mode: { width: 640, height: 480 } },
        { guest: 'b', connector: c1, mode: { width: 640, height: 480 } },
      ],
    });
    const log: string[] = [];
    const mgr = await runHeads(config, { log: (l) => log.push(l) });
    cleanup.push(() => mgr.close());
    const hi = new HeadsInput(mgr, { quit: () => {}, log: (l) => log.push(l) });
    cleanup.push(() => hi.close());
    await waitFor(() => log.some((l) => l.includes('(gp heads hotplug mouse)')), 'libinput to add the mouse', 10_000);
    expect(log).toContain('guests.a is not a QEMU D-Bus guest: heads[0] take no input');
    const rects = () => hi.router.screens.map((s) => `${s.name} ${s.rect.width}x${s.rect.height}+${s.rect.x}+${s.rect.y}`);
    expect(rects()).toEqual([`${c0} 640x480+0+0`, `${c1} 640x480+640+0`]);
    for (let i = 0; i < 80 && hi.router.focus !== 1; i++) {
      rat.move(20, 0);
      await sleep(30);
    }
    expect(hi.router.focus).toBe(1);
    const y = hi.router.pointer!.y;

    vd.setConnectorStatus(1, false);
    await waitFor(() => hi.router.screens.length === 1, `the layout without ${c1}`, 10_000).catch((e: Error) => {
      throw new Error(`${e.message}; log: ${log.join(' | ')}`);
    });
    expect(rects()).toEqual([`${c0} 640x480+0+0`]);
    expect(hi.router.pointer).toEqual({ x: 639, y });
    expect(hi.router.focus).toBe(0);
    rat.move(50, 0); // the edge is an outer edge now
    await sleep(300);
    expect(hi.router.pointer).toEqual({ x: 639, y });

    vd.setConnectorStatus(1, true);
    await waitFor(() => hi.router.screens.length === 2, `${c1} back in the layout`, 10_000);
    expect(rects()).toEqual([`${c0} 640x480+0+0`, `${c1} 640x480+640+0`]);
    for (let i = 0; i < 20 && hi.router.focus !== 1; i++) {
      rat.move(20, 0);
      await sleep(30);
    }
    expect(hi.router.focus).toBe(1);
  });

  it.skipIf(missingSeat)('the multi-head kiosk as uid 65534 through seatd: configured positions, the pointer crosses left into the second QEMU, keys follow; away, no commit and no key; back, both screens relit and keys go on; Ctrl+Alt+F2 switches VT; no fd gained', async () => {
    startUdevd();
    const kbd = device(() => keyboard('gp heads seat keyboard'));
    const rat = device(() => mouse('gp heads seat mouse'));
    udevSettle();
    const { seatd, home } = await seatdAndHomeVt(cleanup, 'nobody');
    const vd = vkms([false, false]);
    const [c0, c1] = vd.connectorNames;
    // QEMU peer-to-peer: the kiosk (another uid) gets its end of a socket each QEMU took through QMP.
    const vms: QemuVm[] = [];
    const ours: number[] = [];
    for (const n of [0, 1]) {
      const dir = mkdtempSync(join(tmpdir(), `gphs${n}-`));
      const { vm, qmp } = await qemu(dir, { display: 'dbus,p2p=yes,gl=off', busAddress: 'unix:path=/nonexistent' });
      await mdpyInit(vm.qtest);
      const [mine, theirs] = libc.socketpair(libc.AF_UNIX, libc.SOCK_STREAM);
      cleanup.push(() => libc.close(mine));
      await qmpAddDbusClient(qmp, theirs);
      libc.close(theirs);
      await qmpCont(qmp);
      vms.push(vm);
      ours.push(mine);
    }
    const [qa, qb] = vms;
    const dir = mkdtempSync(join(tmpdir(), 'gphs-'));
    chmodSync(dir, 0o755);
    const cfg = join(dir, 'heads.json');
    // Head b's screen placed left of head a's: the pointer (centre of the first screen) goes left to reach it.
    writeFileSync(
      cfg,
      JSON.stringify({
        device: vd.cardPath,
        guests: { a: { type: 'qemu-dbus', address: 'fd:3' }, b: { type: 'qemu-dbus', address: 'fd:4' } },
        heads: [
          { guest: 'a', connector: c0, mode: { width: 640, height: 480 }, scale: 'native', position: { x: 640, y: 0 } },
          { guest: 'b', connector: c1, mode: { width: 640, height: 480 }, scale: 'native', position: { x: 0, y: 0 } },
        ],
      }),
    );
    const k = new KioskProcess(['--config', cfg, '--session', 'seat', '--stats', 'json'], ours, { user: NOBODY, env: seatd.env, bare: true });
    cleanup.push(() => k.kill());
    await k.waitLine((l) => l.includes('on seat seat0'));
    await k.waitLine(() => k.lines.filter((l) => l.includes(': attached (')).length === 2);
    await k.waitLine((l) => l.includes('(gp heads seat keyboard)'));
    await k.waitLine((l) => l.includes('(gp heads seat mouse)'));
    expect(k.lines.filter((l) => l.includes('input layout:')).at(-1)).toContain(`${c0} 640x480+640+0, ${c1} 640x480+0+0`);
    await k.waitLine((l) => l.includes(`keyboard focus: heads[0] (a) on ${c0}`));
    const pid = k.child.pid!;
    const kioskFds = () => readdirSync(`/proc/${pid}/fd`).length;
    const count = (text: string) => k.lines.filter((l) => l.includes(text)).length;
    const rows = () => k.lines.filter((l) => l.startsWith('{"heads"')).map((l) => (JSON.parse(l) as { heads: { commits: number }[] }).heads.map((h) => h.commits).join('/'));
    const seen = () => `QEMU a saw ${traced(qa).join(', ')}; QEMU b saw ${traced(qb).join(', ')}`;
    const keys = async (vm: QemuVm, n: number) =>
      waitFor(() => keysOf(vm).length >= n, `${n} keys`, 15_000).catch((e: Error) => {
        throw new Error(`${e.message}; ${seen()}; kiosk: ${k.lines.join(' | ')}`);
      });

    // A head takes the pointer once it shows a picture (guest pixels need its size): a
    // QEMU slow to its first frame would otherwise get none of the crossing moves.
    const guestFrames = (l: string) => (JSON.parse(l) as { heads: { paths: Record<string, number> }[] }).heads.map((h) => Object.entries(h.paths).reduce((n, [p, c]) => n + (p === 'no-signal' ? 0 : c), 0));
    await waitFor(() => k.lines.some((l) => l.startsWith('{"heads"') && guestFrames(l).every((n) => n > 0)), 'both heads to show their guest', 30_000).catch((e: Error) => {
      throw new Error(`${e.message}; kiosk: ${k.lines.join(' | ')}`);
    });
    kbd.key(30, true); // KEY_A into guest a
    kbd.key(30, false);
    await keys(qa, 2);
    for (let i = 0; i < 80 && !count('keyboard focus: heads[1]'); i++) {
      rat.move(-20, 0);
      await sleep(30);
    }
    await k.waitLine((l) => l.includes(`keyboard focus: heads[1] (b) on ${c1}`));
    await waitFor(() => motionsOf(qb).length > 0, 'motion in QEMU b', 10_000).catch((e: Error) => {
      throw new Error(`${e.message}; ${seen()}; stats ${rows().join(', ')}; kiosk: ${k.lines.join(' | ')}`);
    });
    kbd.key(31, true); // KEY_S into guest b
    kbd.key(31, false);
    await keys(qb, 2);
    const fdsSteady = kioskFds();

    // Away: nothing committed on either screen, no key anywhere.
    chvt(home + 1);
    await k.waitLine((l) => l.includes('the seat went to another session'));
    const awayFrom = rows().length;
    kbd.key(45, true); // KEY_X: the seat has revoked the keyboard
    kbd.key(45, false);
    await waitFor(() => rows().length >= awayFrom + 3, '3 stats lines while away', 15_000);
    const away = rows().slice(awayFrom);
    expect(new Set(away).size, `commits while away: ${away.join(', ')}`).toBe(1);
    chvt(home);
    const lit = await k.waitLine((l) => l.includes('lit again'));
    expect(lit).toContain(`${c0}, ${c1} lit again`);
    await waitFor(() => rows().length > awayFrom + away.length + 1, 'a stats line after', 15_000);
    const after = rows().at(-1)!.split('/').map(Number);
    const before = away[0].split('/').map(Number);
    expect(after[0], `${before} -> ${after}`).toBeGreaterThan(before[0]);
    expect(after[1], `${before} -> ${after}`).toBeGreaterThan(before[1]);
    await k.waitLine(() => count('(gp heads seat keyboard)') >= 3); // added, removed while away, added again
    kbd.key(32, true); // KEY_D: focus stayed on head b
    kbd.key(32, false);
    await keys(qb, 4);

    // Ctrl+Alt+F2: the kiosk asks the seat for VT 2; guest b saw Ctrl and Alt go down and, as the seat went, up again.
    kbd.key(29, true);
    kbd.key(56, true);
    kbd.key(fKeyOf(home + 1), true);
    await waitFor(() => activeVt() === home + 1, `VT ${home + 1}`, 15_000);
    await keys(qb, 8);
    kbd.key(fKeyOf(home + 1), false);
    kbd.key(56, false);
    kbd.key(29, false);
    chvt(home);
    await k.waitLine(() => count('lit again') === 2);
    await k.waitLine(() => count('(gp heads seat keyboard)') >= 5);
    await sleep(300);
    expect(keysOf(qa)).toEqual(['a 1', 'a 0']);
    expect(keysOf(qb)).toEqual(['s 1', 's 0', 'd 1', 'd 0', 'ctrl 1', 'alt 1', 'ctrl 0', 'alt 0']);
    const fdsEnd = kioskFds();
    expect(fdsEnd).toBe(fdsSteady);

    k.child.kill('SIGTERM');
    expect((await k.exited).code).toBe(0);
    expect(k.lines.some((l) => l.includes('screens restored'))).toBe(true);
    console.log(`heads-input seat (uid ${NOBODY}): ${lit.replace(/^guestplane heads: /, '')}; commits while away ${away[0]}, after ${after.join('/')}; kiosk fds ${fdsSteady} -> ${fdsEnd}`);
  });
});
