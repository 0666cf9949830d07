// One guest stream through one presentation path for a fixed time: the Output with its
// path forced (OutputOptions.paths), or the C floor program doing the same commits.
// Counters are read at the end of a warm-up (first imports, the one TEST_ONLY per shape,
// the modeset) and at the end of the window: what is reported is the steady state.
// Results keep their raw samples so that several short windows of one path, interleaved
// with the other paths', pool into one (see pool()).
import { setDrmEventPath, type DrmEventPath } from '../../plugin/kms/events.js';
import { spawnSync } from 'node:child_process';
import { KmsDevice } from '../../plugin/kms/device.js';
import { Output, type FramePath, type PresentEvent } from '../../plugin/output/output.js';
import type { GuestSource } from '../../plugin/sources/source.js';
import { BenchGuest, GUEST_FPS, PolledSource, SilentSource } from './guest.js';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { cpuMicros, sampleProcess, sleep, type ProcessSample } from './measure.js';

export interface StreamSpec {
  card: string;
  connector: string;
  width: number;
  height: number;
  /** Forced path; undefined = the Output chooses (scanout first). */
  path?: FramePath;
  /** Poll the guest every `pollMs` (QEMU style) instead of reacting to its flips. */
  pollMs?: number;
  /** A guest without change events, asked by the output at each vblank (VFIO style). */
  silent?: boolean;
  /** With `silent`: ask at the late-latch deadline (default) or right at the vblank (false). */
  lateLatch?: boolean;
  /** How page-flip events reach the main thread (default: the reader's default, uv_poll). */
  drmEvents?: DrmEventPath;
  warmupMs: number;
  ms: number;
  /**
   * Run the event-loop delay monitor the D-Bus rows run (measureWindow: a 10 ms timer, so
   * ~100 wake-ups a second): a row compared with theirs carries the same wake-ups.
   */
  loopMonitor?: boolean;
}

export interface StreamResult {
  runs: number;
  /** Guest flips inside the window. */
  guestFrames: number;
  /** Presents of frames flipped inside the window. */
  presented: number;
  /** Presented frames by path (to check that the forced path was the one taken). */
  paths: Record<string, number>;
  commits: number;
  testOnly: number;
  failedCommits: number;
  /** Imports of guest buffers (KMS FBs, EGLImages) in the window; null = not counted. */
  imports: number | null;
  /** CPU copies: into dumb buffers (copy path) plus into textures (gles upload path). */
  bytesCopied: number;
  /** GLES frames: compose time per frame, ms. */
  composeMs: number[];
  /** Guest flip → flip complete, ms, per presented frame. */
  latencyMs: number[];
  cpuUs: number;
  windowMs: number;
  refreshMs: number;
  start: ProcessSample;
  end: ProcessSample;
  /** Distinct errors, "cause: message". */
  errors: string[];
  /** Set when the numbers are not those of the requested path. */
  unavailable?: string;
  /** Late-latched polls whose commit made / missed the vblank it aimed at (the whole run). */
  latch?: { hits: number; misses: number };
  /** With loopMonitor: the longest event-loop delay in the warm-up and in the window, ms. */
  stallMs?: { warmup: number; window: number };
}

const FIRST_FRAME_TIMEOUT_MS = 60_000;
/** After the window: time for the frames flipped in it to land (a few refreshes). */
const DRAIN_MS = 60;

export async function runStream(spec: StreamSpec): Promise<StreamResult> {
  const start = sampleProcess();
  // The reader starts on the device's first page-flip wait, with the path set now.
  setDrmEventPath(spec.drmEvents ?? 'uv');
  const dev = KmsDevice.open(spec.card);
  const opts = { connector: spec.connector, mode: { width: spec.width, height: spec.height }, paths: spec.path ? [spec.path] : undefined, lateLatch: spec.lateLatch };
  let out: Output | null = null;
  const guest = new BenchGuest(spec.width, spec.height, 3);
  let polled: PolledSource | null = null;
  try {
    const o = (out = new Output(dev, opts));
    const errors = new Set<string>();
    o.on('error', (e) => errors.add(`${e.cause}: ${e.message}`));
    o.enable();
    const source: GuestSource = spec.pollMs ? (polled = new PolledSource(guest.source, spec.pollMs)) : spec.silent ? new SilentSource(guest.source) : guest.source;
    o.attach(source, 'native');

    // Frames flipped in (first, last] are the window's; null = not measuring yet.
    let first: number | null = null;
    let last = Infinity;
    const latencyMs: number[] = [];
    const composeMs: number[] = [];
    const paths: Record<string, number> = {};
    let presented = 0;
    o.on('present', (p: PresentEvent) => {
      if (first === null || p.frame === undefined || p.frame <= first || p.frame > last) return;
      presented++;
      paths[p.path] = (paths[p.path] ?? 0) + 1;
      if (p.latencyNs !== undefined) latencyMs.push(p.latencyNs / 1e6);
      if (p.gles) composeMs.push(p.gles.composeMs);
    });
    guest.start();
    // Slow paths (GLES under TCG: EGL set-up takes seconds) warm up from their first frame.
    const firstFrame = new Promise<void>((resolve) => {
      const on = (p: PresentEvent) => {
        if (p.frame === undefined) return;
        o.off('present', on);
        resolve();
      };
      o.on('present', on);
    });
    await Promise.race([firstFrame, sleep(FIRST_FRAME_TIMEOUT_MS)]);
    const loop = spec.loopMonitor ? monitorEventLoopDelay({ resolution: 10 }) : null;
    loop?.enable();
    await sleep(spec.warmupMs);
    const warmupStallMs = loop ? loop.max / 1e6 : 0;
    loop?.reset();
    const s0 = o.statsSnapshot();
    first = guest.frames;
    const t0 = process.hrtime.bigint();
    const c0 = cpuMicros();
    await sleep(spec.ms);
    const c1 = cpuMicros();
    const t1 = process.hrtime.bigint();
    loop?.disable();
    guest.stop();
    last = guest.frames;
    const s1 = o.statsSnapshot();
    await sleep(DRAIN_MS);
    if (guest.error) errors.add(`guest: ${guest.error.message}`);
    const result: StreamResult = {
      runs: 1,
      guestFrames: last - first,
      presented,
      paths,
      commits: s1.commits - s0.commits,
      testOnly: s1.testOnlyCommits - s0.testOnlyCommits,
      failedCommits: s1.failedCommits - s0.failedCommits,
      // The FB cache counts both KMS FB imports and the GLES path's EGLImage imports.
      imports: s1.imports - s0.imports,
      bytesCopied: s1.bytesCopied - s0.bytesCopied + (s1.bytesUploaded - s0.bytesUploaded),
      composeMs,
      latencyMs,
      cpuUs: c1 - c0,
      windowMs: Number(t1 - t0) / 1e6,
      refreshMs: o.refreshNs / 1e6,
      start,
      end: start,
      errors: [...errors],
      ...(spec.silent && o.latch ? { latch: { hits: o.latch.hits, misses: o.latch.misses } } : {}),
      ...(loop ? { stallMs: { warmup: warmupStallMs, window: loop.max / 1e6 } } : {}),
    };
    if (spec.path && presented > 0 && (paths[spec.path] ?? 0) !== presented) {
      const seen = Object.entries(paths).map(([k, v]) => `${k} ${v}`).join(', ');
      result.unavailable = `asked the Output for the ${spec.path} path only (OutputOptions.paths), it presented ${seen}`;
    }
    await o.close();
    out = null;
    polled?.close();
    polled = null;
    guest.close();
    await dev.close();
    result.end = sampleProcess();
    return result;
  } finally {
    guest.close();
    polled?.close();
    if (out) await out.close();
    await dev.close();
  }
}

/** Several windows of one path as one: counters summed, samples joined, first start, last end. */
export function pool(results: readonly StreamResult[]): StreamResult {
  if (results.length === 0) throw new Error('pool: no results');
  const sum = (f: (r: StreamResult) => number) => results.reduce((a, r) => a + f(r), 0);
  const paths: Record<string, number> = {};
  for (const r of results) for (const [k, v] of Object.entries(r.paths)) paths[k] = (paths[k] ?? 0) + v;
  const unavailable = results.find((r) => r.unavailable)?.unavailable;
  return {
    runs: sum((r) => r.runs),
    guestFrames: sum((r) => r.guestFrames),
    presented: sum((r) => r.presented),
    paths,
    commits: sum((r) => r.commits),
    testOnly: sum((r) => r.testOnly),
    failedCommits: sum((r) => r.failedCommits),
    imports: results.some((r) => r.imports === null) ? null : sum((r) => r.imports ?? 0),
    bytesCopied: sum((r) => r.bytesCopied),
    composeMs: results.flatMap((r) => r.composeMs),
    latencyMs: results.flatMap((r) => r.latencyMs),
    cpuUs: sum((r) => r.cpuUs),
    windowMs: sum((r) => r.windowMs),
    refreshMs: results[0].refreshMs,
    start: results[0].start,
    end: results[results.length - 1].end,
    errors: [...new Set(results.flatMap((r) => r.errors))],
    ...(unavailable ? { unavailable } : {}),
    ...(results.some((r) => r.latch) ? { latch: { hits: sum((r) => r.latch?.hits ?? 0), misses: sum((r) => r.latch?.misses ?? 0) } } : {}),
  };
}

export interface FloorSpec {
  binary: string;
  card: string;
  connector: string;
  width: number;
  height: number;
  warmupMs: number;
  ms: number;
}

/** What test/bench/floor.c prints. */
interface FloorOutput {
  guestFrames: number;
  presented: number;
  commits: number;
  failedCommits: number;
  cpuUs: number;
  windowMs: number;
  refreshMs: number;
  latencyUs: number[];
  rssKb: { start: number; end: number };
  fds: { start: number; end: number };
}

/** Runs the C floor on the same connector, CRTC and primary plane the Output would take. */
export async function runFloor(spec: FloorSpec): Promise<StreamResult> {
  // Resolve the objects as the Output does, then let go of the device: the floor needs master.
  const dev = KmsDevice.open(spec.card);
  let args: string[];
  try {
    const out = new Output(dev, { connector: spec.connector, mode: { width: spec.width, height: spec.height } });
    args = ['--card', spec.card, '--connector', String(out.connector.id), '--crtc', String(out.crtc.id), '--plane', String(out.primary.id)];
    await out.close(false);
  } finally {
    await dev.close();
  }
  args.push('--width', String(spec.width), '--height', String(spec.height), '--fps', String(GUEST_FPS), '--warmup-ms', String(spec.warmupMs), '--ms', String(spec.ms));
  const r = spawnSync(spec.binary, args, { encoding: 'utf8', timeout: spec.warmupMs + spec.ms + 30_000 });
  if (r.error) throw new Error(`C floor (${spec.binary}) did not run: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`C floor exited with ${r.status ?? r.signal}: ${r.stderr.trim()}`);
  const line = r.stdout.trim().split('\n').pop() ?? '';
  let f: FloorOutput;
  try {
    f = JSON.parse(line) as FloorOutput;
  } catch {
    throw new Error(`C floor printed no JSON result: ${JSON.stringify(r.stdout.slice(-300))}`);
  }
  return {
    runs: 1,
    guestFrames: f.guestFrames,
    presented: f.presented,
    paths: { scanout: f.presented },
    commits: f.commits,
    // The floor imports its buffers before the window and never tests or copies.
    testOnly: 0,
    failedCommits: f.failedCommits,
    imports: 0,
    bytesCopied: 0,
    composeMs: [],
    latencyMs: f.latencyUs.map((us) => us / 1000),
    cpuUs: f.cpuUs,
    windowMs: f.windowMs,
    refreshMs: f.refreshMs,
    // floor.c is one thread.
    start: { fds: f.fds.start, rssMiB: f.rssKb.start / 1024, threads: 1 },
    end: { fds: f.fds.end, rssMiB: f.rssKb.end / 1024, threads: 1 },
    errors: r.stderr.trim() ? [r.stderr.trim()] : [],
  };
}

/**
 * The guest alone, flipping with nobody presenting: what the Node process spends per frame
 * on the guest's timer and flips, part of every Output row's CPU (the C floor's guest is
 * a timerfd read).
 */
export async function runGuestOnly(spec: { width: number; height: number; warmupMs: number; ms: number }): Promise<{ guestFrames: number; cpuUs: number; windowMs: number }> {
  const guest = new BenchGuest(spec.width, spec.height, 3);
  try {
    guest.start();
    await sleep(spec.warmupMs);
    const f0 = guest.frames;
    const t0 = process.hrtime.bigint();
    const c0 = cpuMicros();
    await sleep(spec.ms);
    const c1 = cpuMicros();
    const t1 = process.hrtime.bigint();
    return { guestFrames: guest.frames - f0, cpuUs: c1 - c0, windowMs: Number(t1 - t0) / 1e6 };
  } finally {
    guest.close();
  }
}
