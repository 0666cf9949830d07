// Thin koffi bindings to libwayland-client (wayland-client-core.h). No policy here, as in
// ffi/wayland.ts (the server side): a failing call throws a SysError naming the call and
// its object. protocols/client-runtime.ts builds proxies, dispatch and the connection's
// place on the Node event loop on top.
//
// Ownership: a display pointer from displayConnect*() is the caller's until
// displayDisconnect() (which closes the socket; an fd given to displayConnectToFd() then
// belongs to the display). Proxies are the caller's until proxyDestroy() or a marshal with
// WL_MARSHAL_FLAG_DESTROY. Nothing here keeps a reference of its own.
//
// Blocking: displayDispatch() and displayRoundtrip() wait in poll(2) for the compositor and
// must never run on the Node main thread (they are bound for completeness and for tools);
// the runtime uses prepareRead/readEvents/dispatchPending when the fd is readable.
import koffi from 'koffi';
import type { AbiManifest } from './abi.js';
import { SysError, errno, lastErrno } from './libc.js';

export const libwaylandClient = koffi.load('libwayland-client.so.0');
const lib = libwaylandClient;

/** A native pointer as koffi hands it out (an External), or null. */
export type Pointer = unknown;

export const wl_proxy = koffi.opaque('wl_proxy');
export const wl_client_display = koffi.opaque('wl_client_display');

/** int (*wl_dispatcher_func_t)(const void *impl, void *target, uint32_t opcode, const struct wl_message *msg, union wl_argument *args) */
export const wl_client_dispatcher_func_t = koffi.proto(
  'int wl_client_dispatcher_func_t(const void *impl, void *target, uint32_t opcode, const void *msg, void *args)',
);

/** wl_proxy_marshal_array_flags(): destroy the proxy after sending (a destructor request). */
export const WL_MARSHAL_FLAG_DESTROY = 1 << 0;

export const ABI: AbiManifest = {
  headers: ['wayland-client-core.h'],
  structs: {},
  constants: { WL_MARSHAL_FLAG_DESTROY },
};

const c = {
  wl_display_connect: lib.func('void *wl_display_connect(const char *name)'),
  wl_display_connect_to_fd: lib.func('void *wl_display_connect_to_fd(int fd)'),
  wl_display_disconnect: lib.func('void wl_display_disconnect(void *display)'),
  wl_display_get_fd: lib.func('int wl_display_get_fd(void *display)'),
  wl_display_dispatch: lib.func('int wl_display_dispatch(void *display)'),
  wl_display_dispatch_pending: lib.func('int wl_display_dispatch_pending(void *display)'),
  wl_display_prepare_read: lib.func('int wl_display_prepare_read(void *display)'),
  wl_display_read_events: lib.func('int wl_display_read_events(void *display)'),
  wl_display_cancel_read: lib.func('void wl_display_cancel_read(void *display)'),
  wl_display_flush: lib.func('int wl_display_flush(void *display)'),
  wl_display_roundtrip: lib.func('int wl_display_roundtrip(void *display)'),
  wl_display_get_error: lib.func('int wl_display_get_error(void *display)'),
  wl_display_get_protocol_error: lib.func(
    'uint32_t wl_display_get_protocol_error(void *display, _Out_ void **iface, _Out_ uint32_t *id)',
  ),
  wl_proxy_marshal_array_flags: lib.func(
    'void *wl_proxy_marshal_array_flags(void *proxy, uint32_t opcode, const void *iface, uint32_t version, uint32_t flags, void *args)',
  ),
  wl_proxy_add_dispatcher: lib.func(
    'int wl_proxy_add_dispatcher(void *proxy, wl_client_dispatcher_func_t *dispatcher, const void *impl, void *data)',
  ),
  wl_proxy_destroy: lib.func('void wl_proxy_destroy(void *proxy)'),
  wl_proxy_get_version: lib.func('uint32_t wl_proxy_get_version(void *proxy)'),
  wl_proxy_get_id: lib.func('uint32_t wl_proxy_get_id(void *proxy)'),
  wl_proxy_get_class: lib.func('const char *wl_proxy_get_class(void *proxy)'),
  wl_proxy_set_user_data: lib.func('void wl_proxy_set_user_data(void *proxy, void *data)'),
  wl_proxy_get_user_data: lib.func('void *wl_proxy_get_user_data(void *proxy)'),
};

/** Connects to `name` (a socket name in $XDG_RUNTIME_DIR or an absolute path), or $WAYLAND_DISPLAY / wayland-0 when null. */
export function displayConnect(name: string | null): Pointer {
  koffi.errno(0);
  const d = c.wl_display_connect(name) as Pointer;
  if (d === null) {
    const what = name ?? process.env['WAYLAND_DISPLAY'] ?? 'wayland-0';
    const hint = process.env['XDG_RUNTIME_DIR'] || (name ?? '').startsWith('/')
      ? 'is a Wayland compositor running there?'
      : 'XDG_RUNTIME_DIR is not set';
    throw new SysError('wl_display_connect', what, lastErrno() || errno.ENOENT, hint);
  }
  return d;
}
/** Wraps a connected socket; the display owns `fd` from now on (closed by displayDisconnect). */
export function displayConnectToFd(fd: number): Pointer {
  koffi.errno(0);
  const d = c.wl_display_connect_to_fd(fd) as Pointer;
  if (d === null) throw new SysError('wl_display_connect_to_fd', `fd ${fd}`, lastErrno() || errno.ENOMEM);
  return d;
}
export function displayDisconnect(display: Pointer): void {
  c.wl_display_disconnect(display);
}
export function displayGetFd(display: Pointer): number {
  return c.wl_display_get_fd(display) as number;
}
/** Blocks until events arrive. Never on the Node main thread. Returns the number dispatched, -1 on error (see displayGetError). */
export function displayDispatch(display: Pointer): number {
  return c.wl_display_dispatch(display) as number;
}
/** Runs the handlers of events already read; never blocks. -1 on error (see displayGetError). */
export function displayDispatchPending(display: Pointer): number {
  return c.wl_display_dispatch_pending(display) as number;
}
/** 0: the caller may read (then readEvents or cancelRead); -1: events are queued, dispatch them first (errno EAGAIN). */
export function displayPrepareRead(display: Pointer): number {
  return c.wl_display_prepare_read(display) as number;
}
/** Reads what the socket has (never blocks when the fd polled readable). -1 on error; errno tells. */
export function displayReadEvents(display: Pointer): number {
  koffi.errno(0);
  return c.wl_display_read_events(display) as number;
}
export function displayCancelRead(display: Pointer): void {
  c.wl_display_cancel_read(display);
}
/** Sends what is buffered. Returns bytes sent, or -1 with errno (EAGAIN: the socket is full; poll for writable). */
export function displayFlush(display: Pointer): { sent: number; errno: number } {
  koffi.errno(0);
  const sent = c.wl_display_flush(display) as number;
  return { sent, errno: sent < 0 ? lastErrno() : 0 };
}
/** Blocks until the compositor answered everything sent. Never on the Node main thread. */
export function displayRoundtrip(display: Pointer): number {
  return c.wl_display_roundtrip(display) as number;
}
/** The errno of the display's fatal error, or 0 (EPROTO: a protocol error, see displayGetProtocolError). */
export function displayGetError(display: Pointer): number {
  return c.wl_display_get_error(display) as number;
}
/** The protocol error that ended the connection: code, the object's interface (pointer) and id. */
export function displayGetProtocolError(display: Pointer): { code: number; iface: Pointer; id: number } {
  const iface: Pointer[] = [null];
  const id = [0];
  const code = c.wl_display_get_protocol_error(display, iface, id) as number;
  return { code, iface: iface[0], id: id[0]! };
}

/**
 * Sends request `opcode` on `proxy`. `args` points at one union wl_argument per signature
 * letter. For a request with a new_id, `iface`/`version` describe the new object and the
 * new proxy is returned (null when the display has failed); otherwise pass null/0.
 */
export function proxyMarshalArrayFlags(proxy: Pointer, opcode: number, iface: Pointer, version: number, flags: number, args: Pointer | Buffer): Pointer {
  return c.wl_proxy_marshal_array_flags(proxy, opcode, iface, version, flags, args);
}
/** `dispatcher`: a registered wl_client_dispatcher_func_t. Fails (-1) when the proxy already has a listener. */
export function proxyAddDispatcher(proxy: Pointer, dispatcher: Pointer, impl: Pointer, data: Pointer): void {
  if ((c.wl_proxy_add_dispatcher(proxy, dispatcher, impl, data) as number) < 0) {
    throw new SysError('wl_proxy_add_dispatcher', proxyGetClass(proxy), errno.EINVAL, 'the proxy already has a listener');
  }
}
export function proxyDestroy(proxy: Pointer): void {
  c.wl_proxy_destroy(proxy);
}
export function proxyGetVersion(proxy: Pointer): number {
  return c.wl_proxy_get_version(proxy) as number;
}
export function proxyGetId(proxy: Pointer): number {
  return c.wl_proxy_get_id(proxy) as number;
}
export function proxyGetClass(proxy: Pointer): string {
  return c.wl_proxy_get_class(proxy) as string;
}
export function proxySetUserData(proxy: Pointer, data: Pointer): void {
  c.wl_proxy_set_user_data(proxy, data);
}
export function proxyGetUserData(proxy: Pointer): Pointer {
  return c.wl_proxy_get_user_data(proxy);
}
