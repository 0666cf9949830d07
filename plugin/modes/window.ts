// `guestplane window`: one guest in a window on the user's own Wayland desktop (issue 28).
// Connects to the desktop compositor (window/connection.ts), opens a WindowOutput and
// attaches the guest: a QEMU VM's D-Bus display (QemuGuest: waits for QEMU, "no signal"
// while it is away, reattaches when it is back) or the built-in udmabuf test guest. One
// stats line per second. Stops on stop() (SIGINT/SIGTERM in the CLI), on the window being
// closed by the user, or when the desktop goes away — each with a message and a clean
// release of everything.
//
// A QEMU guest also gets the desktop's keyboard, pointer and touch, and its cursor image as
// the desktop's pointer image (window/input.ts).
//
// Ownership: the Desktop connection, the WindowOutput, the input, the source and the test
// guest's animation are all this mode's and are released in stop(), in that reverse order:
// animation, input (the guest lets go of held keys first), output (its wl_buffers and
// surfaces), source, connection.
import { Desktop } from '../window/connection.js';
import { WindowOutput } from '../window/window-output.js';
import { WindowInput } from '../window/input.js';
import { RELEASE_CHORD } from '../window/capture.js';
import type { TouchMode } from '../window/touch.js';
import { MULTITOUCH_IFACE } from '../sources/qemu-dbus-protocol.js';
import type { FitMode } from '../geometry.js';
import type { GuestSource } from '../sources/source.js';
import { UdmabufSource } from '../sources/udmabuf.js';
import { QemuGuest } from '../sources/qemu-guest.js';
import { animate, udmabufStep, type Animation } from '../sources/test-guest.js';
import { LoopStallMeter, type OutputStatsSnapshot } from '../stats.js';

export type WindowSourceSpec =
  | { kind: 'udmabuf'; width: number; height: number; fps: number }
  | { kind: 'qemu-dbus'; address: string; console?: number };

export interface WindowModeOptions {
  source: WindowSourceSpec;
  /** Wayland socket name or path; default $WAYLAND_DISPLAY. */
  display?: string;
  title?: string;
  fit?: FitMode;
  fullscreen?: boolean;
  /** Copy every frame into wl_shm instead of handing the dma-buf over (a compositor whose import misbehaves; comparisons). */
  copy?: boolean;
  /** A QEMU guest's touch: one finger as its pointer (default) or every finger through QEMU's MultiTouch (window/touch.ts). */
  touch?: TouchMode;
  /** Blit every frame on the GPU (window/gles-blit.ts) instead of handing the dma-buf over; no copy behind it (tests, comparisons). */
  gles?: boolean;
  statsFormat: 'text' | 'json' | 'none';
  log: (line: string) => void;
}

export interface WindowStatsLine {
  t: number;
  fps: number;
  paths: Record<string, number>;
  /** Why this interval's frames took the paths other than scanout: the newest frame's reason per path (absent when all were handed over). */
  why?: Record<string, string>;
  /** This interval's GPU blits (path gles): ms per blit (compose incl. any upload and glFinish), bytes uploaded into textures. */
  gles?: { msPerBlit: number; bytesUploaded: number };
  latencyMs: { p50: number; p99: number };
  /** Guest buffers imported as wl_buffers so far (one per guest buffer when the cache works). */
  imports: number;
  /** Frames the compositor discarded or never answered, since the start. */
  errors: Record<string, number>;
  /** Of this interval's frames: presented with the desktop's zero_copy flag (it scanned our buffer out), and handed over in a pair of a scanout tranche of its dma-buf feedback. */
  desktop: { zeroCopy: number; scanoutTranche: number };
  stallMs: number;
}

export interface RunningWindow {
  readonly output: WindowOutput;
  readonly source: GuestSource;
  /** The desktop's input into the guest (QEMU guests only). */
  readonly input: WindowInput | null;
  readonly done: Promise<number>;
  stop(reason: string): Promise<number>;
}

function openSource(spec: WindowSourceSpec, out: WindowOutput, log: (l: string) => void, failed: (e: Error) => void): { source: GuestSource; animation: Animation | null } {
  if (spec.kind === 'qemu-dbus') {
    return { source: new QemuGuest({ address: spec.address, console: spec.console, log: (l) => log(`guestplane window: ${l}`) }), animation: null };
  }
  const u = new UdmabufSource({ width: spec.width, height: spec.height, buffers: 3 });
  try {
    return { source: u, animation: animate(udmabufStep(u, () => out.buffersInUse()), spec.fps, failed) };
  } catch (e) {
    u.close();
    throw e;
  }
}

/** What a stats line needs of the window besides its snapshot. */
interface WindowCounts {
  desktop: WindowStatsLine['desktop'];
  why: Record<string, string>;
  gles: { blits: number; ms: number };
}
const windowCounts = (out: WindowOutput): WindowCounts => ({ desktop: { ...out.desktopCounts }, why: { ...out.pathReasons }, gles: out.glesCounts });

function statsLine(s: OutputStatsSnapshot, last: OutputStatsSnapshot, w: WindowCounts, lastW: WindowCounts, t: number, dt: number, stallMs: number): WindowStatsLine {
  const paths: Record<string, number> = {};
  for (const k of Object.keys(s.paths) as (keyof typeof s.paths)[]) if (s.paths[k] - last.paths[k] > 0) paths[k] = s.paths[k] - last.paths[k];
  const why: Record<string, string> = {};
  for (const [k, r] of Object.entries(w.why)) if (paths[k]) why[k] = r;
  const blits = w.gles.blits - lastW.gles.blits;
  const desk = w.desktop;
  const lastDesk = lastW.desktop;
  return {
    t,
    fps: (s.framesPresented - last.framesPresented) / dt,
    paths,
    ...(Object.keys(why).length > 0 ? { why } : {}),
    ...(blits > 0 ? { gles: { msPerBlit: (w.gles.ms - lastW.gles.ms) / blits, bytesUploaded: s.bytesUploaded - last.bytesUploaded } } : {}),
    latencyMs: { p50: s.latencyMs.p50, p99: s.latencyMs.p99 },
    imports: s.imports,
    errors: s.errors,
    desktop: { zeroCopy: desk.zeroCopy - lastDesk.zeroCopy, scanoutTranche: desk.scanoutTranche - lastDesk.scanoutTranche },
    stallMs,
  };
}

export function formatWindowStats(l: WindowStatsLine): string {
  const paths = Object.entries(l.paths).map(([p, n]) => `${p} ${n}`).join(', ');
  const errs = Object.entries(l.errors).map(([c, n]) => `${c}×${n}`).join(' ');
  const why = Object.entries(l.why ?? {}).map(([p, r]) => `  ${p}: ${r}`).join('');
  const gles = l.gles ? `  ${l.gles.msPerBlit.toFixed(1)} ms/blit` : '';
  return `${l.fps.toFixed(1)} fps [${paths || 'no frames'}]${gles}  desktop zero-copy ${l.desktop.zeroCopy}  latency p50 ${l.latencyMs.p50.toFixed(1)} ms p99 ${l.latencyMs.p99.toFixed(1)} ms  imports ${l.imports}  stall ${l.stallMs.toFixed(0)} ms${errs ? `  ${errs}` : ''}${why}`;
}

function reportStats(out: WindowOutput, opts: WindowModeOptions): () => void {
  if (opts.statsFormat === 'none') return () => {};
  const stalls = new LoopStallMeter();
  const started = Date.now();
  let last = out.statsSnapshot();
  let lastW = windowCounts(out);
  let lastT = started;
  const timer = setInterval(() => {
    const s = out.statsSnapshot();
    const w = windowCounts(out);
    const now = Date.now();
    const line = statsLine(s, last, w, lastW, (now - started) / 1000, (now - lastT) / 1000, stalls.take());
    lastW = w;
    opts.log(opts.statsFormat === 'json' ? JSON.stringify({ stats: line }) : `guestplane window: ${formatWindowStats(line)}`);
    last = s;
    lastT = now;
  }, 1000);
  return () => {
    clearInterval(timer);
    stalls.stop();
  };
}

/** Connects to the desktop, opens the window and shows the guest. Throws (with the fix) when the desktop cannot be reached. */
export async function runWindow(opts: WindowModeOptions): Promise<RunningWindow> {
  const desktop = await Desktop.connect({ display: opts.display ?? null, log: opts.log });
  const spec = opts.source;
  const title = opts.title ?? (spec.kind === 'udmabuf' ? `guestplane: test guest ${spec.width}x${spec.height}` : `guestplane: ${spec.address}`);
  const out = new WindowOutput(desktop, { title, fit: opts.fit ?? 'fit', fullscreen: opts.fullscreen, ...(opts.copy ? { paths: ['copy'] as const } : opts.gles ? { paths: ['gles'] as const } : {}) });
  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((r) => (resolveDone = r));
  let stopping: Promise<number> | null = null;
  let opened: { source: GuestSource; animation: Animation | null };
  try {
    opened = openSource(spec, out, opts.log, (e) => void stop(`the test guest failed: ${e.message}`, 1));
  } catch (e) {
    await out.close();
    desktop.close();
    throw e;
  }
  const { source, animation } = opened;
  // The desktop's keyboard and pointer go to a QEMU guest (the test guest takes no input).
  const input =
    source instanceof QemuGuest
      ? new WindowInput(desktop, out, source, {
          cursorSource: source,
          isAbsolute: () => source.isAbsolute(),
          onCapture: (on) => out.setTitle(on ? `${title} (pointer captured: ${RELEASE_CHORD} releases it)` : title),
          touch: opts.touch,
          offersMultiTouch: () => source.console?.info.interfaces.includes(MULTITOUCH_IFACE) ?? false,
          log: opts.log,
        })
      : null;
  const stopStats = reportStats(out, opts);
  const stop = (reason: string, code = 0): Promise<number> => {
    stopping ??= (async () => {
      stopStats();
      animation?.stop();
      input?.close(); // the guest lets go of held keys before it is detached
      await out.close();
      source.close();
      desktop.close();
      opts.log(`guestplane window: ${reason}; window closed`);
      resolveDone(code);
      return code;
    })();
    return stopping;
  };
  out.on('error', (e) => opts.log(`guestplane window: ${e.message}`));
  out.on('source-lost', (e) => opts.log(`guestplane window: the guest went away: ${e.message}`));
  out.on('close-requested', () => void stop('the window was closed'));
  desktop.on('closed', (r) => {
    if (r.kind !== 'closed') void stop(`the desktop compositor connection ended: ${r.message}`, r.kind === 'gone' ? 0 : 1);
  });
  out.attach(source, opts.fit ?? 'fit');
  return { output: out, source, input, done, stop: (reason) => stop(reason) };
}
