// Virtual input devices for rig tests (/dev/uinput), and the udev daemon libinput needs:
// libinput takes only devices udev has tagged (ID_INPUT_*), as on any real system.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import koffi from 'koffi';
import * as libc from '../../../ffi/libc.js';
import * as ui from '../../../ffi/uinput.js';

const UDEVD = '/lib/systemd/systemd-udevd';

/** Why uinput-driven input tests cannot run here, or null. */
export function uinputMissing(): string | null {
  if (!existsSync('/dev/uinput')) return 'no /dev/uinput (the rig kernel needs INPUT_UINPUT; these tests run in the rig)';
  if (!existsSync(UDEVD)) return `no ${UDEVD} (Debian package udev): libinput takes only devices udev has tagged`;
  return null;
}

/** Starts udevd (once per process) so that new input devices get their ID_INPUT tags. */
let udevd: ChildProcess | null = null;
export function startUdevd(): void {
  if (udevd) return;
  mkdirSync('/run/udev', { recursive: true });
  udevd = spawn(UDEVD, [], { stdio: 'ignore' });
  process.on('exit', () => udevd?.kill('SIGKILL'));
  // `udevadm settle` returns at once while udevd has no control socket yet, and a device
  // made before udevd listens is never tagged (seen: a keyboard libinput never added).
  for (let i = 0; i < 500 && !existsSync('/run/udev/control'); i++) execFileSync('sleep', ['0.01']);
  if (!existsSync('/run/udev/control')) throw new Error(`${UDEVD} did not create /run/udev/control within 5 s`);
  execFileSync('udevadm', ['settle', '-t', '10']);
}

export function udevSettle(): void {
  execFileSync('udevadm', ['settle', '-t', '10']);
}

export interface VirtualDeviceSpec {
  name: string;
  keys?: number[];
  rel?: number[];
  abs?: { code: number; min: number; max: number }[];
  props?: number[];
}

/** A uinput device: events written here come out of /dev/input/eventN. */
export class VirtualDevice {
  readonly fd: number;
  readonly sysname: string;
  readonly node: string;

  constructor(spec: VirtualDeviceSpec) {
    this.fd = libc.open('/dev/uinput', libc.O_RDWR | libc.O_NONBLOCK | libc.O_CLOEXEC);
    try {
      const set = (req: number, v: number) => libc.ioctlInt(this.fd, req, v, 'uinput set bit', spec.name);
      if (spec.keys?.length) set(ui.UI_SET_EVBIT, ui.EV_KEY);
      for (const k of spec.keys ?? []) set(ui.UI_SET_KEYBIT, k);
      if (spec.rel?.length) set(ui.UI_SET_EVBIT, ui.EV_REL);
      for (const r of spec.rel ?? []) set(ui.UI_SET_RELBIT, r);
      if (spec.abs?.length) set(ui.UI_SET_EVBIT, ui.EV_ABS);
      for (const p of spec.props ?? []) set(ui.UI_SET_PROPBIT, p);
      for (const a of spec.abs ?? []) {
        set(ui.UI_SET_ABSBIT, a.code);
        const b = Buffer.alloc(koffi.sizeof(ui.uinput_abs_setup));
        koffi.encode(b, ui.uinput_abs_setup, { code: a.code, absinfo: { value: 0, minimum: a.min, maximum: a.max, fuzz: 0, flat: 0, resolution: 10 } });
        libc.ioctl(this.fd, ui.UI_ABS_SETUP, b, 'UI_ABS_SETUP', spec.name);
      }
      const setup = Buffer.alloc(koffi.sizeof(ui.uinput_setup));
      koffi.encode(setup, ui.uinput_setup, { id: { bustype: ui.BUS_VIRTUAL, vendor: 0x1d6b, product: 0x0104, version: 1 }, name: spec.name, ff_effects_max: 0 });
      libc.ioctl(this.fd, ui.UI_DEV_SETUP, setup, 'UI_DEV_SETUP', spec.name);
      libc.ioctl(this.fd, ui.UI_DEV_CREATE, null, 'UI_DEV_CREATE', spec.name);
      const name = Buffer.alloc(64);
      libc.ioctl(this.fd, ui.UI_GET_SYSNAME(64), name, 'UI_GET_SYSNAME', spec.name);
      this.sysname = name.toString('latin1').replace(/\0.*$/s, '');
      const ev = readdirSync(`/sys/devices/virtual/input/${this.sysname}`).find((n) => n.startsWith('event'));
      if (!ev) throw new Error(`${spec.name}: no event node under /sys/devices/virtual/input/${this.sysname}`);
      this.node = `/dev/input/${ev}`;
    } catch (e) {
      libc.close(this.fd);
      throw e;
    }
  }

  emit(type: number, code: number, value: number): void {
    const b = Buffer.alloc(ui.INPUT_EVENT_SIZE);
    koffi.encode(b, ui.input_event, { tv_sec: 0, tv_usec: 0, type, code, value });
    libc.write(this.fd, b, this.node);
  }

  sync(): void {
    this.emit(ui.EV_SYN, ui.SYN_REPORT, 0);
  }

  key(code: number, down: boolean): void {
    this.emit(ui.EV_KEY, code, down ? 1 : 0);
    this.sync();
  }

  move(dx: number, dy: number): void {
    if (dx) this.emit(ui.EV_REL, ui.REL_X, dx);
    if (dy) this.emit(ui.EV_REL, ui.REL_Y, dy);
    this.sync();
  }

  /** An absolute pointer to (x, y) in the device's axis units. */
  absTo(x: number, y: number): void {
    this.emit(ui.EV_ABS, ui.ABS_X, x);
    this.emit(ui.EV_ABS, ui.ABS_Y, y);
    this.sync();
  }

  /** Wheel detents; evdev's sign: positive is away from the user (scrolling up). */
  wheel(detents: number): void {
    this.emit(ui.EV_REL, ui.REL_WHEEL, detents);
    this.sync();
  }

  #closed = false;
  /** Unplugs the device (once: a test may unplug it before its cleanup runs). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    libc.ioctlTry(this.fd, ui.UI_DEV_DESTROY, null);
    libc.close(this.fd);
  }
}

export const keyboard = (name = 'guestplane test keyboard'): VirtualDevice =>
  // Enough keys for libinput to call it a keyboard (it wants the main block).
  new VirtualDevice({ name, keys: Array.from({ length: 88 }, (_, i) => i + 1).concat([97, 100, 103, 105, 106, 108]) });

export const mouse = (name = 'guestplane test mouse'): VirtualDevice => new VirtualDevice({ name, keys: [ui.BTN_LEFT, ui.BTN_RIGHT, ui.BTN_MIDDLE], rel: [ui.REL_X, ui.REL_Y, ui.REL_WHEEL] });

/** udevd, then the test keyboard and mouse, tagged for libinput; closed by `cleanup` after the test. */
export function keyboardAndMouse(cleanup: (() => unknown)[]): { kbd: VirtualDevice; rat: VirtualDevice } {
  startUdevd();
  const kbd = keyboard();
  cleanup.push(() => kbd.close());
  const rat = mouse();
  cleanup.push(() => rat.close());
  udevSettle();
  return { kbd, rat };
}

/**
 * A multi-touch screen (type B protocol: slots and tracking ids) whose axes run 0..w-1 and
 * 0..h-1, INPUT_PROP_DIRECT so udev and libinput take it for a touchscreen (not a touchpad).
 */
export class TouchScreen extends VirtualDevice {
  #nextId = 1;
  readonly #ids = new Map<number, number>();
  #slot = -1;

  constructor(
    readonly width: number,
    readonly height: number,
    name = 'guestplane test touchscreen',
  ) {
    super({
      name,
      keys: [ui.BTN_TOUCH],
      abs: [
        { code: ui.ABS_X, min: 0, max: width - 1 },
        { code: ui.ABS_Y, min: 0, max: height - 1 },
        { code: ui.ABS_MT_SLOT, min: 0, max: 9 },
        { code: ui.ABS_MT_TRACKING_ID, min: 0, max: 65535 },
        { code: ui.ABS_MT_POSITION_X, min: 0, max: width - 1 },
        { code: ui.ABS_MT_POSITION_Y, min: 0, max: height - 1 },
      ],
      props: [ui.INPUT_PROP_DIRECT],
    });
  }

  #select(slot: number): void {
    if (slot !== this.#slot) this.emit(ui.EV_ABS, ui.ABS_MT_SLOT, slot);
    this.#slot = slot;
  }

  /** Finger `slot` touches (x, y); no SYN_REPORT: several fingers can go in one frame (sync()). */
  down(slot: number, x: number, y: number): void {
    this.#select(slot);
    const id = this.#nextId++;
    this.#ids.set(slot, id);
    this.emit(ui.EV_ABS, ui.ABS_MT_TRACKING_ID, id);
    this.emit(ui.EV_ABS, ui.ABS_MT_POSITION_X, x);
    this.emit(ui.EV_ABS, ui.ABS_MT_POSITION_Y, y);
    // The single-touch emulation the kernel's input-mt would make: the first finger.
    if (this.#ids.size === 1) {
      this.emit(ui.EV_KEY, ui.BTN_TOUCH, 1);
      this.emit(ui.EV_ABS, ui.ABS_X, x);
      this.emit(ui.EV_ABS, ui.ABS_Y, y);
    }
  }

  slide(slot: number, x: number, y: number): void {
    this.#select(slot);
    this.emit(ui.EV_ABS, ui.ABS_MT_POSITION_X, x);
    this.emit(ui.EV_ABS, ui.ABS_MT_POSITION_Y, y);
  }

  up(slot: number): void {
    this.#select(slot);
    this.emit(ui.EV_ABS, ui.ABS_MT_TRACKING_ID, -1);
    this.#ids.delete(slot);
    if (this.#ids.size === 0) this.emit(ui.EV_KEY, ui.BTN_TOUCH, 0);
  }
}

/**
 * An absolute pointer (as QEMU's usb-tablet is): axes 0..w-1 and 0..h-1, left/right/middle
 * buttons and a wheel; libinput gives its positions as they are, no acceleration.
 */
export const tablet = (width: number, height: number, name = 'guestplane test tablet'): VirtualDevice =>
  new VirtualDevice({
    name,
    keys: [ui.BTN_LEFT, ui.BTN_RIGHT, ui.BTN_MIDDLE],
    rel: [ui.REL_WHEEL],
    abs: [
      { code: ui.ABS_X, min: 0, max: width - 1 },
      { code: ui.ABS_Y, min: 0, max: height - 1 },
    ],
  });
