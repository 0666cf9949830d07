// guestplane info: what a KMS device offers, or what a QEMU VM's D-Bus display has.
import type { Card } from '../device/card.js';
import { Options, UsageError, connectTimeoutOption } from './args.js';
import { parseQemuAddress } from './qemu-address.js';
import type { CliIo, CliLog } from './log.js';

/**
 * Opens the first card node with atomic KMS, read-only (no DRM master). Returns the card
 * and a note naming it and what was skipped.
 */
function openFirstKmsDevice(cards: typeof Card): { card: Card; note: string } {
  const card = cards.open({ master: false });
  const why = card.skipped.length ? ` (skipped ${card.skipped.join('; ')})` : '';
  return { card, note: `guestplane: using ${card.path} (${card.dev.driver.name})${why}; pass --device to choose another` };
}

export async function info(o: Options, io: CliIo, log: CliLog): Promise<number> {
  const qemu = o.str('qemu-dbus');
  const timeoutMs = connectTimeoutOption(o);
  if (qemu !== undefined) {
    if (o.given('device') || o.given('all-modes')) throw new UsageError('--qemu-dbus describes a VM display; --device and --all-modes are for KMS devices', 'info');
    const address = parseQemuAddress(qemu, 'info');
    // Loaded once the options passed (as every mode: a usage error loads none).
    const { describeQemuDisplay, renderQemuDisplay } = await import('../sources/qemu-info.js');
    const d = await describeQemuDisplay(address, { timeoutMs });
    io.stdout(o.flag('json') ? JSON.stringify(d, null, 2) + '\n' : renderQemuDisplay(d));
    return 0;
  }
  const device = o.str('device');
  if (device === '') throw new UsageError('--device needs a path, e.g. --device /dev/dri/card0', 'info');
  const [{ Card: cards }, { describeDevice, renderInfo }] = await Promise.all([import('../device/card.js'), import('../modes/info.js')]);
  let card: Card;
  if (device !== undefined) {
    card = cards.open({ path: device, master: false });
  } else {
    const r = openFirstKmsDevice(cards);
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
