// libuv's uv_poll, from the Node binary itself (Node exports libuv): an fd watched by the
// event loop's own epoll, its callback run on the main thread when the fd is ready. No
// worker thread waits in poll(2), and there is no limit of libuv's thread pool on how
// many fds can be watched (koffi's async poll occupied one worker per fd).
//
// Ownership: a watch owns its uv_poll_t memory; close() stops it and the memory is freed
// in libuv's close callback (libuv may touch the handle until then). The fd stays the
// caller's; close the watch before closing the fd.
import koffi from 'koffi';
import type { AbiManifest } from './abi.js';

// dlopen(NULL): the main program, i.e. the node binary, which exports libuv's API.
const node = koffi.load(null as unknown as string);

/** uv_poll_event */
export const UV_READABLE = 1;
export const UV_WRITABLE = 2;
export const UV_DISCONNECT = 4;
/** uv_handle_type of uv_poll_t */
export const UV_POLL = 8;

// The handle as an integer: a JS number keys the watches (no pointer object made per wake-up).
const PollCb = koffi.proto('void gp_uv_poll_cb(uintptr_t handle, int status, int events)');
const CloseCb = koffi.proto('void gp_uv_close_cb(uintptr_t handle)');
const uv_default_loop = node.func('void *uv_default_loop(void)');
const uv_handle_size = node.func('size_t uv_handle_size(int type)');
const uv_poll_init = node.func('int uv_poll_init(void *loop, void *handle, int fd)');
const uv_poll_start = node.func('int uv_poll_start(void *handle, int events, gp_uv_poll_cb *cb)');
const uv_poll_stop = node.func('int uv_poll_stop(void *handle)');
const uv_close = node.func('void uv_close(void *handle, gp_uv_close_cb *cb)');
const uv_strerror = node.func('const char *uv_strerror(int err)');

const POLL_SIZE = Number(uv_handle_size(UV_POLL));

/**
 * koffi runs our poll and close callbacks outside Node's callback scope. Work they set off
 * in promise continuations (closing another watch, say) was then not seen by libuv until
 * something else woke the loop: measured 5.4 s for Backend.close() in the rig and 8 s in
 * test/unit/fd-watch.test.ts, on an otherwise idle loop. So each callback ends as Node's own
 * callback scope ends: the nextTick and microtask queues drained at once, with Node's
 * runNextTicks (process._tickCallback: undocumented; it drains the same queues a callback
 * scope drains when it closes). A pending immediate did the same a phase later, at the cost of an
 * immediate and another JS entry per wake-up: in the rig 38 µs of CPU a wake-up against 23
 * with runNextTicks. The immediate stays where a Node lacks _tickCallback, and carries a
 * tick's exception to Node's uncaughtException, as a callback scope would.
 */
const runNextTicks = (process as unknown as { _tickCallback?: unknown })._tickCallback;
let drainQueued = false;
const drained = () => {
  drainQueued = false;
};
function drainMicrotasksSoon(): void {
  if (drainQueued) return;
  drainQueued = true;
  setImmediate(drained);
}
function drainMicrotasks(): void {
  if (typeof runNextTicks !== 'function') return drainMicrotasksSoon();
  try {
    (runNextTicks as () => void).call(process);
  } catch (e) {
    drainMicrotasksSoon(); // what the throw left queued
    setImmediate(() => {
      throw e;
    });
  }
}

/** Watches by handle address: one registered callback serves them all. */
const live = new Map<number, FdWatch>();

const onPoll = koffi.register((handle: number | bigint, status: number, events: number) => {
  live.get(Number(handle))?._ready(status, events);
}, koffi.pointer(PollCb));

const onClosed = koffi.register((handle: number | bigint) => {
  const address = Number(handle);
  const w = live.get(address);
  live.delete(address);
  w?._closed();
}, koffi.pointer(CloseCb));

export interface FdWatchHandlers {
  /** The fd is ready (`events`: UV_READABLE | …), or polling it failed (`error`, e.g. the fd went bad). */
  ready(events: number, error: Error | null): void;
  /** What ready() threw: reported here, never lost (the watch goes on). */
  error(e: unknown): void;
}

/** A watched fd: ready() runs on the main thread whenever the fd is ready for `events`. */
export class FdWatch {
  readonly fd: number;
  #handle: unknown;
  readonly #handlers: FdWatchHandlers;
  #closing: Promise<void> | null = null;
  #resolveClosed: (() => void) | null = null;

  constructor(fd: number, events: number, handlers: FdWatchHandlers) {
    this.fd = fd;
    this.#handlers = handlers;
    const handle = koffi.alloc('uint8_t', POLL_SIZE);
    const rc = uv_poll_init(uv_default_loop(), handle, fd) as number;
    if (rc < 0) {
      koffi.free(handle);
      throw new Error(`uv_poll_init(fd ${fd}): ${uv_strerror(rc) as string}`);
    }
    this.#handle = handle;
    live.set(Number(koffi.address(handle)), this);
    const started = uv_poll_start(handle, events, onPoll) as number;
    if (started < 0) {
      void this.close();
      throw new Error(`uv_poll_start(fd ${fd}): ${uv_strerror(started) as string}`);
    }
  }

  /** @internal libuv's poll callback for this handle. */
  _ready(status: number, events: number): void {
    if (this.#closing) return;
    try {
      this.#handlers.ready(events, status < 0 ? new Error(`polling fd ${this.fd} failed: ${uv_strerror(status) as string}`) : null);
    } catch (e) {
      try {
        this.#handlers.error(e);
      } catch (e2) {
        // Never into libuv: a throw across the C frame would end the process.
        process.nextTick(() => {
          throw e2;
        });
      }
    }
    drainMicrotasks();
  }

  /** Watches for other events from now on (uv_poll_start again, as libuv allows). */
  setEvents(events: number): void {
    if (this.#closing) return;
    const rc = uv_poll_start(this.#handle, events, onPoll) as number;
    if (rc < 0) throw new Error(`uv_poll_start(fd ${this.fd}): ${uv_strerror(rc) as string}`);
  }

  /** @internal libuv's close callback: now the handle memory may go. */
  _closed(): void {
    koffi.free(this.#handle);
    this.#handle = null;
    this.#resolveClosed?.();
    drainMicrotasks();
  }

  /** Stops watching; resolves once libuv has let go of the handle (its memory is freed then). */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closing = new Promise((resolve) => (this.#resolveClosed = resolve));
    uv_poll_stop(this.#handle);
    uv_close(this.#handle, onClosed);
    return this.#closing;
  }
}

/**
 * Resolves true once `fd` is readable (a fence signalled), false after `timeoutMs`. The
 * watch is closed before the promise settles; the fd stays the caller's.
 */
export function whenReadable(fd: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    let timer: NodeJS.Timeout | null = null;
    const finish = (ok: boolean, e?: Error) => {
      if (timer) clearTimeout(timer);
      timer = null;
      void w.close().then(() => (e ? reject(e) : resolve(ok)));
    };
    const w = new FdWatch(fd, UV_READABLE, {
      ready: (_events, error) => finish(!error, error ?? undefined),
      error: (e) => finish(false, e as Error),
    });
    timer = setTimeout(() => finish(false), timeoutMs);
  });
}

/** How many watches are open (tests: nothing left behind). */
export function openWatches(): number {
  return live.size;
}

export const ABI: AbiManifest = {
  headers: ['uv.h'],
  structs: {},
  constants: { UV_READABLE, UV_WRITABLE, UV_DISCONNECT, UV_POLL },
};
