#!/usr/bin/env node
// The `guestplane` command. Subcommands:
//   info [--device PATH] [--json] [--all-modes]   what a KMS device offers
//   kiosk (--vfio UUID|PATH | --udmabuf WxH) [...]  one guest full screen
//   kiosk --config heads.json                        several guests/heads on several connectors
//   compositor [...]                                 a cage-like Wayland kiosk compositor
// Exit codes: 0 success, 1 failure (message on stderr), 2 usage error.
import { existsSync, readdirSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { KmsDevice, KmsOpenError } from './kms/device.js';
import { describeDevice, renderInfo } from './modes/info.js';
import { describeQemuDisplay, renderQemuDisplay } from './sources/qemu-info.js';
import { startKiosk, type KioskSourceSpec } from './modes/kiosk.js';
import type { FitMode } from './geometry.js';
import type { ModeRequest } from './output/output.js';
import { loadHeadsConfig } from './modes/heads-config.js';
import { runHeads, type HeadManager } from './modes/heads.js';
import { HeadsInput } from './modes/heads-input.js';
import type { InputStackOptions } from './input/devices.js';
import { runCompositor } from './modes/compositor.js';
import { SeatSession } from './device/session.js';
import { LoopStallMeter } from './stats.js';

export interface CliIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
}

const defaultIo: CliIo = {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
};

export const USAGE = `usage: guestplane <command> [options]

commands:
  info [--device PATH] [--json] [--all-modes]
      Describe a KMS device: driver, caps, CRTCs, connectors (modes, writeback),
      encoders and planes (formats with modifiers, zpos, rotations, properties).
      --device PATH   the card node (default: the first /dev/dri/card* with atomic KMS)
      --json          machine-readable output on stdout
      --all-modes     list every mode (text output shows 5 per connector otherwise)

  info --qemu-dbus ADDRESS [--json]
      Describe a QEMU VM's D-Bus display: name, UUID and each console (type, label,
      size, device, interfaces).

  kiosk (--vfio UUID|SYSFS-PATH | --qemu-dbus ADDRESS [--console N] | --udmabuf WxH) [options]
      Show one guest full screen on one connector, zero-copy where the planes take its
      buffers; "no signal" while the guest has no plane; one stats line per second.
      SIGINT/SIGTERM restore the previous screen configuration.
      --vfio ID        a mediated device (UUID under /sys/bus/mdev/devices, or its sysfs path)
      --qemu-dbus ADDR a QEMU/libvirt VM started with -display dbus: the bus address it
                       uses (unix:path=…), 'session', or fd:N (an inherited socket connected
                       peer-to-peer: -display dbus,p2p=yes + QMP add_client);
                       waits for QEMU and reattaches when it restarts
      --console N      the QEMU console to show (default 0)
      --no-input       do not send the host's keyboards and pointers to the QEMU guest
                       (default: all of seat0's, through libinput and udev; Ctrl+Alt+G
                       releases/takes them back, Ctrl+Alt+Q quits)
      --input-devices P,Q  only these /dev/input/event* nodes
      --touch MODE     pointer (default: a finger is the guest's pointer) | multitouch
                       (every finger through QEMU 8.1+'s MultiTouch; the guest needs a
                       touch device, e.g. -device virtio-multitouch-pci)
      --session MODE   seat | direct | auto (default auto: direct as root, else seat).
                       seat: open the card and input devices through libseat (seatd
                       or logind; no root), stop drawing while another VT has the seat,
                       Ctrl+Alt+F1..F12 switch VTs. direct: open the nodes ourselves.
      --udmabuf WxH    the built-in udmabuf test guest (guest RAM as dma-bufs) of that size
      --fps N          frame rate of the built-in test guest (default 60)
      --test-guest N   with --vfio on an mbochs device: also animate it at N fps (no VM needed)
      --device PATH    the card node (default: the first with atomic KMS)
      --connector NAME e.g. HDMI-A-1, Virtual-1 (default: the first connected one)
      --mode WxH[@Hz]  display mode (default: the connector's preferred mode)
      --fit MODE       native (1:1, centred) | fit (keep aspect) | fill (default fit)
      --stats FORMAT   text | json | none (default text)
      --vfio-fd N      a VFIO device fd handed over by the VMM (inherited as fd N)
      --capture-dir D  on SIGUSR1, write the next frame (from the writeback connector) to D as PNG

  kiosk --config FILE [--device PATH] [--stats text|json|none] [--session MODE]
        [--no-input | --input-devices P,Q]
      Multi-head: the guests and heads described in FILE (JSON; the format is in the
      README and at the top of plugin/config.ts). Connectors may come and go (hotplug).
      One host pointer moves over the screens' layout; pointer and keyboard go to the
      QEMU guest of the head under it (per-head devices and positions: in FILE).
      --session, --no-input, --input-devices and the chords as for one guest.

  compositor [--device PATH] [--connector NAME] [--mode WxH[@Hz]] [--socket NAME] [--fit MODE] [--no-lease]
             [--no-input | --input-devices P,Q] [--session seat|direct|auto]
      A kiosk Wayland compositor: one full-screen toplevel, its dma-buf buffers scanned
      out when the planes take them, wl_shm through the copy path; linux-dmabuf v4 with
      scanout tranches, presentation-time, drm-lease, viewporter; buffer transforms and
      Y_INVERT undone by the plane rotation. Prints WAYLAND_DISPLAY for clients.
      The seat has the host's keyboards, pointers and touchscreens (libinput on udev's
      seat0; keymap from XKB_DEFAULT_LAYOUT etc.); the shown toplevel has the focus.
      --no-input       a seat without devices
      --input-devices P,Q  only these /dev/input/event* nodes
      --session MODE   as for kiosk: seat (libseat: no root; nothing drawn while another
                       VT has the seat; Ctrl+Alt+F1..F12 switch VTs), direct, or auto

  help                this text
`;

class UsageError extends Error {}

/** Card nodes in numeric order (card2 before card10). */
function cardNodes(dir = '/dev/dri'): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((n) => /^card\d+$/.test(n))
    .sort((a, b) => Number(a.slice(4)) - Number(b.slice(4)))
    .map((n) => `${dir}/${n}`);
}

/**
 * Opens the first card node with atomic KMS, read-only (no DRM master). Returns the
 * device and a note naming it and what was skipped.
 */
export function openFirstKmsDevice(): { dev: KmsDevice; note: string } {
  const skipped: string[] = [];
  for (const path of cardNodes()) {
    try {
      const dev = KmsDevice.open(path, { master: false });
      const why = skipped.length ? ` (skipped ${skipped.join('; ')})` : '';
      return { dev, note: `guestplane: using ${path} (${dev.driver.name})${why}; pass --device to choose another\n` };
    } catch (e) {
      if (e instanceof KmsOpenError) {
        skipped.push(`${path}: ${e.reason === 'no-atomic' ? 'no atomic KMS' : e.reason}`);
        continue;
      }
      throw e;
    }
  }
  const seen = skipped.length ? `: ${skipped.join('; ')}` : ' (no /dev/dri/card* nodes)';
  throw new Error(`no KMS device with atomic modesetting found${seen}`);
}

type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string }>;

/** A subcommand's options: strict (unknown ones are usage errors naming the command). */
class Options {
  private constructor(private readonly values: Record<string, string | boolean | undefined>) {}

  static parse(cmd: string, args: string[], options: OptionSpec): Options {
    try {
      const { values } = parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: false, strict: true });
      return new Options(values as Record<string, string | boolean | undefined>);
    } catch (e) {
      throw new UsageError(`${cmd}: ${(e as Error).message}`);
    }
  }

  str(k: string): string | undefined {
    const v = this.values[k];
    return typeof v === 'string' ? v : undefined;
  }

  flag(k: string): boolean {
    return this.values[k] === true;
  }

  given(k: string): boolean {
    return this.values[k] !== undefined;
  }
}

async function info(args: string[], io: CliIo): Promise<number> {
  const o = Options.parse('info', args, { device: { type: 'string', short: 'd' }, json: { type: 'boolean' }, 'all-modes': { type: 'boolean' }, 'qemu-dbus': { type: 'string' } });
  if (o.flag('help')) {
    io.stdout(USAGE);
    return 0;
  }
  const qemu = o.str('qemu-dbus');
  if (qemu !== undefined) {
    if (o.given('device') || o.given('all-modes')) throw new UsageError('info: --qemu-dbus describes a VM display; --device and --all-modes are for KMS devices');
    const d = await describeQemuDisplay(parseQemuAddress(qemu, 'info'));
    io.stdout(o.flag('json') ? JSON.stringify(d, null, 2) + '\n' : renderQemuDisplay(d));
    return 0;
  }
  let dev: KmsDevice;
  const device = o.str('device');
  if (device !== undefined) {
    if (device === '') throw new UsageError('info: --device needs a path, e.g. --device /dev/dri/card0');
    dev = KmsDevice.open(device, { master: false });
  } else {
    const r = openFirstKmsDevice();
    dev = r.dev;
    io.stderr(r.note);
  }
  try {
    const d = describeDevice(dev);
    if (o.flag('json')) io.stdout(JSON.stringify(d, null, 2) + '\n');
    else io.stdout(renderInfo(d, { allModes: o.flag('all-modes') }));
  } finally {
    await dev.close();
  }
  return 0;
}

const FITS: readonly FitMode[] = ['native', 'fit', 'fill'];

/** A --qemu-dbus address: a D-Bus address, 'session', or fd:N. */
export function parseQemuAddress(s: string, cmd: string): string {
  if (s === 'session' || /^[a-z]+:.+/.test(s)) {
    const fd = /^fd:(.*)$/.exec(s);
    if (fd && !(/^\d+$/.test(fd[1]!) && Number(fd[1]) >= 3)) throw new UsageError(`${cmd}: --qemu-dbus '${s}': fd:N needs an inherited file descriptor number (3 or above)`);
    return s;
  }
  throw new UsageError(`${cmd}: --qemu-dbus '${s}' is not a D-Bus address; give the bus QEMU's -display dbus uses, e.g. unix:path=/run/user/1000/bus, 'session' for $DBUS_SESSION_BUS_ADDRESS, or fd:N for an inherited socket connected peer-to-peer (QMP add_client)`);
}

function parseConsole(s: string | undefined, cmd: string): number {
  if (s === undefined) return 0;
  const n = Number(s);
  if (!/^\d+$/.test(s) || !Number.isSafeInteger(n)) throw new UsageError(`${cmd}: --console '${s}' is not a console number (0, 1, …; see guestplane info --qemu-dbus ADDRESS)`);
  return n;
}

export function parseMode(s: string, what = '--mode'): ModeRequest {
  const m = /^(\d{2,5})x(\d{2,5})(?:@(\d{1,3}(?:\.\d+)?))?$/.exec(s);
  if (!m) throw new UsageError(`${what} '${s}' is not WxH or WxH@Hz (e.g. 1920x1080@60)`);
  return { width: Number(m[1]), height: Number(m[2]), ...(m[3] ? { refresh: Number(m[3]) } : {}) };
}

function parseRate(s: string, what: string): number {
  const n = Number(s);
  if (!Number.isFinite(n) || n <= 0 || n > 1000) throw new UsageError(`${what} '${s}' is not a frame rate in (0, 1000]`);
  return n;
}

export interface RunningCommand {
  stop(reason: string): Promise<number>;
  done: Promise<number>;
  /** SIGUSR1: capture the screen (where the command was given a capture directory). */
  onUsr1?: () => void;
}

/** The kiosk's guest from its command-line options. */
function kioskSource(str: (k: string) => string | undefined, fps: number): KioskSourceSpec {
  if (str('vfio') !== undefined) {
    if (!str('vfio')) throw new UsageError('kiosk: --vfio needs a mediated device UUID or sysfs path');
    return { kind: 'vfio', spec: str('vfio')! };
  } else if (str('vfio-fd') !== undefined) {
    const fd = Number(str('vfio-fd'));
    if (!Number.isInteger(fd) || fd < 3) throw new UsageError(`kiosk: --vfio-fd '${str('vfio-fd')}' is not an inherited file descriptor number (3 or above)`);
    return { kind: 'vfio-fd', fd };
  } else if (str('udmabuf') !== undefined) {
    const m = parseMode(str('udmabuf')!, '--udmabuf');
    return { kind: 'udmabuf', width: m.width, height: m.height, fps };
  } else if (str('qemu-dbus') !== undefined) {
    return { kind: 'qemu-dbus', address: parseQemuAddress(str('qemu-dbus')!, 'kiosk'), console: parseConsole(str('console'), 'kiosk') };
  } else throw new UsageError('kiosk: which guest? give --vfio UUID|PATH, --qemu-dbus ADDRESS or --udmabuf WxH');
}

/** A guest as the kiosk's start line names it. */
function describeSource(source: KioskSourceSpec, fps: number): string {
  return (
    source.kind === 'vfio'
      ? `mediated device ${source.spec}`
      : source.kind === 'vfio-fd'
        ? `VFIO device fd ${source.fd}`
        : source.kind === 'qemu-dbus'
          ? `QEMU display ${source.address} console ${source.console ?? 0}`
          : `udmabuf test guest ${source.width}x${source.height}@${fps}`
  );
}

async function kiosk(args: string[], io: CliIo, onStart?: (k: RunningCommand) => void): Promise<number> {
  const o = Options.parse('kiosk', args, {
    vfio: { type: 'string' },
    'vfio-fd': { type: 'string' },
    'capture-dir': { type: 'string' },
    config: { type: 'string' },
    udmabuf: { type: 'string' },
    'qemu-dbus': { type: 'string' },
    console: { type: 'string' },
    'no-input': { type: 'boolean' },
    'input-devices': { type: 'string' },
    touch: { type: 'string' },
    session: { type: 'string' },
    fps: { type: 'string' },
    'test-guest': { type: 'string' },
    device: { type: 'string', short: 'd' },
    connector: { type: 'string', short: 'c' },
    mode: { type: 'string', short: 'm' },
    fit: { type: 'string' },
    stats: { type: 'string' },
  });
  if (o.flag('help')) {
    io.stdout(USAGE);
    return 0;
  }
  const str = (k: string) => o.str(k);
  if (str('config') !== undefined) {
    for (const k of ['vfio', 'vfio-fd', 'udmabuf', 'qemu-dbus', 'console', 'connector', 'mode', 'fit', 'test-guest', 'fps', 'capture-dir']) {
      if (o.given(k)) throw new UsageError(`kiosk: --${k} does not go with --config (the config file says it per head)`);
    }
    if (!['auto', 'seat', 'direct'].includes(str('session') ?? 'auto')) throw new UsageError(`kiosk: --session '${str('session')}' is not seat, direct or auto`);
    const input = o.flag('no-input') ? false : str('input-devices') !== undefined ? { paths: str('input-devices')!.split(',').filter(Boolean) } : {};
    return heads({ configPath: str('config')!, device: str('device'), stats: str('stats') ?? 'text', session: str('session'), input }, io, onStart);
  }
  if ([str('vfio'), str('vfio-fd'), str('udmabuf'), str('qemu-dbus')].filter((x) => x !== undefined).length > 1) throw new UsageError('kiosk: give one guest: --vfio, --vfio-fd, --udmabuf or --qemu-dbus');
  if (str('console') !== undefined && str('qemu-dbus') === undefined) throw new UsageError('kiosk: --console picks a console of a QEMU display; use it with --qemu-dbus');
  if ((o.flag('no-input') || str('input-devices') !== undefined) && str('qemu-dbus') === undefined) throw new UsageError('kiosk: --no-input and --input-devices are about input into a QEMU guest; use them with --qemu-dbus');
  const fps = str('fps') !== undefined ? parseRate(str('fps')!, '--fps') : 60;
  const source = kioskSource(str, fps);
  const fit = str('fit') ?? 'fit';
  if (!FITS.includes(fit as FitMode)) throw new UsageError(`kiosk: --fit '${fit}' is not one of ${FITS.join(', ')}`);
  const stats = str('stats') ?? 'text';
  if (!['text', 'json', 'none'].includes(stats)) throw new UsageError(`kiosk: --stats '${stats}' is not text, json or none`);
  const touch = str('touch') ?? 'pointer';
  if (touch !== 'pointer' && touch !== 'multitouch') throw new UsageError(`kiosk: --touch '${touch}' is not pointer or multitouch`);
  if (str('test-guest') !== undefined && source.kind === 'udmabuf') throw new UsageError('kiosk: --test-guest animates an mbochs device; use it with --vfio');
  const session = await openSession(str('session'));
  let k: ReturnType<typeof startKiosk>;
  try {
    k = startKiosk({
      source,
      session,
      device: str('device'),
    connector: str('connector'),
    mode: str('mode') !== undefined ? parseMode(str('mode')!) : undefined,
    fit: fit as FitMode,
    statsIntervalMs: stats === 'none' ? 0 : 1000,
    statsFormat: stats === 'json' ? 'json' : 'text',
    vfioTestGuestFps: str('test-guest') !== undefined ? parseRate(str('test-guest')!, '--test-guest') : undefined,
      input: o.flag('no-input') ? false : str('input-devices') !== undefined ? { paths: str('input-devices')!.split(',').filter(Boolean) } : undefined,
      touch,
      log: (line) => io.stderr(line + '\n'),
    });
  } catch (e) {
    await session?.close();
    throw e;
  }
  if (session) io.stderr(`guestplane kiosk: on seat ${session.name} (devices through libseat)\n`);
  const what = describeSource(source, fps);
  io.stderr(`guestplane kiosk: showing ${what} on ${k.connector} (${k.output.width}x${k.output.height}), fit ${fit}; Ctrl-C to stop\n`);
  const dir = str('capture-dir');
  onStart?.({
    stop: k.stop,
    done: k.done,
    onUsr1: dir
      ? () => k.capture(dir).then((p) => io.stderr(`guestplane kiosk: captured ${p}\n`), (e: Error) => io.stderr(`guestplane kiosk: capture failed: ${e.message}\n`))
      : undefined,
  });
  return k.done.finally(() => session?.close());
}

/** --session: seat (libseat), direct (open the nodes), auto (direct as root unless LIBSEAT_BACKEND says otherwise). */
async function openSession(mode = 'auto', command = 'kiosk'): Promise<SeatSession | undefined> {
  if (!['auto', 'seat', 'direct'].includes(mode)) throw new UsageError(`${command}: --session '${mode}' is not seat, direct or auto`);
  const seat = mode === 'seat' || (mode === 'auto' && (process.getuid?.() !== 0 || process.env['LIBSEAT_BACKEND'] !== undefined));
  if (!seat) return undefined;
  return SeatSession.open();
}

interface HeadsArgs {
  configPath: string;
  device: string | undefined;
  stats: string;
  session: string | undefined;
  input: InputStackOptions | false;
}

async function heads(args: HeadsArgs, io: CliIo, onStart?: (k: RunningCommand) => void): Promise<number> {
  const { stats } = args;
  if (!['text', 'json', 'none'].includes(stats)) throw new UsageError(`kiosk: --stats '${stats}' is not text, json or none`);
  const config = loadHeadsConfig(args.configPath); // ConfigError names the field, the value and the fix
  if (args.device) config.device = args.device;
  const log = (line: string) => io.stderr(line + '\n');
  const session = await openSession(args.session);
  let mgr: HeadManager;
  let input: HeadsInput | null = null;
  try {
    mgr = await runHeads(config, { session, log: (l) => log(`guestplane heads: ${l}`) });
  } catch (e) {
    await session?.close();
    throw e;
  }
  if (session) {
    log(`guestplane heads: on seat ${session.name} (devices through libseat)`);
    followSeat(session, mgr, log);
  }
  if (args.input !== false) {
    try {
      input = new HeadsInput(mgr, { devices: args.input, session, quit: () => void stop('Ctrl+Alt+Q'), log: (l) => log(`guestplane heads: ${l}`) });
    } catch (e) {
      log(`guestplane heads: no input to the guests: ${(e as Error).message}`);
    }
  }
  mgr.on('screen-up', (e) => log(`guestplane heads: ${e.connector} up (heads ${e.heads.join(', ')})`));
  mgr.on('screen-down', (e) => log(`guestplane heads: ${e.connector} down (heads ${e.heads.join(', ')})${e.reason ? `: ${e.reason}` : ''}`));
  mgr.on('output-error', (e) => log(`guestplane heads: ${e.connector}: ${e.cause}: ${e.message}`));
  for (const h of mgr.status()) log(`guestplane heads: head ${h.index} (${h.guest}) on ${h.connector}: ${h.state}${h.reason ? ` (${h.reason})` : ''}`);
  let last = new Map<string, number>();
  // One loop serves every head: a QEMU that held it would freeze the others' frames and input.
  const stalls = new LoopStallMeter();
  const started = Date.now();
  const timer =
    stats === 'none'
      ? null
      : setInterval(() => {
          const rows = mgr.status().map((h) => {
            const out = mgr.output(h.connector);
            const s = out?.statsSnapshot();
            const key = `${h.connector}`;
            const fps = s ? s.framesPresented - (last.get(key) ?? s.framesPresented) : 0;
            if (s) last.set(key, s.framesPresented);
            return { head: h.index, guest: h.guest, connector: h.connector, state: h.state, fps, paths: s?.paths ?? {}, bytesCopied: s?.bytesCopied ?? 0, latencyP99Ms: s?.latencyMs.p99 ?? null, commits: s?.commits ?? 0 };
          });
          const stallMs = stalls.take();
          if (stats === 'json') log(JSON.stringify({ heads: rows, t: (Date.now() - started) / 1000, stallMs }));
          else log(`guestplane heads: ${rows.map((r) => `${r.connector}/${r.guest} ${r.state} ${r.fps} fps`).join('  ')}  stall ${stallMs.toFixed(0)} ms`);
        }, 1000);
  let resolveDone!: (c: number) => void;
  const done = new Promise<number>((r) => (resolveDone = r));
  let stopping = false;
  const stop = async (reason: string) => {
    if (stopping) return done;
    stopping = true;
    if (timer) clearInterval(timer);
    stalls.stop();
    input?.close();
    await mgr.close();
    await session?.close();
    log(`guestplane heads: ${reason}; screens restored`);
    resolveDone(0);
    return done;
  };
  onStart?.({ stop, done });
  return done;
}

/** Says when the seat goes and comes back, and how soon the screens were lit again. */
function followSeat(session: SeatSession, mgr: HeadManager, log: (line: string) => void): void {
  session.on('disable', () => log('guestplane heads: the seat went to another session: not drawing until it is back'));
  session.on('enable', () => {
    const lit = mgr.status().filter((h) => h.state === 'up').map((h) => h.connector);
    log(`guestplane heads: the seat is back: ${[...new Set(lit)].join(', ') || 'no screen'} lit again (${(performance.now() - session.enabledAt).toFixed(1)} ms after the seat came back)`);
  });
}

async function compositor(args: string[], io: CliIo, onStart?: (k: RunningCommand) => void): Promise<number> {
  const o = Options.parse('compositor', args, {
    device: { type: 'string', short: 'd' },
    connector: { type: 'string', short: 'c' },
    mode: { type: 'string', short: 'm' },
    socket: { type: 'string' },
    fit: { type: 'string' },
    'no-lease': { type: 'boolean' },
    'no-input': { type: 'boolean' },
    'input-devices': { type: 'string' },
    session: { type: 'string' },
  });
  if (o.flag('help')) {
    io.stdout(USAGE);
    return 0;
  }
  const str = (k: string) => o.str(k);
  if (o.flag('no-input') && str('input-devices') !== undefined) throw new UsageError('compositor: --no-input and --input-devices contradict each other; give one');
  const fit = str('fit') ?? 'native';
  if (!FITS.includes(fit as FitMode)) throw new UsageError(`compositor: --fit '${fit}' is not one of ${FITS.join(', ')}`);
  const session = await openSession(str('session'), 'compositor');
  let c: Awaited<ReturnType<typeof runCompositor>>;
  try {
    c = await runCompositor({
      session,
    device: str('device'),
    connector: str('connector'),
    mode: str('mode') !== undefined ? parseMode(str('mode')!) : undefined,
    socket: str('socket'),
    fit: fit as FitMode,
    leasing: !o.flag('no-lease'),
      input: o.flag('no-input') ? false : str('input-devices') !== undefined ? { paths: str('input-devices')!.split(',').filter(Boolean) } : undefined,
      log: (m) => io.stderr(`guestplane compositor: ${m}\n`),
    });
  } catch (e) {
    await session?.close();
    throw e;
  }
  if (session) io.stderr(`guestplane compositor: on seat ${session.name} (devices through libseat)\n`);
  io.stdout(`WAYLAND_DISPLAY=${c.socket}\n`);
  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((r) => (resolveDone = r));
  let stopping = false;
  onStart?.({
    done,
    stop: async (reason) => {
      if (!stopping) {
        stopping = true;
        await c.close();
        await session?.close();
        io.stderr(`guestplane compositor: ${reason}; screen restored\n`);
        resolveDone(0);
      }
      return done;
    },
  });
  return done;
}

/** Runs the CLI with `argv` (without node and the script). Resolves to the exit code. */
export async function main(argv: string[], io: CliIo = defaultIo, onStart?: (k: RunningCommand) => void): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'info':
        return await info(rest, io);
      case 'kiosk':
        return await kiosk(rest, io, onStart);
      case 'compositor':
        return await compositor(rest, io, onStart);
      case 'help':
      case '--help':
      case '-h':
        io.stdout(USAGE);
        return 0;
      case undefined:
        throw new UsageError('no command given');
      default:
        throw new UsageError(cmd.startsWith('-') ? `unknown option '${cmd}' (options go after the command)` : `unknown command '${cmd}'`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`guestplane: ${e.message}\n\n${USAGE}`);
      return 2;
    }
    io.stderr(`guestplane: ${(e as Error).message}\n`);
    return 1;
  }
}

function isEntryPoint(): boolean {
  const argv1 = process.argv[1];
  if (!argv1) return false;
  try {
    // npm's bin is a symlink to this file: compare real paths.
    return realpathSync(argv1) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  let running: RunningCommand | null = null;
  let signalled = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signalled++;
    if (signalled > 2) process.exit(130); // a third Ctrl-C: the user insists
    if (running) void running.stop(`${sig} received`);
    else process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGUSR1', () => running?.onUsr1?.());
  main(process.argv.slice(2), defaultIo, (k) => (running = k)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`guestplane: ${(e as Error)?.stack ?? String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
