// The C floor's loop (test/bench/floor.c) written in JavaScript on guestplane's own ffi:
// the same in-process udmabuf guest as the Output rows, each guest buffer imported once,
// one non-blocking commit of FB_ID per guest flip (or at the page-flip event when one is
// in flight), events through ffi/uv.ts' FdWatch. No Output, no planning, no stats: what
// Node, koffi and libuv cost per frame before any of guestplane's logic. The distance from
// the C floor to this row is the runtime's; from this row to `scanout` it is ours.
import * as drm from '../../ffi/drm.js';
import * as libc from '../../ffi/libc.js';
import { FdWatch, UV_READABLE } from '../../ffi/uv.js';
import { COMMIT } from '../../plugin/kms/atomic.js';
import { KmsDevice } from '../../plugin/kms/device.js';
import { Output } from '../../plugin/output/output.js';
import { BenchGuest } from './guest.js';
import { cpuMicros, sampleProcess, sleep } from './measure.js';
import type { StreamResult } from './stream.js';

export interface NodeFloorSpec {
  card: string;
  connector: string;
  width: number;
  height: number;
  warmupMs: number;
  ms: number;
}

/** After the window: time for the frames flipped in it to land (as in stream.ts). */
const DRAIN_MS = 60;

export async function runNodeFloor(spec: NodeFloorSpec): Promise<StreamResult> {
  const start = sampleProcess();
  let result: StreamResult;
  const dev = KmsDevice.open(spec.card);
  const guest = new BenchGuest(spec.width, spec.height, 3);
  const fbs: number[] = [];
  let watch: FdWatch | null = null;
  let out: Output | null = null;
  try {
    // The Output lights the screen (modeset, as the C floor does first), then stands aside:
    // suspended, it commits nothing, and its event reader lets go of the fd.
    out = new Output(dev, { connector: spec.connector, mode: { width: spec.width, height: spec.height } });
    out.enable();
    out.suspend();
    await dev.events.close();
    const plane = out.primary;
    const fbProp = plane.props.id('FB_ID');
    const refreshMs = out.refreshNs / 1e6;
    for (let i = 0; i < guest.source.bufferCount; i++) {
      guest.source.flip(i, 0);
      const q = guest.source.query('primary');
      if (q.state !== 'ok') throw new Error(`node floor: guest buffer ${i} not ready (${q.state})`);
      const dmabuf = guest.source.exportDmabuf(q.plane);
      try {
        const handle = drm.primeFDToHandle(dev.fd, dmabuf);
        try {
          fbs.push(drm.addFB2WithModifiers(dev.fd, q.plane.width, q.plane.height, q.plane.format, [handle], [q.plane.stride], [0], null));
        } finally {
          drm.gemClose(dev.fd, handle);
        }
      } finally {
        libc.close(dmabuf, 'guest dma-buf');
      }
    }

    let pending: { buffer: number; frame: number; flipNs: bigint } | null = null;
    let inflight: { frame: number; flipNs: bigint } | null = null;
    let commits = 0;
    let failed = 0;
    const errors = new Set<string>();
    let first: number | null = null;
    let last = Infinity;
    let presented = 0;
    const latencyMs: number[] = [];
    const commit = () => {
      const p = pending!;
      pending = null;
      const req = drm.atomicAlloc();
      try {
        drm.atomicAddProperty(req, plane.id, fbProp, fbs[p.buffer]);
        commits++;
        drm.atomicCommit(dev.fd, req, COMMIT.NONBLOCK | COMMIT.PAGE_FLIP_EVENT, 1n);
        inflight = { frame: p.frame, flipNs: p.flipNs };
      } catch (e) {
        failed++;
        errors.add((e as Error).message);
      } finally {
        drm.atomicFree(req);
      }
    };
    const buf = Buffer.alloc(4096);
    watch = new FdWatch(dev.fd, UV_READABLE, {
      ready: () => {
        const n = libc.read(dev.fd, buf, 'DRM events');
        for (const ev of drm.parseDrmEvents(buf, n)) {
          if (ev.type !== drm.DRM_EVENT_FLIP_COMPLETE || !('tvSec' in ev) || !inflight) continue;
          const f = inflight;
          inflight = null;
          if (first !== null && f.frame > first && f.frame <= last) {
            presented++;
            const t = BigInt(ev.tvSec) * 1_000_000_000n + BigInt(ev.tvUsec) * 1000n;
            if (t >= f.flipNs) latencyMs.push(Number(t - f.flipNs) / 1e6);
          }
          if (pending) commit();
        }
      },
      error: (e) => errors.add(String(e)),
    });
    // The guest's flips: the newest buffer replaces an older pending one, as on the C floor.
    let next = 0;
    guest.onFlip = () => {
      pending = { buffer: next, frame: guest.frames, flipNs: process.hrtime.bigint() };
      next = (next + 1) % fbs.length;
      if (!inflight) commit();
    };
    guest.start();
    await sleep(spec.warmupMs);
    const c0 = commits;
    const f0 = failed;
    first = guest.frames;
    const t0 = process.hrtime.bigint();
    const cpu0 = cpuMicros();
    await sleep(spec.ms);
    const cpu1 = cpuMicros();
    const t1 = process.hrtime.bigint();
    guest.stop();
    last = guest.frames;
    await sleep(DRAIN_MS);
    if (guest.error) errors.add(`guest: ${guest.error.message}`);
    result = {
      runs: 1,
      guestFrames: last - first,
      presented,
      paths: { scanout: presented },
      commits: commits - c0,
      testOnly: 0,
      failedCommits: failed - f0,
      imports: 0,
      bytesCopied: 0,
      composeMs: [],
      latencyMs,
      cpuUs: cpu1 - cpu0,
      windowMs: Number(t1 - t0) / 1e6,
      refreshMs,
      start,
      end: start,
      errors: [...errors],
    };
  } finally {
    guest.close();
    if (watch) await watch.close();
    if (out) await out.close();
    // Removing an FB still on screen turns its plane off (the kernel does): fine at the end.
    for (const fb of fbs) {
      try {
        drm.rmFB(dev.fd, fb);
      } catch {
        /* device gone: nothing left to free */
      }
    }
    await dev.close();
  }
  // After everything is closed, as for the other rows: the fds and RSS left behind.
  result.end = sampleProcess();
  return result;
}
