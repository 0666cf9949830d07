// Thin bindings for the kernel's uinput (linux/uinput.h) and the evdev event record
// (linux/input.h): the rig's tests make virtual keyboards, mice and touchscreens with it,
// so the input stack is tested against real /dev/input devices.
import koffi from 'koffi';
import type { AbiManifest } from './abi.js';
import { IO, IOW, ioc } from './libc.js';

export const input_id = koffi.struct('input_id', { bustype: 'uint16_t', vendor: 'uint16_t', product: 'uint16_t', version: 'uint16_t' });
export const uinput_setup = koffi.struct('uinput_setup', { id: input_id, name: koffi.array('char', 80), ff_effects_max: 'uint32_t' });
export const input_absinfo = koffi.struct('input_absinfo', { value: 'int32_t', minimum: 'int32_t', maximum: 'int32_t', fuzz: 'int32_t', flat: 'int32_t', resolution: 'int32_t' });
export const uinput_abs_setup = koffi.struct('uinput_abs_setup', { code: 'uint16_t', absinfo: input_absinfo });
/** struct input_event on 64-bit: struct timeval (16 bytes), type, code, value. */
export const input_event = koffi.struct('input_event', { tv_sec: 'int64_t', tv_usec: 'int64_t', type: 'uint16_t', code: 'uint16_t', value: 'int32_t' });
export const INPUT_EVENT_SIZE = koffi.sizeof(input_event);

const U = 'U'.charCodeAt(0);
export const UI_DEV_CREATE = IO(U, 1);
export const UI_DEV_DESTROY = IO(U, 2);
export const UI_DEV_SETUP = IOW(U, 3, koffi.sizeof(uinput_setup));
export const UI_ABS_SETUP = IOW(U, 4, koffi.sizeof(uinput_abs_setup));
export const UI_SET_EVBIT = IOW(U, 100, 4);
export const UI_SET_KEYBIT = IOW(U, 101, 4);
export const UI_SET_RELBIT = IOW(U, 102, 4);
export const UI_SET_ABSBIT = IOW(U, 103, 4);
export const UI_SET_PROPBIT = IOW(U, 110, 4);
/** UI_GET_SYSNAME(len): the device's name under /sys/devices/virtual/input. */
export const UI_GET_SYSNAME = (len: number): number => ioc(2, U, 44, len);

// linux/input-event-codes.h (the ones the tests and the input stack use)
export const EV_SYN = 0x00;
export const EV_KEY = 0x01;
export const EV_REL = 0x02;
export const EV_ABS = 0x03;
export const SYN_REPORT = 0;
export const REL_X = 0x00;
export const REL_Y = 0x01;
export const REL_WHEEL = 0x08;
export const ABS_X = 0x00;
export const ABS_Y = 0x01;
export const ABS_MT_SLOT = 0x2f;
export const ABS_MT_POSITION_X = 0x35;
export const ABS_MT_POSITION_Y = 0x36;
export const ABS_MT_TRACKING_ID = 0x39;
export const BTN_LEFT = 0x110;
export const BTN_RIGHT = 0x111;
export const BTN_MIDDLE = 0x112;
export const BTN_TOUCH = 0x14a;
export const INPUT_PROP_DIRECT = 0x01;
export const BUS_VIRTUAL = 0x06;

export const ABI: AbiManifest = {
  headers: ['linux/uinput.h', 'linux/input.h'],
  structs: {
    'struct input_id': { type: input_id },
    'struct uinput_setup': { type: uinput_setup },
    'struct input_absinfo': { type: input_absinfo },
    'struct uinput_abs_setup': { type: uinput_abs_setup },
    'struct input_event': { type: input_event, members: ['type', 'code', 'value'] },
  },
  constants: {
    UI_DEV_CREATE,
    UI_DEV_DESTROY,
    UI_DEV_SETUP,
    UI_ABS_SETUP,
    UI_SET_EVBIT,
    UI_SET_KEYBIT,
    UI_SET_RELBIT,
    UI_SET_ABSBIT,
    UI_SET_PROPBIT,
    EV_SYN,
    EV_KEY,
    EV_REL,
    EV_ABS,
    SYN_REPORT,
    REL_X,
    REL_Y,
    REL_WHEEL,
    ABS_X,
    ABS_Y,
    ABS_MT_SLOT,
    ABS_MT_POSITION_X,
    ABS_MT_POSITION_Y,
    ABS_MT_TRACKING_ID,
    BTN_LEFT,
    BTN_RIGHT,
    BTN_MIDDLE,
    BTN_TOUCH,
    INPUT_PROP_DIRECT,
    BUS_VIRTUAL,
  },
};
