// The host's keyboards, pointers and touchscreens through libinput: its fd is watched in
// Node's event loop, events come out typed. The udev backend (a seat, hotplug through
// udev) is the default; the path backend takes named /dev/input/event* nodes.
//
// Devices are opened through `open` (default: open(2) directly; a seat's open later). A
// device that cannot be opened is reported with the path and the fix; the others go on.
//
// Ownership: the stack owns the libinput context (and through it the device fds it
// opened), the udev handle, the interface memory and the registered callbacks; close()
// frees them in that order.
import { EventEmitter } from 'node:events';
import koffi from 'koffi';
import * as libc from '../../ffi/libc.js';
import { FdWatch, UV_READABLE } from '../../ffi/uv.js';
import * as li from '../../ffi/libinput.js';

export type InputEvent =
  | { kind: 'key'; code: number; pressed: boolean }
  /** dx, dy: accelerated (a host pointer's move); dxRaw, dyRaw: the device's own counts. */
  | { kind: 'motion'; dx: number; dy: number; dxRaw: number; dyRaw: number }
  /** x, y in 0..1 of the device's area (tablets, absolute pointers). */
  | { kind: 'absolute'; x: number; y: number }
  /** button: the evdev code (BTN_LEFT = 0x110…). */
  | { kind: 'button'; button: number; pressed: boolean }
  /** One wheel detent = 120; positive = down/right. */
  | { kind: 'scroll'; axis: 'vertical' | 'horizontal'; v120: number }
  | { kind: 'touch'; phase: 'down' | 'motion' | 'up' | 'cancel'; slot: number; x: number; y: number }
  /** The touch events since the last frame belong together (one evdev SYN_REPORT). */
  | { kind: 'touch-frame' };

export interface InputDevice {
  name: string;
  sysname: string;
  /** What libinput makes of the device (a seat's capabilities are the union of its devices'). */
  capabilities?: DeviceCapabilities;
}

export interface DeviceCapabilities {
  keyboard: boolean;
  pointer: boolean;
  touch: boolean;
}

interface Events {
  /** An event, and the device it came from (routing by device: multi-head). */
  input: [InputEvent, InputDevice];
  'device-added': [InputDevice];
  'device-removed': [InputDevice];
  /** close() has run: nothing more comes. */
  closed: [];
  /** A device could not be opened, or libinput failed: said once per cause. */
  warning: [string];
}

export interface InputStackOptions {
  /** udev backend on this seat (default 'seat0'), or the path backend on these nodes. */
  seat?: string;
  paths?: readonly string[];
  /** Opens a device node (default open(2)); a seat (libseat) plugs in here. Returns an fd or throws. */
  open?: (path: string, flags: number) => number;
  close?: (fd: number) => void;
}

const ABS_RANGE = 1 << 20;

export class InputStack extends EventEmitter<Events> {
  readonly #b = li.libinput();
  #li: unknown;
  #udev: unknown = null;
  #iface: unknown;
  readonly #callbacks: koffi.IKoffiRegisteredCallback[] = [];
  #watch: FdWatch | null = null;
  readonly #devices = new Map<string, unknown>();
  /** libinput device pointer (its address) → what we say about it: looked up once per event. */
  readonly #byAddress = new Map<bigint, InputDevice>();
  readonly #capabilities = new Map<string, DeviceCapabilities>();
  readonly #warned = new Set<string>();

  constructor(opts: InputStackOptions = {}) {
    super();
    const openFn = opts.open ?? ((path: string, flags: number) => libc.open(path, flags | libc.O_CLOEXEC));
    const closeFn = opts.close ?? ((fd: number) => libc.close(fd));
    const open = koffi.register((path: string, flags: number) => {
      try {
        return openFn(path, flags);
      } catch (e) {
        const errno = (e as { errno?: number }).errno ?? libc.errno.EIO;
        const hint = errno === libc.errno.EACCES || errno === libc.errno.EPERM ? ': permission denied; run through a seat (seatd/logind) or add the user to the input group' : '';
        this.#warn(`open:${path}`, `cannot open input device ${path}: ${(e as Error).message}${hint}`);
        return -errno;
      }
    }, koffi.pointer(li.OpenRestricted));
    const close = koffi.register((fd: number) => {
      try {
        closeFn(fd);
      } catch {
        /* already gone */
      }
    }, koffi.pointer(li.CloseRestricted));
    this.#callbacks.push(open, close);
    // libinput keeps the interface pointer: it lives in memory we free at close().
    this.#iface = koffi.alloc(li.libinput_interface, 1);
    koffi.encode(this.#iface, li.libinput_interface, { open_restricted: open, close_restricted: close });
    try {
      if (opts.paths) {
        this.#li = this.#b.pathCreateContext(this.#iface, null);
        if (!this.#li) throw new Error('libinput_path_create_context failed');
        for (const p of opts.paths) this.addDevice(p);
      } else {
        this.#udev = this.#b.udevNew();
        if (!this.#udev) throw new Error('udev_new failed');
        this.#li = this.#b.udevCreateContext(this.#iface, null, this.#udev);
        if (!this.#li) throw new Error('libinput_udev_create_context failed');
        const seat = opts.seat ?? 'seat0';
        if ((this.#b.udevAssignSeat(this.#li, seat) as number) !== 0) throw new Error(`libinput could not assign seat '${seat}' (is udev running? input devices need udev's ID_INPUT tags)`);
      }
      this.#watch = new FdWatch(this.#b.getFd(this.#li) as number, UV_READABLE, {
        ready: (_ev, err) => (err ? this.#warn('poll', `input: ${err.message}`) : this.#drain()),
        error: (e) => this.#warn('handler', `input: a handler threw: ${(e as Error).message}`),
      });
      // The devices present now come as events too: after the caller has attached its handlers.
      this.#drainSoon();
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** Path backend: adds one /dev/input/event* node. */
  addDevice(path: string): void {
    const d = this.#b.pathAddDevice(this.#li, path);
    if (!d) throw new Error(`libinput did not take ${path} (not an input device libinput handles, or not tagged by udev: is udevd running?)`);
    this.#drainSoon();
  }

  #drainScheduled = false;
  #drainSoon(): void {
    if (this.#drainScheduled) return;
    this.#drainScheduled = true;
    setImmediate(() => {
      this.#drainScheduled = false;
      this.#drain();
    });
  }

  get devices(): InputDevice[] {
    return [...this.#devices.keys()].map((sysname) => ({ sysname, name: this.#name(this.#devices.get(sysname)) }));
  }

  #name(dev: unknown): string {
    return (this.#b.deviceGetName(dev) as string | null) ?? '?';
  }

  #capabilitiesOf(dev: unknown): DeviceCapabilities {
    const has = (cap: number) => (this.#b.deviceHasCapability(dev, cap) as number) !== 0;
    return { keyboard: has(li.LIBINPUT_DEVICE_CAP_KEYBOARD), pointer: has(li.LIBINPUT_DEVICE_CAP_POINTER), touch: has(li.LIBINPUT_DEVICE_CAP_TOUCH) };
  }

  #draining = false;
  #closeAfterDrain = false;

  #drain(): void {
    const b = this.#b;
    if (!this.#li || this.#draining) return;
    this.#draining = true;
    try {
      const rc = b.dispatch(this.#li) as number;
      if (rc < 0) this.#warn('dispatch', `libinput_dispatch failed: ${libc.errnoName(-rc)}`);
      // A handler may close the stack (the kiosk's quit chord): stop taking events then.
      for (let e = b.getEvent(this.#li); e; e = this.#closeAfterDrain ? null : b.getEvent(this.#li)) {
        try {
          this.#event(e);
        } finally {
          b.eventDestroy(e);
        }
      }
    } finally {
      this.#draining = false;
      if (this.#closeAfterDrain) this.close();
    }
  }

  #event(e: unknown): void {
    const b = this.#b;
    const type = b.eventGetType(e) as number;
    switch (type) {
      case li.LIBINPUT_EVENT_DEVICE_ADDED:
      case li.LIBINPUT_EVENT_DEVICE_REMOVED: {
        const dev = b.eventGetDevice(e);
        const sysname = (b.deviceGetSysname(dev) as string | null) ?? '?';
        const d = { name: this.#name(dev), sysname, capabilities: this.#capabilities.get(sysname) ?? this.#capabilitiesOf(dev) };
        if (type === li.LIBINPUT_EVENT_DEVICE_ADDED) {
          this.#devices.set(sysname, dev);
          this.#byAddress.set(koffi.address(dev), d);
          this.#capabilities.set(sysname, d.capabilities);
        } else {
          this.#devices.delete(sysname);
          this.#byAddress.delete(koffi.address(dev));
          this.#capabilities.delete(sysname);
        }
        this.emit(type === li.LIBINPUT_EVENT_DEVICE_ADDED ? 'device-added' : 'device-removed', d);
        return;
      }
      case li.LIBINPUT_EVENT_KEYBOARD_KEY: {
        const k = b.keyboardEvent(e);
        this.#input(e, { kind: 'key', code: b.keyboardKey(k) as number, pressed: b.keyboardKeyState(k) === li.LIBINPUT_KEY_STATE_PRESSED });
        return;
      }
      case li.LIBINPUT_EVENT_POINTER_MOTION: {
        const p = b.pointerEvent(e);
        this.#input(e, { kind: 'motion', dx: b.pointerDx(p) as number, dy: b.pointerDy(p) as number, dxRaw: b.pointerDxRaw(p) as number, dyRaw: b.pointerDyRaw(p) as number });
        return;
      }
      case li.LIBINPUT_EVENT_POINTER_MOTION_ABSOLUTE: {
        const p = b.pointerEvent(e);
        this.#input(e, { kind: 'absolute', x: (b.pointerAbsX(p, ABS_RANGE) as number) / ABS_RANGE, y: (b.pointerAbsY(p, ABS_RANGE) as number) / ABS_RANGE });
        return;
      }
      case li.LIBINPUT_EVENT_POINTER_BUTTON: {
        const p = b.pointerEvent(e);
        this.#input(e, { kind: 'button', button: b.pointerButton(p) as number, pressed: b.pointerButtonState(p) === li.LIBINPUT_BUTTON_STATE_PRESSED });
        return;
      }
      case li.LIBINPUT_EVENT_POINTER_SCROLL_WHEEL: {
        const p = b.pointerEvent(e);
        for (const [axis, name] of [[li.LIBINPUT_POINTER_AXIS_SCROLL_VERTICAL, 'vertical'], [li.LIBINPUT_POINTER_AXIS_SCROLL_HORIZONTAL, 'horizontal']] as const) {
          if (b.pointerHasAxis(p, axis)) this.#input(e, { kind: 'scroll', axis: name, v120: b.pointerScrollV120(p, axis) as number });
        }
        return;
      }
      case li.LIBINPUT_EVENT_TOUCH_DOWN:
      case li.LIBINPUT_EVENT_TOUCH_MOTION:
      case li.LIBINPUT_EVENT_TOUCH_UP:
      case li.LIBINPUT_EVENT_TOUCH_CANCEL: {
        const t = b.touchEvent(e);
        const phase = type === li.LIBINPUT_EVENT_TOUCH_DOWN ? 'down' : type === li.LIBINPUT_EVENT_TOUCH_MOTION ? 'motion' : type === li.LIBINPUT_EVENT_TOUCH_UP ? 'up' : 'cancel';
        const withPos = phase === 'down' || phase === 'motion';
        this.#input(e, {
          kind: 'touch',
          phase,
          slot: phase === 'cancel' ? -1 : (b.touchSlot(t) as number),
          x: withPos ? (b.touchX(t, ABS_RANGE) as number) / ABS_RANGE : 0,
          y: withPos ? (b.touchY(t, ABS_RANGE) as number) / ABS_RANGE : 0,
        });
        return;
      }
      case li.LIBINPUT_EVENT_TOUCH_FRAME:
        this.#input(e, { kind: 'touch-frame' });
        return;
      default:
        return; // gestures, tablet tools, switches: not used yet
    }
  }

  #input(e: unknown, ev: InputEvent): void {
    const dev = this.#b.eventGetDevice(e);
    this.emit('input', ev, this.#byAddress.get(koffi.address(dev)) ?? { name: this.#name(dev), sysname: (this.#b.deviceGetSysname(dev) as string | null) ?? '?' });
  }

  /**
   * The seat went to another session: libinput closes every device (their fds are revoked
   * by then). Keys held down are released in the receivers' eyes by the 'device-removed'
   * events libinput sends.
   */
  suspend(): void {
    if (!this.#li || this.#suspended) return;
    this.#suspended = true;
    this.#b.suspend(this.#li);
    this.#drainSoon();
  }

  /** The seat is back: libinput opens the devices again (through `open`). */
  resume(): void {
    if (!this.#li || !this.#suspended) return;
    this.#suspended = false;
    if ((this.#b.resume(this.#li) as number) !== 0) this.#warn('resume', 'input: libinput could not resume (devices stay closed until the next session switch)');
    this.#drainSoon();
  }

  #suspended = false;

  #warn(kind: string, message: string): void {
    if (this.#warned.has(kind)) return;
    this.#warned.add(kind);
    this.emit('warning', message);
  }

  close(): void {
    // Not while libinput is inside its event queue (a handler closing us): right after.
    if (this.#draining) {
      this.#closeAfterDrain = true;
      return;
    }
    void this.#watch?.close();
    this.#watch = null;
    // libinput_unref closes every device through close_restricted: callbacks live until after.
    if (this.#li) this.#b.unref(this.#li);
    this.#li = null;
    if (this.#udev) this.#b.udevUnref(this.#udev);
    this.#udev = null;
    this.#devices.clear();
    this.#byAddress.clear();
    this.#capabilities.clear();
    if (this.#iface) koffi.free(this.#iface);
    this.#iface = null;
    for (const cb of this.#callbacks.splice(0)) koffi.unregister(cb);
    this.emit('closed');
  }
}
