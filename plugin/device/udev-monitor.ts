// DRM change events from udev's netlink group: what udevd re-broadcasts once its rules
// have run (permissions, seat tags), so a card or connector it announces is ready for a
// seat user to open — the kernel's own group (hotplug.ts) can come before that. wlroots,
// Weston and Mutter listen here. Only used where udevd runs (/run/udev/control exists):
// without it nothing is ever re-broadcast, and the kernel group is the fallback.
//
// Ownership: the monitor owns its udev context, the udev monitor (whose socket libudev
// closes at unref) and the watch on that socket; close() stops the watch first, then
// unrefs. Each received udev_device is unreffed before the next is taken.
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import { libudev, libudevMissing } from '../../ffi/libudev.js';
import { FdWatch, UV_READABLE } from '../../ffi/uv.js';

/** Where udevd listens while it runs. */
const UDEV_CONTROL = '/run/udev/control';

/** Why udev's group cannot be used here (null: it can). */
export function udevUnavailable(): string | null {
  if (!existsSync(UDEV_CONTROL)) return `udevd is not running (no ${UDEV_CONTROL})`;
  return libudevMissing();
}

export interface UdevDrmEvent {
  action: string;
  /** The card node's name (card1). */
  card: string;
  hotplug: boolean;
  connectorId?: number;
}

export class UdevMonitor {
  readonly #udev: unknown;
  readonly #mon: unknown;
  #watch: FdWatch | null;
  #closed = false;

  /** Listens for drm subsystem events; `onEvent` per event, `onError` once if the socket fails. */
  constructor(onEvent: (e: UdevDrmEvent) => void, onError: (e: Error) => void) {
    const u = libudev();
    this.#udev = u.udevNew();
    if (!this.#udev) throw new Error('udev_new failed');
    this.#mon = u.monitorNewFromNetlink(this.#udev, 'udev');
    if (!this.#mon) {
      u.udevUnref(this.#udev);
      throw new Error("udev_monitor_new_from_netlink(\"udev\") failed");
    }
    try {
      if (u.monitorFilterAddMatchSubsystemDevtype(this.#mon, 'drm', null) < 0) throw new Error('udev_monitor_filter_add_match_subsystem_devtype failed');
      if (u.monitorEnableReceiving(this.#mon) < 0) throw new Error('udev_monitor_enable_receiving failed (is this process allowed to bind netlink sockets?)');
      const fd = u.monitorGetFd(this.#mon) as number;
      this.#watch = new FdWatch(fd, UV_READABLE, {
        ready: (_events, error) => (error ? onError(error) : this.#receive(onEvent)),
        error: (e) => onError(e as Error),
      });
    } catch (e) {
      u.monitorUnref(this.#mon);
      u.udevUnref(this.#udev);
      throw e;
    }
  }

  /** Takes every event the socket holds (libudev's socket is non-blocking: NULL when empty). */
  #receive(onEvent: (e: UdevDrmEvent) => void): void {
    const u = libudev();
    for (let i = 0; i < 256 && !this.#closed; i++) {
      const dev = u.monitorReceiveDevice(this.#mon);
      if (!dev) return;
      try {
        const devnode = u.deviceGetDevnode(dev) as string | null;
        const connector = u.deviceGetPropertyValue(dev, 'CONNECTOR') as string | null;
        const id = connector === null ? NaN : Number(connector);
        onEvent({
          action: (u.deviceGetAction(dev) as string | null) ?? '',
          card: devnode ? basename(devnode) : '',
          hotplug: u.deviceGetPropertyValue(dev, 'HOTPLUG') === '1',
          connectorId: Number.isInteger(id) ? id : undefined,
        });
      } finally {
        u.deviceUnref(dev);
      }
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const w = this.#watch;
    this.#watch = null;
    // libuv must let go of the fd before libudev closes it.
    await w?.close();
    const u = libudev();
    u.monitorUnref(this.#mon);
    u.udevUnref(this.#udev);
  }
}
