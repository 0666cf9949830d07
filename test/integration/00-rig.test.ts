// The rig itself: every real part the integration suite relies on is present in this kernel.
import { describe, it, expect } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';

describe('rig kernel', () => {
  it('runs inside the VM', () => {
    expect(process.env.GUESTPLANE_IN_RIG).toBe('1');
  });
  it('has DRM devices for vkms and vgem', () => {
    const cards = readdirSync('/dev/dri').filter((n) => n.startsWith('card'));
    const drivers = cards.map((c) => {
      const link = `/sys/class/drm/${c}/device/driver`;
      const uevent = readFileSync(`/sys/class/drm/${c}/device/uevent`, 'utf8');
      return existsSync(link) ? uevent : uevent;
    });
    expect(cards.length).toBeGreaterThanOrEqual(2);
    expect(drivers.join('\n')).toMatch(/vkms/);
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
