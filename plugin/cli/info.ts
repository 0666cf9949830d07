// guestplane info: what a KMS device offers, or what a QEMU VM's D-Bus display has.
import { Card } from '../device/card.js';
import { describeDevice, renderInfo } from '../modes/info.js';
import { describeQemuDisplay, renderQemuDisplay } from '../sources/qemu-info.js';
import { Options, UsageError, connectTimeoutOption } from './args.js';
import { parseQemuAddress } from './qemu-address.js';
import type { CliIo, CliLog } from './log.js';

/**
 * Opens the first card node with atomic KMS, read-only (no DRM master). Returns the card
 * and a note naming it and what was skipped.
 */
export function openFirstKmsDevice(): { card: Card; note: string } {
  const card = Card.open({ master: false });
  const why = card.skipped.length ? ` (skipped ${card.skipped.join('; ')})` : '';
  return { card, note: `guestplane: using ${card.path} (${card.dev.driver.name})${why}; pass --device to choose another` };
}

export async function info(o: Options, io: CliIo, log: CliLog): Promise<number> {
  const qemu = o.str('qemu-dbus');
  const timeoutMs = connectTimeoutOption(o);
  if (qemu !== undefined) {
    if (o.given('device') || o.given('all-modes')) throw new UsageError('--qemu-dbus describes a VM display; --device and --all-modes are for KMS devices', 'info');
    const d = await describeQemuDisplay(parseQemuAddress(qemu, 'info'), { timeoutMs });
    io.stdout(o.flag('json') ? JSON.stringify(d, null, 2) + '\n' : renderQemuDisplay(d));
    return 0;
  }
  let card: Card;
  const device = o.str('device');
  if (device !== undefined) {
    if (device === '') throw new UsageError('--device needs a path, e.g. --device /dev/dri/card0', 'info');
    card = Card.open({ path: device, master: false });
  } else {
    const r = openFirstKmsDevice();
    card = r.card;
    log.info(r.note);
  }
  const dev = card.dev;
  try {
    const d = describeDevice(dev);
    if (o.flag('json')) io.stdout(JSON.stringify(d, null, 2) + '\n');
    else io.stdout(renderInfo(d, { allModes: o.flag('all-modes') }));
  } finally {
    await card.close();
  }
  return 0;
}
