// The kiosk's surface source (plugin/wayland/surface-source.ts) and wl_shm pools
// (plugin/wayland/buffer.ts) against real libwayland clients: no client can fault the
// compositor through its pool, and every commit completes.
//
// There is no KMS device on the host, so the test drives the source as the Output does
// (query, then cpuView for the copy path, then presented or refused). The same clients
// run against the real Output in the rig (test/integration/wayland-robust.test.ts).
import { describe, it, expect, afterEach } from 'vitest';
import { Display } from '../../protocols/runtime.js';
import { createCompositorGlobal, type Surface } from '../../plugin/wayland/surface.js';
import { CursorImage } from '../../plugin/wayland/cursor-image.js';
import { createShmGlobal } from '../../plugin/wayland/shm.js';
import { createXdgShellGlobal } from '../../plugin/wayland/xdg-shell.js';
import { createPresentationGlobal } from '../../plugin/wayland/presentation.js';
import { SurfaceSource } from '../../plugin/wayland/surface-source.js';
import { ShmPool, ShortPoolError } from '../../plugin/wayland/buffer.js';
import { validatePlane } from '../../plugin/buffers/validate.js';
import * as libc from '../../ffi/libc.js';
import { buildWaylandClient, runClient, startClient, useRuntimeDir } from '../integration/helpers/wayland-client.js';

let display: Display | null = null;
let n = 0;
const runtimeDir = useRuntimeDir('gp-source-');
afterEach(async () => {
  if (display) {
    await display.stop();
    display.destroy();
  }
  display = null;
});

type Consumer = (s: SurfaceSource) => void;

/**
 * A display with one SurfaceSource per toplevel, consumed by `consume` on every change
 * (or, with `onToplevel`, whatever that makes of each toplevel's surface).
 */
function serve(consume: Consumer, sources: SurfaceSource[] = [], onToplevel?: (surface: Surface) => void): string {
  display = Display.create();
  const socket = `gp-source-${process.pid}-${++n}`;
  display.addSocket(socket);
  createCompositorGlobal(display, () => {});
  createShmGlobal(display);
  createPresentationGlobal(display);
  createXdgShellGlobal(display, {
    size: () => ({ width: 640, height: 480 }),
    onToplevel: (t) => {
      if (onToplevel) return onToplevel(t.surface);
      const s = new SurfaceSource(`toplevel ${sources.length}`);
      sources.push(s);
      t.surface.on('commit', (c) => s.commit(c));
      // As the Output: a refresh after the change, not inside the commit.
      s.on('changed', () => setImmediate(() => consume(s)));
    },
    onToplevelDestroyed: () => {},
  });
  display.start({ onError: () => {} });
  return socket;
}

/** Reads every row of the frame's pixels, as the copy path does; returns their sum. */
function readAll(s: SurfaceSource): number | null {
  const q = s.query('primary');
  if (q.state !== 'ok') return null;
  const v = s.cpuView(q.plane);
  if (!v) return null;
  let sum = 0;
  for (let y = 0; y < q.plane.height; y++) sum += v.bytes[v.offset + y * q.plane.stride + q.plane.width * 4 - 1]!;
  return sum;
}

let seq = 0;
/** Presents the source's current frame "on the next vblank". */
function present(s: SurfaceSource): void {
  const q = s.query('primary');
  if (q.state !== 'ok') return;
  s.presented({ frame: q.plane.frame, timestampNs: process.hrtime.bigint(), refreshNs: 16_666_667, sequence: ++seq, zeroCopy: false });
}

describe('ShmPool: a client pool is read without any way to fault the process', () => {
  function memfd(size: number, seal: boolean): number {
    const fd = libc.memfdCreate('gp-test-pool', libc.MFD_ALLOW_SEALING);
    libc.ftruncate(fd, size);
    if (seal) libc.fcntl(fd, libc.F_ADD_SEALS, libc.F_SEAL_SHRINK);
    libc.pwrite(fd, Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]), 0);
    return fd;
  }

  it('a sealed file is mapped; an unsealed one is read through the fd and a shrunk one reads as null', () => {
    const sealed = new ShmPool(memfd(4096, true), 4096);
    expect(sealed.mapped).toBe(true);
    expect([...sealed.read(2, 4)!]).toEqual([3, 4, 5, 6]);
    sealed.unref();

    const fd = memfd(4096, false);
    const dup = libc.dup(fd); // the "client's" copy of the fd
    const pool = new ShmPool(fd, 4096);
    expect(pool.mapped).toBe(false);
    const into = { buf: Buffer.alloc(0) };
    const v = pool.copy(1, 4095, into)!;
    expect(v.length).toBe(4095);
    expect([...v.subarray(0, 3)]).toEqual([2, 3, 4]);
    expect(into.buf.length).toBeGreaterThanOrEqual(4095);
    libc.ftruncate(dup, 100); // the client shrinks the file under us
    expect(pool.copy(1, 4095, into)).toBeNull();
    expect(pool.copy(0, 100, into)).not.toBeNull();
    pool.unref();
    libc.close(dup);
  });

  it('a file shorter than the pool is refused (and its fd closed); so is a resize past the file', () => {
    const fd = memfd(4096, true);
    expect(() => new ShmPool(fd, 8192)).toThrow(ShortPoolError);
    expect(() => libc.fcntl(fd, libc.F_GETFD)).toThrow(/EBADF/);
    const pool = new ShmPool(memfd(4096, true), 4096);
    expect(() => pool.resize(8192)).toThrow(/fewer than the pool's 8192/);
    expect(pool.size).toBe(4096);
    pool.unref();
  });
});

describe('surface source against real clients (no output: the test presents)', () => {
  it('a client shrinking its unsealed pool under the compositor gets wl_shm.error invalid_fd; nothing faults', async () => {
    let reads = 0;
    const socket = serve((s) => {
      reads++;
      readAll(s);
      present(s);
    });
    const r = await runClient(buildWaylandClient(), ['shm-shrink', '4'], { runtimeDir: runtimeDir(), socket }, 30_000);
    // Without the pread path this test worker died of SIGBUS within the first frames.
    expect(r.stdout, r.stderr).toContain('SHRINKING');
    expect(r.stdout).toMatch(/PROTOCOL_ERROR interface=wl_buffer code=2\n/);
    expect(reads).toBeGreaterThan(0);
  }, 40_000);

  it('unsealed pools are shown through the fd, pixel for pixel', async () => {
    const sums: number[] = [];
    const socket = serve((s) => {
      const q = s.query('primary');
      if (q.state === 'ok') {
        const v = s.cpuView(q.plane)!;
        // Pixel (x, y) of frame f is x<<16 | y<<8 | f (little-endian B,G,R,A).
        const at = (x: number, y: number) => v.bytes[v.offset + y * q.plane.stride + x * 4]! | (v.bytes[v.offset + y * q.plane.stride + x * 4 + 1]! << 8) | (v.bytes[v.offset + y * q.plane.stride + x * 4 + 2]! << 16);
        sums.push(at(37, 201) === ((37 << 16) | (201 << 8) | (at(0, 0) & 0xff)) ? 1 : 0);
      }
      present(s);
    });
    const r = await runClient(buildWaylandClient(), ['shm', '10'], { runtimeDir: runtimeDir(), socket, extra: { GP_NO_SEAL: '1' } }, 30_000);
    expect(r.stdout, r.stderr).toContain('SUMMARY frames=10 callbacks=10 presented=10');
    expect(sums).toHaveLength(10);
    expect(sums.every((x) => x === 1)).toBe(true);
  }, 40_000);

  it('damage-only commits show the frame copied last and owe no second wl_buffer.release (mpv --vo=wlshm crashed at exit on one)', async () => {
    // The client dies on a release of a buffer not attached since its last release: mpv's
    // wlshm puts a buffer on its free list at each release, and freed one twice on exit.
    const shown: number[] = [];
    const socket = serve((s) => {
      const q = s.query('primary');
      if (q.state === 'ok') {
        const v = s.cpuView(q.plane);
        // Pixel (0, 0) of frame f holds f in its low byte.
        shown.push(v ? v.bytes[v.offset]! : -1);
      }
      present(s);
    });
    const r = await runClient(buildWaylandClient(), ['shm', '10'], { runtimeDir: runtimeDir(), socket, extra: { GP_DAMAGE_ONLY: '2' } }, 30_000);
    expect(r.stderr).not.toMatch(/release/);
    expect(r.stdout, r.stderr).toContain('SUMMARY frames=10 callbacks=30 presented=10');
    // Each attached frame, then twice the same picture from our copy.
    expect(shown).toEqual(Array.from({ length: 10 }, (_, i) => [i + 1, i + 1, i + 1]).flat());
  }, 40_000);

  it('a pointer image takes a new copy only when a commit attaches a buffer, and releases each attach once', async () => {
    // CursorImage on a toplevel's surface: it only follows the surface's commits, as it
    // does for the surface a client passes to wl_pointer.set_cursor.
    const generations: number[] = [];
    const socket = serve(() => {}, [], (surface) => {
      const img: CursorImage = new CursorImage(surface, 0, 0, () => generations.push(img.picture?.generation ?? -1), () => {});
    });
    const r = await runClient(buildWaylandClient(), ['shm', '6'], { runtimeDir: runtimeDir(), socket, extra: { GP_DAMAGE_ONLY: '2' } }, 30_000);
    expect(r.stderr).not.toMatch(/release/);
    expect(r.stdout, r.stderr).toContain('SUMMARY frames=6 callbacks=18');
    // 18 commits with a picture (the configure commit before them and the surface's end
    // have none), 6 copies: each attach's picture stays for its two damage-only commits.
    const pictures = generations.filter((g) => g > 0);
    expect(pictures).toHaveLength(18);
    expect(new Set(pictures).size).toBe(6);
    expect(pictures).toEqual([...new Set(pictures)].flatMap((g) => [g, g, g]));
  }, 40_000);

  it('weston-presentation-shm (60 buffers in one pool) validates every buffer and keeps drawing', async () => {
    const bad: string[] = [];
    const shownBuffers = new Set<number>();
    const socket = serve((s) => {
      const q = s.query('primary');
      if (q.state !== 'ok') return;
      // The check the Output makes first; buffer 31 of 60 failed it ("claims 7500000 bytes").
      const v = validatePlane(q.plane, null);
      if (!v.ok) bad.push(v.message);
      shownBuffers.add(q.plane.bufferId);
      setTimeout(() => present(s), 16);
    });
    const c = startClient('weston-presentation-shm', ['-f'], { runtimeDir: runtimeDir(), socket });
    try {
      await new Promise((res) => setTimeout(res, 4000));
      expect(bad).toEqual([]);
      // It hung after 30 frames before; the real pace here is ~60 per second.
      expect(shownBuffers.size).toBeGreaterThan(45);
    } finally {
      await c.kill();
    }
  }, 30_000);

  it('a refused buffer completes its commit and the client is told why (wl_display implementation error)', async () => {
    const socket = serve((s) => {
      const q = s.query('primary');
      if (q.state === 'ok') s.refused(q.plane, 'copy-format', 'the copy path handles 32-bit formats only');
    });
    const c = startClient(buildWaylandClient(), ['shm', '3'], { runtimeDir: runtimeDir(), socket });
    try {
      const ended = await new Promise<number | null>((res) => c.child.on('exit', (code) => res(code)));
      expect(ended, c.stderr()).toBe(2); // died on the error instead of hanging in wl_display_dispatch
      expect(c.stderr()).toMatch(/cannot be shown: copy-format: the copy path handles 32-bit formats only/);
    } finally {
      await c.kill();
    }
  }, 30_000);

  it('a hidden surface gets its frame callbacks and discarded feedback at once, and its buffers back', async () => {
    const sources: SurfaceSource[] = [];
    const socket = serve(() => {}, sources);
    const c = startClient(buildWaylandClient(), ['shm', '30'], { runtimeDir: runtimeDir(), socket });
    try {
      // Hidden from the start: the output never presents anything of it.
      while (sources.length === 0) await new Promise((res) => setTimeout(res, 10));
      sources[0]!.setShown(false);
      const line = await c.waitFor(/^SUMMARY /, 20_000);
      expect(line).toBe('SUMMARY frames=30 callbacks=30 presented=0 discarded=30 zero_copy=0');
    } finally {
      await c.kill();
    }
  }, 30_000);
});
