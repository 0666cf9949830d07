// guestplane kiosk: one guest full screen on one connector (kiosk --config: heads.ts).
import type { KioskSourceSpec, startKiosk } from '../modes/kiosk.js';
import { FITS, Options, STATS, UsageError, chordsOption, connectTimeoutOption, inputOption, parseConsole, parseMode, parseRate, parseSize } from './args.js';
import { parseQemuAddress } from './qemu-address.js';
import { openSession, type OnStart } from './common.js';
import { heads } from './heads.js';
import type { CliLog } from './log.js';

/** The kiosk's guest from its command-line options. */
function kioskSource(o: Options, fps: number): KioskSourceSpec {
  const str = (k: string) => o.str(k);
  if (str('vfio') !== undefined) {
    if (!str('vfio')) throw new UsageError('--vfio needs a mediated device UUID or sysfs path', 'kiosk');
    return { kind: 'vfio', spec: str('vfio')! };
  } else if (str('vfio-fd') !== undefined) {
    const fd = Number(str('vfio-fd'));
    if (!/^\d+$/.test(str('vfio-fd')!) || fd < 3) throw new UsageError(`--vfio-fd '${str('vfio-fd')}' is not an inherited file descriptor number (3 or above)`, 'kiosk');
    return { kind: 'vfio-fd', fd };
  } else if (str('udmabuf') !== undefined) {
    const m = parseSize(str('udmabuf')!, '--udmabuf', 'kiosk');
    return { kind: 'udmabuf', width: m.width, height: m.height, fps };
  } else if (str('qemu-dbus') !== undefined) {
    return { kind: 'qemu-dbus', address: parseQemuAddress(str('qemu-dbus')!, 'kiosk'), console: parseConsole(str('console'), 'kiosk'), connectTimeoutMs: connectTimeoutOption(o) };
  } else throw new UsageError('which guest? give --vfio UUID|PATH, --qemu-dbus ADDRESS or --udmabuf WxH (or --config FILE for several heads)', 'kiosk');
}

/** A guest as the kiosk's start line names it. */
function describeSource(source: KioskSourceSpec, fps: number): string {
  return source.kind === 'vfio'
    ? `mediated device ${source.spec}`
    : source.kind === 'vfio-fd'
      ? `VFIO device fd ${source.fd}`
      : source.kind === 'qemu-dbus'
        ? `QEMU display ${source.address} console ${source.console ?? 0}`
        : `udmabuf test guest ${source.width}x${source.height}@${fps}`;
}

/** The one-guest kiosk's own checks of its options. */
function checkOneGuest(o: Options): void {
  const guests = ['vfio', 'vfio-fd', 'udmabuf', 'qemu-dbus'].filter((k) => o.given(k));
  if (guests.length > 1) throw new UsageError(`give one guest: --${guests.join(' and --')} were given`, 'kiosk');
  if (o.given('console') && !o.given('qemu-dbus')) throw new UsageError('--console picks a console of a QEMU display; use it with --qemu-dbus', 'kiosk');
  for (const k of ['no-input', 'input-devices', 'chords', 'touch']) {
    if (o.given(k) && !o.given('qemu-dbus')) throw new UsageError(`--${k} is about input into a QEMU guest; use it with --qemu-dbus`, 'kiosk');
  }
  connectTimeoutOption(o); // checked here too: with another guest it would go unused
  if (o.given('test-guest') && !o.given('vfio') && !o.given('vfio-fd')) throw new UsageError('--test-guest animates an mbochs device; use it with --vfio', 'kiosk');
}

export async function kiosk(o: Options, log: CliLog, onStart?: OnStart): Promise<number> {
  if (o.given('config')) {
    for (const k of ['vfio', 'vfio-fd', 'udmabuf', 'qemu-dbus', 'console', 'connect-timeout', 'connector', 'mode', 'fit', 'test-guest', 'fps', 'capture-dir', 'touch']) {
      if (o.given(k)) throw new UsageError(`--${k} does not go with --config (the config file says it per head)`, 'kiosk');
    }
    return heads(o, log, onStart);
  }
  checkOneGuest(o);
  const fps = o.given('fps') ? parseRate(o.str('fps')!, '--fps', 'kiosk') : 60;
  const source = kioskSource(o, fps);
  const fit = o.oneOf('fit', FITS, 'fit');
  const stats = o.oneOf('stats', STATS, 'text');
  const mode = o.given('mode') ? parseMode(o.str('mode')!, '--mode', 'kiosk') : undefined;
  const testFps = o.given('test-guest') ? parseRate(o.str('test-guest')!, '--test-guest', 'kiosk') : undefined;
  const input = inputOption(o);
  const chords = chordsOption(o);
  const touch = o.oneOf('touch', ['pointer', 'multitouch'] as const, 'pointer');
  // The mode (koffi, KMS, the sources) only after every option passed: a bad one costs nothing.
  const modes = await import('../modes/kiosk.js');
  const session = await openSession(o);
  let k: ReturnType<typeof startKiosk>;
  try {
    k = modes.startKiosk({
      source,
      session,
      device: o.str('device'),
      connector: o.str('connector'),
      mode,
      fit,
      statsIntervalMs: stats === 'none' ? 0 : 1000,
      statsFormat: stats === 'json' ? 'json' : 'text',
      vfioTestGuestFps: testFps,
      input,
      chords,
      touch,
      log: (line) => log.info(line),
    });
  } catch (e) {
    await session?.close();
    throw e;
  }
  if (session) log.info(`guestplane kiosk: on seat ${session.name} (devices through libseat)`);
  log.info(`guestplane kiosk: showing ${describeSource(source, fps)} on ${k.connector} (${k.output.width}x${k.output.height}), fit ${fit}; Ctrl-C to stop`);
  const dir = o.str('capture-dir');
  onStart?.({
    stop: k.stop,
    done: k.done,
    onUsr1: dir ? () => k.capture(dir).then((p) => log.info(`guestplane kiosk: captured ${p}`), (e: Error) => log.error(`guestplane kiosk: capture failed: ${e.message}`)) : undefined,
  });
  return k.done.finally(() => session?.close()).then((code) => log.failed(code));
}
