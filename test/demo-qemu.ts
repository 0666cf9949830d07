// The demo's QEMU part: an unmodified QEMU with an mdpy mediated device and
// `-display dbus,gl=off` on a private bus, its CPU stopped; this module plays the guest's
// display driver through qtest (numbered frames written into mdpy's framebuffer BAR), so
// guestplane is fed by a real VMM without a guest OS to boot. Compiled by
// test/demo.tsconfig.json, used by test/demo-inside.mjs.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { drawPattern } from '../plugin/sources/pattern.js';
import { createSmallMdev } from './integration/helpers/mdev.js';
import { mdpyInit, mdpyWriteFramebuffer, qemuDbusMissing, startQemu, startSessionBus } from './integration/helpers/qemu.js';

export interface QemuDemoGuest {
  address: string;
  width: number;
  height: number;
  /** Starts drawing frames (as fast as qtest writes them); `frames` counts them. */
  start(): { readonly frames: number; stop(): void };
  close(): Promise<void>;
}

/** Why the QEMU part cannot run here, or null. */
export function qemuDemoMissing(): string | null {
  return qemuDbusMissing({ parents: ['mdpy'], gl: false });
}

export async function startQemuDemoGuest(): Promise<QemuDemoGuest> {
  const dir = mkdtempSync(join(tmpdir(), 'gp-demo-qemu-'));
  const mdev = createSmallMdev('mdpy');
  const bus = startSessionBus(dir);
  const vm = await startQemu({ mdev, gl: false, busAddress: bus.address, dir }).catch((e: Error) => {
    bus.close();
    mdev.remove();
    throw e;
  });
  await vm.waitForDisplay();
  const mode = await mdpyInit(vm.qtest);
  const pixels = new Uint8Array(mode.stride * mode.height);
  return {
    address: bus.address,
    width: mode.width,
    height: mode.height,
    start() {
      let frames = 0;
      let stopped = false;
      void (async () => {
        while (!stopped) {
          drawPattern({ bytes: pixels, offset: 0, width: mode.width, height: mode.height, stride: mode.stride }, frames + 1);
          await mdpyWriteFramebuffer(vm.qtest, 0, pixels, mode);
          frames++;
        }
      })().catch(() => {});
      return {
        get frames() {
          return frames;
        },
        stop() {
          stopped = true;
        },
      };
    },
    async close() {
      await vm.close();
      bus.close();
      mdev.remove();
    },
  };
}
