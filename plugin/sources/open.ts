// Opening guest sources from what a user types (a UUID, a sysfs path, an fd).
import { VfioDevice, VfioSource } from './vfio.js';
import { BochsDispi, bochsVramReader } from './bochs.js';

/**
 * Opens a mediated device's display. Where the device is bochs-compatible (QEMU stdvga,
 * mbochs), the copy path reads the scanout from its VRAM BAR, because such dma-bufs
 * cannot be mapped. The returned source owns the device: close() releases it.
 */
export function openVfioSource(spec: string | { fd: number; name?: string }): VfioSource {
  const dev = typeof spec === 'string' ? VfioDevice.open(spec) : VfioDevice.adopt(spec.fd, spec.name);
  try {
    let dispi: BochsDispi | null = null;
    try {
      dispi = new BochsDispi(dev);
    } catch {
      dispi = null; // not a bochs display: dma-buf mmap or nothing for the copy path
    }
    const owned = dispi ? [dispi, dev] : [dev];
    return new VfioSource(dev, { cpuReader: dispi ? bochsVramReader(dispi) : undefined, owned });
  } catch (e) {
    dev.close();
    throw e;
  }
}
