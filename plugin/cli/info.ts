// guestplane info: what a KMS device offers, or what a QEMU VM's D-Bus display has.
import { existsSync, readdirSync } from 'node:fs';
import { KmsDevice, KmsOpenError } from '../kms/device.js';
import { describeDevice, renderInfo } from '../modes/info.js';
import { describeQemuDisplay, renderQemuDisplay } from '../sources/qemu-info.js';
import { Options, UsageError, connectTimeoutOption, parseQemuAddress } from './args.js';
import type { CliIo, CliLog } from './log.js';

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
      return { dev, note: `guestplane: using ${path} (${dev.driver.name})${why}; pass --device to choose another` };
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

export const INFO_OPTIONS = { device: { type: 'string', short: 'd' }, json: { type: 'boolean' }, 'all-modes': { type: 'boolean' }, 'qemu-dbus': { type: 'string' }, 'connect-timeout': { type: 'string' } } as const;

export async function info(o: Options, io: CliIo, log: CliLog): Promise<number> {
  const qemu = o.str('qemu-dbus');
  const timeoutMs = connectTimeoutOption(o);
  if (qemu !== undefined) {
    if (o.given('device') || o.given('all-modes')) throw new UsageError('--qemu-dbus describes a VM display; --device and --all-modes are for KMS devices', 'info');
    const d = await describeQemuDisplay(parseQemuAddress(qemu, 'info'), { timeoutMs });
    io.stdout(o.flag('json') ? JSON.stringify(d, null, 2) + '\n' : renderQemuDisplay(d));
    return 0;
  }
  let dev: KmsDevice;
  const device = o.str('device');
  if (device !== undefined) {
    if (device === '') throw new UsageError('--device needs a path, e.g. --device /dev/dri/card0', 'info');
    dev = KmsDevice.open(device, { master: false });
  } else {
    const r = openFirstKmsDevice();
    dev = r.dev;
    log.info(r.note);
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
