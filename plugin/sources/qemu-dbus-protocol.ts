// What QEMU's D-Bus display (ui/dbus-display1.xml, org.qemu.Display1.Listener) says to a
// listener, checked and turned into typed calls. Everything here is pure: the values come
// from a message already read by plugin/dbus/, untrusted (QEMU may be buggy, or not QEMU), and
// every way they can be wrong gives a ListenerError naming the argument and what was
// expected. The fds in a call are the connection's until the source takes them. Also the
// display's other names (bus name, object paths, interfaces), the console and VM
// descriptions, and QEMU's input numbering (evdev keys → QEMU key numbers, buttons).
import { DRM_FORMAT } from '../../ffi/drm.js';
import { DbusError, DbusFd, type DbusValue } from '../dbus/connection.js';

export const LISTENER_PATH = '/org/qemu/Display1/Listener';
export const LISTENER_IFACE = 'org.qemu.Display1.Listener';

/** Sizes beyond any real display: a guest claiming more is lying or broken. */
export const MAX_DIMENSION = 16384;
export const MAX_CURSOR = 512;

export type ListenerCall =
  | { member: 'ScanoutDMABUF'; fd: DbusFd; width: number; height: number; stride: number; fourcc: number; modifier: bigint; y0Top: boolean }
  /** x, y, width, height: the part of the backing buffer shown. One fd per plane, or fewer (the rest share the last). */
  | {
      member: 'ScanoutDMABUF2';
      fds: DbusFd[];
      x: number;
      y: number;
      width: number;
      height: number;
      planes: { offset: number; stride: number }[];
      fourcc: number;
      backingWidth: number;
      backingHeight: number;
      modifier: bigint;
      y0Top: boolean;
    }
  | { member: 'UpdateDMABUF'; x: number; y: number; w: number; h: number }
  | { member: 'Scanout'; width: number; height: number; stride: number; fourcc: number; data: Buffer }
  | { member: 'Update'; x: number; y: number; w: number; h: number; stride: number; fourcc: number; data: Buffer }
  | { member: 'Disable' }
  | { member: 'CursorDefine'; width: number; height: number; hotX: number; hotY: number; data: Buffer }
  | { member: 'MouseSet'; x: number; y: number; on: boolean }
  | { member: 'ScanoutMap'; fd: DbusFd; offset: number; width: number; height: number; stride: number; fourcc: number }
  | { member: 'UpdateMap'; x: number; y: number; w: number; h: number };

export class ListenerError extends Error {
  constructor(
    readonly member: string,
    message: string,
  ) {
    super(`QEMU's ${member}: ${message}`);
    this.name = 'ListenerError';
  }
}

/**
 * org.qemu.Display1.Listener.Unix.Map (QEMU 9.2 and later, offered through our Interfaces
 * property): the console surface as a mappable memfd, then only damaged rectangles.
 */
export const MAP_IFACE = 'org.qemu.Display1.Listener.Unix.Map';
/**
 * org.qemu.Display1.Listener.Unix.ScanoutDMABUF2 (QEMU 10.1 and later): once a listener
 * offers it, QEMU sends every dma-buf scanout through it (single-plane ones too) with the
 * shown rectangle and the backing size; without it QEMU drops multi-plane scanouts.
 */
export const DMABUF2_IFACE = 'org.qemu.Display1.Listener.Unix.ScanoutDMABUF2';
const IFACE_OF: Readonly<Record<string, string>> = { ScanoutMap: MAP_IFACE, UpdateMap: MAP_IFACE, ScanoutDMABUF2: DMABUF2_IFACE };
/** QEMU's DMABUF_MAX_PLANES. */
export const MAX_PLANES = 4;

export const SIGNATURES: Readonly<Record<ListenerCall['member'], string>> = {
  ScanoutMap: 'huuuuu',
  UpdateMap: 'iiii',
  ScanoutDMABUF: 'huuuutb',
  ScanoutDMABUF2: 'ahuuuuauauuuuutb',
  UpdateDMABUF: 'iiii',
  Scanout: 'uuuuay',
  Update: 'iiiiuuay',
  Disable: '',
  CursorDefine: 'iiiiay',
  MouseSet: 'iii',
};

export const PROPERTIES_IFACE = 'org.freedesktop.DBus.Properties';

/**
 * Every call the listener object takes, with its argument signature: anything else is
 * refused by the connection before its body is read. QEMU 8.1 and later load the
 * listener's properties (GetAll) when they make their proxy of it.
 */
export const LISTENER_METHODS: Readonly<Record<string, string>> = {
  ...Object.fromEntries(Object.entries(SIGNATURES).map(([m, sig]) => [`${IFACE_OF[m] ?? LISTENER_IFACE}.${m}`, sig])),
  [`${PROPERTIES_IFACE}.GetAll`]: 's',
  [`${PROPERTIES_IFACE}.Get`]: 'ss',
};

/**
 * The listener's extra interfaces (its `Interfaces` property): what QEMU may use beyond
 * org.qemu.Display1.Listener.
 */
export const LISTENER_INTERFACES: readonly string[] = [MAP_IFACE, DMABUF2_IFACE];

/**
 * pixman format codes (PIXMAN_FORMAT(bpp, type, a, r, g, b)) QEMU's 2D surfaces use, as
 * DRM fourccs (same byte order: pixman names are from the most significant bit, as DRM's).
 */
export const PIXMAN_TO_DRM: ReadonlyMap<number, number> = new Map([
  [0x20020888, DRM_FORMAT.XRGB8888!], // x8r8g8b8: QEMU's default 32-bit surface
  [0x20028888, DRM_FORMAT.ARGB8888!], // a8r8g8b8
  [0x20030888, DRM_FORMAT.XBGR8888!], // x8b8g8r8
  [0x20038888, DRM_FORMAT.ABGR8888!], // a8b8g8r8
  [0x20080888, DRM_FORMAT.BGRX8888!], // b8g8r8x8
  [0x20088888, DRM_FORMAT.BGRA8888!], // b8g8r8a8
]);

export function pixmanName(code: number): string {
  const bpp = code >>> 24;
  return `pixman 0x${(code >>> 0).toString(16).padStart(8, '0')} (${bpp} bpp)`;
}

function isInt(v: DbusValue | undefined): v is number {
  return typeof v === 'number' && Number.isInteger(v);
}

function dimension(m: string, v: DbusValue | undefined, what: string, max: number): number {
  if (!isInt(v) || v < 1 || v > max) throw new ListenerError(m, `${what} ${String(v)} is not within 1..${max}`);
  return v;
}

function coordinate(m: string, v: DbusValue | undefined, what: string): number {
  if (!isInt(v) || v < 0 || v > MAX_DIMENSION) throw new ListenerError(m, `${what} ${String(v)} is not within 0..${MAX_DIMENSION}`);
  return v;
}

/** A damage rectangle: x, y, width, height, each within 0..MAX_DIMENSION. */
function damage(m: string, a: readonly DbusValue[]): { x: number; y: number; w: number; h: number } {
  return { x: coordinate(m, a[0], 'x'), y: coordinate(m, a[1], 'y'), w: coordinate(m, a[2], 'width'), h: coordinate(m, a[3], 'height') };
}

/** Checks a call's signature and values; returns the typed call or throws ListenerError. */
export function decodeListenerCall(member: string, signature: string, args: readonly DbusValue[]): ListenerCall {
  if (!(member in SIGNATURES)) throw new ListenerError(member, 'unknown method of org.qemu.Display1.Listener (newer QEMU?)');
  const m = member as ListenerCall['member'];
  if (signature !== SIGNATURES[m]) throw new ListenerError(m, `arguments '${signature}', expected '${SIGNATURES[m]}'`);
  const dim = (v: DbusValue | undefined, what: string, max = MAX_DIMENSION): number => dimension(m, v, what, max);
  const rect = (a: readonly DbusValue[]) => damage(m, a);
  switch (m) {
    case 'ScanoutDMABUF': {
      const fd = args[0];
      if (!(fd instanceof DbusFd) || fd.fd < 0) throw new ListenerError(m, 'no dma-buf fd came with the call');
      const width = dim(args[1], 'width');
      const height = dim(args[2], 'height');
      const stride = dim(args[3], 'stride', MAX_DIMENSION * 16);
      const fourcc = args[4] as number;
      const modifier = BigInt(args[5] as bigint | number);
      return { member: m, fd, width, height, stride, fourcc, modifier, y0Top: args[6] === true };
    }
    case 'ScanoutDMABUF2':
      return scanoutDmabuf2(args);
    case 'UpdateDMABUF':
      return { member: m, ...rect(args) };
    case 'Scanout': {
      const width = dim(args[0], 'width');
      const height = dim(args[1], 'height');
      const stride = dim(args[2], 'stride', MAX_DIMENSION * 16);
      const fourcc = pixmanFormat(m, args[3] as number);
      const data = args[4] as Buffer;
      if (stride < width * 4) throw new ListenerError(m, `stride ${stride} is less than width ${width} × 4 bytes`);
      const need = stride * (height - 1) + width * 4;
      if (data.length < need) throw new ListenerError(m, `${data.length} bytes of pixels for ${width}x${height} at stride ${stride} (needs ${need})`);
      return { member: m, width, height, stride, fourcc, data };
    }
    case 'Update': {
      const r = rect(args);
      const stride = dim(args[4], 'stride', MAX_DIMENSION * 16);
      const fourcc = pixmanFormat(m, args[5] as number);
      const data = args[6] as Buffer;
      if (r.w > 0 && stride < r.w * 4) throw new ListenerError(m, `stride ${stride} is less than width ${r.w} × 4 bytes`);
      const need = r.w === 0 || r.h === 0 ? 0 : stride * (r.h - 1) + r.w * 4;
      if (data.length < need) throw new ListenerError(m, `${data.length} bytes of pixels for ${r.w}x${r.h} at stride ${stride} (needs ${need})`);
      return { member: m, ...r, stride, fourcc, data };
    }
    case 'Disable':
      return { member: m };
    case 'CursorDefine': {
      const width = dim(args[0], 'cursor width', MAX_CURSOR);
      const height = dim(args[1], 'cursor height', MAX_CURSOR);
      const hotX = args[2] as number;
      const hotY = args[3] as number;
      if (hotX < 0 || hotX >= width || hotY < 0 || hotY >= height) throw new ListenerError(m, `hotspot ${hotX},${hotY} is outside the ${width}x${height} cursor`);
      const data = args[4] as Buffer;
      if (data.length !== width * height * 4) throw new ListenerError(m, `${data.length} bytes for a ${width}x${height} ARGB cursor (needs ${width * height * 4})`);
      return { member: m, width, height, hotX, hotY, data };
    }
    case 'MouseSet':
      return { member: m, x: args[0] as number, y: args[1] as number, on: args[2] !== 0 };
    case 'ScanoutMap': {
      const fd = args[0];
      if (!(fd instanceof DbusFd) || fd.fd < 0) throw new ListenerError(m, 'no memfd came with the call');
      const offset = args[1] as number;
      const width = dim(args[2], 'width');
      const height = dim(args[3], 'height');
      const stride = dim(args[4], 'stride', MAX_DIMENSION * 16);
      const fourcc = pixmanFormat(m, args[5] as number);
      if (stride < width * 4) throw new ListenerError(m, `stride ${stride} is less than width ${width} × 4 bytes`);
      return { member: m, fd, offset, width, height, stride, fourcc };
    }
    case 'UpdateMap':
      return { member: m, ...rect(args) };
  }
}

/** ScanoutDMABUF2(ah dmabuf, u x, u y, u width, u height, au offset, au stride, u num_planes, u fourcc, u backing_width, u backing_height, t modifier, b y0_top). */
function scanoutDmabuf2(a: readonly DbusValue[]): ListenerCall {
  const m = 'ScanoutDMABUF2';
  const n = a[7];
  if (!isInt(n) || n < 1 || n > MAX_PLANES) throw new ListenerError(m, `num_planes ${String(n)} is not within 1..${MAX_PLANES}`);
  const fds = a[0];
  if (!Array.isArray(fds) || fds.length < 1 || fds.length > n || !fds.every((f) => f instanceof DbusFd && f.fd >= 0)) {
    throw new ListenerError(m, `${Array.isArray(fds) ? fds.length : 'no'} dma-buf fds for ${n} planes (1..${n} expected, each a passed fd)`);
  }
  const offsets = a[5];
  const strides = a[6];
  if (!Array.isArray(offsets) || !Array.isArray(strides) || offsets.length !== n || strides.length !== n) {
    throw new ListenerError(m, `${Array.isArray(offsets) ? offsets.length : 'no'} offsets and ${Array.isArray(strides) ? strides.length : 'no'} strides for ${n} planes`);
  }
  const backingWidth = dimension(m, a[9], 'backing width', MAX_DIMENSION);
  const backingHeight = dimension(m, a[10], 'backing height', MAX_DIMENSION);
  const x = coordinate(m, a[1], 'x');
  const y = coordinate(m, a[2], 'y');
  const width = dimension(m, a[3], 'width', MAX_DIMENSION);
  const height = dimension(m, a[4], 'height', MAX_DIMENSION);
  if (x + width > backingWidth || y + height > backingHeight) throw new ListenerError(m, `rectangle ${width}x${height}+${x}+${y} is not inside the ${backingWidth}x${backingHeight} buffer`);
  const planes = offsets.map((o, i) => {
    const stride = dimension(m, strides[i], `plane ${i} stride`, MAX_DIMENSION * 16);
    if (!isInt(o) || o < 0) throw new ListenerError(m, `plane ${i} offset ${String(o)} is not a byte offset`);
    return { offset: o, stride };
  });
  return { member: m, fds: fds as DbusFd[], x, y, width, height, planes, fourcc: a[8] as number, backingWidth, backingHeight, modifier: BigInt(a[11] as bigint | number), y0Top: a[12] === true };
}

function pixmanFormat(member: string, code: number): number {
  const f = PIXMAN_TO_DRM.get(code >>> 0);
  if (f === undefined) {
    throw new ListenerError(member, `${pixmanName(code)} is not a format guestplane can show; supported: ${[...PIXMAN_TO_DRM.keys()].map((k) => '0x' + k.toString(16)).join(', ')} (32-bit RGB)`);
  }
  return f;
}

// ---- the display's objects, as QEMU names and describes them --------------------------

export const QEMU_NAME = 'org.qemu';
export const VM_PATH = '/org/qemu/Display1/VM';
export const VM_IFACE = 'org.qemu.Display1.VM';
export const CONSOLE_IFACE = 'org.qemu.Display1.Console';
export const KEYBOARD_IFACE = 'org.qemu.Display1.Keyboard';
export const MOUSE_IFACE = 'org.qemu.Display1.Mouse';
/**
 * Touch (QEMU 8.1+): SendEvent(u kind, t slot, d x, d y) in console pixels. QEMU puts it on
 * every console, whether or not the guest has a touch device (-device virtio-multitouch-pci):
 * without one the events go nowhere, so using it is the user's choice (kiosk --touch).
 */
export const MULTITOUCH_IFACE = 'org.qemu.Display1.MultiTouch';
export type TouchKind = 'begin' | 'update' | 'end' | 'cancel';
export const TOUCH_KINDS: Readonly<Record<TouchKind, number>> = { begin: 0, update: 1, end: 2, cancel: 3 };
/** QEMU's INPUT_EVENT_SLOTS_MAX: a larger slot is refused (MaxSlots says it too). */
export const MAX_TOUCH_SLOTS = 10;

/**
 * QEMU answered a MultiTouch call with an error (7.x: no such interface). Only this turns
 * touch back into the pointer: a call that failed because the connection went (QEMU
 * restarting, the window closing) says nothing of what QEMU takes.
 */
export class MultiTouchRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MultiTouchRefused';
  }
}

/** DbusErrors our connection makes itself (no answer in time, too many calls waiting): not QEMU's answer. */
const NOT_QEMUS_ANSWER = new Set(['org.freedesktop.DBus.Error.NoReply', 'org.freedesktop.DBus.Error.LimitsExceeded']);

/** A failed MultiTouch call, rethrown as MultiTouchRefused where it is QEMU's error reply. */
export function multiTouchRefusal(e: Error): never {
  throw e instanceof DbusError && !NOT_QEMUS_ANSWER.has(e.dbusName) ? new MultiTouchRefused(e.message) : e;
}

export interface QemuConsoleInfo {
  id: number;
  path: string;
  type: string;
  label: string;
  head: number;
  width: number;
  height: number;
  deviceAddress: string;
  /** Interfaces the console object offers (Keyboard, Mouse, MultiTouch…), when QEMU says. */
  interfaces: string[];
}

export interface QemuVmInfo {
  name: string;
  uuid: string;
  consoleIds: number[];
}

/** QEMU's Mouse buttons (qapi InputButton). */
export type QemuButton = 'left' | 'middle' | 'right' | 'wheel-up' | 'wheel-down' | 'side' | 'extra';
export const BUTTONS: Record<QemuButton, number> = { left: 0, middle: 1, right: 2, 'wheel-up': 3, 'wheel-down': 4, side: 5, extra: 6 };

/** A D-Bus value as a string ("" if it is none). */
export function str(v: DbusValue | undefined): string {
  return typeof v === 'string' ? v : '';
}
/** A D-Bus value as a number (0 if it is none). */
export function num(v: DbusValue | undefined): number {
  return typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : 0;
}

/**
 * Linux evdev key codes → QEMU key numbers (XT set 1; the 0xe0-prefixed keys as 0x80|code),
 * the mapping of QEMU's keycodemapdb linux→qnum for a PC keyboard.
 */
const EXTENDED: Record<number, number> = {
  96: 0x9c, // KPENTER
  97: 0x9d, // RIGHTCTRL
  98: 0xb5, // KPSLASH
  99: 0x54, // SYSRQ
  100: 0xb8, // RIGHTALT
  102: 0xc7, // HOME
  103: 0xc8, // UP
  104: 0xc9, // PAGEUP
  105: 0xcb, // LEFT
  106: 0xcd, // RIGHT
  107: 0xcf, // END
  108: 0xd0, // DOWN
  109: 0xd1, // PAGEDOWN
  110: 0xd2, // INSERT
  111: 0xd3, // DELETE
  113: 0xa0, // MUTE
  114: 0xae, // VOLUMEDOWN
  115: 0xb0, // VOLUMEUP
  116: 0xde, // POWER
  117: 0x59, // KPEQUAL
  119: 0xc6, // PAUSE
  125: 0xdb, // LEFTMETA
  126: 0xdc, // RIGHTMETA
  127: 0xdd, // COMPOSE
};

export function evdevToQnum(code: number): number | undefined {
  if (!Number.isInteger(code) || code <= 0) return undefined;
  if (code <= 83 || code === 86 || code === 87 || code === 88) return code; // KEY_ESC..KEY_KPDOT, 102ND, F11, F12
  return EXTENDED[code];
}

/** QEMU's cursor is straight-alpha ARGB (QEMUCursor); planes blend premultiplied. */
export function premultiplied(data: Uint8Array): Buffer {
  const pixels = Buffer.from(data);
  for (let i = 0; i < pixels.length; i += 4) {
    const a = pixels[i + 3]!;
    if (a === 255) continue;
    pixels[i] = Math.round((pixels[i]! * a) / 255);
    pixels[i + 1] = Math.round((pixels[i + 1]! * a) / 255);
    pixels[i + 2] = Math.round((pixels[i + 2]! * a) / 255);
  }
  return pixels;
}
