// Direct-scanout kiosk: one guest, one screen, no desktop.
//
// Takes DRM master, shows the guest full screen (zero-copy where the planes take its
// buffers), shows the defined "no signal" frame while the guest has no plane, prints one
// stats line per second, and on stop (SIGINT/SIGTERM in the CLI) waits for the flip in
// flight, restores the CRTC configuration and framebuffer that were there before, and
// releases every kernel object. When the device or the guest goes away it stops with a
// message that says which and what to do.
import { Backend } from '../device/backend.js';
import type { Output, ModeRequest, OutputErrorEvent } from '../output/output.js';
import type { FitMode } from '../geometry.js';
import type { GuestSource } from '../sources/source.js';
import { UdmabufSource } from '../sources/udmabuf.js';
import { BochsDispi, BochsTestGuest } from '../sources/bochs.js';
import { openVfioSource } from '../sources/open.js';
import { QemuGuest } from '../sources/qemu-guest.js';
import { InputStack, type InputStackOptions } from '../input/devices.js';
import { GuestInput } from '../input/guest-input.js';
import type { ChordName } from '../input/chords.js';
import type { SeatSession } from '../device/session.js';
import { animate, udmabufStep, type Animation } from '../sources/test-guest.js';
import { LoopStallMeter, type OutputStatsSnapshot } from '../stats.js';
import { encodePng } from '../png.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export type KioskSourceSpec =
  | { kind: 'vfio'; spec: string }
  /** A VFIO device fd the VMM handed over (inherited); it stays the VMM's. */
  | { kind: 'vfio-fd'; fd: number }
  /** Built-in udmabuf test guest animating the numbered pattern at `fps`. */
  | { kind: 'udmabuf'; width: number; height: number; fps: number; buffers?: number }
  /** A QEMU (or libvirt) VM with -display dbus at this D-Bus address; waits for it and reattaches when it restarts. */
  | { kind: 'qemu-dbus'; address: string; console?: number; connectTimeoutMs?: number };

export interface KioskOptions {
  source: KioskSourceSpec;
  device?: string;
  connector?: string;
  mode?: ModeRequest;
  fit?: FitMode;
  /** Stats line interval; 0 = none. */
  statsIntervalMs?: number;
  statsFormat?: 'text' | 'json';
  /**
   * For an mbochs/bochs-compatible mdev only: also run the built-in test guest on it
   * (programs the VBE registers and animates frames), for demos and tests without a VM.
   */
  vfioTestGuestFps?: number;
  /**
   * Host keyboards and pointers into the guest (QEMU D-Bus guests): libinput on a udev
   * seat (default 'seat0') or on named device nodes; false for none. Default: on for
   * --qemu-dbus, where a missing input stack is logged and the display goes on.
   */
  input?: InputStackOptions | false;
  /**
   * Touchscreens into the guest: 'pointer' (default: one finger as the guest's pointer,
   * which any guest takes) or 'multitouch' (every finger through QEMU's MultiTouch, 8.1+;
   * needs a touch device in the guest, e.g. -device virtio-multitouch-pci).
   */
  touch?: 'pointer' | 'multitouch';
  /**
   * Open the card and input devices through this seat session (seatd/logind: no root).
   * The kiosk then stops drawing while another session has the seat and shows the guest
   * again when it is back; Ctrl+Alt+F1…F12 switch VTs. The session stays the caller's.
   */
  session?: SeatSession;
  /** The chords turned on (default all): 'quit' Ctrl+Alt+Q, 'grab' Ctrl+Alt+G, 'vt' Ctrl+Alt+F1…F12 on a seat. */
  chords?: readonly ChordName[];
  log: (line: string) => void;
}

export interface KioskStatsLine {
  t: number;
  fps: number;
  paths: Record<string, number>;
  latencyMs: { p50: number; p99: number };
  bytesCopiedPerSec: number;
  imports: number;
  testOnlyCommits: number;
  commits: number;
  errors: Record<string, number>;
  /** The event loop's longest stall since the previous line, ms (see LoopStallMeter). */
  stallMs: number;
}

export interface Kiosk {
  readonly output: Output;
  /** The guest shown (a QemuGuest for --qemu-dbus: input goes to it). */
  readonly guest: GuestSource;
  readonly connector: string;
  /** Resolves with the exit code once the kiosk has stopped and restored the screen. */
  readonly done: Promise<number>;
  /** Stops, restores the previous screen configuration. */
  stop(reason?: string): Promise<number>;
  /** Captures the next frame through the writeback connector into `dir`; returns the PNG path. */
  capture(dir: string): Promise<string>;
}

function pickConnector(backend: Backend, name?: string): string {
  const outs = backend.listOutputs();
  if (name) {
    const o = outs.find((x) => x.name === name);
    if (!o) throw new Error(`no connector named ${name}; connectors: ${outs.map((x) => `${x.name} (${x.connected ? 'connected' : 'disconnected'})`).join(', ')}`);
    return name;
  }
  const c = outs.find((x) => x.connected);
  if (!c) throw new Error(`no connected display on ${backend.device.path}; plug one in or pass --connector`);
  return c.name;
}

export function formatStatsLine(s: KioskStatsLine): string {
  const paths = Object.entries(s.paths)
    .filter(([, n]) => n > 0)
    .map(([p, n]) => `${p} ${n}`)
    .join(', ');
  const errs = Object.entries(s.errors)
    .map(([c, n]) => `${c}×${n}`)
    .join(' ');
  return (
    `${s.fps.toFixed(1)} fps [${paths || 'no frames'}]  latency p50 ${s.latencyMs.p50.toFixed(1)} ms p99 ${s.latencyMs.p99.toFixed(1)} ms` +
    `  copied ${(s.bytesCopiedPerSec / 1e6).toFixed(1)} MB/s  imports ${s.imports}  test-only ${s.testOnlyCommits}  stall ${s.stallMs.toFixed(0)} ms${errs ? `  errors ${errs}` : ''}`
  );
}

/** The guest the kiosk shows, and the built-in test guest's animation when there is one. */
function openKioskSource(opts: KioskOptions, out: Output, failed: (e: Error) => void): { source: GuestSource; animation: Animation | null } {
  const spec = opts.source;
  if (spec.kind === 'udmabuf') {
    const u = new UdmabufSource({ width: spec.width, height: spec.height, buffers: spec.buffers ?? 3 });
    try {
      return { source: u, animation: animate(udmabufStep(u, () => out.buffersInUse()), spec.fps, failed) };
    } catch (e) {
      u.close();
      throw e;
    }
  }
  if (spec.kind === 'qemu-dbus') {
    const g = new QemuGuest({ address: spec.address, console: spec.console, connectTimeoutMs: spec.connectTimeoutMs, log: (l) => opts.log(`guestplane kiosk: ${l}`) });
    g.setUISize(out.width, out.height);
    return { source: g, animation: null };
  }
  const vfio = openVfioSource(spec.kind === 'vfio' ? spec.spec : { fd: spec.fd, name: `vfio fd ${spec.fd}` });
  if (!opts.vfioTestGuestFps) return { source: vfio, animation: null };
  try {
    const dispi = new BochsDispi(vfio.device);
    const g = new BochsTestGuest(dispi, 3);
    g.setMode(out.width >= 1024 ? 1024 : out.width, out.height >= 768 ? 768 : out.height);
    const a = animate(() => g.step(), opts.vfioTestGuestFps, failed);
    return { source: vfio, animation: { get frames() { return a.frames; }, stop: () => { a.stop(); dispi.close(); } } };
  } catch (e) {
    vfio.close();
    throw e;
  }
}

/** One stats line per interval (opts.log), the rates since the previous line. */
function reportStats(out: Output, opts: KioskOptions, stalls: LoopStallMeter): NodeJS.Timeout {
  let last: OutputStatsSnapshot = out.statsSnapshot();
  let lastT = Date.now();
  const started = lastT;
  return setInterval(() => {
    const s = out.statsSnapshot();
    const now = Date.now();
    const dt = (now - lastT) / 1000;
    const paths: Record<string, number> = {};
    for (const k of Object.keys(s.paths) as (keyof typeof s.paths)[]) paths[k] = s.paths[k] - last.paths[k];
    const line: KioskStatsLine = {
      t: (now - started) / 1000,
      fps: (s.framesPresented - last.framesPresented) / dt,
      paths,
      latencyMs: { p50: s.latencyMs.p50, p99: s.latencyMs.p99 },
      bytesCopiedPerSec: (s.bytesCopied - last.bytesCopied) / dt,
      imports: s.imports,
      testOnlyCommits: s.testOnlyCommits,
      commits: s.commits,
      errors: s.errors,
      stallMs: stalls.take(),
    };
    opts.log(opts.statsFormat === 'json' ? JSON.stringify({ stats: line }) : `guestplane kiosk: ${formatStatsLine(line)}`);
    last = s;
    lastT = now;
  }, opts.statsIntervalMs ?? 1000);
}

/** Captures the next frame into `dir` as capture-NNN.png (+ .json: what was shown); returns the PNG's path. */
async function captureTo(out: Output, dir: string, n: number): Promise<string> {
  const c = await out.captureNext();
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `capture-${String(n).padStart(3, '0')}.png`);
  writeFileSync(path, encodePng(c));
  const content = c.content ? { path: c.content.path, bufferId: c.content.bufferId, frame: c.content.frame, reason: c.content.reason } : null;
  writeFileSync(join(dir, `capture-${String(n).padStart(3, '0')}.json`), JSON.stringify({ width: c.width, height: c.height, content }) + '\n');
  return path;
}

/** On a seat: input lets go of its devices while another session has them (the guest's keys released first). */
function followSession(backend: Backend, input: InputStack, router: GuestInput): void {
  const disable = () => {
    router.releaseAll();
    input.suspend();
  };
  const enable = () => input.resume();
  backend.on('suspend', disable);
  backend.on('resume', enable);
  input.once('closed', () => {
    backend.off('suspend', disable);
    backend.off('resume', enable);
  });
}

/** Host input devices (libinput) routed to a QEMU guest; null (and said why) when there are none to open. */
function guestInput(guest: QemuGuest, backend: Backend, out: Output, opts: KioskOptions, devices: InputStackOptions, quit: () => void): InputStack | null {
  let input: InputStack | null = null;
  const session = opts.session;
  try {
    input = new InputStack(session ? { ...devices, ...session.deviceAccess } : devices);
    const router = new GuestInput(
      guest,
      {
        screen: { width: out.width, height: out.height },
        guest: () => {
          const q = guest.query('primary');
          // The picture QEMU shows (ScanoutDMABUF2: a rectangle of the buffer), not the buffer.
          return q.state === 'ok' ? { width: q.plane.crop?.width ?? q.plane.width, height: q.plane.crop?.height ?? q.plane.height } : null;
        },
        fit: opts.fit ?? 'fit',
      },
      {
        quit,
        grab: (g) => opts.log(`guestplane kiosk: ${g ? 'keyboard and pointer go to the guest again' : 'keyboard and pointer released to the host (Ctrl+Alt+G takes them back)'}`),
        switchSession: session
          ? (vt) => {
              try {
                session.switchSession(vt);
              } catch (e) {
                opts.log(`guestplane kiosk: ${(e as Error).message}`);
              }
            }
          : undefined,
        error: (e) => opts.log(`guestplane kiosk: input to the guest: ${e.message}`),
      },
      { chords: opts.chords, multiTouch: opts.touch === 'multitouch' },
    );
    input.on('input', (e) => router.handle(e));
    if (session) followSession(backend, input, router);
    input.on('device-added', (d) => opts.log(`guestplane kiosk: input device ${d.sysname} (${d.name})`));
    input.on('device-removed', (d) => opts.log(`guestplane kiosk: input device ${d.sysname} (${d.name}) removed`));
    input.on('warning', (m) => opts.log(`guestplane kiosk: ${m}`));
    return input;
  } catch (e) {
    opts.log(`guestplane kiosk: no input to the guest: ${(e as Error).message}`);
    return null;
  }
}

export function startKiosk(opts: KioskOptions): Kiosk {
  const backend = Backend.open({ device: opts.device, session: opts.session });
  let source: GuestSource | null = null;
  let animation: Animation | null = null;
  let out: Output;
  let connector: string;
  try {
    connector = pickConnector(backend, opts.connector);
    out = backend.enableOutput(connector, { mode: opts.mode });
    ({ source, animation } = openKioskSource(opts, out, (e) => void stop(`the test guest failed: ${e.message}`, 1)));
    out.attach(source, opts.fit ?? 'fit');
  } catch (e) {
    animation?.stop();
    source?.close();
    void backend.close();
    throw e;
  }

  // Said before input lets go of or reopens its devices: the time is the screen's relight alone.
  const onDisable = () => opts.log('guestplane kiosk: the seat went to another session: not drawing until it is back');
  const onEnable = ({ enabledAt }: { enabledAt: number }) => opts.log(`guestplane kiosk: the seat is back: ${connector} lit again (${(performance.now() - enabledAt).toFixed(1)} ms after the seat came back)`);
  backend.on('suspend', onDisable);
  backend.on('resume', onEnable);
  const input = source instanceof QemuGuest && opts.input !== false ? guestInput(source, backend, out, opts, opts.input ?? {}, () => void stop('Ctrl+Alt+Q', 0)) : null;

  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((r) => (resolveDone = r));
  let stopping: Promise<number> | null = null;
  const stalls = new LoopStallMeter();
  const statsTimer = opts.statsIntervalMs === 0 ? null : reportStats(out, opts, stalls);

  const onError = (e: OutputErrorEvent) => {
    if (e.cause === 'device-lost') void stop(`the display device went away (${e.message}); check the GPU/driver and start the kiosk again`, 1);
    else opts.log(`guestplane kiosk: ${e.cause}: ${e.message}`);
  };
  const onLost = (e: Error) => void stop(`the guest display went away (${e.message}); restart the VM or re-create the mediated device, then start the kiosk again`, 1);
  out.on('error', onError);
  out.on('source-lost', onLost);

  async function stop(reason = 'stopped', code = 0): Promise<number> {
    if (stopping) return stopping;
    stopping = (async () => {
      if (statsTimer) clearInterval(statsTimer);
      animation?.stop();
      input?.close();
      out.off('error', onError);
      out.off('source-lost', onLost);
      backend.off('suspend', onDisable);
      backend.off('resume', onEnable);
      const s = out.statsSnapshot();
      try {
        await backend.close(true); // waits for the flip in flight, restores the CRTC
      } catch (e) {
        opts.log(`guestplane kiosk: restoring the screen failed: ${(e as Error).message}`);
        code = code || 1;
      }
      source?.close();
      const stallMs = stalls.overall();
      stalls.stop();
      opts.log(`guestplane kiosk: ${reason}; ${s.framesPresented} frames presented (${Object.entries(s.paths).filter(([, n]) => n > 0).map(([p, n]) => `${p} ${n}`).join(', ') || 'none'}), screen restored; longest event-loop stall ${stallMs.toFixed(0)} ms`);
      resolveDone(code);
      return code;
    })();
    return stopping;
  }

  let captures = 0;
  const capture = (dir: string) => captureTo(out, dir, ++captures);

  return { output: out, guest: source, connector, done, stop: (reason?: string) => stop(reason ?? 'stopped', 0), capture };
}
