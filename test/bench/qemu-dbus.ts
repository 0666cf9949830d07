// QEMU's D-Bus display as a guest source, beside the VFIO path, in one run: how many
// updates a second each path takes, the latency from an update's arrival to the flip that
// shows it, and what our process spends per frame. Four paths and a reference, 640x480 on vkms:
//
//   peer udmabuf (paced)        a peer plays QEMU (as in qemu-dbus-peer.test.ts): two
//                               udmabufs of "guest memory" rendered once, then per frame
//                               ScanoutDMABUF of the other buffer + UpdateDMABUF, waiting
//                               for the UpdateDMABUF answer as QEMU does for virtio-gpu
//                               (graphic_hw_gl_block): vkms scans the buffers out zero-copy.
//   udmabuf direct (no D-Bus)   reference for the peer: the stream bench's udmabuf guest
//                               attached directly (what the protocol adds is the difference).
//   qemu mbochs gl=on           an unmodified QEMU 7.2 with an mbochs mdev (qtest sets a
//                               640x480 mode): ScanoutDMABUF once, UpdateDMABUF on its own
//                               refresh timer, answered or not (vfio displays are not paced
//                               by the answers). vkms can neither scan out nor map mbochs
//                               dma-bufs, so every update is refused (and answered at once):
//                               QEMU's update rate and our per-update D-Bus cost only.
//   qemu mdpy gl=off (copy)     an unmodified QEMU with an mdpy mdev: the frame as pixel
//                               data in a Scanout message on every refresh, the copy path.
//   vfio mdpy direct            an mdpy mdev of the same type opened by guestplane itself
//                               (openVfioSource, no QEMU): the region, polled and copied
//                               every vblank (the VFIO-fd path, to compare with mdpy above).
//
// Every path builds its own world (mdev, bus, QEMU, output) and tears it down, whether it
// worked or not; a failure is the path's row, not the end of the bench.
import { drawPattern } from '../../plugin/sources/pattern.js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import * as libc from '../../ffi/libc.js';
import { udmabufCreate } from '../../ffi/dmabuf.js';
import { KmsDevice } from '../../plugin/kms/device.js';
import { setDrmEventPath } from '../../plugin/kms/events.js';
import { Output, type PresentEvent } from '../../plugin/output/output.js';
import { QemuDisplay } from '../../plugin/sources/qemu-display.js';
import type { QemuConsoleSource, QemuConsoleStats } from '../../plugin/sources/qemu-dbus.js';
import { openVfioSource } from '../../plugin/sources/open.js';
import type { CpuView, GuestPlaneInfo, GuestPlaneKind, GuestSource, GuestSourceEvents, PlaneQuery } from '../../plugin/sources/source.js';
import { createSmallMdev, removeMdevAsync, type MdevInstance } from '../integration/helpers/mdev.js';
import { qemuPeer } from '../integration/helpers/qemu-peer.js';
import { systemQemu, type QemuBuild } from '../integration/helpers/qemu-builds.js';
import { mbochsInit, mbochsSetMode, mdpyInit, mdpyWriteFramebuffer, qemuDbusMissing, startQemu, startSessionBus, unexpectedQemuStderr, type QemuVm } from '../integration/helpers/qemu.js';
import { cpuMicros, latencyRows, percentile, sleep, summarizeLatency } from './measure.js';
import { runStream } from './stream.js';

export type Row = Array<[string, number | string | null, string]>;

export interface QemuDbusSpec {
  card: string;
  connector: string;
  warmupMs: number;
  ms: number;
  log: (s: string) => void;
}

export const QEMU_DBUS_BENCH = 'qemu-dbus-640x480';
const W = 640;
const H = 480;
const STRIDE = W * 4;
const XRGB8888 = 0x34325258;
/** How long QEMU may take to send its first frame after the mode is set (TCG, EGL set-up). */
export const FIRST_FRAME_MS = 30_000;

// ---------------------------------------------------------------------------------------
// Tear-down: everything a path set up, undone in reverse order, each step on its own.

export class Teardown {
  readonly #steps: Array<{ what: string; fn: () => unknown }> = [];
  push(what: string, fn: () => unknown): void {
    this.#steps.push({ what, fn });
  }
  /** Runs every step (last first); returns the failures as "what: message". */
  async run(): Promise<string[]> {
    const errors: string[] = [];
    for (const s of this.#steps.splice(0).reverse()) {
      try {
        await s.fn();
      } catch (e) {
        errors.push(`${s.what}: ${(e as Error).message.split('\n')[0]}`);
      }
    }
    return errors;
  }
}

/** Runs `body` with a Teardown; tear-down failures become a row (or join the thrown error). */
export async function withTeardown(body: (t: Teardown) => Promise<Row>): Promise<Row> {
  const t = new Teardown();
  let rows: Row;
  try {
    rows = await body(t);
  } catch (e) {
    const left = await t.run();
    if (left.length) (e as Error).message += `; tear-down: ${left.join(' | ')}`;
    throw e;
  }
  const left = await t.run();
  if (left.length) rows.push(['teardown_errors', left.join(' | '), '']);
  return rows;
}

// ---------------------------------------------------------------------------------------
// Measuring one window

let clkTck = 0;
/** user+sys CPU of another process (QEMU), µs; null when /proc says nothing. */
export function processCpuMicros(pid: number): number | null {
  if (!clkTck) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    clkTck = Number(r.stdout?.trim()) || 100;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 (utime) and 15 (stime) of stat(5); f[0] is field 3.
    return ((Number(f[11]) + Number(f[12])) * 1e6) / clkTck;
  } catch {
    return null;
  }
}

export interface Window {
  windowMs: number;
  cpuUs: number;
  /** QEMU's own CPU over the window, µs (QEMU paths). */
  qemuCpuUs: number | null;
  presented: number;
  paths: Record<string, number>;
  latencyMs: number[];
  bytesCopied: number;
  imports: number;
  commits: number;
  testOnly: number;
  failedCommits: number;
  refreshMs: number;
  /** Longest event-loop stall in the warm-up and in the window, ms (null: not measured). */
  stallMs: { warmup: number; window: number } | null;
  /** Source counters over the window (D-Bus paths). */
  dbus: { scanouts: number; updates: number; answered: QemuConsoleStats['answered'] } | null;
}

/**
 * Warm-up, then one window of `ms` on `out`: its presents (with their latency, source
 * arrival → flip complete), its counters, our CPU and QEMU's.
 */
export async function measureWindow(out: Output, spec: QemuDbusSpec, src: QemuConsoleSource | null, qemuPid: number | null, during?: { start(): void; stop(): void }): Promise<Window> {
  // A stalled event loop answers nothing: QEMU gives up on an UpdateDMABUF after 1 s.
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  await sleep(spec.warmupMs);
  const warmupStallMs = loop.max / 1e6;
  loop.reset();
  let counting = false;
  let presented = 0;
  const paths: Record<string, number> = {};
  const latencyMs: number[] = [];
  const onPresent = (p: PresentEvent) => {
    if (!counting || p.frame === undefined) return;
    presented++;
    paths[p.path] = (paths[p.path] ?? 0) + 1;
    if (p.latencyNs !== undefined) latencyMs.push(p.latencyNs / 1e6);
  };
  out.on('present', onPresent);
  const d0 = src ? structuredClone({ scanouts: src.stats.scanouts, updates: src.stats.updates, answered: src.stats.answered }) : null;
  const s0 = out.statsSnapshot();
  const q0 = qemuPid ? processCpuMicros(qemuPid) : null;
  during?.start();
  counting = true;
  const t0 = process.hrtime.bigint();
  const c0 = cpuMicros();
  await sleep(spec.ms);
  const c1 = cpuMicros();
  const t1 = process.hrtime.bigint();
  counting = false;
  during?.stop();
  const q1 = qemuPid ? processCpuMicros(qemuPid) : null;
  loop.disable();
  const s1 = out.statsSnapshot();
  out.off('present', onPresent);
  const d1 = src?.stats;
  return {
    windowMs: Number(t1 - t0) / 1e6,
    cpuUs: c1 - c0,
    qemuCpuUs: q0 !== null && q1 !== null ? q1 - q0 : null,
    presented,
    paths,
    latencyMs,
    bytesCopied: s1.bytesCopied - s0.bytesCopied,
    imports: s1.imports - s0.imports,
    commits: s1.commits - s0.commits,
    testOnly: s1.testOnlyCommits - s0.testOnlyCommits,
    failedCommits: s1.failedCommits - s0.failedCommits,
    refreshMs: out.refreshNs / 1e6,
    stallMs: { warmup: warmupStallMs, window: loop.max / 1e6 },
    dbus:
      d0 && d1
        ? {
            scanouts: d1.scanouts - d0.scanouts,
            updates: d1.updates - d0.updates,
            answered: {
              shown: d1.answered.shown - d0.answered.shown,
              refused: d1.answered.refused - d0.answered.refused,
              timeout: d1.answered.timeout - d0.answered.timeout,
              superseded: d1.answered.superseded - d0.answered.superseded,
            },
          }
        : null,
  };
}

/**
 * The rows of one path. `updates`: what the guest side sent in the window (frames for
 * the peer, D-Bus frame messages for QEMU, plane polls for VFIO).
 */
export function rows(w: Window, updates: number, errors: Set<string>, extra: Row = []): Row {
  const s = w.windowMs / 1000;
  const frames = w.presented;
  const lat = summarizeLatency(w.latencyMs, w.refreshMs);
  const r: Row = [
    ['window', w.windowMs, 'ms'],
    ['updates_per_s', updates / s, '/s'],
    ['presented_per_s', frames / s, '/s'],
  ];
  if (w.dbus) {
    r.push(['dbus_scanout_calls', w.dbus.scanouts, 'count'], ['dbus_update_calls', w.dbus.updates, 'count']);
    const a = w.dbus.answered;
    if (a.shown + a.refused + a.timeout + a.superseded > 0) {
      r.push(['answered_shown', a.shown, 'count'], ['answered_refused', a.refused, 'count'], ['answered_superseded', a.superseded, 'count'], ['answered_timeout', a.timeout, 'count']);
    }
  }
  r.push(
    ['bytes_copied_per_frame', frames ? w.bytesCopied / frames : null, 'B'],
    ['imports', w.imports, 'count'],
    ['commits', w.commits, 'count'],
    ['test_only_commits', w.testOnly, 'count'],
    ['failed_commits', w.failedCommits, 'count'],
    ['latency_p50', lat.p50, 'ms'],
    ['latency_p99', lat.p99, 'ms'],
    ...latencyRows(lat, w.refreshMs).filter(([m]) => m === 'latency_p50_refresh' || m === 'latency_p99_refresh' || m === 'latency_samples'),
    ...extra,
    ['cpu_per_frame', frames ? w.cpuUs / 1000 / frames : null, 'ms'],
    ['cpu_per_update', updates ? w.cpuUs / 1000 / updates : null, 'ms'],
    ['cpu_load', w.cpuUs / 10 / w.windowMs, '%'],
  );
  if (w.stallMs) r.push(['loop_stall_max_warmup', w.stallMs.warmup, 'ms'], ['loop_stall_max_window', w.stallMs.window, 'ms']);
  if (w.qemuCpuUs !== null) r.push(['qemu_cpu_per_update', updates ? w.qemuCpuUs / 1000 / updates : null, 'ms'], ['qemu_cpu_load', w.qemuCpuUs / 10 / w.windowMs, '%']);
  r.push(['presented_via', Object.entries(w.paths).map(([k, v]) => `${k} ${v}`).join(', ') || 'nothing', '']);
  r.push(['errors', [...errors].join(' | '), '']);
  return r;
}

export function openOutput(t: Teardown, spec: QemuDbusSpec): { out: Output; errors: Set<string> } {
  setDrmEventPath('uv');
  const dev = KmsDevice.open(spec.card);
  t.push('closing the KMS device', () => dev.close());
  const out = new Output(dev, { connector: spec.connector, mode: { width: W, height: H } });
  t.push('closing the output', () => out.close());
  const errors = new Set<string>();
  out.on('error', (e) => errors.add(`${e.cause}: ${e.message}`));
  out.enable();
  return { out, errors };
}

export async function waitFor(cond: () => boolean, what: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`no ${what} within ${ms} ms`);
    await sleep(20);
  }
}

// ---------------------------------------------------------------------------------------
// 1. The peer (QEMU played by the bench in a process of its own) is in peer-rows.ts.

/**
 * Reference for the peer's row: the stream bench's udmabuf guest (three buffers, flipping on
 * its own 59.75 Hz timer) handed to the Output directly, same size, same run: what the
 * peer's row costs beyond it is the D-Bus protocol (both of its ends).
 */
export async function runUdmabufDirect(spec: QemuDbusSpec): Promise<Row> {
  // With the peer rows' loop monitor (measureWindow): both paths carry its ~100 wake-ups a second.
  const r = await runStream({ card: spec.card, connector: spec.connector, width: W, height: H, warmupMs: spec.warmupMs, ms: spec.ms, loopMonitor: true });
  const w: Window = {
    windowMs: r.windowMs,
    cpuUs: r.cpuUs,
    qemuCpuUs: null,
    presented: r.presented,
    paths: r.paths,
    latencyMs: r.latencyMs,
    bytesCopied: r.bytesCopied,
    imports: r.imports ?? 0,
    commits: r.commits,
    testOnly: r.testOnly,
    failedCommits: r.failedCommits,
    refreshMs: r.refreshMs,
    stallMs: r.stallMs ?? null,
    dbus: null,
  };
  return rows(w, r.guestFrames, new Set(r.errors), [
    ['guest_frames', r.guestFrames, 'count'],
    ['note', 'no D-Bus: the stream bench\'s udmabuf guest (its own 59.75 Hz timer, in this process) attached directly; latency from its flip; the peer rows\' event-loop delay monitor (a 10 ms timer) runs in its window too', ''],
  ]);
}

// ---------------------------------------------------------------------------------------
// 2, 3. An unmodified QEMU on an mdev, its display on a private bus.


function mdevFor(t: Teardown, parent: 'mdpy' | 'mbochs'): MdevInstance {
  const mdev = createSmallMdev(parent);
  // Asynchronous: the kernel's removal waits for every VFIO user, and one left behind must
  // not hang the bench (it fails after 10 s naming the holders).
  t.push(`removing mdev ${mdev.type}`, () => removeMdevAsync(mdev.uuid));
  return mdev;
}

async function qemuOn(t: Teardown, parent: 'mdpy' | 'mbochs', gl: boolean, qemu: QemuBuild): Promise<{ vm: QemuVm; busAddress: string; type: string }> {
  const missing = qemuDbusMissing({ parents: [parent], gl }, qemu);
  if (missing) throw new Error(`not measured: ${missing}`);
  const mdev = mdevFor(t, parent);
  const dir = mkdtempSync(join(tmpdir(), 'gp-bench-qemu-'));
  t.push('removing the QEMU directory', () => rmSync(dir, { recursive: true, force: true }));
  const bus = startSessionBus(dir);
  t.push('stopping dbus-daemon', () => bus.close());
  const vm = await startQemu({ mdev, gl, busAddress: bus.address, dir, qemu });
  t.push('stopping QEMU', () => vm.close());
  await vm.waitForDisplay();
  return { vm, busAddress: bus.address, type: mdev.type };
}

async function runQemu(spec: QemuDbusSpec, parent: 'mdpy' | 'mbochs', qemu: QemuBuild): Promise<Row> {
  const gl = parent === 'mbochs';
  // QEMU gives up on an UpdateDMABUF after 1 s (DBUS_DEFAULT_TIMEOUT) and says so on
  // stderr: counted per phase (the last count once QEMU has exited, at the very end).
  const late: Row = [];
  let vm: QemuVm | null = null;
  const timeouts = () => (vm?.stderr.match(/Failed to call update: Timeout was reached/g) ?? []).length;
  const phases: string[] = [];
  const rowsOut = await withTeardown(async (t) => {
    t.push('counting QEMU update timeouts', () => {
      phases.push(`after tear-down ${timeouts()}`);
      late.push(['qemu_update_timeouts', phases.join(', '), '']);
    });
    const t0 = Date.now();
    const q = await qemuOn(t, parent, gl, qemu);
    vm = q.vm;
    const { busAddress, type } = q;
    if (parent === 'mbochs') await mbochsInit(q.vm.qtest);
    else {
      const m = await mdpyInit(q.vm.qtest);
      if (m.width !== W || m.height !== H) throw new Error(`mdev type ${type} is ${m.width}x${m.height}, the bench wants ${W}x${H}`);
    }
    const display = await QemuDisplay.connect(busAddress);
    t.push('closing the QEMU display connection', () => display.close());
    const src = await display.open(0);
    const { out, errors } = openOutput(t, spec);
    out.attach(src, 'native');
    if (parent === 'mbochs') await mbochsSetMode(q.vm.qtest, { width: W, height: H });
    await waitFor(() => src.stats.scanouts >= 1, `first ${gl ? 'ScanoutDMABUF' : 'Scanout'} from QEMU`, FIRST_FRAME_MS);
    const setupMs = Date.now() - t0;
    const ans = () => JSON.stringify(src.stats.answered).replace(/"/g, '');
    phases.push(`first frame ${timeouts()} ${ans()}`);
    // mdpy: the bench plays the guest's driver, changing the first rows of the framebuffer
    // 60 times a second (small qtest writes: the writer's own cost stays small; QEMU sends
    // the whole surface on each refresh anyway, and resends unchanged ones too).
    let guestWrites = 0;
    let writing = parent === 'mdpy';
    const writer = (async () => {
      const rows = new Uint8Array(W * 4 * 4);
      while (writing) {
        rows.fill((guestWrites * 37) & 0xff);
        await mdpyWriteFramebuffer(q.vm.qtest, 0, rows);
        guestWrites++;
        await new Promise((r) => setTimeout(r, 16));
      }
    })();
    const unchanged0 = src.stats.unchanged;
    const w = await measureWindow(out, spec, src, q.vm.pid, { start: () => phases.push(`window start ${timeouts()} ${ans()}`), stop: () => {} });
    writing = false;
    await writer.catch(() => {});
    if (!gl) late.push(['guest_frames_written', guestWrites, 'count'], ['unchanged_scanouts', src.stats.unchanged - unchanged0, 'count']);
    phases.push(`window end ${timeouts()} ${ans()}`);
    const a = src.stats.answered;
    late.push(['answered_over_the_run', `shown ${a.shown}, refused ${a.refused}, superseded ${a.superseded}, timeout ${a.timeout}`, '']);
    const updates = w.dbus!.updates + (gl ? 0 : w.dbus!.scanouts);
    for (const m of src.warnings) errors.add(`source: ${m}`);
    const stderr = unexpectedQemuStderr(q.vm.stderr).filter((l) => !/Failed to call update: Timeout was reached/.test(l));
    if (stderr.length) errors.add(`QEMU stderr: ${stderr.slice(0, 3).join(' / ')}`);
    const notes: Row = [
      ['qemu', q.vm && qemu.label, ''],
      ['mdev_type', type, ''],
      ['qemu_setup', setupMs, 'ms'],
    ];
    if (gl) {
      notes.push(['note', 'vkms can neither scan out nor map mbochs dma-bufs: every UpdateDMABUF is refused (answered as soon as the output finds it cannot show it), nothing reaches the screen; this row is QEMU\'s own update rate and our per-update D-Bus + refusal cost only. QEMU 7.2\'s vfio display does not wait for the answers: it sends UpdateDMABUF on every refresh of its display timer (dpy_gl_update from the refresh; vfio has no gl_block hook), so an answer held until the next update arrives is answered as superseded, one held 1 s makes QEMU log a timeout', '']);
    } else {
      notes.push(['note', 'QEMU (7.2, and 10.0: mdpy\'s surface is its region, not a memfd QEMU could share through Unix.Map) sends the whole 640x480 frame as pixel data in a Scanout message on every refresh of its display timer, changed or not; an unchanged one is not a new frame (unchanged_scanouts); a changed one becomes the shadow as it arrived (the message copy) and is copied into a dumb buffer (bytes_copied). The bench changes the first 4 rows through qtest 60 times a second (guest_frames_written), in this process', '']);
    }
    return rows(w, updates, errors, notes);
  });
  return [...rowsOut, ...late];
}

export const runQemuMbochs = (spec: QemuDbusSpec, qemu: QemuBuild = systemQemu()) => runQemu(spec, 'mbochs', qemu);
export const runQemuMdpy = (spec: QemuDbusSpec, qemu: QemuBuild = systemQemu()) => runQemu(spec, 'mdpy', qemu);

// ---------------------------------------------------------------------------------------
// 4. The same kind of mdpy mdev through VFIO, no QEMU.

/**
 * The VFIO source as the Output sees it, with the time of each plane query as the plane's
 * flip time and a frame number per query: VFIO never says when the guest wrote, so the
 * latency that can be measured is from the poll that found the plane to the flip.
 */
class PollStamped extends EventEmitter<GuestSourceEvents> implements GuestSource {
  readonly name: string;
  readonly changeEvents: boolean;
  polls = 0;
  constructor(private readonly inner: GuestSource) {
    super();
    this.name = inner.name;
    this.changeEvents = inner.changeEvents;
  }
  query(kind: GuestPlaneKind): PlaneQuery {
    const q = this.inner.query(kind);
    if (kind !== 'primary' || q.state !== 'ok') return q;
    this.polls++;
    return { state: 'ok', plane: { ...q.plane, frame: this.polls, flipTimeNs: process.hrtime.bigint() } };
  }
  exportDmabuf(plane: GuestPlaneInfo): number {
    return this.inner.exportDmabuf(plane);
  }
  cpuView(plane: GuestPlaneInfo): CpuView | null {
    return this.inner.cpuView?.(plane) ?? null;
  }
  close(): void {
    this.inner.close();
  }
}

export function runVfioDirect(spec: QemuDbusSpec): Promise<Row> {
  return withTeardown(async (t) => {
    const mdev = mdevFor(t, 'mdpy');
    const vfio = openVfioSource(mdev.uuid);
    t.push('closing the VFIO source', () => vfio.close());
    if (vfio.transport !== 'region') throw new Error(`mdpy answered ${vfio.transport}, expected a region plane`);
    const src = new PollStamped(vfio);
    // Opened after the source: the teardown closes the output first.
    const { out, errors } = openOutput(t, spec);
    out.attach(src, 'native');
    await waitFor(() => out.statsSnapshot().framesPresented > 1, 'first polled frame', FIRST_FRAME_MS);
    const p0 = src.polls;
    const w = await measureWindow(out, spec, null, null);
    const polls = src.polls - p0;
    return rows(w, polls, errors, [
      ['mdev_type', mdev.type, ''],
      ['note', 'updates = plane queries (one per vblank; VFIO says nothing about guest writes, so every poll copies the whole region); latency is from the poll to the flip: a guest write waits up to one refresh more for the poll', ''],
    ]);
  });
}
