// Thin koffi bindings to libudev's monitor (the "udev" netlink group: events re-broadcast
// by udevd once its rules have run) and the device getters a hotplug listener needs.
// The caller watches udev_monitor_get_fd() in the event loop and receives on the main thread.
import koffi from 'koffi';
import type { AbiManifest } from './abi.js';

let lib: koffi.IKoffiLib | null = null;
let loadError = '';
try {
  lib = koffi.load('libudev.so.1');
} catch (e) {
  loadError = (e as Error).message;
}

export function libudevMissing(): string | null {
  return lib ? null : `libudev could not be loaded (${loadError}): install Debian's libudev1`;
}

type Fn = koffi.KoffiFunction;
export interface LibudevBindings {
  udevNew: Fn;
  udevUnref: Fn;
  monitorNewFromNetlink: Fn;
  monitorFilterAddMatchSubsystemDevtype: Fn;
  monitorEnableReceiving: Fn;
  monitorGetFd: Fn;
  monitorReceiveDevice: Fn;
  monitorUnref: Fn;
  deviceGetAction: Fn;
  deviceGetDevnode: Fn;
  deviceGetPropertyValue: Fn;
  deviceUnref: Fn;
}

let bound: LibudevBindings | null = null;

export function libudev(): LibudevBindings {
  if (bound) return bound;
  if (!lib) throw new Error(libudevMissing()!);
  const l = lib;
  bound = {
    udevNew: l.func('void *udev_new(void)'),
    udevUnref: l.func('void *udev_unref(void *udev)'),
    monitorNewFromNetlink: l.func('void *udev_monitor_new_from_netlink(void *udev, const char *name)'),
    monitorFilterAddMatchSubsystemDevtype: l.func('int udev_monitor_filter_add_match_subsystem_devtype(void *mon, const char *subsystem, const char *devtype)'),
    monitorEnableReceiving: l.func('int udev_monitor_enable_receiving(void *mon)'),
    monitorGetFd: l.func('int udev_monitor_get_fd(void *mon)'),
    monitorReceiveDevice: l.func('void *udev_monitor_receive_device(void *mon)'),
    monitorUnref: l.func('void *udev_monitor_unref(void *mon)'),
    deviceGetAction: l.func('const char *udev_device_get_action(void *dev)'),
    deviceGetDevnode: l.func('const char *udev_device_get_devnode(void *dev)'),
    deviceGetPropertyValue: l.func('const char *udev_device_get_property_value(void *dev, const char *key)'),
    deviceUnref: l.func('void *udev_device_unref(void *dev)'),
  };
  return bound;
}

/** Only opaque pointers and strings cross this boundary: the header is compiled, no struct or constant to compare. */
export const ABI: AbiManifest = { headers: ['libudev.h'], structs: {}, constants: {} };
