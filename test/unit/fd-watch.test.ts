// ffi/uv.ts: fds watched by the Node event loop's own epoll (libuv uv_poll through koffi),
// with real eventfds: readiness reaches the main thread, more fds than libuv's thread pool
// has threads work at once, no thread is added, exceptions are reported, and close()
// lets go of every handle.
import { describe, it, expect } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import * as libc from '../../ffi/libc.js';
import { FdWatch, UV_READABLE, openWatches } from '../../ffi/uv.js';

/** An eventfd: readable while its counter is non-zero (a write makes it ready, a read clears it). */
const eventfd = () => libc.eventfd(0, libc.EFD_NONBLOCK);
const one = Buffer.alloc(8);
one.writeBigUInt64LE(1n);
const repo = fileURLToPath(new URL('../../', import.meta.url));
const threads = () => readdirSync('/proc/self/task').length;

/** The child's start: an eventfd `fd`, `read`, `write` and an 8-byte `one`. */
const CHILD_PREAMBLE = `import koffi from 'koffi';
import { FdWatch, UV_READABLE } from './uv.mjs';
const c = koffi.load('libc.so.6');
const eventfd = c.func('int eventfd(unsigned int initval, int flags)');
const write = c.func('long write(int fd, const void *buf, size_t n)');
const read = c.func('long read(int fd, _Out_ void *buf, size_t n)');
const fd = eventfd(0, 0x800);
const one = Buffer.alloc(8); one.writeBigUInt64LE(1n);
`;

/**
 * Runs `body` in a child Node with an idle loop (Vitest's worker has timers of its own that
 * would hide a missing drain), with ffi/uv.ts transpiled as it is (it imports only koffi)
 * and CHILD_PREAMBLE's names in scope. A watchdog that is not a timer of the child's
 * loop: the parent's spawn timeout.
 */
function inChild(body: string): SpawnSyncReturns<string> {
  const dir = mkdtempSync(join(repo, 'node_modules/.fd-watch-'));
  try {
    const js = ts.transpileModule(readFileSync(join(repo, 'ffi/uv.ts'), 'utf8'), { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
    writeFileSync(join(dir, 'uv.mjs'), js);
    writeFileSync(join(dir, 'child.mjs'), CHILD_PREAMBLE + body);
    return spawnSync(process.execPath, [join(dir, 'child.mjs')], { encoding: 'utf8', timeout: 20_000 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

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

  // koffi calls the poll and close callbacks outside Node's callback scope: without the
  // drain, a watch closed in a continuation of ready() was closed only when something else
  // woke the loop (8 s here, 5.4 s for Backend.close() in the rig).
  it('promises settled in ready() and by close() continue in the same loop turn (a child process with an idle loop)', () => {
    const r = inChild(`let readyAt = 0;
let settle;
const settled = new Promise((r) => (settle = r));
const w = new FdWatch(fd, UV_READABLE, { ready: () => { read(fd, Buffer.alloc(8), 8); readyAt = performance.now(); settle(); }, error: (e) => { throw e; } });
write(fd, one, 8);
const fd2 = eventfd(0, 0x800);
const w2 = new FdWatch(fd2, UV_READABLE, { ready: () => {}, error: (e) => { throw e; } });
await settled;
const afterReady = performance.now() - readyAt;
// As Backend.close() does: a watch closed in the continuation of a promise settled in another watch's ready().
const closing = performance.now();
await w2.close();
const afterClose = performance.now() - closing;
await w.close();
console.log(JSON.stringify({ afterReady, afterClose }));
`);
    expect(r.status, r.stderr).toBe(0);
    const t = JSON.parse(r.stdout) as { afterReady: number; afterClose: number };
    // Without the drain the child never exits on its own (nothing else would wake its loop).
    expect(t.afterReady).toBeLessThan(1000);
    expect(t.afterClose).toBeLessThan(1000);
  });

  // The drain at the end of each callback runs Node's own tick queue (runNextTicks): a tick
  // that throws must reach uncaughtException, as from any Node callback, and the ticks
  // queued behind it must still run.
  it('a throwing nextTick from ready() reaches uncaughtException and the later ticks still run (a child process)', () => {
    const r = inChild(`const seen = [];
process.on('uncaughtException', (e) => seen.push('uncaught ' + e.message));
const w = new FdWatch(fd, UV_READABLE, {
  ready: () => {
    read(fd, Buffer.alloc(8), 8);
    process.nextTick(() => { throw new Error('tick failed'); });
    process.nextTick(() => seen.push('second tick'));
    Promise.resolve().then(() => seen.push('microtask'));
  },
  error: (e) => { throw e; },
});
write(fd, one, 8);
setTimeout(async () => { await w.close(); console.log(JSON.stringify(seen)); }, 300);
`);
    expect(r.status, r.stderr).toBe(0);
    const seen = JSON.parse(r.stdout) as string[];
    expect(seen).toContain('uncaught tick failed');
    expect(seen).toContain('second tick');
    expect(seen).toContain('microtask');
  });

  it('a bad fd is refused with libuv’s reason', () => {
    expect(() => new FdWatch(100_000, UV_READABLE, { ready() {}, error() {} })).toThrow(/uv_poll_init\(fd 100000\): bad file descriptor/);
    expect(openWatches()).toBe(0);
  });
});
