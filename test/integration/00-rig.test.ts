// The rig itself: every real part the integration suite relies on is present in this kernel.
import { describe, it, expect } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';

describe('rig kernel', () => {
  it('runs inside the VM', () => {
    expect(process.env.GUESTPLANE_IN_RIG).toBe('1');
  });
  it('has DRM devices for vkms and vgem', () => {
    // 7.x registers both as "faux" devices; debugfs names the driver.
    const names = readdirSync('/sys/kernel/debug/dri')
      .filter((n) => /^\d+$/.test(n))
      .map((n) => readFileSync(`/sys/kernel/debug/dri/${n}/name`, 'utf8').split(' ')[0]);
    expect(names).toEqual(expect.arrayContaining(['vkms', 'vgem']));
    expect(readdirSync('/dev/dri').filter((n) => n.startsWith('card')).length).toBeGreaterThanOrEqual(2);
  });
  it('has udmabuf, the system dma-heap and VFIO', () => {
    expect(existsSync('/dev/udmabuf')).toBe(true);
    expect(existsSync('/dev/dma_heap/system')).toBe(true);
    expect(existsSync('/dev/vfio/vfio')).toBe(true);
  });
  it('offers the mbochs and mdpy mdev types', () => {
    const bus = readdirSync('/sys/class/mdev_bus');
    expect(bus).toEqual(expect.arrayContaining(['mbochs', 'mdpy']));
    expect(readdirSync('/sys/class/mdev_bus/mbochs/mdev_supported_types')).toContain('mbochs-large');
  });
  it('has vkms ConfigFS', () => {
    expect(existsSync('/sys/kernel/config/vkms')).toBe(true);
  });
});
