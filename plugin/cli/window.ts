// guestplane window: one guest in a window on the user's Wayland desktop (plugin/modes/window.ts).
import { FITS, Options, UsageError, parseConsole, parseMode, parseRate } from './args.js';
import { parseQemuAddress } from './qemu-address.js';
import type { OnStart } from './common.js';
import type { CliLog } from './log.js';

export async function window(o: Options, log: CliLog, onStart?: OnStart): Promise<number> {
  const qemu = o.str('qemu-dbus');
  const udmabuf = o.str('udmabuf');
  if ((qemu === undefined) === (udmabuf === undefined)) throw new UsageError('which guest? give one of --qemu-dbus ADDRESS or --udmabuf WxH', 'window');
  if (o.given('console') && qemu === undefined) throw new UsageError('--console picks a console of a QEMU display; use it with --qemu-dbus', 'window');
  if (o.given('fps') && udmabuf === undefined) throw new UsageError('--fps sets the test guest\'s rate; use it with --udmabuf', 'window');
  if (o.flag('copy') && o.flag('gles')) throw new UsageError('--copy and --gles each force one path; give one of them', 'window');
  const fit = o.oneOf('fit', FITS, 'fit');
  const stats = o.oneOf('stats', ['text', 'json', 'none'] as const, 'text');
  const touch = o.oneOf('touch', ['pointer', 'multitouch'] as const, 'pointer');
  if (o.given('touch') && qemu === undefined) throw new UsageError('--touch says where a QEMU guest takes touch; use it with --qemu-dbus (the test guest takes no input)', 'window');
  const m = udmabuf !== undefined ? parseMode(udmabuf, '--udmabuf', 'window') : null;
  if (m?.refresh !== undefined) throw new UsageError(`--udmabuf ${udmabuf}: a rate is not accepted here; give WxH and the rate with --fps`, 'window');
  if (qemu !== undefined && o.str('console') === 'all') {
    const { runWindowAll } = await import('../modes/window-all.js');
    const all = runWindowAll({ address: parseQemuAddress(qemu, 'window'), display: o.str('display'), title: o.str('title'), fit, fullscreen: o.flag('fullscreen'), copy: o.flag('copy'), gles: o.flag('gles'), touch, statsFormat: stats, log: (l) => log.info(l) });
    log.info(`guestplane window: one window per graphic console of ${qemu}; Ctrl-C to stop`);
    onStart?.({ stop: all.stop, done: all.done });
    return log.failed(await all.done);
  }
  const source = m
    ? { kind: 'udmabuf' as const, width: m.width, height: m.height, fps: o.given('fps') ? parseRate(o.str('fps')!, '--fps', 'window') : 60 }
    : { kind: 'qemu-dbus' as const, address: parseQemuAddress(qemu!, 'window'), console: parseConsole(o.str('console'), 'window') };
  const { runWindow } = await import('../modes/window.js'); // after the checks: a bad option loads no mode
  const w = await runWindow({ source, display: o.str('display'), title: o.str('title'), fit, fullscreen: o.flag('fullscreen'), copy: o.flag('copy'), gles: o.flag('gles'), touch, statsFormat: stats, log: (l) => log.info(l) });
  log.info(`guestplane window: showing ${w.source.name} in "${w.output.name}"; Ctrl-C to stop`);
  onStart?.({ stop: w.stop, done: w.done });
  return log.failed(await w.done);
}
