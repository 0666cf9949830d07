// wp_drm_lease_device_v1: connectors the kiosk does not drive (and that have a CRTC and a
// primary plane free for them) are offered to clients such as VR compositors; a lease
// hands over connector + CRTC + primary plane (+ the CRTC's cursor plane) through
// DRM_IOCTL_MODE_CREATE_LEASE. A lease ends when the client destroys it or disconnects,
// when the compositor revokes it, or when its connector is unplugged (hotplug()); its
// connectors are then offered again (once plugged back in).
import * as libc from '../../ffi/libc.js';
import * as drm from '../../ffi/drm.js';
import type { Display, Global, Client } from '../../protocols/runtime.js';
import { ProtocolViolation } from '../../protocols/runtime.js';
import {
  WpDrmLeaseDeviceV1,
  WpDrmLeaseConnectorV1,
  WpDrmLeaseRequestV1Error,
  type WpDrmLeaseV1,
} from '../../protocols/generated/drm_lease_v1.js';
import type { KmsConnector, KmsDevice } from '../kms/device.js';

export interface ActiveLease {
  readonly lesseeId: number;
  readonly connectors: readonly number[];
  readonly objects: readonly number[];
  readonly client: Client;
}

export interface DrmLeaseOptions {
  /** Object ids the compositor itself uses (its output's connector, CRTC, planes). */
  inUse: () => ReadonlySet<number>;
  onLease?: (l: ActiveLease) => void;
  onRevoke?: (l: ActiveLease, why: string) => void;
}

interface DeviceBinding {
  res: WpDrmLeaseDeviceV1;
  /** connector id → the connector object this client got for it */
  offered: Map<number, WpDrmLeaseConnectorV1>;
}

interface Lease extends ActiveLease {
  resource: WpDrmLeaseV1;
  revoked: boolean;
}

export class DrmLeaseDevice {
  readonly global: Global<WpDrmLeaseDeviceV1>;
  readonly #dev: KmsDevice;
  readonly #opts: DrmLeaseOptions;
  readonly #bindings = new Set<DeviceBinding>();
  readonly #leases = new Set<Lease>();

  constructor(display: Display, dev: KmsDevice, opts: DrmLeaseOptions) {
    this.#dev = dev;
    this.#opts = opts;
    this.global = WpDrmLeaseDeviceV1.global(display, 1, (id) => this.#bind(id.client, id.create(this.#deviceHandlers())));
  }

  get leases(): readonly ActiveLease[] {
    return [...this.#leases].filter((l) => !l.revoked);
  }

  #taken(): Set<number> {
    const s = new Set(this.#opts.inUse());
    for (const l of this.#leases) if (!l.revoked) for (const o of l.objects) s.add(o);
    return s;
  }

  /** The objects a lease of `conn` would take, or why it cannot be leased now. */
  #objectsFor(conn: KmsConnector, taken: Set<number>): number[] | string {
    if (conn.writeback) return 'a writeback connector';
    if (conn.connection !== 'connected') return `${conn.name} is ${conn.connection}`;
    if (taken.has(conn.id)) return `${conn.name} is in use`;
    const dev = this.#dev;
    for (const crtc of dev.crtcs) {
      if (!(conn.possibleCrtcs & (1 << crtc.index)) || taken.has(crtc.id)) continue;
      const primary = dev.planesFor(crtc, 'primary').find((p) => !taken.has(p.id));
      if (!primary) continue;
      const objs = [conn.id, crtc.id, primary.id];
      const cursor = dev.planesFor(crtc, 'cursor').find((p) => !taken.has(p.id));
      if (cursor) objs.push(cursor.id);
      return objs;
    }
    return `no free CRTC with a free primary plane can drive ${conn.name}`;
  }

  /** Connectors a client may lease now. */
  available(): KmsConnector[] {
    const taken = this.#taken();
    return this.#dev.connectors.filter((c) => Array.isArray(this.#objectsFor(c, taken)));
  }

  #offer(b: DeviceBinding, conn: KmsConnector): void {
    const c = WpDrmLeaseConnectorV1.create(b.res.client, b.res.version, 0, {});
    c.data = conn.id;
    b.offered.set(conn.id, c);
    b.res.sendConnector(c);
    c.sendName(conn.name);
    c.sendDescription(`${drm.connectorTypeName(conn.type)} connector ${conn.name} of ${this.#dev.path} (${this.#dev.driver.name})`);
    c.sendConnectorId(conn.id);
    c.sendDone();
  }

  #bind(_client: Client, res: WpDrmLeaseDeviceV1): void {
    const b: DeviceBinding = { res, offered: new Map() };
    this.#bindings.add(b);
    res.onDestroy(() => this.#bindings.delete(b));
    // A fresh open of the card: not master (we are), so the client can only look.
    const fd = libc.open(this.#dev.path, libc.O_RDWR);
    try {
      res.sendDrmFd(fd);
    } finally {
      libc.close(fd, `${this.#dev.path} (non-master fd for a lease client)`);
    }
    for (const conn of this.available()) this.#offer(b, conn);
    res.sendDone();
  }

  /** Brings every client's offer up to date: withdraws what is gone, offers what came back. */
  refresh(): void {
    const avail = new Map(this.available().map((c) => [c.id, c]));
    for (const b of this.#bindings) {
      if (b.res.destroyed) continue;
      let changed = false;
      for (const [id, c] of b.offered) {
        if (avail.has(id)) continue;
        b.offered.delete(id);
        if (!c.destroyed) c.sendWithdrawn();
        changed = true;
      }
      for (const [id, conn] of avail) {
        if (b.offered.has(id) && !b.offered.get(id)!.destroyed) continue;
        this.#offer(b, conn);
        changed = true;
      }
      if (changed) b.res.sendDone();
    }
  }

  #deviceHandlers() {
    return {
      createLeaseRequest: (dres: WpDrmLeaseDeviceV1, rid: import('../../protocols/runtime.js').NewId<import('../../protocols/generated/drm_lease_v1.js').WpDrmLeaseRequestV1>) => {
        const requested: number[] = [];
        rid.create({
          requestConnector: (req, connector) => {
            const binding = [...this.#bindings].find((b) => b.res === dres);
            const mine = binding && [...binding.offered.values()].includes(connector);
            if (!mine) throw new ProtocolViolation(req, WpDrmLeaseRequestV1Error.WRONG_DEVICE, `${connector} was not offered by this lease device`);
            const id = connector.data as number;
            if (requested.includes(id)) throw new ProtocolViolation(req, WpDrmLeaseRequestV1Error.DUPLICATE_CONNECTOR, `connector ${id} was requested twice`);
            requested.push(id);
          },
          submit: (req, lid) => {
            if (requested.length === 0) throw new ProtocolViolation(req, WpDrmLeaseRequestV1Error.EMPTY_LEASE, 'no connector was requested');
            const lease = lid.create({});
            this.#grant(lease, requested);
          },
        });
      },
      release: (dres: WpDrmLeaseDeviceV1) => {
        dres.sendReleased();
        dres.destroy();
      },
    };
  }

  #grant(resource: WpDrmLeaseV1, connectorIds: readonly number[]): void {
    const taken = this.#taken();
    const objects: number[] = [];
    for (const id of connectorIds) {
      const conn = this.#dev.connectors.find((c) => c.id === id);
      const objs = conn ? this.#objectsFor(conn, taken) : `connector ${id} is gone`;
      if (typeof objs === 'string') {
        // Leased meanwhile, unplugged or out of CRTCs: a finished lease, per the protocol.
        resource.sendFinished();
        return;
      }
      for (const o of objs) {
        objects.push(o);
        taken.add(o);
      }
    }
    let lease: drm.DrmLease;
    try {
      lease = drm.createLease(this.#dev.fd, objects);
    } catch {
      resource.sendFinished();
      return;
    }
    try {
      resource.sendLeaseFd(lease.fd);
    } finally {
      libc.close(lease.fd, `lease fd of lessee ${lease.lesseeId}`);
    }
    const l: Lease = { lesseeId: lease.lesseeId, connectors: [...connectorIds], objects, client: resource.client, resource, revoked: false };
    this.#leases.add(l);
    resource.onDestroy(() => this.#end(l, 'the client destroyed the lease or disconnected'));
    this.#opts.onLease?.(l);
    this.refresh();
  }

  #end(l: Lease, why: string): void {
    if (!l.revoked) {
      l.revoked = true;
      try {
        drm.revokeLease(this.#dev.fd, l.lesseeId);
      } catch {
        // Already gone: the kernel ends a lease when the lessee's last fd closes.
      }
      this.#opts.onRevoke?.(l, why);
    }
    this.#leases.delete(l);
    this.refresh();
  }

  /** Revokes a lease from the compositor side (the client gets wp_drm_lease_v1.finished). */
  revoke(lesseeId: number, why = 'revoked by the compositor'): void {
    for (const l of this.#leases) {
      if (l.lesseeId !== lesseeId || l.revoked) continue;
      l.revoked = true;
      try {
        drm.revokeLease(this.#dev.fd, l.lesseeId);
      } catch {
        /* already gone */
      }
      if (!l.resource.destroyed) l.resource.sendFinished();
      this.#opts.onRevoke?.(l, why);
      this.refresh();
    }
  }

  /**
   * After a hotplug (the caller learns of it from udev, or polls): re-reads the connectors'
   * status, revokes the leases of connectors that were unplugged (the client gets
   * finished) and brings every client's offer up to date. Returns the revoked lessee ids.
   */
  hotplug(): number[] {
    for (const c of this.#dev.connectors) {
      if (c.writeback) continue;
      try {
        const now = drm.getConnector(this.#dev.fd, c.id).connection;
        c.connection = now === drm.DRM_MODE_CONNECTED ? 'connected' : now === drm.DRM_MODE_DISCONNECTED ? 'disconnected' : 'unknown';
      } catch {
        c.connection = 'disconnected'; // the connector is gone (MST unplug)
      }
    }
    const revoked: number[] = [];
    for (const l of [...this.#leases]) {
      if (l.revoked) continue;
      const gone = l.connectors.find((id) => this.#dev.connectors.find((c) => c.id === id)?.connection !== 'connected');
      if (gone === undefined) continue;
      revoked.push(l.lesseeId);
      this.revoke(l.lesseeId, `connector ${gone} was disconnected`);
    }
    this.refresh();
    return revoked;
  }

  /** Revokes every lease (compositor shutdown). */
  close(): void {
    for (const l of [...this.#leases]) this.revoke(l.lesseeId, 'the compositor is shutting down');
  }
}
