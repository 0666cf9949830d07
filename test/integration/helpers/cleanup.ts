// Per-test cleanup for rig tests: what a test opens is closed after it, in reverse order,
// whether it passed or not (so one failure does not leave DRM master or FBs to the next).
import { afterEach } from 'vitest';
import { KmsDevice, findCardByDriver } from '../../../plugin/kms/device.js';
import { Output, type OutputOptions, type PresentEvent } from '../../../plugin/output/output.js';
import { UdmabufSource } from '../../../plugin/sources/udmabuf.js';
import type { FitMode } from '../../../plugin/compose/cpu.js';

export type Cleanup = (() => unknown)[];

/**
 * A list whose entries run after each test of the calling file (register at top level).
 * `logErrors`: an entry that throws is logged and the rest still run (fault tests, whose
 * devices may be gone by then); otherwise the first error fails the test.
 */
export function cleanupAfterEach(opts: { logErrors?: boolean } = {}): Cleanup {
  const list: Cleanup = [];
  afterEach(async () => {
    for (const f of list.splice(0).reverse()) {
      if (!opts.logErrors) {
        await f();
        continue;
      }
      try {
        await f();
      } catch (e) {
        console.log(`cleanup: ${(e as Error).message}`);
      }
    }
  });
  return list;
}

/** Opens the default vkms card (DRM master) and closes it with the test. */
export function openVkms(cleanup: Cleanup): KmsDevice {
  const path = findCardByDriver('vkms');
  if (!path) throw new Error('no vkms card');
  const d = KmsDevice.open(path);
  cleanup.push(() => d.close());
  return d;
}

/** A udmabuf test guest attached to an enabled Output on the default vkms card, with its events collected. */
export interface GuestOnOutput {
  dev: KmsDevice;
  out: Output;
  guest: UdmabufSource;
  /** 'error' events as "cause: message". */
  errors: string[];
  presents: PresentEvent[];
}

/**
 * Opens vkms, enables an Output on Virtual-1 at `mode` and attaches a udmabuf guest of
 * `guest` size (3 buffers, 'native' fit unless told); everything is closed with the test.
 */
export function guestOnOutput(
  cleanup: Cleanup,
  opts: { mode: { width: number; height: number }; guest: { width: number; height: number; buffers?: number; yInverted?: boolean }; paths?: OutputOptions['paths']; fit?: FitMode },
): GuestOnOutput {
  const dev = openVkms(cleanup);
  const out = new Output(dev, { connector: 'Virtual-1', mode: opts.mode, paths: opts.paths });
  cleanup.push(() => out.close());
  const guest = new UdmabufSource({ width: opts.guest.width, height: opts.guest.height, buffers: opts.guest.buffers ?? 3, yInverted: opts.guest.yInverted });
  cleanup.push(() => guest.close());
  const errors: string[] = [];
  out.on('error', (e) => errors.push(`${e.cause}: ${e.message}`));
  out.enable();
  out.attach(guest, opts.fit ?? 'native');
  const presents: PresentEvent[] = [];
  out.on('present', (p) => presents.push(p));
  return { dev, out, guest, errors, presents };
}
