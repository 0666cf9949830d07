// An output showing a guest that has stopped flipping: what the process costs while nothing
// changes. Issue 15's "no worker thread busy while idle": per thread CPU over the window,
// the thread count and fds before and after, commits made while idle (none is right).
import { setDrmEventPath, type DrmEventPath } from '../../plugin/kms/events.js';
import { KmsDevice } from '../../plugin/kms/device.js';
import { Output } from '../../plugin/output/output.js';
import { BenchGuest } from './guest.js';
import { cpuMicros, sampleProcess, sleep, threadCpuMs, type ProcessSample } from './measure.js';

export interface IdleResult {
  windowMs: number;
  cpuUs: number;
  /** Threads that used any CPU in the window (a tick of 10 ms is the resolution). */
  busyThreads: string[];
  commits: number;
  start: ProcessSample;
  end: ProcessSample;
}

export async function runIdle(spec: { card: string; connector: string; width: number; height: number; drmEvents: DrmEventPath; warmupMs: number; ms: number }): Promise<IdleResult> {
  setDrmEventPath(spec.drmEvents);
  const start = sampleProcess();
  const dev = KmsDevice.open(spec.card);
  const guest = new BenchGuest(spec.width, spec.height, 3);
  let out: Output | null = null;
  try {
    out = new Output(dev, { connector: spec.connector, mode: { width: spec.width, height: spec.height } });
    out.enable();
    out.attach(guest.source, 'native');
    // A few frames, then the guest stands still with its last frame on screen.
    guest.start();
    await sleep(spec.warmupMs);
    guest.stop();
    await sleep(200);
    const s0 = out.statsSnapshot();
    const t0 = threadCpuMs();
    const c0 = cpuMicros();
    const w0 = performance.now();
    await sleep(spec.ms);
    const c1 = cpuMicros();
    const t1 = threadCpuMs();
    const windowMs = performance.now() - w0;
    const s1 = out.statsSnapshot();
    const busyThreads = [...t1].filter(([k, v]) => v - (t0.get(k) ?? 0) > 0).map(([k, v]) => `${k} ${(v - (t0.get(k) ?? 0)).toFixed(0)} ms`);
    await out.close();
    out = null;
    guest.close();
    await dev.close();
    return { windowMs, cpuUs: c1 - c0, busyThreads, commits: s1.commits - s0.commits, start, end: sampleProcess() };
  } finally {
    guest.close();
    if (out) await out.close();
    await dev.close();
  }
}
