// Per-test cleanup for rig tests: what a test opens is closed after it, in reverse order,
// whether it passed or not (so one failure does not leave DRM master or FBs to the next).
import { afterEach } from 'vitest';
import { KmsDevice, findCardByDriver } from '../../../plugin/kms/device.js';

export type Cleanup = (() => Promise<void> | void)[];

/** A list whose entries run after each test of the calling file (register at top level). */
export function cleanupAfterEach(): Cleanup {
  const list: Cleanup = [];
  afterEach(async () => {
    for (const f of list.splice(0).reverse()) await f();
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
