// Thin koffi bindings to libsystemd's sd-bus: the D-Bus client guestplane speaks to a VMM
// (QEMU's -display dbus) with. sd-bus does the wire format, authentication and unix-fd
// passing; nothing here blocks (sd_bus_process is driven from the event loop, see
// plugin/dbus/connection.ts). Only the non-variadic calls are bound (read_basic /
// append_basic instead of the printf-like ones), so no argument goes through a C varargs
// list whose types koffi would have to guess.
import koffi from 'koffi';
import type { AbiManifest } from './abi.js';

let lib: koffi.IKoffiLib | null = null;
let loadError: Error | null = null;
try {
  lib = koffi.load('libsystemd.so.0');
} catch (e) {
  loadError = e instanceof Error ? e : new Error(String(e));
}

/** Why sd-bus cannot be used here, or null. */
export function sdbusMissing(): string | null {
  return lib ? null : `libsystemd.so.0 could not be loaded (${loadError?.message ?? 'unknown'}): install Debian's libsystemd0`;
}

function need(): koffi.IKoffiLib {
  if (!lib) throw new Error(sdbusMissing() ?? 'libsystemd missing');
  return lib;
}

/** struct sd_bus_error (only read: names and messages of error replies). */
export const sd_bus_error = koffi.struct('sd_bus_error', {
  name: 'const char *',
  message: 'const char *',
  _need_free: 'int',
});

/** sd_id128_t: a server's bus id (sd_bus_set_server). */
export const sd_id128_t = koffi.union('sd_id128_t', {
  bytes: koffi.array('uint8_t', 16),
  qwords: koffi.array('uint64_t', 2),
});

export const MessageHandler = koffi.proto('int gp_sd_bus_message_handler(void *m, void *userdata, void *ret_error)');

/** SD_BUS_MESSAGE_* (sd_bus_message_get_type). */
export const SD_BUS_MESSAGE_METHOD_CALL = 1;
export const SD_BUS_MESSAGE_METHOD_RETURN = 2;
export const SD_BUS_MESSAGE_METHOD_ERROR = 3;
export const SD_BUS_MESSAGE_SIGNAL = 4;

type Fn = koffi.KoffiFunction;
interface Bindings {
  new: Fn;
  setAddress: Fn;
  setFd: Fn;
  setBusClient: Fn;
  setServer: Fn;
  negotiateFds: Fn;
  start: Fn;
  flushCloseUnref: Fn;
  isOpen: Fn;
  getUniqueName: Fn;
  send: Fn;
  getFd: Fn;
  getEvents: Fn;
  getTimeout: Fn;
  process: Fn;
  addObject: Fn;
  callAsync: Fn;
  slotUnref: Fn;
  newMethodCall: Fn;
  newMethodReturn: Fn;
  newMethodError: Fn;
  messageRef: Fn;
  messageUnref: Fn;
  getType: Fn;
  getSignature: Fn;
  getPath: Fn;
  getInterface: Fn;
  getMember: Fn;
  getError: Fn;
  appendBasic: Fn;
  appendArray: Fn;
  openContainer: Fn;
  closeContainer: Fn;
  readBasic: Fn;
  readArray: Fn;
  enterContainer: Fn;
  exitContainer: Fn;
  peekType: Fn;
  atEnd: Fn;
}

let bound: Bindings | null = null;

/** The sd-bus functions; throws (naming the package) when libsystemd is missing. */
export function sdbus(): Bindings {
  if (bound) return bound;
  const l = need();
  bound = {
    new: l.func('int sd_bus_new(_Out_ void **ret)'),
    setAddress: l.func('int sd_bus_set_address(void *bus, const char *address)'),
    setFd: l.func('int sd_bus_set_fd(void *bus, int input_fd, int output_fd)'),
    setBusClient: l.func('int sd_bus_set_bus_client(void *bus, int b)'),
    setServer: l.func('int sd_bus_set_server(void *bus, int b, sd_id128_t bus_id)'),
    negotiateFds: l.func('int sd_bus_negotiate_fds(void *bus, int b)'),
    start: l.func('int sd_bus_start(void *bus)'),
    flushCloseUnref: l.func('void *sd_bus_flush_close_unref(void *bus)'),
    isOpen: l.func('int sd_bus_is_open(void *bus)'),
    getUniqueName: l.func('int sd_bus_get_unique_name(void *bus, _Out_ const char **unique)'),
    send: l.func('int sd_bus_send(void *bus, void *m, _Out_ uint64_t *cookie)'),
    getFd: l.func('int sd_bus_get_fd(void *bus)'),
    getEvents: l.func('int sd_bus_get_events(void *bus)'),
    getTimeout: l.func('int sd_bus_get_timeout(void *bus, _Out_ uint64_t *timeout_usec)'),
    process: l.func('int sd_bus_process(void *bus, void *r)'),
    addObject: l.func('int sd_bus_add_object(void *bus, _Out_ void **slot, const char *path, gp_sd_bus_message_handler *cb, void *userdata)'),
    callAsync: l.func('int sd_bus_call_async(void *bus, _Out_ void **slot, void *m, gp_sd_bus_message_handler *cb, void *userdata, uint64_t usec)'),
    slotUnref: l.func('void *sd_bus_slot_unref(void *slot)'),
    newMethodCall: l.func('int sd_bus_message_new_method_call(void *bus, _Out_ void **m, const char *destination, const char *path, const char *interface, const char *member)'),
    newMethodReturn: l.func('int sd_bus_message_new_method_return(void *call, _Out_ void **m)'),
    newMethodError: l.func('int sd_bus_message_new_method_error(void *call, _Out_ void **m, const sd_bus_error *e)'),
    messageRef: l.func('void *sd_bus_message_ref(void *m)'),
    messageUnref: l.func('void *sd_bus_message_unref(void *m)'),
    getType: l.func('int sd_bus_message_get_type(void *m, _Out_ uint8_t *type)'),
    getSignature: l.func('const char *sd_bus_message_get_signature(void *m, int complete)'),
    getPath: l.func('const char *sd_bus_message_get_path(void *m)'),
    getInterface: l.func('const char *sd_bus_message_get_interface(void *m)'),
    getMember: l.func('const char *sd_bus_message_get_member(void *m)'),
    getError: l.func('const sd_bus_error *sd_bus_message_get_error(void *m)'),
    appendBasic: l.func('int sd_bus_message_append_basic(void *m, char type, const void *p)'),
    appendArray: l.func('int sd_bus_message_append_array(void *m, char type, const void *ptr, size_t size)'),
    openContainer: l.func('int sd_bus_message_open_container(void *m, char type, const char *contents)'),
    closeContainer: l.func('int sd_bus_message_close_container(void *m)'),
    readBasic: l.func('int sd_bus_message_read_basic(void *m, char type, void *p)'),
    readArray: l.func('int sd_bus_message_read_array(void *m, char type, _Out_ void **ptr, _Out_ size_t *size)'),
    enterContainer: l.func('int sd_bus_message_enter_container(void *m, char type, const char *contents)'),
    exitContainer: l.func('int sd_bus_message_exit_container(void *m)'),
    peekType: l.func('int sd_bus_message_peek_type(void *m, _Out_ char *type, _Out_ const char **contents)'),
    atEnd: l.func('int sd_bus_message_at_end(void *m, int complete)'),
  };
  return bound;
}

/** Registers a JS function as an sd_bus_message_handler_t (unregister with koffi.unregister). */
export function registerHandler(fn: (m: unknown, userdata: unknown, retError: unknown) => number): koffi.IKoffiRegisteredCallback {
  return koffi.register(fn, koffi.pointer(MessageHandler));
}

export const ABI: AbiManifest = {
  headers: ['systemd/sd-bus.h', 'systemd/sd-id128.h'],
  structs: { sd_bus_error: { type: sd_bus_error }, sd_id128_t: { type: sd_id128_t } },
  constants: {
    SD_BUS_MESSAGE_METHOD_CALL,
    SD_BUS_MESSAGE_METHOD_RETURN,
    SD_BUS_MESSAGE_METHOD_ERROR,
    SD_BUS_MESSAGE_SIGNAL,
  },
};
