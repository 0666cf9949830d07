// Thin koffi bindings to libinput (and the one libudev call its udev backend needs). The
// caller drives it: libinput_get_fd() is watched in the event loop, libinput_dispatch()
// and the event getters run on the main thread.
import koffi from 'koffi';
import type { AbiManifest } from './abi.js';

let lib: koffi.IKoffiLib | null = null;
let udevLib: koffi.IKoffiLib | null = null;
let loadError = '';
try {
  lib = koffi.load('libinput.so.10');
  udevLib = koffi.load('libudev.so.1');
} catch (e) {
  loadError = (e as Error).message;
}

export function libinputMissing(): string | null {
  return lib && udevLib ? null : `libinput could not be loaded (${loadError}): install Debian's libinput10 and libudev1`;
}

export const OpenRestricted = koffi.proto('int gp_li_open_restricted(const char *path, int flags, void *user_data)');
export const CloseRestricted = koffi.proto('void gp_li_close_restricted(int fd, void *user_data)');
/** struct libinput_interface: libinput keeps the pointer, so it must live in memory we own. */
export const libinput_interface = koffi.struct('libinput_interface', {
  open_restricted: koffi.pointer(OpenRestricted),
  close_restricted: koffi.pointer(CloseRestricted),
});

// enum libinput_event_type
export const LIBINPUT_EVENT_DEVICE_ADDED = 1;
export const LIBINPUT_EVENT_DEVICE_REMOVED = 2;
export const LIBINPUT_EVENT_KEYBOARD_KEY = 300;
export const LIBINPUT_EVENT_POINTER_MOTION = 400;
export const LIBINPUT_EVENT_POINTER_MOTION_ABSOLUTE = 401;
export const LIBINPUT_EVENT_POINTER_BUTTON = 402;
export const LIBINPUT_EVENT_POINTER_AXIS = 403;
export const LIBINPUT_EVENT_POINTER_SCROLL_WHEEL = 404;
export const LIBINPUT_EVENT_TOUCH_DOWN = 500;
export const LIBINPUT_EVENT_TOUCH_UP = 501;
export const LIBINPUT_EVENT_TOUCH_MOTION = 502;
export const LIBINPUT_EVENT_TOUCH_CANCEL = 503;
export const LIBINPUT_EVENT_TOUCH_FRAME = 504;
export const LIBINPUT_POINTER_AXIS_SCROLL_VERTICAL = 0;
export const LIBINPUT_POINTER_AXIS_SCROLL_HORIZONTAL = 1;
export const LIBINPUT_KEY_STATE_PRESSED = 1;
// enum libinput_device_capability
export const LIBINPUT_DEVICE_CAP_KEYBOARD = 0;
export const LIBINPUT_DEVICE_CAP_POINTER = 1;
export const LIBINPUT_DEVICE_CAP_TOUCH = 2;
export const LIBINPUT_BUTTON_STATE_PRESSED = 1;

type Fn = koffi.KoffiFunction;
export interface LibinputBindings {
  udevNew: Fn;
  udevUnref: Fn;
  udevCreateContext: Fn;
  udevAssignSeat: Fn;
  pathCreateContext: Fn;
  pathAddDevice: Fn;
  pathRemoveDevice: Fn;
  unref: Fn;
  getFd: Fn;
  dispatch: Fn;
  suspend: Fn;
  resume: Fn;
  getEvent: Fn;
  eventGetType: Fn;
  eventDestroy: Fn;
  eventGetDevice: Fn;
  deviceGetName: Fn;
  deviceGetSysname: Fn;
  deviceRef: Fn;
  deviceUnref: Fn;
  deviceHasCapability: Fn;
  keyboardEvent: Fn;
  keyboardKey: Fn;
  keyboardKeyState: Fn;
  pointerEvent: Fn;
  pointerDx: Fn;
  pointerDy: Fn;
  pointerDxRaw: Fn;
  pointerDyRaw: Fn;
  pointerAbsX: Fn;
  pointerAbsY: Fn;
  pointerButton: Fn;
  pointerButtonState: Fn;
  pointerHasAxis: Fn;
  pointerScrollV120: Fn;
  touchEvent: Fn;
  touchSlot: Fn;
  touchX: Fn;
  touchY: Fn;
}

let bound: LibinputBindings | null = null;

export function libinput(): LibinputBindings {
  if (bound) return bound;
  if (!lib || !udevLib) throw new Error(libinputMissing()!);
  const l = lib;
  bound = {
    udevNew: udevLib.func('void *udev_new(void)'),
    udevUnref: udevLib.func('void *udev_unref(void *udev)'),
    udevCreateContext: l.func('void *libinput_udev_create_context(void *iface, void *user_data, void *udev)'),
    udevAssignSeat: l.func('int libinput_udev_assign_seat(void *li, const char *seat)'),
    pathCreateContext: l.func('void *libinput_path_create_context(void *iface, void *user_data)'),
    pathAddDevice: l.func('void *libinput_path_add_device(void *li, const char *path)'),
    pathRemoveDevice: l.func('void libinput_path_remove_device(void *device)'),
    unref: l.func('void *libinput_unref(void *li)'),
    getFd: l.func('int libinput_get_fd(void *li)'),
    dispatch: l.func('int libinput_dispatch(void *li)'),
    suspend: l.func('void libinput_suspend(void *li)'),
    resume: l.func('int libinput_resume(void *li)'),
    getEvent: l.func('void *libinput_get_event(void *li)'),
    eventGetType: l.func('int libinput_event_get_type(void *e)'),
    eventDestroy: l.func('void libinput_event_destroy(void *e)'),
    eventGetDevice: l.func('void *libinput_event_get_device(void *e)'),
    deviceGetName: l.func('const char *libinput_device_get_name(void *d)'),
    deviceGetSysname: l.func('const char *libinput_device_get_sysname(void *d)'),
    deviceRef: l.func('void *libinput_device_ref(void *d)'),
    deviceUnref: l.func('void *libinput_device_unref(void *d)'),
    deviceHasCapability: l.func('int libinput_device_has_capability(void *d, int capability)'),
    keyboardEvent: l.func('void *libinput_event_get_keyboard_event(void *e)'),
    keyboardKey: l.func('uint32_t libinput_event_keyboard_get_key(void *k)'),
    keyboardKeyState: l.func('int libinput_event_keyboard_get_key_state(void *k)'),
    pointerEvent: l.func('void *libinput_event_get_pointer_event(void *e)'),
    pointerDx: l.func('double libinput_event_pointer_get_dx(void *p)'),
    pointerDy: l.func('double libinput_event_pointer_get_dy(void *p)'),
    pointerDxRaw: l.func('double libinput_event_pointer_get_dx_unaccelerated(void *p)'),
    pointerDyRaw: l.func('double libinput_event_pointer_get_dy_unaccelerated(void *p)'),
    pointerAbsX: l.func('double libinput_event_pointer_get_absolute_x_transformed(void *p, uint32_t width)'),
    pointerAbsY: l.func('double libinput_event_pointer_get_absolute_y_transformed(void *p, uint32_t height)'),
    pointerButton: l.func('uint32_t libinput_event_pointer_get_button(void *p)'),
    pointerButtonState: l.func('int libinput_event_pointer_get_button_state(void *p)'),
    pointerHasAxis: l.func('int libinput_event_pointer_has_axis(void *p, int axis)'),
    pointerScrollV120: l.func('double libinput_event_pointer_get_scroll_value_v120(void *p, int axis)'),
    touchEvent: l.func('void *libinput_event_get_touch_event(void *e)'),
    touchSlot: l.func('int32_t libinput_event_touch_get_seat_slot(void *t)'),
    touchX: l.func('double libinput_event_touch_get_x_transformed(void *t, uint32_t width)'),
    touchY: l.func('double libinput_event_touch_get_y_transformed(void *t, uint32_t height)'),
  };
  return bound;
}

export const ABI: AbiManifest = {
  headers: ['libinput.h'],
  structs: { 'struct libinput_interface': { type: libinput_interface } },
  constants: {
    LIBINPUT_EVENT_DEVICE_ADDED,
    LIBINPUT_EVENT_DEVICE_REMOVED,
    LIBINPUT_EVENT_KEYBOARD_KEY,
    LIBINPUT_EVENT_POINTER_MOTION,
    LIBINPUT_EVENT_POINTER_MOTION_ABSOLUTE,
    LIBINPUT_EVENT_POINTER_BUTTON,
    LIBINPUT_EVENT_POINTER_AXIS,
    LIBINPUT_EVENT_POINTER_SCROLL_WHEEL,
    LIBINPUT_EVENT_TOUCH_DOWN,
    LIBINPUT_EVENT_TOUCH_UP,
    LIBINPUT_EVENT_TOUCH_MOTION,
    LIBINPUT_EVENT_TOUCH_CANCEL,
    LIBINPUT_EVENT_TOUCH_FRAME,
    LIBINPUT_POINTER_AXIS_SCROLL_VERTICAL,
    LIBINPUT_POINTER_AXIS_SCROLL_HORIZONTAL,
    LIBINPUT_KEY_STATE_PRESSED,
    LIBINPUT_DEVICE_CAP_KEYBOARD,
    LIBINPUT_DEVICE_CAP_POINTER,
    LIBINPUT_DEVICE_CAP_TOUCH,
    LIBINPUT_BUTTON_STATE_PRESSED,
  },
};
