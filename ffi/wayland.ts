// Thin koffi bindings to libwayland-server (wayland-server-core.h, wayland-util.h).
// No policy here, as in ffi/libc.ts: a failing call throws a SysError naming the call
// and its object. protocols/runtime.ts builds resources, globals and dispatch on top.
//
// Event-loop integration: libwayland's wl_event_loop is an epoll fd. The Node event loop
// must never block in wl_event_loop_dispatch(), so driveEventLoop() below has the Node
// event loop's own epoll watch that fd (uv_poll, ffi/uv.ts) and runs
// wl_event_loop_dispatch(loop, 0) on the main thread when it is readable. Every callback
// into JS (request dispatch, bind, destroy) therefore runs on the main thread.
import koffi from 'koffi';
import { FdWatch, UV_READABLE } from './uv.js';
import type { AbiManifest } from './abi.js';
import { SysError, errno, lastErrno, close } from './libc.js';

export const libwaylandServer = koffi.load('libwayland-server.so.0');
const lib = libwaylandServer;

/** A native pointer as koffi hands it out (an External), or null. */
export type Pointer = unknown;

// --- types --------------------------------------------------------------------------

export const wl_display = koffi.opaque('wl_display');
export const wl_event_loop = koffi.opaque('wl_event_loop');
export const wl_client = koffi.opaque('wl_client');
export const wl_resource = koffi.opaque('wl_resource');
export const wl_global = koffi.opaque('wl_global');

/** struct wl_message (wayland-util.h) */
export const wl_message = koffi.struct('wl_message', {
  name: 'const char *',
  signature: 'const char *',
  types: 'void *', // const struct wl_interface **
});
/** struct wl_interface (wayland-util.h) */
export const wl_interface = koffi.struct('wl_interface', {
  name: 'const char *',
  version: 'int',
  method_count: 'int',
  methods: 'void *', // const struct wl_message *
  event_count: 'int',
  events: 'void *', // const struct wl_message *
});
/** union wl_argument (wayland-util.h) */
export const wl_argument = koffi.union('wl_argument', {
  i: 'int32_t',
  u: 'uint32_t',
  f: 'int32_t', // wl_fixed_t
  s: 'const char *',
  o: 'void *', // struct wl_object *
  n: 'uint32_t',
  a: 'void *', // struct wl_array *
  h: 'int32_t',
});
/** struct wl_array (wayland-util.h) */
export const wl_array = koffi.struct('wl_array', {
  size: 'size_t',
  alloc: 'size_t',
  data: 'void *',
});
/** struct wl_list (wayland-util.h) */
export const wl_list = koffi.struct('wl_list', {
  prev: 'void *',
  next: 'void *',
});
/** struct wl_listener (wayland-server-core.h) */
export const wl_listener = koffi.struct('wl_listener', {
  link: wl_list,
  notify: 'void *', // wl_notify_func_t
});

/** int (*wl_dispatcher_func_t)(const void *impl, void *target, uint32_t opcode, const struct wl_message *msg, union wl_argument *args) */
export const wl_dispatcher_func_t = koffi.proto(
  'int wl_dispatcher_func_t(const void *impl, wl_resource *target, uint32_t opcode, const void *msg, void *args)',
);
/** void (*wl_resource_destroy_func_t)(struct wl_resource *resource) */
export const wl_resource_destroy_func_t = koffi.proto('void wl_resource_destroy_func_t(wl_resource *resource)');
/** void (*wl_global_bind_func_t)(struct wl_client *client, void *data, uint32_t version, uint32_t id) */
export const wl_global_bind_func_t = koffi.proto(
  'void wl_global_bind_func_t(wl_client *client, void *data, uint32_t version, uint32_t id)',
);
/** void (*wl_notify_func_t)(struct wl_listener *listener, void *data) */
export const wl_notify_func_t = koffi.proto('void wl_notify_func_t(void *listener, void *data)');

// Constants of wayland-server-core.h / wayland-server-protocol.h that the runtime uses.
export const WL_EVENT_READABLE = 0x01;
export const WL_EVENT_WRITABLE = 0x02;
export const WL_EVENT_HANGUP = 0x04;
export const WL_EVENT_ERROR = 0x08;
/** wl_display.error codes (wayland.xml) */
export const WL_DISPLAY_ERROR_INVALID_OBJECT = 0;
export const WL_DISPLAY_ERROR_INVALID_METHOD = 1;
export const WL_DISPLAY_ERROR_NO_MEMORY = 2;
export const WL_DISPLAY_ERROR_IMPLEMENTATION = 3;

/** ABI manifest (ffi/abi.ts; checked against the C headers by test/unit/abi.test.ts). */
export const ABI: AbiManifest = {
  headers: ['wayland-util.h', 'wayland-server-core.h', 'wayland-server-protocol.h'],
  structs: {
    'struct wl_message': { type: wl_message },
    'struct wl_interface': { type: wl_interface },
    'union wl_argument': { type: wl_argument },
    'struct wl_array': { type: wl_array },
    'struct wl_list': { type: wl_list },
    'struct wl_listener': { type: wl_listener },
  },
  constants: {
    WL_EVENT_READABLE,
    WL_EVENT_WRITABLE,
    WL_EVENT_HANGUP,
    WL_EVENT_ERROR,
    WL_DISPLAY_ERROR_INVALID_OBJECT,
    WL_DISPLAY_ERROR_INVALID_METHOD,
    WL_DISPLAY_ERROR_NO_MEMORY,
    WL_DISPLAY_ERROR_IMPLEMENTATION,
  },
};

const LAYOUT_TYPES = { wl_message, wl_interface, wl_argument, wl_array, wl_list, wl_listener } as const;

/** Size and member offsets (bytes) of one of the structs above, as plain numbers. */
export function layoutOf(name: keyof typeof LAYOUT_TYPES): { size: number; offsets: Record<string, number> } {
  const type = LAYOUT_TYPES[name];
  const offsets: Record<string, number> = {};
  for (const m of Object.values(koffi.introspect(type).members ?? {})) offsets[m.name] = m.offset;
  return { size: koffi.sizeof(type), offsets };
}

// --- functions ----------------------------------------------------------------------

const c = {
  wl_display_create: lib.func('wl_display *wl_display_create(void)'),
  wl_display_destroy: lib.func('void wl_display_destroy(wl_display *display)'),
  wl_display_add_socket: lib.func('int wl_display_add_socket(wl_display *display, const char *name)'),
  wl_display_add_socket_auto: lib.func('const char *wl_display_add_socket_auto(wl_display *display)'),
  wl_display_add_socket_fd: lib.func('int wl_display_add_socket_fd(wl_display *display, int fd)'),
  wl_display_get_event_loop: lib.func('wl_event_loop *wl_display_get_event_loop(wl_display *display)'),
  wl_display_run: lib.func('void wl_display_run(wl_display *display)'),
  wl_display_terminate: lib.func('void wl_display_terminate(wl_display *display)'),
  wl_display_flush_clients: lib.func('void wl_display_flush_clients(wl_display *display)'),
  wl_display_destroy_clients: lib.func('void wl_display_destroy_clients(wl_display *display)'),
  wl_display_get_serial: lib.func('uint32_t wl_display_get_serial(wl_display *display)'),
  wl_display_next_serial: lib.func('uint32_t wl_display_next_serial(wl_display *display)'),
  wl_event_loop_get_fd: lib.func('int wl_event_loop_get_fd(wl_event_loop *loop)'),
  wl_event_loop_dispatch: lib.func('int wl_event_loop_dispatch(wl_event_loop *loop, int timeout)'),
  wl_event_loop_dispatch_idle: lib.func('void wl_event_loop_dispatch_idle(wl_event_loop *loop)'),
  wl_global_create: lib.func(
    'wl_global *wl_global_create(wl_display *display, const void *iface, int version, void *data, wl_global_bind_func_t *bind)',
  ),
  wl_global_destroy: lib.func('void wl_global_destroy(wl_global *global)'),
  wl_global_remove: lib.func('void wl_global_remove(wl_global *global)'),
  wl_global_get_version: lib.func('uint32_t wl_global_get_version(wl_global *global)'),
  wl_resource_create: lib.func(
    'wl_resource *wl_resource_create(wl_client *client, const void *iface, int version, uint32_t id)',
  ),
  wl_resource_destroy: lib.func('void wl_resource_destroy(wl_resource *resource)'),
  wl_resource_get_id: lib.func('uint32_t wl_resource_get_id(wl_resource *resource)'),
  wl_resource_get_version: lib.func('int wl_resource_get_version(wl_resource *resource)'),
  wl_resource_get_client: lib.func('wl_client *wl_resource_get_client(wl_resource *resource)'),
  wl_resource_get_class: lib.func('const char *wl_resource_get_class(wl_resource *resource)'),
  wl_resource_set_dispatcher: lib.func(
    'void wl_resource_set_dispatcher(wl_resource *resource, wl_dispatcher_func_t *dispatcher, const void *impl, void *data, wl_resource_destroy_func_t *destroy)',
  ),
  wl_resource_post_event_array: lib.func(
    'void wl_resource_post_event_array(wl_resource *resource, uint32_t opcode, void *args)',
  ),
  wl_resource_post_error: lib.func('void wl_resource_post_error(wl_resource *resource, uint32_t code, const char *msg, ...)'),
  wl_resource_post_no_memory: lib.func('void wl_resource_post_no_memory(wl_resource *resource)'),
  wl_resource_get_user_data: lib.func('void *wl_resource_get_user_data(wl_resource *resource)'),
  wl_resource_set_user_data: lib.func('void wl_resource_set_user_data(wl_resource *resource, void *data)'),
  wl_resource_add_destroy_listener: lib.func('void wl_resource_add_destroy_listener(wl_resource *resource, void *listener)'),
  wl_client_create: lib.func('wl_client *wl_client_create(wl_display *display, int fd)'),
  wl_client_destroy: lib.func('void wl_client_destroy(wl_client *client)'),
  wl_client_flush: lib.func('void wl_client_flush(wl_client *client)'),
  wl_client_get_display: lib.func('wl_display *wl_client_get_display(wl_client *client)'),
  wl_client_get_fd: lib.func('int wl_client_get_fd(wl_client *client)'),
  wl_client_get_credentials: lib.func(
    'void wl_client_get_credentials(wl_client *client, _Out_ int32_t *pid, _Out_ uint32_t *uid, _Out_ uint32_t *gid)',
  ),
  wl_client_post_no_memory: lib.func('void wl_client_post_no_memory(wl_client *client)'),
  wl_client_post_implementation_error: lib.func(
    'void wl_client_post_implementation_error(wl_client *client, const char *msg, ...)',
  ),
  wl_client_add_destroy_listener: lib.func('void wl_client_add_destroy_listener(wl_client *client, void *listener)'),
};

function nonNull<T>(ptr: T, call: string, object: string, hint?: string): NonNullable<T> {
  if (ptr === null || ptr === undefined) throw new SysError(call, object, lastErrno() || errno.ENOMEM, hint);
  return ptr as NonNullable<T>;
}

/** The numeric address of a pointer (0n for null). */
export function addressOf(ptr: Pointer): bigint {
  return ptr === null || ptr === undefined ? 0n : koffi.address(ptr);
}

export function displayCreate(): Pointer {
  return nonNull(c.wl_display_create(), 'wl_display_create', 'new display');
}
export function displayDestroy(display: Pointer): void {
  c.wl_display_destroy(display);
}
/** Listens on $XDG_RUNTIME_DIR/`name` (or on `name` when absolute, libwayland >= 1.22). */
export function displayAddSocket(display: Pointer, name: string): void {
  koffi.errno(0);
  if ((c.wl_display_add_socket(display, name) as number) < 0) {
    const e = lastErrno();
    const hint = process.env['XDG_RUNTIME_DIR'] ? undefined : 'XDG_RUNTIME_DIR is not set';
    throw new SysError('wl_display_add_socket', name, e || errno.EINVAL, hint);
  }
}
/** Listens on the first free wayland-N socket; returns its name. */
export function displayAddSocketAuto(display: Pointer): string {
  koffi.errno(0);
  const name = c.wl_display_add_socket_auto(display) as string | null;
  if (name === null) {
    const hint = process.env['XDG_RUNTIME_DIR'] ? undefined : 'XDG_RUNTIME_DIR is not set';
    throw new SysError('wl_display_add_socket_auto', 'display', lastErrno() || errno.EINVAL, hint);
  }
  return name;
}
/** Listens on an already bound and listening socket; the display owns `fd` on success. */
export function displayAddSocketFd(display: Pointer, fd: number): void {
  if ((c.wl_display_add_socket_fd(display, fd) as number) < 0) {
    throw new SysError('wl_display_add_socket_fd', `fd ${fd}`, lastErrno() || errno.EINVAL);
  }
}
export function displayGetEventLoop(display: Pointer): Pointer {
  return nonNull(c.wl_display_get_event_loop(display), 'wl_display_get_event_loop', 'display');
}
/** Blocks in libwayland's own loop until displayTerminate(). Not for the Node main thread. */
export function displayRun(display: Pointer): void {
  c.wl_display_run(display);
}
export function displayTerminate(display: Pointer): void {
  c.wl_display_terminate(display);
}
export function displayFlushClients(display: Pointer): void {
  c.wl_display_flush_clients(display);
}
export function displayDestroyClients(display: Pointer): void {
  c.wl_display_destroy_clients(display);
}
export function displayGetSerial(display: Pointer): number {
  return c.wl_display_get_serial(display) as number;
}
export function displayNextSerial(display: Pointer): number {
  return c.wl_display_next_serial(display) as number;
}

/** The epoll fd behind a wl_event_loop: readable when dispatch has work. */
export function eventLoopGetFd(loop: Pointer): number {
  return c.wl_event_loop_get_fd(loop) as number;
}
/** One round of the loop. `timeoutMs` 0 never blocks; only 0 belongs on the Node main thread. */
export function eventLoopDispatch(loop: Pointer, timeoutMs: number): void {
  if ((c.wl_event_loop_dispatch(loop, timeoutMs) as number) < 0) {
    const e = lastErrno();
    if (e === errno.EINTR) return;
    throw new SysError('wl_event_loop_dispatch', 'event loop', e);
  }
}
export function eventLoopDispatchIdle(loop: Pointer): void {
  c.wl_event_loop_dispatch_idle(loop);
}

/** `iface` is a const struct wl_interface * (built by protocols/runtime.ts); `bind` a registered wl_global_bind_func_t. */
export function globalCreate(display: Pointer, iface: Pointer, version: number, data: Pointer, bind: Pointer, name = 'global'): Pointer {
  return nonNull(c.wl_global_create(display, iface, version, data, bind), 'wl_global_create', name,
    'version above the interface version, or out of memory');
}
export function globalDestroy(global: Pointer): void {
  c.wl_global_destroy(global);
}
/** Withdraws the global from clients (wl_registry.global_remove) without destroying it. */
export function globalRemove(global: Pointer): void {
  c.wl_global_remove(global);
}
export function globalGetVersion(global: Pointer): number {
  return c.wl_global_get_version(global) as number;
}

export function resourceCreate(client: Pointer, iface: Pointer, version: number, id: number, name = 'resource'): Pointer {
  return nonNull(c.wl_resource_create(client, iface, version, id), 'wl_resource_create', `${name}@${id}`,
    'id in use or out of range, or out of memory');
}
export function resourceDestroy(resource: Pointer): void {
  c.wl_resource_destroy(resource);
}
export function resourceGetId(resource: Pointer): number {
  return c.wl_resource_get_id(resource) as number;
}
export function resourceGetVersion(resource: Pointer): number {
  return c.wl_resource_get_version(resource) as number;
}
export function resourceGetClient(resource: Pointer): Pointer {
  return c.wl_resource_get_client(resource);
}
export function resourceGetClass(resource: Pointer): string {
  return c.wl_resource_get_class(resource) as string;
}
/** `dispatcher` / `destroy`: registered wl_dispatcher_func_t / wl_resource_destroy_func_t callbacks (or null). */
export function resourceSetDispatcher(resource: Pointer, dispatcher: Pointer, impl: Pointer, data: Pointer, destroy: Pointer): void {
  c.wl_resource_set_dispatcher(resource, dispatcher, impl, data, destroy);
}
/** `args` points at one union wl_argument (8 bytes) per signature letter. */
export function resourcePostEventArray(resource: Pointer, opcode: number, args: Pointer | Buffer): void {
  c.wl_resource_post_event_array(resource, opcode, args);
}
export function resourcePostError(resource: Pointer, code: number, message: string): void {
  c.wl_resource_post_error(resource, code, '%s', 'const char *', message);
}
export function resourcePostNoMemory(resource: Pointer): void {
  c.wl_resource_post_no_memory(resource);
}
export function resourceGetUserData(resource: Pointer): Pointer {
  return c.wl_resource_get_user_data(resource);
}
export function resourceSetUserData(resource: Pointer, data: Pointer): void {
  c.wl_resource_set_user_data(resource, data);
}
/** `listener` points at a struct wl_listener that stays valid until it is notified. */
export function resourceAddDestroyListener(resource: Pointer, listener: Pointer): void {
  c.wl_resource_add_destroy_listener(resource, listener);
}

/** Wraps a connected socket as a client of `display` (e.g. one end of a socketpair). */
export function clientCreate(display: Pointer, fd: number): Pointer {
  return nonNull(c.wl_client_create(display, fd), 'wl_client_create', `fd ${fd}`);
}
export function clientDestroy(client: Pointer): void {
  c.wl_client_destroy(client);
}
export function clientFlush(client: Pointer): void {
  c.wl_client_flush(client);
}
export function clientGetDisplay(client: Pointer): Pointer {
  return c.wl_client_get_display(client);
}
export function clientGetFd(client: Pointer): number {
  return c.wl_client_get_fd(client) as number;
}
export interface Credentials {
  pid: number;
  uid: number;
  gid: number;
}
export function clientGetCredentials(client: Pointer): Credentials {
  const pid = [0];
  const uid = [0];
  const gid = [0];
  c.wl_client_get_credentials(client, pid, uid, gid);
  return { pid: pid[0]!, uid: uid[0]!, gid: gid[0]! };
}
export function clientPostNoMemory(client: Pointer): void {
  c.wl_client_post_no_memory(client);
}
/** Sends wl_display.error(implementation) to the client and disconnects it. */
export function clientPostImplementationError(client: Pointer, message: string): void {
  c.wl_client_post_implementation_error(client, '%s', 'const char *', message);
}
/** `listener` points at a struct wl_listener that stays valid until it is notified. */
export function clientAddDestroyListener(client: Pointer, listener: Pointer): void {
  c.wl_client_add_destroy_listener(client, listener);
}

// --- running the loop inside Node ---------------------------------------------------

export interface EventLoopDriver {
  /** Stops the driver: the pending poll wakes at once, no dispatch happens after this. */
  stop(): void;
  readonly running: boolean;
  /** Resolves once the driver has stopped and released its wake-up fd. */
  readonly stopped: Promise<void>;
}

/**
 * Runs `tick` (which must call eventLoopDispatch(loop, 0) and flush clients) on the main
 * thread each time the loop's fd becomes readable, watched by the Node event loop's own
 * epoll (uv_poll: no thread waits for it). `tick` also runs once right away. Errors
 * thrown by `tick` go to `onError`; the driver keeps running.
 */
export function driveEventLoop(loop: Pointer, tick: () => void, onError: (err: unknown) => void): EventLoopDriver {
  let running = true;
  const run = () => {
    try {
      tick();
    } catch (err) {
      onError(err);
    }
  };
  run();
  const watch = new FdWatch(eventLoopGetFd(loop), UV_READABLE, {
    ready: () => {
      if (running) run();
    },
    error: onError,
  });
  let resolveStopped!: () => void;
  const stopped = new Promise<void>((r) => (resolveStopped = r));
  return {
    get running() {
      return running;
    },
    stopped,
    stop() {
      if (!running) return;
      running = false;
      void watch.close().then(resolveStopped);
    },
  };
}
