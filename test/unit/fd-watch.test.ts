// ffi/uv.ts: fds watched by the Node event loop's own epoll (libuv uv_poll through koffi),
// with real eventfds: readiness reaches the main thread, more fds than libuv's thread pool
// has threads work at once, no thread is added, exceptions are reported, and close()
// lets go of every handle.
import { describe, it, expect } from 'vitest';
import { readdirSync } from 'node:fs';
import * as libc from '../../ffi/libc.js';
import { FdWatch, UV_READABLE, openWatches } from '../../ffi/uv.js';

/** An eventfd: readable while its counter is non-zero (a write makes it ready, a read clears it). */
const eventfd = () => libc.eventfd(0, libc.EFD_NONBLOCK);
const one = Buffer.alloc(8);
one.writeBigUInt64LE(1n);
const threads = () => readdirSync('/proc/self/task').length;

describe('FdWatch (uv_poll on the main loop)', () => {
  it('64 fds at once (libuv has 4 pool threads), each ready on the main thread, no thread added, all closed', async () => {
    const before = threads();
    const watches: FdWatch[] = [];
    const fds: number[] = [];
    const seen = new Set<number>();
    let done!: () => void;
    const all = new Promise<void>((r) => (done = r));
    for (let i = 0; i < 64; i++) {
      const rd = eventfd();
      fds.push(rd);
      watches.push(
        new FdWatch(rd, UV_READABLE, {
          ready: (events, error) => {
            expect(error).toBeNull();
            expect(events & UV_READABLE).toBe(UV_READABLE);
            libc.read(rd, Buffer.alloc(8)); // consume, or it stays ready
            seen.add(i);
            if (seen.size === 64) done();
          },
          error: (e) => {
            throw e;
          },
        }),
      );
    }
    for (const fd of fds) libc.write(fd, one);
    await all;
    expect(threads()).toBe(before);
    expect(openWatches()).toBe(64);
    await Promise.all(watches.map((w) => w.close()));
    expect(openWatches()).toBe(0);
    for (const fd of fds) libc.close(fd);
  });

  it('an exception in ready() is reported to error(), and the watch goes on', async () => {
    const fd = eventfd();
    const errors: unknown[] = [];
    let calls = 0;
    let second!: () => void;
    const again = new Promise<void>((r) => (second = r));
    const w = new FdWatch(fd, UV_READABLE, {
      ready: () => {
        libc.read(fd, Buffer.alloc(8));
        if (++calls === 1) throw new Error('listener failed');
        second();
      },
      error: (e) => errors.push(e),
    });
    libc.write(fd, one);
    await new Promise((r) => setTimeout(r, 50));
    expect(errors.map((e) => (e as Error).message)).toEqual(['listener failed']);
    libc.write(fd, one);
    await again;
    expect(calls).toBe(2);
    await w.close();
    libc.close(fd);
  });

  it('a bad fd is refused with libuv’s reason', () => {
    expect(() => new FdWatch(100_000, UV_READABLE, { ready() {}, error() {} })).toThrow(/uv_poll_init\(fd 100000\): bad file descriptor/);
    expect(openWatches()).toBe(0);
  });
});
