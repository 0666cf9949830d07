// Issue 7, wp_drm_lease_device_v1 on a two-head vkms device (ConfigFS): the kiosk drives
// head 0 and offers head 1; gp-wayland-client (libwayland-client) leases it, gets a lease
// fd on which it modesets the connector, and the lease ends when the client destroys it,
// when the client disconnects, when the compositor revokes it, or when the connector is
// unplugged (ConfigFS status) -- each time the kernel's lessee list is checked and the
// connector is offered again.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as drm from '../../ffi/drm.js';
import { KioskCompositor } from '../../plugin/modes/compositor.js';
import { createVkmsDevice, type VkmsConfigfsDevice } from './helpers/vkms-configfs.js';
import { buildWaylandClient, runClient, startClient, useRuntimeDir } from './helpers/wayland-client.js';

let vk: VkmsConfigfsDevice;
let kiosk: KioskCompositor;
let client: string;
const socket = 'gp-lease';
const runtimeDir = useRuntimeDir('gp-lease-');
const env = () => ({ runtimeDir: runtimeDir(), socket });

beforeAll(() => {
  client = buildWaylandClient();
  vk = createVkmsDevice({ crtcs: [{ writeback: true }, { writeback: false }] });
  kiosk = KioskCompositor.start({ device: vk.cardPath, connector: vk.connectorNames[0], socket, log: () => {} });
});
afterAll(async () => {
  await kiosk?.close();
  vk?.remove();
});

const lessees = () => drm.listLessees(kiosk.dev.fd);
async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('DRM leases from the kiosk compositor', () => {
  it('offers only the head it does not drive; a lease fd modesets it; destroy revokes and re-offers', async () => {
    const head1 = vk.connectorNames[1]!;
    const c1 = startClient(client, ['lease'], env());
    try {
      const offered = await c1.waitFor(/^OFFERED /);
      expect(offered).toMatch(new RegExp(`^OFFERED ${head1} id=${vk.connectors[1]!.id}$`));
      expect(c1.lines.filter((l) => l.startsWith('OFFERED'))).toHaveLength(1);
      expect(c1.lines.find((l) => l.startsWith('DEVICE_FD'))).toBe('DEVICE_FD driver=vkms master=0');
      const ms = await c1.waitFor(/^MODESET_(OK|FAIL)/);
      expect(ms, c1.stderr()).toMatch(/^MODESET_OK connector=\d+ crtc=\d+ mode=\d+x\d+ active=1$/);
      expect(c1.lines).toContain('LEASED connectors=1 crtcs=1');
      const crtcId = Number(/crtc=(\d+)/.exec(ms)![1]);
      // The lessor sees the lessee's modeset, and the kernel lists the lessee.
      expect(drm.getCrtc(kiosk.dev.fd, crtcId).mode_valid).toBe(true);
      expect(crtcId).not.toBe(kiosk.output.crtc.id);
      expect(lessees()).toHaveLength(1);
      expect(kiosk.leases!.leases).toHaveLength(1);

      // While leased, nobody else is offered the connector.
      const other = await runClient(client, ['lease'], env(), 20_000);
      expect(other.stdout).toContain('OFFER_DONE');
      expect(other.stdout).not.toContain('OFFERED');
      expect(other.stdout).toContain('NO_OFFER');

      // Revoke on request: the client destroys its wp_drm_lease_v1.
      c1.child.stdin!.write('destroy\n');
      await c1.waitFor(/^DESTROYED$/);
      await until(() => lessees().length === 0, 'the kernel to drop the lessee');
      expect(kiosk.leases!.leases).toHaveLength(0);
      // ...and the connector comes back to the client that still holds the device.
      await c1.waitFor(/^OFFER_DONE$/);
      expect(c1.lines.filter((l) => l === `OFFERED ${head1} id=${vk.connectors[1]!.id}`).length).toBe(2);
    } finally {
      c1.child.kill('SIGKILL');
    }
  });

  it('a client that disconnects loses its lease; the compositor can revoke one too', async () => {
    const c2 = startClient(client, ['lease'], env());
    await c2.waitFor(/^MODESET_OK/);
    expect(lessees()).toHaveLength(1);
    c2.child.kill('SIGKILL');
    // The kernel ends the lease when the lessee's fd closes with its process; the
    // compositor drops it when libwayland reports the disconnect (a moment later).
    await until(() => lessees().length === 0 && kiosk.leases!.leases.length === 0, 'the lease of a disconnected client to be revoked');

    const c3 = startClient(client, ['lease'], env());
    try {
      await c3.waitFor(/^MODESET_OK/);
      const [lessee] = lessees();
      expect(lessee).toBeGreaterThan(0);
      kiosk.leases!.revoke(lessee!, 'test');
      await c3.waitFor(/^LEASE_FINISHED$/);
      // The lessee fd no longer reaches any KMS object.
      const after = await c3.waitFor(/^AFTER_REVOKE /);
      expect(Number(/connectors=(-?\d+)/.exec(after)![1])).toBeLessThanOrEqual(0);
      expect(lessees()).toHaveLength(0);
    } finally {
      c3.child.kill('SIGKILL');
    }
  });

  it('unplugging the leased connector revokes the lease; plugging it back offers it again', async () => {
    const head1 = vk.connectorNames[1]!;
    const c4 = startClient(client, ['lease'], env());
    try {
      await c4.waitFor(/^MODESET_OK/);
      expect(lessees()).toHaveLength(1);
      vk.setConnectorStatus(1, 'disconnected');
      const revoked = kiosk.leases!.hotplug();
      expect(revoked).toHaveLength(1);
      await c4.waitFor(/^LEASE_FINISHED$/);
      expect(lessees()).toHaveLength(0);
      // Nothing to offer while it is unplugged...
      const none = await runClient(client, ['lease'], env(), 20_000);
      expect(none.stdout).toContain('NO_OFFER');
      // ...and offered again once it is back.
      vk.setConnectorStatus(1, 'connected');
      expect(kiosk.leases!.hotplug()).toEqual([]);
      const again = await runClient(client, ['lease'], env(), 20_000);
      expect(again.stdout).toContain(`OFFERED ${head1} id=${vk.connectors[1]!.id}`);
      expect(again.stdout).toMatch(/MODESET_OK/);
    } finally {
      c4.child.kill('SIGKILL');
    }
  });
});
