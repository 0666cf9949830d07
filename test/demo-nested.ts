// The demo's real-guest row (issue 26): a guest Linux under an unmodified current QEMU (the
// rig's 10.0.x; nested in the rig VM, TCG inside TCG) with virtio-gpu blob resources in a
// memfd guest RAM and `-display dbus,gl=on`. The guest's PID 1 page-flips numbered frames
// between two dumb buffers; QEMU hands each buffer over as a udmabuf of guest memory, and
// `guestplane kiosk --qemu-dbus` (the CLI as a child process, as an operator runs it)
// scans them out. The boot is helpers/nested-guest.ts's, shared with
// qemu-dbus-guest.test.ts; the kiosk process is helpers/kiosk-process.ts's.
//
// What the row reports comes from the run: the guest's own frame lines (serial console), the
// kiosk's per-second JSON stats (path counts), its writeback captures (SIGUSR1), the
// kiosk's fds (/proc) and the device's framebuffers (debugfs) before and after the window.
// Compiled by test/demo.tsconfig.json, used by test/demo-inside.mjs.
import { copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KioskStatsLine } from '../plugin/modes/kiosk.js';
import { decodeFrameNumber, drawPattern } from '../plugin/sources/pattern.js';
import { patternMismatches } from './integration/helpers/faults.js';
import { KioskProcess } from './integration/helpers/kiosk-process.js';
import { nestedGuestMissing, rigKernel, startNestedGuest, waitForDisplayOnBus, type NestedGuest } from './integration/helpers/nested-guest.js';
import { usageOf, type Usage } from './integration/helpers/process-usage.js';
import { fetchedQemu } from './integration/helpers/qemu-builds.js';
import { startSessionBus, unexpectedQemuStderr, type SessionBus } from './integration/helpers/qemu.js';

/** The guest's mode: the size the rig test checks pixel-exact (see "Measured" in README's demo section for the cost). */
const W = 640;
const H = 480;
/** More flips than the row can use: the guest flips until QEMU is stopped. */
const GUEST_FRAMES = 100_000;
/** Guest kernel boot under nested TCG is 25-40 s in the rig; margin for a loaded host. */
const FIRST_FRAME_TIMEOUT_MS = 240_000;

export interface NestedDemoOptions {
  /** Where the captures go (as `qemu-guest-N.png`). */
  outDir: string;
  /** KMS device and connector the kiosk takes (the demo has let go of DRM master). */
  device: string;
  connector: string;
  /** Measuring window, s (one kiosk stats line per second). */
  seconds: number;
  shots: number;
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
  /** The kiosk's stats line at the window's end (its rolling sample window; it prints no p95). */
  latencyMs: { p50: number | null; p95: null; p99: number | null; samples: null };
  bytesCopied: number;
  imports: number;
  commits: number;
  testOnlyCommits: number;
  errors: Record<string, number>;
  /** The kiosk process after its first capture and at the end of the row (writeback FB allocated in both). */
  kioskUsage: { start: Usage; end: Usage; flat: boolean };
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

/** Waits for `n` more kiosk stats lines after index `from` of its lines; returns them with when each arrived. */
function nextStats(k: KioskProcess, from: number, n: number, timeoutMs: number): Promise<{ lines: KioskStatsLine[]; end: number }> {
  const have = () => k.lines.slice(from).filter(isStats);
  return k.waitLine(() => have().length >= n, timeoutMs).then(() => ({ lines: have().slice(0, n).map(statsOf), end: k.lines.length }));
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
    const started = startNestedGuest({ dir, busAddress: bus.address, kernel: rigKernel()!, frames: GUEST_FRAMES, width: W, height: H, qemu: q });
    guest = started.guest;
    const g = guest;
    opts.log(`qemu-guest: ${q.label} booting the rig kernel as a guest (virtio-gpu blob, -display dbus,gl=on; TCG inside the rig's TCG)…`);
    const qemuToBusMs = await waitForDisplayOnBus(g, bus.address);

    const kioskStart = Date.now();
    const k = new KioskProcess(
      ['--device', opts.device, '--connector', opts.connector, '--mode', `${W}x${H}`, '--fit', 'native', '--stats', 'json', '--capture-dir', captureDir, '--no-input', '--qemu-dbus', bus.address],
      [],
      { bare: true },
    );
    kiosk = k;
    const kioskGone = k.exited.then((e) => {
      throw new Error(`the kiosk exited early (${e.signal ?? `status ${e.code}`}):\n${k.lines.join('\n')}`);
    });
    kioskGone.catch(() => {
      /* seen through race() while it matters; the kiosk's SIGTERM at the end rejects it too */
    });
    const race = <T>(p: Promise<T>) => Promise.race([p, kioskGone]);

    const frame1 = await race(g.waitForLine(/^frame 1 /, FIRST_FRAME_TIMEOUT_MS));
    opts.log(`qemu-guest: the guest flips (its kernel booted ${((frame1.at - qemuToBusMs) / 1000).toFixed(0)} s after QEMU's display was on the bus)`);
    // The first stats line with a scanout: that second is partly before the first frame.
    await race(k.waitLine((l) => isStats(l) && (statsOf(l).paths.scanout ?? 0) > 0, 60_000));
    const firstFrameMs = Date.now() - kioskStart;

    const captures: NestedCapture[] = [];
    const shot = async (i: number) => {
      const c = await race(k.capture());
      const file = `qemu-guest-${i}.png`;
      copyFileSync(join(captureDir, `capture-${String(i).padStart(3, '0')}.png`), join(opts.outDir, file));
      // KioskProcess gives 0x00RRGGBB words: as bytes that is XR24, what the pattern code reads.
      const bytes = new Uint8Array(c.pixels.buffer, c.pixels.byteOffset, c.pixels.byteLength);
      const target = { bytes, offset: 0, width: W, height: H, stride: c.pixels.length === W * H ? W * 4 : (c.pixels.length / H) * 4 };
      const frameInPixels = decodeFrameNumber(target);
      const mismatches = frameInPixels === null ? null : patternMismatches({ pixels: bytes, stride: target.stride }, frameInPixels, W, H, drawPattern);
      captures.push({ file, path: c.meta.content?.path ?? null, frameShown: c.meta.content?.frame ?? null, frameInPixels, mismatches, reason: c.meta.content?.reason ?? null });
      opts.log(`qemu-guest: ${file} shows guest frame ${frameInPixels} (${c.meta.content?.path}, ${mismatches} pixels off the guest's pattern)`);
    };
    // One capture first: it allocates the writeback buffer, which the kiosk keeps.
    await shot(1);
    const usageStart = usageOf(k.child.pid!, opts.device);
    const from = k.lines.length;
    const window = await race(nextStats(k, from, opts.seconds, opts.seconds * 1000 + 30_000));
    // The window is the kiosk's own: from its last stats line before `from` to its last line
    // in the window (each line counts the frames since the one before); on the host's clock it
    // ends now, when that line arrived.
    const before = statsOf(k.lines.slice(0, from).filter(isStats).at(-1)!);
    const last = window.lines.at(-1)!;
    const tTo = Date.now();
    const tFrom = tTo - (last.t - before.t) * 1000;
    for (let i = 2; i <= opts.shots; i++) await shot(i);
    const usageEnd = usageOf(k.child.pid!, opts.device);

    // The guest's frames whose line arrived within the window (arrival on the host: the
    // serial console lags by a few ms, the same at both ends).
    const guestFrames = g.lines.filter((l) => /^frame \d+ /.test(l.text) && g.spawnedAt + l.at >= tFrom && g.spawnedAt + l.at < tTo).length;
    const paths: Record<string, number> = {};
    for (const s of window.lines) for (const [p, n] of Object.entries(s.paths)) if (n > 0) paths[p] = (paths[p] ?? 0) + n;
    let bytesCopied = 0;
    let prevT = before.t;
    for (const s of window.lines) {
      bytesCopied += s.bytesCopiedPerSec * (s.t - prevT);
      prevT = s.t;
    }

    k.child.kill('SIGTERM');
    const exit = await Promise.race([k.exited, new Promise<null>((r) => setTimeout(() => r(null), 20_000))]);
    if (!exit) await k.kill();
    const kioskExit = exit ? (exit.signal ?? `exit ${exit.code}`) : 'killed after 20 s (did not stop on SIGTERM)';
    const flat = usageStart.fds === usageEnd.fds && usageStart.dmabufs === usageEnd.dmabufs && usageStart.sockets === usageEnd.sockets && usageStart.fbs === usageEnd.fbs;
    return {
      guest: 'qemu-guest',
      qemu: q.label,
      guestSize: `${W}x${H}`,
      seconds: Number((last.t - before.t).toFixed(2)),
      firstFrameMs,
      timings: {
        guestProgramBuildMs: started.buildMs,
        qemuToBusMs,
        qemuToGuestInitMs: g.lines[0]?.at ?? -1,
        qemuToGuestFrame1Ms: frame1.at,
        rowMs: Date.now() - t0,
      },
      guestFrames,
      framesPresented: Object.values(paths).reduce((a, b) => a + b, 0),
      paths,
      latencyMs: { p50: last.latencyMs.p50, p95: null, p99: last.latencyMs.p99, samples: null },
      bytesCopied: Math.round(bytesCopied),
      imports: last.imports,
      commits: last.commits - before.commits,
      testOnlyCommits: last.testOnlyCommits - before.testOnlyCommits,
      errors: last.errors,
      kioskUsage: { start: usageStart, end: usageEnd, flat },
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
