// Delivers DRM events (page-flip completions) to the Node event loop without ever
// blocking it.
//
// How (default, 'uv'): the DRM fd is watched by the event loop's own epoll (libuv's
// uv_poll, ffi/uv.ts); when the kernel has events, the main thread read()s the fd --
// data is ready, so read() returns at once -- and decodes them. No thread is involved.
//
// The earlier way ('worker', kept until the benchmark's numbers are in; issue 15): a koffi
// async poll() waits on a libuv worker thread for the DRM fd (or our wake-up eventfd);
// its completion runs on the main thread, which then reads. One worker thread is occupied
// per open device while events are awaited (libuv has 4 by default).
// GUESTPLANE_DRM_EVENTS=worker (or setDrmEventPath) selects it.
import { EventEmitter } from 'node:events';
import * as libc from '../../ffi/libc.js';
import { parseDrmEvents, DRM_EVENT_FLIP_COMPLETE, DRM_EVENT_VBLANK } from '../../ffi/drm.js';
import { FdWatch, UV_READABLE } from '../../ffi/uv.js';

export type DrmEventPath = 'uv' | 'worker';
let eventPath: DrmEventPath = process.env['GUESTPLANE_DRM_EVENTS'] === 'worker' ? 'worker' : 'uv';
/** How readers started from now on wait for events (see above); for A/B benchmarks. */
export function setDrmEventPath(p: DrmEventPath): void {
  eventPath = p;
}

export interface FlipEvent {
  /** 'flip': a commit with PAGE_FLIP_EVENT completed; 'vblank': a requested vblank event. */
  kind: 'flip' | 'vblank';
  crtcId: number;
  sequence: number;
  /** CLOCK_MONOTONIC time of the flip (the device has DRM_CAP_TIMESTAMP_MONOTONIC). */
  timestampNs: bigint;
  /** The 64-bit cookie passed with the commit. */
  userData: bigint;
}

export interface DrmEventReaderEvents {
  flip: [FlipEvent];
  error: [Error];
}

/** Reads page-flip events from one DRM fd. The fd stays owned by the caller. */
export class DrmEventReader extends EventEmitter<DrmEventReaderEvents> {
  private readonly buf = Buffer.alloc(4096);
  private readonly wakeFd: number;
  private running = false;
  private closed = false;
  private loop: Promise<void> | null = null;

  constructor(private readonly fd: number, private readonly what: string) {
    super();
    this.wakeFd = libc.eventfd(0, libc.EFD_NONBLOCK);
  }

  private watch: FdWatch | null = null;

  /** Starts waiting for events; idempotent. */
  start(): void {
    if (this.running || this.closed) return;
    this.running = true;
    if (eventPath === 'worker') {
      this.loop = this.run();
      return;
    }
    this.watch = new FdWatch(this.fd, UV_READABLE, {
      ready: (_events, error) => {
        if (!this.running) return;
        if (error) return this.fail(new Error(`${this.what}: the DRM device went away (${error.message})`));
        try {
          this.readOnce();
        } catch (e) {
          this.fail(e instanceof Error ? e : new Error(String(e)));
        }
      },
      // ready() reports its own failures (as the worker path does: the reader stops);
      // this is for what fail() itself might throw.
      error: (e) => this.emit('error', e instanceof Error ? e : new Error(String(e))),
    });
  }

  private fail(e: Error): void {
    this.running = false;
    void this.watch?.close();
    this.watch = null;
    this.emit('error', e);
  }

  /** Reads whatever events are pending right now, without waiting. Returns how many. */
  drain(): number {
    let count = 0;
    for (;;) {
      const [rev] = libc.poll([{ fd: this.fd, events: libc.POLLIN }], 0);
      if (!(rev & libc.POLLIN)) return count;
      count += this.readOnce();
    }
  }

  private readOnce(): number {
    const n = libc.read(this.fd, this.buf, this.what);
    let count = 0;
    for (const ev of parseDrmEvents(this.buf, n)) {
      if (ev.type !== DRM_EVENT_FLIP_COMPLETE && ev.type !== DRM_EVENT_VBLANK) continue;
      count++;
      this.emit('flip', {
        kind: ev.type === DRM_EVENT_FLIP_COMPLETE ? 'flip' : 'vblank',
        crtcId: ev.crtcId,
        sequence: ev.sequence,
        timestampNs: BigInt(ev.tvSec) * 1_000_000_000n + BigInt(ev.tvUsec) * 1000n,
        userData: ev.userData,
      });
    }
    return count;
  }

  private async run(): Promise<void> {
    while (this.running) {
      let rev: number[];
      try {
        // The timeout only bounds how long a worker thread is held if close() races
        // with a poll that has not yet seen the wake-up; 1 s costs nothing.
        rev = await libc.pollAsync(
          [
            { fd: this.fd, events: libc.POLLIN },
            { fd: this.wakeFd, events: libc.POLLIN },
          ],
          1000,
        );
      } catch (e) {
        this.running = false;
        this.emit('error', e instanceof Error ? e : new Error(String(e)));
        return;
      }
      if (!this.running) return;
      if (rev[1] & libc.POLLIN) {
        libc.read(this.wakeFd, Buffer.alloc(8), 'wake eventfd');
      }
      if (rev[0] & (libc.POLLERR | libc.POLLHUP | libc.POLLNVAL)) {
        this.running = false;
        this.emit('error', new Error(`${this.what}: the DRM device went away (poll revents 0x${rev[0].toString(16)})`));
        return;
      }
      if (rev[0] & libc.POLLIN) {
        try {
          this.readOnce();
        } catch (e) {
          this.running = false;
          this.emit('error', e instanceof Error ? e : new Error(String(e)));
          return;
        }
      }
    }
  }

  /** Stops the reader and waits until nothing (no libuv handle, no worker thread) still polls the fd. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.running = false;
    if (this.watch) {
      await this.watch.close();
      this.watch = null;
    }
    const one = Buffer.alloc(8);
    one.writeBigUInt64LE(1n);
    try {
      libc.write(this.wakeFd, one, 'wake eventfd');
    } catch {
      /* the poll ends by its timeout anyway */
    }
    await this.loop;
    this.closed = true;
    libc.close(this.wakeFd, 'wake eventfd');
  }
}
