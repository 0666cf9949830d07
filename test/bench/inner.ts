// The benchmark as it runs inside the rig VM (started by test/bench/run.mjs on the host).
// Every scenario runs in this one process, one after the other, on the same kernel, so
// the rows of a table are comparable with each other; the absolute numbers are those of
// QEMU TCG (a slow emulated CPU) and mean little on their own.
//
//   node --expose-gc dist/test/bench/inner.js --out FILE --floor BINARY [--quick] [--only SUBSTRING] [--cpu-prof DIR]
//
// --only: runs only the scenarios whose bench name (the table's title) contains SUBSTRING.
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { findCardByDriver } from '../../plugin/kms/device.js';
import { Sink, latencyRows, percentile, summarizeLatency, type ProcessSample } from './measure.js';
import { pool, runFloor, runGuestOnly, runStream, type StreamResult } from './stream.js';
import { runNodeFloor } from './node-floor.js';
import { runIdle } from './idle.js';
import { runScale, type ScaleResult } from './scale.js';
import { runShmRead } from './shm-read.js';
import { QEMU_DISPLAY_BENCH, runQemuDisplays } from './qemu-display.js';
import { QEMU_DBUS_BENCH, runQemuMbochs, runQemuMdpy, runUdmabufDirect, runVfioDirect } from './qemu-dbus.js';
import { runPeerChild } from './peer-rows.js';
import { fetchedQemu } from '../integration/helpers/qemu-builds.js';

const QEMU_MAP_BENCH = 'qemu-dbus-map-640x480';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const outFile = arg('--out');
const floorBin = arg('--floor');
if (!outFile || !floorBin) {
  console.error('usage: inner.js --out FILE --floor BINARY [--quick] [--only SUBSTRING]');
  process.exit(2);
}
const quick = process.argv.includes('--quick');
const only = arg('--only');
/** Where qemu-display's window process writes its V8 CPU profile (--cpu-prof DIR), if asked. */
const cpuProfDir = arg('--cpu-prof');
/** Whether the scenario of this bench name runs (--only). */
const want = (bench: string) => only === undefined || bench.includes(only);
const warmupMs = quick ? 600 : 1500;
/** Each path runs `rounds` windows of `ms`, interleaved with the other paths' (see below). */
const rounds = quick ? 1 : 3;
const ms = quick ? 2500 : 4000;
/**
 * The D-Bus comparison's warm-up before each steady window: long enough for V8 to optimise
 * the per-frame code of both paths at 60 frames a second under TCG (a 20 s warm-up measured
 * 1.19 and 1.24 x where 1.5 s measured 1.39 x, in one boot).
 */
const STEADY_WARMUP_MS = 20_000;
/** GLES under TCG presents a frame or two a second: one longer window, not rounds. */
const glesMs = quick ? 2500 : 8000;
const scaleMs = quick ? 2500 : 8000;
const sink = new Sink(outFile);
const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);

const card = findCardByDriver('vkms');
if (!card) {
  console.error('bench: no vkms card in this kernel (the rig boots with vkms built in: is this the rig?)');
  process.exit(1);
}
sink.row('meta', '-', [
  ['vm_kernel', release(), ''],
  ['node', process.version, ''],
  ['rounds', rounds, 'count'],
  ['window_ms', ms, 'ms'],
  ['gles_window_ms', glesMs, 'ms'],
  ['scale_window_ms', scaleMs, 'ms'],
  ['warmup_ms', warmupMs, 'ms'],
  ...(only !== undefined ? ([['only', only, '']] as const) : []),
]);

type Row = Array<[string, number | string | null, string]>;

function processRows(r: { start: ProcessSample; end: ProcessSample }): Row {
  return [
    ['rss_start', r.start.rssMiB, 'MiB'],
    ['rss_end', r.end.rssMiB, 'MiB'],
    ['fds_start', r.start.fds, 'count'],
    ['fds_end', r.end.fds, 'count'],
    ['threads_start', r.start.threads, 'count'],
    ['threads_end', r.end.threads, 'count'],
  ];
}

/**
 * CPU per guest frame of the Node guest alone (baseline row), once measured: the Node rows'
 * CPU includes their guest's timer and flips, the floor's guest is one timerfd read.
 */
let guestCostMs: number | null = null;

function streamRows(r: StreamResult, floorCpuPerFrameMs: number | null, isFloor: boolean): Row {
  const flips = Math.max(1, r.presented);
  const cpuPerFrame = r.cpuUs / 1000 / flips;
  const hostOnly = isFloor ? cpuPerFrame : guestCostMs === null ? null : (r.cpuUs / 1000 - guestCostMs * r.guestFrames) / flips;
  const compose = [...r.composeMs].sort((a, b) => a - b);
  return [
    ['windows', r.runs, 'count'],
    ['guest_frames', r.guestFrames, 'count'],
    ['presented', r.presented, 'count'],
    ['missed_frames', r.guestFrames - r.presented, 'count'],
    ['bytes_copied_per_frame', r.bytesCopied / flips, 'B'],
    ['imports_per_flip', r.imports === null ? null : r.imports / flips, 'count'],
    ['test_only_per_flip', r.testOnly / flips, 'count'],
    ['commits_per_guest_frame', r.commits / Math.max(1, r.guestFrames), 'count'],
    ['failed_commits', r.failedCommits, 'count'],
    ...latencyRows(summarizeLatency(r.latencyMs, r.refreshMs), r.refreshMs),
    ...(compose.length ? ([['gles_compose_p50', percentile(compose, 50), 'ms']] as Row) : []),
    ['cpu_per_frame', cpuPerFrame, 'ms'],
    ['cpu_vs_floor', floorCpuPerFrameMs ? cpuPerFrame / floorCpuPerFrameMs : null, 'x'],
    ['cpu_per_frame_excl_guest', hostOnly, 'ms'],
    ['cpu_excl_guest_vs_floor', floorCpuPerFrameMs && hostOnly !== null ? hostOnly / floorCpuPerFrameMs : null, 'x'],
    ['cpu_load', r.cpuUs / 10 / r.windowMs, '%'],
    ...(r.latch ? ([['latch_hits', r.latch.hits, 'count'], ['latch_misses', r.latch.misses, 'count']] as Row) : []),
    ...processRows(r),
    ['errors', r.errors.length ? r.errors.join(' | ') : '', ''],
  ];
}

function scaleRows(r: ScaleResult): Row {
  const flips = Math.max(1, r.presented);
  return [
    ['outputs', r.outputs, 'count'],
    ['guest_frames', r.guestFrames, 'count'],
    ['expected', r.expected, 'count'],
    ['presented', r.presented, 'count'],
    ['missed_frames', r.missed, 'count'],
    ['presented_vs_expected', (100 * r.presented) / Math.max(1, r.expected), '%'],
    ['switches', r.switches, 'count'],
    ['imports_per_flip', r.imports / flips, 'count'],
    ['test_only_per_flip', r.testOnly / flips, 'count'],
    ['commits_per_flip', r.commits / flips, 'count'],
    ...latencyRows(r.latency, r.refreshMs),
    ['cpu_per_frame', r.cpuUs / 1000 / flips, 'ms'],
    ['cpu_load', r.cpuUs / 10 / scaleMs, '%'],
    ...processRows(r),
    ['errors', r.errors.length ? r.errors.join(' | ') : '', ''],
  ];
}

function pushed(into: Row[], r: Row): Row {
  into.push(r);
  return r;
}

/** Our CPU per presented frame of the D-Bus peer path against the direct path's, pooled over the rounds. */
function ratioRows(peer: Row[], direct: Row[], when: string): Row {
  const sum = (rs: Row[], metric: string) => rs.reduce((a, r) => a + Number(r.find(([m]) => m === metric)?.[1] ?? NaN), 0);
  const perFrame = (rs: Row[]) => {
    // cpu_per_frame × presented = CPU; pooled CPU / pooled frames.
    const cpu = rs.reduce((a, r) => a + Number(r.find(([m]) => m === 'cpu_per_frame')?.[1] ?? NaN) * Number(r.find(([m]) => m === 'presented_per_s')?.[1] ?? NaN) * Number(r.find(([m]) => m === 'window')?.[1] ?? NaN), 0);
    const frames = rs.reduce((a, r) => a + Number(r.find(([m]) => m === 'presented_per_s')?.[1] ?? NaN) * Number(r.find(([m]) => m === 'window')?.[1] ?? NaN), 0);
    return frames ? cpu / frames : NaN;
  };
  const p = perFrame(peer);
  const d = perFrame(direct);
  const peerOwn = peer.length ? sum(peer, 'peer_cpu_per_frame') / peer.length : NaN;
  return [
    ['cpu_per_frame', p, 'ms'],
    ['cpu_per_frame_direct', d, 'ms'],
    ['cpu_vs_udmabuf_direct', p / d, 'x'],
    ['peer_cpu_per_frame', peerOwn, 'ms'],
    ['note', `ours: this process's CPU per presented frame, pooled over ${peer.length} window(s) of each path taken in turns, ${when}; the peer's (the QEMU it plays) is not in it`, ''],
  ];
}

async function attempt(bench: string, path: string, run: () => Promise<Row>): Promise<void> {
  if (!want(bench)) return;
  log(`${bench} ${path}`);
  const t = Date.now();
  try {
    sink.row(bench, path, await run());
  } catch (e) {
    sink.row(bench, path, [['note', `failed: ${(e as Error).message}`, '']]);
  }
  log(`${bench} ${path}: ${((Date.now() - t) / 1000).toFixed(1)} s`);
}

// Contention on the host (other VMs on the same cores) comes and goes and TCG charges it to
// whatever the guest was running: a path measured in one long window could be lucky or
// unlucky. So the paths take turns in short windows, round after round, and each row pools
// its windows.
const MODES: Array<[number, number]> = [
  [1024, 768],
  [1920, 1080],
];
const windows = new Map<string, StreamResult[]>();
const failures = new Map<string, string>();
const key = (bench: string, path: string) => `${bench}\u0000${path}`;

async function measure(bench: string, path: string, run: () => Promise<StreamResult>): Promise<void> {
  const k = key(bench, path);
  if (!want(bench) || failures.has(k)) return;
  const t = Date.now();
  try {
    const r = await run();
    windows.set(k, [...(windows.get(k) ?? []), r]);
    log(`${bench} ${path}: ${r.presented} frames, ${((Date.now() - t) / 1000).toFixed(1)} s`);
  } catch (e) {
    failures.set(k, (e as Error).message);
    log(`${bench} ${path}: failed: ${(e as Error).message}`);
  }
}

function emit(bench: string, path: string, floorCpu: number | null): void {
  if (!want(bench)) return;
  const k = key(bench, path);
  const failed = failures.get(k);
  const rs = windows.get(k) ?? [];
  if (failed || rs.length === 0) {
    sink.row(bench, path, [['note', `failed: ${failed ?? 'no result'}`, '']]);
    return;
  }
  const r = pool(rs);
  if (r.unavailable) sink.row(bench, path, [['note', `not measured: ${r.unavailable}`, '']]);
  else sink.row(bench, path, streamRows(r, floorCpu, path === 'c-floor'));
}

const cpuPerFrame = (bench: string, path: string): number | null => {
  const rs = windows.get(key(bench, path));
  if (!rs?.length) return null;
  const r = pool(rs);
  return r.presented ? r.cpuUs / 1000 / r.presented : null;
};

const REFRESH = 'refresh-1024x768';
const guestOnly = { guestFrames: 0, cpuUs: 0, windowMs: 0 };
// The Node guest's own CPU (the baseline row) goes into the stream and refresh rows.
const BASELINE = 'baseline-1024x768';
const streamRounds = [...MODES.map(([w, h]) => `stream-${w}x${h}`), REFRESH, BASELINE].some(want) ? rounds : 0;
for (let round = 1; round <= streamRounds; round++) {
  log(`round ${round}/${rounds}`);
  try {
    const g = await runGuestOnly({ width: 1024, height: 768, warmupMs, ms });
    guestOnly.guestFrames += g.guestFrames;
    guestOnly.cpuUs += g.cpuUs;
    guestOnly.windowMs += g.windowMs;
  } catch (e) {
    log(`guest-only baseline failed: ${(e as Error).message}`);
  }
  for (const [w, h] of MODES) {
    const bench = `stream-${w}x${h}`;
    await measure(bench, 'c-floor', () => runFloor({ binary: floorBin, card, connector: 'Virtual-1', width: w, height: h, warmupMs, ms }));
    // The same loop in JavaScript on our ffi: the runtime's share of the distance to the C floor.
    await measure(bench, 'node-floor', () => runNodeFloor({ card, connector: 'Virtual-1', width: w, height: h, warmupMs, ms }));
    for (const path of ['scanout', 'copy'] as const) {
      await measure(bench, path, () => runStream({ card, connector: 'Virtual-1', width: w, height: h, path, warmupMs, ms }));
    }
    // Issue 15 A/B: page-flip events through a libuv worker's poll(2) (before) vs uv_poll.
    await measure(bench, 'scanout-worker-events', () => runStream({ card, connector: 'Virtual-1', width: w, height: h, path: 'scanout', drmEvents: 'worker', warmupMs, ms }));
  }
  // QEMU-style polling vs our flip-driven refresh, same guest stream, scanout both times.
  await measure(REFRESH, 'flip-driven', () => runStream({ card, connector: 'Virtual-1', width: 1024, height: 768, warmupMs, ms }));
  await measure(REFRESH, 'poll-30ms', () => runStream({ card, connector: 'Virtual-1', width: 1024, height: 768, pollMs: 30, warmupMs, ms }));
  // Issue 15: a guest that cannot say when it flips (VFIO style), asked right at each vblank vs at the late-latch deadline.
  await measure(REFRESH, 'vblank-poll', () => runStream({ card, connector: 'Virtual-1', width: 1024, height: 768, silent: true, lateLatch: false, warmupMs, ms }));
  await measure(REFRESH, 'late-latch', () => runStream({ card, connector: 'Virtual-1', width: 1024, height: 768, silent: true, lateLatch: true, warmupMs, ms }));
}
for (const [w, h] of MODES) {
  await measure(`stream-${w}x${h}`, 'gles', () => runStream({ card, connector: 'Virtual-1', width: w, height: h, path: 'gles', warmupMs, ms: glesMs }));
}
guestCostMs = guestOnly.guestFrames ? guestOnly.cpuUs / 1000 / guestOnly.guestFrames : null;
for (const [w, h] of MODES) {
  const bench = `stream-${w}x${h}`;
  const floor = cpuPerFrame(bench, 'c-floor');
  for (const path of ['c-floor', 'node-floor', 'scanout', 'scanout-worker-events', 'gles', 'copy']) emit(bench, path, floor);
}
for (const path of ['flip-driven', 'poll-30ms', 'vblank-poll', 'late-latch']) emit(REFRESH, path, cpuPerFrame('stream-1024x768', 'c-floor'));
if (want(BASELINE)) {
  sink.row(BASELINE, 'node-guest-only', [
    ['guest_frames', guestOnly.guestFrames, 'count'],
    ['cpu_per_guest_frame', guestOnly.guestFrames ? guestOnly.cpuUs / 1000 / guestOnly.guestFrames : null, 'ms'],
    ['cpu_load', guestOnly.windowMs ? guestOnly.cpuUs / 10 / guestOnly.windowMs : null, '%'],
  ]);
}

for (const guests of [1, 2, 4, 8]) {
  await attempt('scale-640x480', `${guests}-guests`, async () => scaleRows(await runScale({ guests, width: 640, height: 480, warmupMs, ms: scaleMs, switchMs: 500 })));
}
// Issue 15: 16 devices, one output each, so 16 page-flip readers in one process: with a
// libuv worker thread per waiting reader (4 in the pool) against uv_poll on the main loop.
for (const drmEvents of ['worker', 'uv'] as const) {
  await attempt('devices-16x640x480', drmEvents === 'uv' ? 'uv-poll' : 'worker-threads', async () =>
    scaleRows(await runScale({ guests: 16, devicePerGuest: true, drmEvents, width: 640, height: 480, warmupMs, ms: scaleMs, switchMs: 500 })),
  );
}
// Issue 15: nothing changes on screen. With uv_poll no thread but the main one should run.
for (const drmEvents of ['worker', 'uv'] as const) {
  await attempt('idle-1024x768', drmEvents === 'uv' ? 'uv-poll' : 'worker-threads', async () => {
    const r = await runIdle({ card, connector: 'Virtual-1', width: 1024, height: 768, drmEvents, warmupMs, ms: quick ? 2000 : 4000 });
    return [
      ['window', r.windowMs, 'ms'],
      ['cpu_load', r.cpuUs / 10 / r.windowMs, '%'],
      ['commits', r.commits, 'count'],
      ['busy_threads', r.busyThreads.length, 'count'],
      ...processRows(r),
      ['note', `threads with CPU in the window: ${r.busyThreads.join(', ') || 'none'}`, ''],
    ] as Row;
  });
}
// wl_shm read on the copy path: the direct mapping read (before) against the safe reads.
for (const [w, h] of MODES) {
  const bench = `shm-read-${w}x${h}`;
  if (!want(bench)) continue;
  try {
    const res = runShmRead({ card, width: w, height: h, ms: quick ? 500 : 1500, rounds });
    const before = res[0]!.cpuMsPerFrame;
    for (const r of res) {
      sink.row(bench, r.path, [
        ['frames', r.frames, 'count'],
        ['cpu_per_frame_read', r.cpuMsPerFrame, 'ms'],
        ['cpu_vs_direct', r.cpuMsPerFrame / before, 'x'],
      ]);
    }
  } catch (e) {
    sink.row(bench, '-', [['note', `failed: ${(e as Error).message}`, '']]);
  }
}
// QEMU's D-Bus display beside the VFIO path (issue 13): each path boots and tears down
// its own world (mdev, bus, QEMU, output), one window each.
{
  const spec = { card, connector: 'Virtual-1', warmupMs, ms: quick ? 2500 : 5000, log };
  const t = Date.now();
  // The peer and the direct path take turns: the ratio of their CPU per frame is the target
  // of issue 26 (within 1.3x), so both see the same host load. First one pair JIT-cold (the
  // usual warm-up: the D-Bus code's first seconds in this process), then `rounds` pairs in
  // the steady state, each after STEADY_WARMUP_MS: V8 optimises a function only after many
  // calls, and under TCG at 60 frames a second the per-frame code ran in its baseline tier
  // for the whole of a 1.5 s warm-up and 5 s window (perf in the rig: JS:^ frames and
  // generic IC builtins). A display runs for hours; the steady state is what it costs.
  const steady = { ...spec, warmupMs: STEADY_WARMUP_MS };
  const peer: Row[] = [];
  const direct: Row[] = [];
  const coldPeer: Row[] = [];
  const coldDirect: Row[] = [];
  if (want(QEMU_DBUS_BENCH)) {
    await attempt(QEMU_DBUS_BENCH, 'peer udmabuf (own process), cold', async () => pushed(coldPeer, await runPeerChild(spec, 'dmabuf')));
    await attempt(QEMU_DBUS_BENCH, 'udmabuf direct (no D-Bus), cold', async () => pushed(coldDirect, await runUdmabufDirect(spec)));
  }
  for (let r = 0; r < rounds && want(QEMU_DBUS_BENCH); r++) {
    await attempt(QEMU_DBUS_BENCH, `peer udmabuf (own process)${rounds > 1 ? ` #${r + 1}` : ''}`, async () => pushed(peer, await runPeerChild(steady, 'dmabuf')));
    await attempt(QEMU_DBUS_BENCH, `udmabuf direct (no D-Bus)${rounds > 1 ? ` #${r + 1}` : ''}`, async () => pushed(direct, await runUdmabufDirect(steady)));
  }
  if (want(QEMU_DBUS_BENCH)) {
    sink.row(QEMU_DBUS_BENCH, 'D-Bus vs direct, cold', ratioRows(coldPeer, coldDirect, `the first pair, JIT-cold (${warmupMs} ms after the first frame)`));
    sink.row(QEMU_DBUS_BENCH, 'D-Bus vs direct', ratioRows(peer, direct, `steady: each window after ${STEADY_WARMUP_MS / 1000} s of frames`));
  }
  await attempt(QEMU_DBUS_BENCH, `qemu mbochs gl=on (refused on vkms)`, () => runQemuMbochs(spec));
  await attempt(QEMU_DBUS_BENCH, `qemu mdpy gl=off (copy)`, () => runQemuMdpy(spec));
  if (!fetchedQemu().missing) {
    await attempt(QEMU_DBUS_BENCH, `qemu10 mbochs gl=on (refused on vkms)`, () => runQemuMbochs(spec, fetchedQemu()));
    await attempt(QEMU_DBUS_BENCH, `qemu10 mdpy gl=off (copy)`, () => runQemuMdpy(spec, fetchedQemu()));
  } else if (want(QEMU_DBUS_BENCH)) sink.row(QEMU_DBUS_BENCH, 'qemu10', [['note', `not measured: ${fetchedQemu().missing}`, '']]);
  await attempt(QEMU_DBUS_BENCH, 'vfio mdpy direct (region, polled)', () => runVfioDirect(spec));
  await attempt(QEMU_MAP_BENCH, 'peer Update (pixels in the message)', () => runPeerChild(spec, 'update'));
  await attempt(QEMU_MAP_BENCH, 'peer Unix.Map (UpdateMap)', () => runPeerChild(spec, 'map'));
  if (want(QEMU_DBUS_BENCH) || want(QEMU_MAP_BENCH)) sink.row('meta', '-', [['qemu_dbus_scenario_time', (Date.now() - t) / 1000, 's']]);
}
// QEMU's own displays against guestplane window, one real guest, on our compositor (issue 28 item 9).
if (want(QEMU_DISPLAY_BENCH)) {
  const t = Date.now();
  await runQemuDisplays({ card, connector: 'Virtual-1', frames: quick ? 60 : 100, captures: quick ? 6 : 8, log, ...(cpuProfDir ? { cpuProfDir } : {}) }, (path, run) => attempt(QEMU_DISPLAY_BENCH, path, run));
  sink.row('meta', '-', [['qemu_display_scenario_time', (Date.now() - t) / 1000, 's']]);
}
if (only !== undefined && !readFileSync(outFile, 'utf8').split('\n').some((l) => l && !l.includes('"bench":"meta"'))) {
  log(`--only ${only}: no scenario's bench name contains it`);
}
log('done');
