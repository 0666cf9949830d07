// Thin koffi bindings to libseat (Debian's libseat1): a seat session through seatd, logind
// or libseat's builtin backend. The caller drives it: libseat_get_fd() is watched in the
// event loop, libseat_dispatch() runs on the main thread and calls the listener's
// enable/disable callbacks from inside it.
//
// libseat logs through a printf-style handler with a va_list; the message is formatted
// with libc's vsnprintf inside the callback (on x86-64 and aarch64 a va_list argument is
// passed as a pointer, which koffi carries as `void *`).
import koffi from 'koffi';
import type { AbiManifest } from './abi.js';

let lib: koffi.IKoffiLib | null = null;
let loadError = '';
try {
  lib = koffi.load('libseat.so.1');
} catch (e) {
  loadError = (e as Error).message;
}

export function libseatMissing(): string | null {
  return lib ? null : `libseat could not be loaded (${loadError}): install Debian's libseat1 (and seatd, or use logind)`;
}

export const SeatCallback = koffi.proto('void gp_seat_cb(void *seat, void *userdata)');
/** struct libseat_seat_listener: libseat keeps the pointer, so it lives in memory we own. */
export const libseat_seat_listener = koffi.struct('libseat_seat_listener', {
  enable_seat: koffi.pointer(SeatCallback),
  disable_seat: koffi.pointer(SeatCallback),
});
export const LogCallback = koffi.proto('void gp_seat_log_cb(int level, const char *format, void *args)');

// enum libseat_log_level
export const LIBSEAT_LOG_LEVEL_SILENT = 0;
export const LIBSEAT_LOG_LEVEL_ERROR = 1;
export const LIBSEAT_LOG_LEVEL_INFO = 2;
export const LIBSEAT_LOG_LEVEL_DEBUG = 3;

type Fn = koffi.KoffiFunction;
export interface LibseatBindings {
  openSeat: Fn;
  closeSeat: Fn;
  disableSeat: Fn;
  openDevice: Fn;
  closeDevice: Fn;
  seatName: Fn;
  switchSession: Fn;
  getFd: Fn;
  dispatch: Fn;
  setLogHandler: Fn;
  setLogLevel: Fn;
  /** libc's vsnprintf, for the log handler's va_list. */
  vsnprintf: Fn;
}

let bound: LibseatBindings | null = null;

export function libseat(): LibseatBindings {
  if (bound) return bound;
  if (!lib) throw new Error(libseatMissing()!);
  const l = lib;
  const libc = koffi.load('libc.so.6');
  bound = {
    openSeat: l.func('void *libseat_open_seat(const libseat_seat_listener *listener, void *userdata)'),
    closeSeat: l.func('int libseat_close_seat(void *seat)'),
    disableSeat: l.func('int libseat_disable_seat(void *seat)'),
    openDevice: l.func('int libseat_open_device(void *seat, const char *path, _Out_ int *fd)'),
    closeDevice: l.func('int libseat_close_device(void *seat, int device_id)'),
    seatName: l.func('const char *libseat_seat_name(void *seat)'),
    switchSession: l.func('int libseat_switch_session(void *seat, int session)'),
    getFd: l.func('int libseat_get_fd(void *seat)'),
    dispatch: l.func('int libseat_dispatch(void *seat, int timeout)'),
    setLogHandler: l.func('void libseat_set_log_handler(gp_seat_log_cb *handler)'),
    setLogLevel: l.func('void libseat_set_log_level(int level)'),
    vsnprintf: libc.func('int vsnprintf(_Out_ uint8_t *buf, size_t size, const char *format, void *args)'),
  };
  return bound;
}

export const ABI: AbiManifest = {
  headers: ['libseat.h'],
  structs: { 'struct libseat_seat_listener': { type: libseat_seat_listener } },
  constants: {
    LIBSEAT_LOG_LEVEL_SILENT,
    LIBSEAT_LOG_LEVEL_ERROR,
    LIBSEAT_LOG_LEVEL_INFO,
    LIBSEAT_LOG_LEVEL_DEBUG,
  },
};
