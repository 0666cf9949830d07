// Issue 28 item 9: the same real guest shown by QEMU's own displays and by guestplane window,
// on the same host compositor, in one run. The guest is the rig tests' nested guest (a Linux
// on virtio-gpu blob, 640x480, flipping two dumb buffers as fast as its display lets it,
// QEMU 7.2); the host compositor is ours (KioskCompositor on vkms, in this process), the
// desktop a user's QEMU window would sit on. Rows:
//
//   qemu -display sdl,gl=off     QEMU's SDL window (Wayland): each frame copied into an SDL
//                                texture and drawn by SDL's GL renderer (llvmpipe here)
//   qemu -display sdl,gl=on      QEMU imports the guest's dma-buf into its own GL context
//   qemu -display gtk,gl=off     QEMU's GTK window, frames copied through cairo
//   qemu -display gtk,gl=on      GTK's GL area (7.2 on Wayland: "GtkGLArea console lacks
//                                DMABUF support", so the frame reaches GL by a copy)
//   guestplane window            -display dbus,gl=on + `guestplane window` (a process of its
//                                own): the guest's udmabuf handed to the compositor as a
//                                wl_buffer, which puts it on an overlay plane
//
// Measured per row, in one window of guest frames (frames 20 to 20+M by the guest's own
// serial lines):
//   - host CPU per guest frame of the display side: QEMU's threads except its vCPU
//     ("CPU 0/TCG": the guest's own work, the same in every row) + the window process (our
//     row) + the compositor (this process). There is no GPU: every GL renderer here is
//     llvmpipe, so GL composition shows as CPU (on real hardware part of it would be GPU time);
//   - guest frames per second (the guest flips as fast as its display completes its flips);
//   - then, after the CPU window, sampled screen lag: writeback captures of the compositor's
//     output, the guest's frame number decoded from each (its pattern, wherever the window put
//     it, 1:1 or scaled), against the host time at which the guest said it flipped that frame:
//     how old the frame on screen is (an upper bound: the serial line comes after the flip).
//
// Each row builds its own world (bus, QEMU, window) and tears it down; a failure is the row's note.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KioskCompositor } from '../../plugin/modes/compositor.js';
import type { PresentEvent } from '../../plugin/output/types.js';
import type { CaptureResult } from '../../plugin/output/capture.js';
import { decodeFrameNumber } from '../../plugin/sources/pattern.js';
import { busNameHasOwner, startSessionBus } from '../integration/helpers/qemu.js';
import { nestedGuestMissing, rigKernel, startNestedGuest, type NestedGuest } from '../integration/helpers/nested-guest.js';
import { systemQemu } from '../integration/helpers/qemu-builds.js';
import { cpuMicros, percentile, sleep, threadCpuMs } from './measure.js';
import { processCpuMicros, withTeardown, type Row, type Teardown } from './qemu-dbus.js';

export const QEMU_DISPLAY_BENCH = 'qemu-display-640x480';
const GW = 640;
const GH = 480;
/** Frames before the CPU window (boot console, the first flips' set-up). */
const WARM = 20;

export interface QemuDisplaySpec {
  card: string;
  connector: string;
  /** Guest frames in the CPU window. */
  frames: number;
  /** Writeback captures for the screen lag. */
  captures: number;
  log: (s: string) => void;
  /** The window process writes a V8 CPU profile here (bench --cpu-prof). */
  cpuProfDir?: string;
}

export const QEMU_DISPLAYS = [
  { path: 'qemu -display sdl,gl=off', display: 'sdl,gl=off' },
  { path: 'qemu -display sdl,gl=on', display: 'sdl,gl=on' },
  { path: 'qemu -display gtk,gl=off', display: 'gtk,gl=off' },
  { path: 'qemu -display gtk,gl=on', display: 'gtk,gl=on' },
  { path: 'guestplane window (-display dbus,gl=on)', display: 'dbus,gl=on' },
] as const;

/** Why this bench cannot run here, or null. */
export function qemuDisplayMissing(): string | null {
  if (!rigKernel()) return 'no rig kernel (GUESTPLANE_RIG_KERNEL): the nested guest boots it';
  const qemu = systemQemu();
  const why = nestedGuestMissing(qemu);
  if (why) return why;
  for (const m of ['ui-sdl.so', 'ui-gtk.so']) {
    try {
      readFileSync(join(qemu.moduleDir, m));
    } catch {
      return `no ${qemu.moduleDir}/${m} (Debian package qemu-system-gui)`;
    }
  }
  return null;
}

/** QEMU's CPU split into its vCPU threads and everything else (display, main loop, GL), ms, between two samples. */
function qemuSplit(a: Map<string, number>, b: Map<string, number>): { vcpu: number; rest: number; byThread: Record<string, number> } {
  let vcpu = 0;
  let rest = 0;
  const byThread: Record<string, number> = {};
  for (const [k, v] of b) {
    const d = v - (a.get(k) ?? 0);
    if (d <= 0) continue;
    const name = k.slice(k.indexOf(' ') + 1);
    byThread[name] = (byThread[name] ?? 0) + d;
    if (/^CPU \d+\/TCG$/.test(name)) vcpu += d;
    else rest += d;
  }
  return { vcpu, rest, byThread };
}

/**
 * Where the guest picture is in a capture (QEMU's window may place or scale it): an origin and
 * scale at which a frame number decodes that the guest said it flipped (other pixels, a
 * window's title bar or the boot console, can decode as some number by chance).
 */
function findGuest(c: CaptureResult, flipped: (n: number) => boolean): { x: number; y: number; scale: number } | null {
  const t = { bytes: c.pixels, offset: 0, width: c.width, height: c.height, stride: c.stride };
  for (const scale of [1, c.height / GH, c.width / GW, 1.5, 2]) {
    for (let y = 0; y + 40 * scale < c.height; y += 4) {
      for (let x = 0; x + 100 * scale < c.width; x += 4) {
        const n = decodeFrameNumber(t, x, y, scale);
        if (n !== null && flipped(n)) return { x, y, scale };
      }
    }
  }
  return null;
}

/** `guestplane window` on the compositor's socket, its JSON stats lines. */
function startWindow(t: Teardown, address: string, socket: string, runtimeDir: string, cpuProfDir?: string): { child: ChildProcess; stats: Array<Record<string, unknown>>; lines: string[] } {
  const cli = join(process.cwd(), 'dist/plugin/cli.js');
  const prof = cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`, '--cpu-prof-name=window.cpuprofile'] : [];
  const child = spawn(process.execPath, [...prof, cli, 'window', '--qemu-dbus', address, '--fullscreen', '--fit', 'native', '--stats', 'json', '--display', socket], {
    env: { ...process.env, XDG_RUNTIME_DIR: runtimeDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stats: Array<Record<string, unknown>> = [];
  const lines: string[] = [];
  const onLine = (b: Buffer) => {
    for (const l of b.toString().split('\n')) {
      if (!l) continue;
      const at = l.indexOf('{"stats"');
      if (at >= 0) {
        try {
          stats.push((JSON.parse(l.slice(at)) as { stats: Record<string, unknown> }).stats);
        } catch {
          lines.push(l);
        }
      } else if (lines.length < 200) lines.push(l);
    }
  };
  child.stdout!.on('data', onLine);
  child.stderr!.on('data', onLine);
  t.push('guestplane window', async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await Promise.race([gone, sleep(5000)]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, stats, lines };
}

/** Host time (ms since QEMU started) at which the guest said it flipped frame n. */
function frameAt(g: NestedGuest, n: number): number | null {
  const l = g.lines.find((x) => x.text.startsWith(`frame ${n} `));
  return l ? l.at : null;
}

async function runRow(spec: QemuDisplaySpec, comp: KioskCompositor, socket: string, runtimeDir: string, display: string): Promise<Row> {
  return withTeardown(async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'gp-qd-'));
    t.push('temp dir', () => rmSync(dir, { recursive: true, force: true }));
    const bus = startSessionBus(dir);
    t.push('session bus', () => bus.close());
    const total = WARM + spec.frames + 40 * spec.captures + 100;
    const env = { WAYLAND_DISPLAY: socket, XDG_RUNTIME_DIR: runtimeDir, SDL_VIDEODRIVER: 'wayland', GDK_BACKEND: 'wayland', NO_AT_BRIDGE: '1' };
    const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
    Object.assign(process.env, env);
    let guest: NestedGuest;
    try {
      guest = startNestedGuest({ dir, busAddress: bus.address, kernel: rigKernel()!, frames: total, width: GW, height: GH, display, extraArgs: ['-name', 'gp-bench,debug-threads=on'] }).guest;
    } finally {
      for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    t.push('nested QEMU', () => guest.close());
    const win = display.startsWith('dbus') ? await (async () => {
      for (;;) {
        if (guest.exitStatus) throw new Error(`QEMU exited before its display was on the bus: ${guest.stderr.slice(-300)}`);
        if (await busNameHasOwner(bus.address, 'org.qemu')) break;
        if (Date.now() - guest.spawnedAt > 90_000) throw new Error('org.qemu not on the bus after 90 s');
        await sleep(200);
      }
      return startWindow(t, bus.address, socket, runtimeDir, spec.cpuProfDir);
    })() : null;
    const presents: PresentEvent[] = [];
    const onPresent = (e: PresentEvent) => presents.push(e);
    comp.on('present', onPresent);
    t.push('present listener', () => comp.off('present', onPresent));
    await guest.waitForLine(new RegExp(`^frame ${WARM} `), 240_000);
    const q0 = threadCpuMs(guest.child.pid!);
    const w0 = win ? (processCpuMicros(win.child.pid!) ?? NaN) / 1000 : 0;
    const c0 = cpuMicros();
    const p0 = presents.length;
    const t0 = performance.now();
    const s0 = win?.stats.length ?? 0;
    await guest.waitForLine(new RegExp(`^frame ${WARM + spec.frames} `), 60_000 + spec.frames * 2000);
    const ms = performance.now() - t0;
    const q = qemuSplit(q0, threadCpuMs(guest.child.pid!));
    const winMs = win ? (processCpuMicros(win.child.pid!) ?? NaN) / 1000 - w0 : 0;
    const compMs = (cpuMicros() - c0) / 1000;
    const flips = presents.slice(p0);
    const winStats = win?.stats.slice(s0) ?? [];
    // Sampled screen lag (after the CPU window: capturing costs the compositor).
    const lags: number[] = [];
    let undecoded = 0;
    let where: { x: number; y: number; scale: number } | null = null;
    const out = comp.output;
    for (let i = 0; i < spec.captures; i++) {
      await sleep(150 + ((i * 97) % 300)); // not in step with the guest's flips
      const cap = await out.captureNext();
      const seenAt = Date.now() - guest.spawnedAt;
      where ??= findGuest(cap, (n) => frameAt(guest, n) !== null);
      const n = where ? decodeFrameNumber({ bytes: cap.pixels, offset: 0, width: cap.width, height: cap.height, stride: cap.stride }, where.x, where.y, where.scale) : null;
      const at = n !== null ? frameAt(guest, n) : null;
      if (at === null) undecoded++;
      else lags.push(seenAt - at);
    }
    lags.sort((a, b) => a - b);
    const frames = spec.frames;
    const zeroCopy = flips.filter((f) => f.layers?.some((l) => l.how === 'plane' && l.zeroCopy && l.id !== 'background' && l.id !== 'primary')).length;
    const hows = [...new Set(flips.flatMap((f) => (f.layers ?? []).map((l) => `${l.id}:${l.how}/${l.path}${l.reason?.code ? `/${l.reason.code}` : ''}`)))];
    const latency = winStats.length ? (winStats[winStats.length - 1]!.latencyMs as { p50: number; p99: number }) : null;
    const displayMs = q.rest + winMs + compMs;
    return [
      ['guest_frames', frames, 'count'],
      ['window', ms / 1000, 's'],
      ['guest_fps', (frames * 1000) / ms, 'frames/s'],
      ['compositor_flips_per_s', (flips.length * 1000) / ms, 'flips/s'],
      ['display_cpu_per_guest_frame', displayMs / frames, 'ms'],
      ['qemu_display_threads_per_frame', q.rest / frames, 'ms'],
      ['window_process_per_frame', win ? winMs / frames : null, 'ms'],
      ['compositor_per_frame', compMs / frames, 'ms'],
      ['qemu_vcpu_per_frame', q.vcpu / frames, 'ms'],
      ['zero_copy_flips', flips.length ? zeroCopy / flips.length : 0, 'share'],
      ['screen_lag_p50', lags.length ? percentile(lags, 50) : null, 'ms'],
      ['screen_lag_max', lags.length ? lags[lags.length - 1]! : null, 'ms'],
      ['captures_showing_a_guest_frame', lags.length / spec.captures, 'share'],
      ['window_latency_p50', latency ? latency.p50 : null, 'ms'],
      ['window_latency_p99', latency ? latency.p99 : null, 'ms'],
      ['note', `${flips.length === 0 ? 'QEMU\'s window put nothing on the compositor (no commit in the window); ' : ''}${lags.length === 0 ? 'no capture showed a guest frame; ' : ''}layers ${hows.join(', ') || 'none'}; QEMU threads ms ${JSON.stringify(q.byThread)}; guest at ${where ? `${where.x},${where.y} ×${where.scale.toFixed(2)}` : 'not found'}${undecoded ? `, ${undecoded} captures without a frame number` : ''}${win ? `; window: ${win.lines.slice(0, 3).join(' | ')}` : ''}${/error|fail/i.test(guest.stderr) ? `; QEMU stderr: ${guest.stderr.slice(-300).replace(/\s+/g, ' ')}` : ''}`, ''],
    ];
  });
}

/** Every row, on one compositor started here (our KioskCompositor on the card). */
export async function runQemuDisplays(spec: QemuDisplaySpec, attempt: (path: string, run: () => Promise<Row>) => Promise<void>): Promise<void> {
  const why = qemuDisplayMissing();
  if (why) return attempt('-', () => Promise.resolve([['note', `not measured: ${why}`, '']]));
  const runtimeDir = mkdtempSync(join(tmpdir(), 'gp-qd-xdg-'));
  const socket = 'gp-bench-qd';
  const savedRuntime = process.env.XDG_RUNTIME_DIR;
  process.env.XDG_RUNTIME_DIR = runtimeDir; // where the compositor puts its socket
  let comp: KioskCompositor;
  try {
    comp = KioskCompositor.start({ device: spec.card, connector: spec.connector, socket, input: false, log: () => {} });
  } finally {
    if (savedRuntime === undefined) delete process.env.XDG_RUNTIME_DIR;
    else process.env.XDG_RUNTIME_DIR = savedRuntime;
  }
  try {
    for (const d of QEMU_DISPLAYS) await attempt(d.path, () => runRow(spec, comp, socket, runtimeDir, d.display));
  } finally {
    await comp.close();
    rmSync(runtimeDir, { recursive: true, force: true });
  }
}
