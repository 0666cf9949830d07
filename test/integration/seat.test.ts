// Issue 14, the seat: the card opened through libseat and a real seatd (Debian's), session
// switches made the way a user makes them (chvt: VT_ACTIVATE, which seatd answers in
// VT_PROCESS mode). While another VT has the seat nothing is committed, not even TEST_ONLY;
// when it is back the screen is lit again with the guest's current frame. Then what an
// operator runs: the kiosk CLI as an unprivileged user (uid 65534) showing an unmodified
// QEMU, with uinput keyboards and mice through udev, libinput and the seat.
//
// One file: seatd 0.7 listens on /run/seatd.sock only, and the VT is the whole machine's.
import { describe, it, expect } from 'vitest';
import { chmodSync, chownSync, mkdtempSync, readdirSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as libc from '../../ffi/libc.js';
import { SeatSession } from '../../plugin/device/session.js';
import { Backend } from '../../plugin/device/backend.js';
import { findCardByDriver } from '../../plugin/kms/device.js';
import { UdmabufSource } from '../../plugin/sources/udmabuf.js';
import { drawPattern } from '../../plugin/sources/pattern.js';
import { cleanupAfterEach } from './helpers/cleanup.js';
import { nextPresent, patternMismatches, sleep } from './helpers/faults.js';
import { activeVt, chvt, fKeyOf, seatdAndHomeVt, seatdMissing } from './helpers/seat.js';
import { KioskProcess, cliFor } from './helpers/kiosk-process.js';
import { createSmallMdev } from './helpers/mdev.js';
import { mdpyInit, mdpyShowPattern, qemuDbusMissing, qmpAddDbusClient, qmpCont, startQemu } from './helpers/qemu.js';
import { keyboard, keyboardAndMouse, startUdevd, udevSettle, uinputMissing } from './helpers/uinput.js';
import { buildWaylandClient, startClient } from './helpers/wayland-client.js';

const cleanup = cleanupAfterEach();
const missing = seatdMissing();
if (missing) console.log(`seat: skipped: ${missing}`);
const missingKiosk = missing ?? qemuDbusMissing({ parents: ['mdpy'], gl: false }) ?? uinputMissing();
if (missingKiosk && !missing) console.log(`seat (kiosk): skipped: ${missingKiosk}`);
const NOBODY = 65534;

const fdCount = () => readdirSync('/proc/self/fd').length;

/** Sets environment variables for this test (libseat reads them), restored after it. */
function setEnv(vars: Record<string, string>): void {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  cleanup.push(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
}

describe('seat session (libseat, seatd, VT switches)', { timeout: 120_000 }, () => {
  it.skipIf(missing)('no seat daemon: opening the seat fails and says what to start', async () => {
    setEnv({ LIBSEAT_BACKEND: 'seatd', SEATD_SOCK: '/nonexistent/seatd.sock' });
    await expect(SeatSession.open({ timeoutMs: 2000 })).rejects.toThrow(/cannot open a seat: .*start seatd/);
  });

  it.skipIf(missing)('the card through seatd: away, nothing is committed; back, the current frame is lit again at once, pixel-exact; fds flat; a node the seat does not hand out is refused', async () => {
    const { seatd, home } = await seatdAndHomeVt(cleanup, 'root');
    setEnv(seatd.env);
    const session = await SeatSession.open();
    cleanup.push(() => session.close());
    expect(session.name).toBe('seat0');
    expect(() => session.openDevice('/dev/null')).toThrow(/seat seat0 cannot open \/dev\/null: .*not a device the seat hands out/);

    const backend = Backend.open({ device: findCardByDriver('vkms')!, session });
    cleanup.push(() => backend.close());
    const out = backend.enableOutput('Virtual-1', { mode: { width: 640, height: 480 } });
    const guest = new UdmabufSource({ width: 640, height: 480, buffers: 3 });
    cleanup.push(() => guest.close());
    out.attach(guest, 'native');
    guest.render(0, 1);
    const first = nextPresent(out, (p) => p.frame === 1);
    guest.flip(0, 1);
    expect(await first).toMatchObject({ path: 'scanout', zeroCopy: true });
    const fds0 = fdCount();

    // Away: the kernel's VT switch goes through seatd, which drops master and tells us.
    const disabled = new Promise<void>((r) => session.once('disable', () => r()));
    chvt(home + 1);
    await disabled;
    expect(out.suspended).toBe(true);
    const away = { ...backend.device.counters };
    const errors: string[] = [];
    out.on('error', (e) => errors.push(`${e.cause}: ${e.message}`));
    guest.render(1, 2);
    guest.flip(1, 2); // the guest goes on meanwhile
    await sleep(500); // 30 refreshes
    expect(backend.device.counters).toEqual(away);
    expect(() => backend.enableOutput('Virtual-2')).toThrow(/seat session is not active/);

    // Back: master again, and the frame the guest flipped to while we were away on screen.
    let relitMs = -1;
    const enabled = new Promise<void>((r) =>
      session.once('enable', () => {
        relitMs = performance.now() - session.enabledAt; // the backend's own handler ran first
        r();
      }),
    );
    const shown = nextPresent(out, (p) => p.frame === 2);
    chvt(home);
    await enabled;
    expect(out.suspended).toBe(false);
    expect(await shown).toMatchObject({ path: 'scanout', zeroCopy: true });
    const cap = await out.captureNext();
    expect(patternMismatches(cap, 2, 640, 480, drawPattern)).toBe(0);
    expect(errors).toEqual([]);
    expect(session.counters).toEqual({ enables: 2, disables: 1 });
    expect(session.openDevices).toBe(1);
    expect(fdCount()).toBe(fds0);
    console.log(`seat: relit ${relitMs.toFixed(1)} ms after the seat came back (refresh ${(out.refreshNs / 1e6).toFixed(1)} ms); ${backend.device.counters.commits - away.commits} commits after`);
    expect(seatd.log()).toMatch(/Disabled client/);
  });

  it.skipIf(missingKiosk)('kiosk as uid 65534 through seatd: shows QEMU pixel-exact, keys reach QEMU; away, no commit and no key; back, relit with the new frame; Ctrl+Alt+F2 switches VT with the guest’s keys released; no fd gained', async () => {
    const { kbd, rat } = keyboardAndMouse(cleanup);
    const { seatd, home } = await seatdAndHomeVt(cleanup, 'nobody');

    // QEMU peer-to-peer: the kiosk gets its end of a socket QEMU took through QMP (no bus to share across users).
    const dir = mkdtempSync(join(tmpdir(), 'gps-'));
    chmodSync(dir, 0o777); // the kiosk writes its captures here as uid 65534
    const mdev = createSmallMdev('mdpy');
    cleanup.push(() => mdev.remove());
    const qmp = join(dir, 'qmp.sock');
    const vm = await startQemu({ mdev, gl: false, display: 'dbus,p2p=yes,gl=off', busAddress: 'unix:path=/nonexistent', dir, extraArgs: ['-qmp', `unix:${qmp},server=on,wait=off`, '-trace', 'enable=input_event_*'] });
    cleanup.push(async () => {
      await vm.close();
    });
    const mode = await mdpyInit(vm.qtest);
    const show = (n: number) => mdpyShowPattern(vm.qtest, mode, n);
    await show(5);
    const [ours, theirs] = libc.socketpair(libc.AF_UNIX, libc.SOCK_STREAM);
    cleanup.push(() => libc.close(ours));
    await qmpAddDbusClient(qmp, theirs);
    libc.close(theirs);

    const k = new KioskProcess(['--qemu-dbus', 'fd:3', '--session', 'seat', '--mode', `${mode.width}x${mode.height}`, '--fit', 'native', '--capture-dir', dir], [ours], { user: NOBODY, env: seatd.env });
    cleanup.push(() => k.kill());
    await k.waitLine((l) => l.includes('on seat seat0'));
    await k.waitLine((l) => l.includes('(guestplane test keyboard)'));
    await k.waitLine((l) => l.includes('(guestplane test mouse)'));
    const pid = k.child.pid!;
    const kioskFds = () => readdirSync(`/proc/${pid}/fd`).length;
    const mismatchesFor = async (n: number) => {
      let bad = -1;
      for (let tries = 0; tries < 40 && bad !== 0; tries++) {
        const c = await k.capture();
        bad = patternMismatches({ pixels: new Uint8Array(c.pixels.buffer), stride: mode.width * 4 }, n, mode.width, mode.height, drawPattern);
      }
      return bad;
    };
    // The stats lines (one per second) carry the commit count.
    const commits = () => k.lines.filter((l) => l.startsWith('{"stats"')).map((l) => (JSON.parse(l) as { stats: { commits: number } }).stats.commits);
    const count = (text: string) => k.lines.filter((l) => l.includes(text)).length;
    const AWAY = 'the seat went to another session';
    // libinput opens the devices again after each return: keys typed before that are lost.
    const keyboardAdds = () => k.lines.filter((l) => l.includes('(guestplane test keyboard)') && !l.includes('removed')).length;

    // Pixels first: QEMU under qtest stops refreshing mdpy's display once the VM runs
    // (`cont`, which input needs), so the frames are checked while it is stopped.
    expect(await mismatchesFor(5)).toBe(0);
    const fdsSteady = kioskFds();
    chvt(home + 1);
    await k.waitLine((l) => l.includes(AWAY));
    const statsAway = commits().length;
    await show(6); // QEMU goes on while the kiosk is away
    await waitForLines(() => commits().length >= statsAway + 3, () => `${commits().length - statsAway} stats lines while away`);
    const away = commits().slice(statsAway);
    expect(new Set(away).size, `commits while away: ${away.join(', ')}`).toBe(1);
    chvt(home);
    const lit = await k.waitLine((l) => l.includes('lit again'));
    expect(await mismatchesFor(6)).toBe(0);

    // Input: keys reach QEMU; away, the keyboard is revoked and nothing reaches it.
    await qmpCont(qmp);
    await k.waitLine(() => keyboardAdds() >= 2);
    const trace = () => vm.stderr.split('\n').filter((l) => l.includes('input_event_key'));
    const keysSince = (n: number) => trace().slice(n).map((l) => /qcode (\w+), down (\d)/.exec(l)?.slice(1).join(' ') ?? l);
    let t0 = trace().length;
    kbd.key(30, true); // KEY_A
    kbd.key(30, false);
    await waitForLines(() => keysSince(t0).length >= 2, () => `QEMU saw ${keysSince(t0).join(', ')}`);
    expect(keysSince(t0)).toEqual(['a 1', 'a 0']);
    chvt(home + 1);
    await k.waitLine(() => count(AWAY) === 2);
    t0 = trace().length;
    kbd.key(48, true); // KEY_B
    kbd.key(48, false);
    await sleep(500);
    chvt(home);
    await k.waitLine(() => count('lit again') === 2);
    await k.waitLine(() => keyboardAdds() >= 3);
    kbd.key(46, true); // KEY_C
    kbd.key(46, false);
    await waitForLines(() => keysSince(t0).length >= 2, () => `QEMU saw ${keysSince(t0).join(', ')}`);
    expect(keysSince(t0)).toEqual(['c 1', 'c 0']);

    // Ctrl+Alt+F2 from the keyboard: the kiosk asks the seat for VT 2; the guest saw Ctrl
    // and Alt go down and, as the seat went, up again; never F2.
    t0 = trace().length;
    kbd.key(29, true);
    kbd.key(56, true);
    kbd.key(fKeyOf(home + 1), true);
    await waitForLines(() => activeVt() === home + 1, () => `VT ${activeVt()}`);
    await k.waitLine(() => count(AWAY) === 3);
    await waitForLines(() => keysSince(t0).length >= 4, () => `QEMU saw ${keysSince(t0).join(', ')}`);
    kbd.key(fKeyOf(home + 1), false);
    kbd.key(56, false);
    kbd.key(29, false);
    chvt(home);
    await k.waitLine(() => count('lit again') === 3);
    await sleep(300);
    expect(keysSince(t0)).toEqual(['ctrl 1', 'alt 1', 'ctrl 0', 'alt 0']);
    const fdsEnd = kioskFds();
    expect(fdsEnd).toBe(fdsSteady);

    k.child.kill('SIGTERM');
    expect((await k.exited).code).toBe(0);
    expect(k.lines.some((l) => l.includes('screen restored'))).toBe(true);
    console.log(`seat kiosk (uid ${NOBODY}): ${lit.replace(/^guestplane kiosk: /, '')}; commits while away ${away.join(', ')}; kiosk fds ${fdsSteady} -> ${fdsEnd}`);
  });
  it.skipIf(missingKiosk)('compositor as uid 65534 through seatd: a real client gets the keys; away, none; back, lit again and keys flow; Ctrl+Alt+F2 switches VT and F2 reaches no client', async () => {
    startUdevd();
    const kbd = keyboard();
    cleanup.push(() => kbd.close());
    udevSettle();
    const { seatd, home } = await seatdAndHomeVt(cleanup, 'nobody');
    const runtime = mkdtempSync(join(tmpdir(), 'gpc-'));
    chownSync(runtime, NOBODY, NOBODY);
    const client = buildWaylandClient();
    const comp = spawn('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, cliFor(NOBODY), 'compositor', '--session', 'seat', '--device', findCardByDriver('vkms')!, '--connector', 'Virtual-1', '--socket', 'wl-seat', '--no-lease'], {
      env: { ...process.env, ...seatd.env, XDG_RUNTIME_DIR: runtime },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((r) => comp.on('exit', (code) => r(code)));
    cleanup.push(async () => {
      if (comp.exitCode === null && comp.signalCode === null) comp.kill('SIGKILL');
      await exited;
    });
    const log: string[] = [];
    let partial = '';
    comp.stderr.on('data', (d: Buffer) => {
      partial += d.toString();
      const parts = partial.split('\n');
      partial = parts.pop()!;
      log.push(...parts);
    });
    const count = (text: string) => log.filter((l) => l.includes(text)).length;
    const keyboardAdds = () => log.filter((l) => l.includes('(guestplane test keyboard)') && !l.includes('removed')).length;
    const saw = (pred: () => boolean, what: string) => waitForLines(pred, () => `${what}; compositor: ${log.join(' | ')}`, 30_000);
    await saw(() => count('on seat seat0') === 1 && keyboardAdds() === 1, 'the compositor on the seat with the keyboard');

    const c = startClient(client, ['input', '512', '256'], { runtimeDir: runtime, socket: 'wl-seat' });
    cleanup.push(() => c.kill());
    await c.waitFor(/^KB_ENTER/);
    const keys = () => c.lines.filter((l) => l.startsWith('KEY ')).map((l) => /key=(\d+) state=(\d)/.exec(l)!.slice(1).join(' '));
    kbd.key(30, true);
    kbd.key(30, false);
    await waitForLines(() => keys().length >= 2, () => `client keys: ${keys().join(', ')}`);

    chvt(home + 1);
    await saw(() => count('the seat went to another session') === 1, 'the seat going');
    kbd.key(48, true); // its device is revoked: no client may see it
    kbd.key(48, false);
    await sleep(500);
    chvt(home);
    await saw(() => count('lit again') === 1 && keyboardAdds() === 2, 'the seat back, the keyboard opened again');
    // The keyboard capability went and came back: the client gets a new wl_keyboard, and a key
    // before its get_keyboard reaches the compositor goes to no one (as on wlroots). A
    // fresh-clone CI once pressed too early under load and timed out below.
    await waitForLines(() => c.lines.filter((l) => l.startsWith('KB_ENTER')).length >= 2, () => `the client's new keyboard; client: ${c.lines.slice(-6).join(' | ')}`);
    kbd.key(46, true);
    kbd.key(46, false);
    await waitForLines(() => keys().length >= 4, () => `client keys: ${keys().join(', ')}; compositor: ${log.slice(-10).join(' | ')}`);

    kbd.key(29, true);
    kbd.key(56, true);
    kbd.key(fKeyOf(home + 1), true); // F2 when the test starts on VT 1
    await waitForLines(() => activeVt() === home + 1, () => `VT ${activeVt()}; compositor: ${log.join(' | ')}`);
    await saw(() => count('the seat went to another session') === 2, 'the seat going on Ctrl+Alt+F2');
    kbd.key(fKeyOf(home + 1), false);
    kbd.key(56, false);
    kbd.key(29, false);
    chvt(home);
    await saw(() => count('lit again') === 2 && keyboardAdds() === 3, 'the seat back again');
    await sleep(300);
    // Ctrl and Alt went to the client (and it was told they are up when the devices went); F2 never.
    expect(keys().filter((k) => k.startsWith('48 ') || k.startsWith(`${fKeyOf(home + 1)} `))).toEqual([]);
    expect(keys().slice(0, 4)).toEqual(['30 1', '30 0', '46 1', '46 0']);
    const lit = log.find((l) => l.includes('lit again'))!;

    comp.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(log.some((l) => l.includes('screen restored'))).toBe(true);
    console.log(`seat compositor (uid ${NOBODY}): ${lit.replace(/^guestplane compositor: /, '')}; client keys ${keys().join(', ')}`);
  });
});

async function waitForLines(pred: () => boolean, what: () => string, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms: ${what()}`);
    await sleep(20);
  }
}
