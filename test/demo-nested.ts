// The demo's real-guest row (issue 26): a guest Linux under an unmodified current QEMU (the
// rig's 10.0.x; nested in the rig VM, TCG inside TCG) with virtio-gpu blob resources in a
// memfd guest RAM and `-display dbus,gl=on`. The guest's PID 1 page-flips numbered frames
// between two dumb buffers; QEMU hands each buffer over as a udmabuf of guest memory, and
// `guestplane kiosk --qemu-dbus` (the CLI as a child process, as an operator runs it)
// scans them out. The boot is helpers/nested-guest.ts's, shared with
// qemu-dbus-guest.test.ts; the kiosk process is helpers/kiosk-process.ts's.
//
// The guest flips 3 frames after boot and holds; the row captures that frame, takes the
// kiosk's fds, tells the guest "run" (it flips on), measures `seconds` of the kiosk's stats,
// tells it "stop" (it holds its last frame), captures that frame and takes the fds again:
// both counts are taken with the guest holding and the kiosk idle for a second, so what
// differs is what the flips in between left behind. What the row reports comes from the
// run: the guest's own frame lines (serial console), the kiosk's per-second JSON stats (path
// counts), its writeback captures (SIGUSR1; pixels checked against the guest's pattern), the
// kiosk's fds (/proc) and the device's framebuffers (debugfs).
// Compiled by test/demo.tsconfig.json, used by test/demo-inside.mjs.
import { copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KioskStatsLine } from '../plugin/modes/kiosk.js';
import { decodeFrameNumber, drawPattern } from '../plugin/sources/pattern.js';
import { patternMismatches } from './integration/helpers/faults.js';
import { KioskProcess } from './integration/helpers/kiosk-process.js';
import { nestedGuestMissing, rigKernel, startNestedGuest, waitForDisplayOnBus, type NestedGuest } from './integration/helpers/nested-guest.js';
import { pollUntil, usageOf, type Usage } from './integration/helpers/process-usage.js';
import { fetchedQemu } from './integration/helpers/qemu-builds.js';
import { startSessionBus, unexpectedQemuStderr, type SessionBus } from './integration/helpers/qemu.js';

/** The guest's mode: the size the rig test checks pixel-exact (README's set-up section says what the row costs). */
const W = 640;
const H = 480;
/** Frames the guest flips after boot; then it holds frame 3 until told "run" (gp-guest-flip.c). */
const BOOT_FRAMES = 3;
/**
 * QEMU start → the guest's first frame under nested TCG: 26-28 s in the rig test on a quiet
 * host, 107 and 152 s in the demo with the host's 2 cores at load 8-13; room for worse.
 */
const FIRST_FRAME_TIMEOUT_MS = 420_000;

export interface NestedDemoOptions {
  /** Where the captures go (as `qemu-guest-N.png`). */
  outDir: string;
  /** KMS device and connector the kiosk takes (the demo has let go of DRM master). */
  device: string;
  connector: string;
  /** Measuring window, s (one kiosk stats line per second). */
  seconds: number;
  log: (line: string) => void;
}

export interface NestedCapture {
  file: string;
  path: string | null;
  frameShown: number | null;
  frameInPixels: number | null;
  /** Pixels differing from the guest's pattern for the decoded frame (0: pixel-exact). */
  mismatches: number | null;
  /** Why the captured frame was not zero-copy, as the output said. */
  reason: string | null;
}

export interface NestedDemoSection {
  guest: string;
  qemu: string;
  guestSize: string;
  seconds: number;
  /** From the kiosk's start (QEMU's display on the bus, the guest still booting) to its first scanout. */
  firstFrameMs: number;
  timings: { guestProgramBuildMs: number; qemuToBusMs: number; qemuToGuestInitMs: number; qemuToGuestFrame1Ms: number; rowMs: number };
  guestFrames: number;
  framesPresented: number;
  paths: Record<string, number>;
  /** The kiosk's stats line at the window's end: over its last 2048 frames, i.e. all of them here (it prints no p95). */
  latencyMs: { p50: number | null; p95: null; p99: number | null; samples: null };
  bytesCopied: number;
  imports: number;
  commits: number;
  testOnlyCommits: number;
  errors: Record<string, number>;
  /** The kiosk process with the guest holding, before "run" and after "stop" (after a capture each: the writeback FB is there in both). */
  kioskUsage: { start: Usage; end: Usage; flat: boolean; quiet: boolean };
  /** The guest's own timings of the window's frames (medians; nested TCG). */
  guestFrameMs: { draw: number | null; flip: number | null };
  /** The kiosk's own lines but its stats (its start line, QEMU attached, its summary at SIGTERM). */
  kioskLines: string[];
  kioskExit: string;
  captures: NestedCapture[];
  /** QEMU's stderr lines that the rig tests would not call harmless. */
  qemuStderr: string[];
  whyNotZeroCopy: string[];
}

/** The QEMU this row runs on (the rig runner names its tree in GUESTPLANE_QEMU10_DIR). */
function qemu() {
  return fetchedQemu();
}

/** Why the row cannot run here, or null (it needs the rig: its kernel is the guest's). */
export function nestedDemoMissing(): string | null {
  return nestedGuestMissing(qemu());
}

const isStats = (l: string) => l.startsWith('{"stats"');
const statsOf = (l: string) => (JSON.parse(l) as { stats: KioskStatsLine }).stats;
const median = (xs: number[]) => (xs.length ? [...xs].sort((a, b) => a - b)[xs.length >> 1]! : null);

/** Waits for `n` more kiosk stats lines after index `from` of its lines. */
async function nextStats(k: KioskProcess, from: number, n: number, timeoutMs: number): Promise<KioskStatsLine[]> {
  const have = () => k.lines.slice(from).filter(isStats);
  await k.waitLine(() => have().length >= n, timeoutMs);
  return have().slice(0, n).map(statsOf);
}

/** Waits until the guest has printed its `n`th "holding frame" line; returns its frame. */
async function holding(g: NestedGuest, n: number, timeoutMs: number): Promise<number> {
  const lines = () => g.lines.filter((l) => l.text.startsWith('holding frame '));
  if (!(await pollUntil(() => lines().length >= n || !!g.exitStatus, timeoutMs, 100)) || lines().length < n) throw new Error(`the guest did not hold a frame (${n}) within ${timeoutMs / 1000} s\n${g.describe()}`);
  return Number(lines()[n - 1]!.text.split(' ')[2]);
}

/** Waits for a kiosk stats line with nothing presented (a second of quiet), up to 20 s; false if none came. */
function quietSecond(k: KioskProcess): Promise<boolean> {
  const from = k.lines.length;
  return pollUntil(() => k.lines.slice(from).some((l) => isStats(l) && statsOf(l).fps === 0), 20_000, 100);
}

/** SIGUSR1 to the kiosk: its capture copied to `outDir` and checked against the guest's pattern. */
async function capture(k: KioskProcess, captureDir: string, outDir: string, i: number): Promise<NestedCapture> {
  const c = await k.capture();
  const file = `qemu-guest-${i}.png`;
  copyFileSync(join(captureDir, `capture-${String(i).padStart(3, '0')}.png`), join(outDir, file));
  if (c.pixels.length !== W * H) throw new Error(`the kiosk's capture has ${c.pixels.length} pixels, not ${W}x${H}`);
  // KioskProcess gives 0x00RRGGBB words: as bytes that is XR24, what the pattern code reads.
  const bytes = new Uint8Array(c.pixels.buffer, c.pixels.byteOffset, c.pixels.byteLength);
  const frameInPixels = decodeFrameNumber({ bytes, offset: 0, width: W, height: H, stride: W * 4 });
  const mismatches = frameInPixels === null ? null : patternMismatches({ pixels: bytes, stride: W * 4 }, frameInPixels, W, H, drawPattern);
  return { file, path: c.meta.content?.path ?? null, frameShown: c.meta.content?.frame ?? null, frameInPixels, mismatches, reason: c.meta.content?.reason ?? null };
}

/** The kiosk's stats lines of a window summed: presents per path, bytes copied, commits. */
function summarize(before: KioskStatsLine, lines: KioskStatsLine[]) {
  const paths: Record<string, number> = {};
  let bytesCopied = 0;
  let prevT = before.t;
  for (const s of lines) {
    for (const [p, n] of Object.entries(s.paths)) if (n > 0) paths[p] = (paths[p] ?? 0) + n;
    bytesCopied += s.bytesCopiedPerSec * (s.t - prevT);
    prevT = s.t;
  }
  const last = lines.at(-1)!;
  return {
    seconds: Number((last.t - before.t).toFixed(2)),
    framesPresented: Object.values(paths).reduce((a, b) => a + b, 0),
    paths,
    latencyMs: { p50: last.latencyMs.p50, p95: null, p99: last.latencyMs.p99, samples: null },
    bytesCopied: Math.round(bytesCopied),
    imports: last.imports,
    commits: last.commits - before.commits,
    testOnlyCommits: last.testOnlyCommits - before.testOnlyCommits,
    errors: last.errors,
  };
}

/** SIGTERM, as an operator stops it; SIGKILL after 20 s. Says how it ended. */
async function stopKiosk(k: KioskProcess): Promise<string> {
  k.child.kill('SIGTERM');
  const exit = await Promise.race([k.exited, new Promise<null>((r) => setTimeout(() => r(null), 20_000))]);
  if (exit) return exit.signal ?? `exit ${exit.code}`;
  await k.kill();
  return 'killed after 20 s (did not stop on SIGTERM)';
}

export async function showNestedGuest(opts: NestedDemoOptions): Promise<NestedDemoSection> {
  const t0 = Date.now();
  const q = qemu();
  const dir = mkdtempSync(join(tmpdir(), 'gp-demo-nested-'));
  const captureDir = join(dir, 'captures');
  // Owned here, closed in `finally` in the reverse order: kiosk, QEMU, bus.
  let bus: SessionBus | null = null;
  let guest: NestedGuest | null = null;
  let kiosk: KioskProcess | null = null;
  try {
    bus = startSessionBus(dir);
    const started = startNestedGuest({ dir, busAddress: bus.address, kernel: rigKernel()!, frames: BOOT_FRAMES, width: W, height: H, qemu: q });
    const g = (guest = started.guest);
    opts.log(`qemu-guest: ${q.label} boots the rig kernel as a guest (virtio-gpu blob, -display dbus,gl=on; TCG inside the rig's TCG)…`);
    const qemuToBusMs = await waitForDisplayOnBus(g, bus.address);

    const kioskStart = Date.now();
    const k = (kiosk = new KioskProcess(
      ['--device', opts.device, '--connector', opts.connector, '--mode', `${W}x${H}`, '--fit', 'native', '--stats', 'json', '--capture-dir', captureDir, '--no-input', '--qemu-dbus', bus.address],
      [],
      { bare: true },
    ));
    const kioskGone = k.exited.then((e) => {
      throw new Error(`the kiosk exited early (${e.signal ?? `status ${e.code}`}):\n${k.lines.join('\n')}`);
    });
    kioskGone.catch(() => {
      /* seen through race() while it matters; the kiosk's SIGTERM at the end rejects it too */
    });
    const race = <T>(p: Promise<T>) => Promise.race([p, kioskGone]);

    const frame1 = await race(g.waitForLine(/^frame 1 /, FIRST_FRAME_TIMEOUT_MS));
    opts.log(`qemu-guest: the guest's first frame ${((frame1.at - qemuToBusMs) / 1000).toFixed(0)} s after QEMU's display was on the bus`);
    await race(k.waitLine((l) => isStats(l) && (statsOf(l).paths.scanout ?? 0) > 0, 60_000));
    const firstFrameMs = Date.now() - kioskStart;
    const say = (c: NestedCapture) => opts.log(`qemu-guest: ${c.file} shows guest frame ${c.frameInPixels} (${c.path}, ${c.mismatches} pixels off the guest's pattern)`);

    // Held frame, quiet kiosk: the first capture and count.
    await race(holding(g, 1, 60_000));
    const quiet1 = await race(quietSecond(k));
    const captures = [await race(capture(k, captureDir, opts.outDir, 1))];
    say(captures[0]!);
    const usageStart = usageOf(k.child.pid!, opts.device);

    // The window: the guest flips on; `seconds` of the kiosk's own stats lines, from its last
    // line before the first new frame (each line counts the frames since the one before).
    const heldLines = g.lines.length;
    g.type('run');
    await race(g.waitForLine(new RegExp(`^frame ${BOOT_FRAMES + 1} `), 60_000));
    const from = k.lines.length;
    const window = await race(nextStats(k, from, opts.seconds, opts.seconds * 1000 + 30_000));
    const tTo = Date.now(); // the window's last line arrived just now
    g.type('stop');
    const before = statsOf(k.lines.slice(0, from).filter(isStats).at(-1)!);
    const sum = summarize(before, window);
    const tFrom = tTo - sum.seconds * 1000;

    // Held again, quiet again: the second capture and count.
    const last = await race(holding(g, 2, 60_000));
    const quiet2 = await race(quietSecond(k));
    captures.push(await race(capture(k, captureDir, opts.outDir, 2)));
    say(captures[1]!);
    const usageEnd = usageOf(k.child.pid!, opts.device);
    opts.log(`qemu-guest: the guest held frame ${last}`);

    // The guest's frames whose console line arrived within the window (the serial console's
    // lag is about the same at both ends).
    const inWindow = g.frames().filter((f) => {
      const line = g.lines.slice(heldLines).find((l) => l.text.startsWith(`frame ${f.frame} `));
      return line && g.spawnedAt + line.at >= tFrom && g.spawnedAt + line.at < tTo;
    });
    const kioskExit = await stopKiosk(k);
    const flat = usageStart.fds === usageEnd.fds && usageStart.dmabufs === usageEnd.dmabufs && usageStart.sockets === usageEnd.sockets && usageStart.fbs === usageEnd.fbs;
    return {
      guest: 'qemu-guest',
      qemu: q.label,
      guestSize: `${W}x${H}`,
      firstFrameMs,
      timings: { guestProgramBuildMs: started.buildMs, qemuToBusMs, qemuToGuestInitMs: g.lines[0]?.at ?? -1, qemuToGuestFrame1Ms: frame1.at, rowMs: Date.now() - t0 },
      guestFrames: inWindow.length,
      guestFrameMs: { draw: median(inWindow.map((f) => f.drawMs)), flip: median(inWindow.map((f) => f.flipMs)) },
      ...sum,
      kioskUsage: { start: usageStart, end: usageEnd, flat, quiet: quiet1 && quiet2 },
      kioskLines: k.lines.filter((l) => !isStats(l) && !l.includes('captured ')),
      kioskExit,
      captures,
      qemuStderr: unexpectedQemuStderr(g.stderr),
      whyNotZeroCopy: [...new Set(captures.filter((c) => c.reason).map((c) => `${c.path}: ${c.reason}`))],
    };
  } finally {
    await kiosk?.kill();
    await guest?.close();
    bus?.close();
  }
}
