// What the benchmark measures about its own process, and how results leave it: one JSON
// object per metric, appended to a file the host reads after the VM is gone.
import { appendFileSync, readFileSync, readdirSync } from 'node:fs';

export interface Metric {
  bench: string;
  path: string;
  metric: string;
  /** null = not measurable in this run (the note metric of the same row says why). */
  value: number | string | null;
  unit: string;
}

export class Sink {
  constructor(private readonly file: string) {}

  emit(m: Metric): void {
    appendFileSync(this.file, JSON.stringify(m) + '\n');
  }

  /** Emits every [metric, value, unit] of one (bench, path) row. */
  row(bench: string, path: string, rows: ReadonlyArray<readonly [string, number | string | null, string]>): void {
    for (const [metric, value, unit] of rows) this.emit({ bench, path, metric, value, unit });
  }
}

export function fdCount(): number {
  // readdirSync holds one fd of its own while it reads the directory.
  return readdirSync('/proc/self/fd').length - 1;
}

declare const gc: (() => void) | undefined;

/** Resident set, MiB, after a full GC when node runs with --expose-gc (so leaks, not garbage, show). */
export function rssMiB(): number {
  if (typeof gc === 'function') gc();
  return process.memoryUsage().rss / (1024 * 1024);
}

export interface ProcessSample {
  fds: number;
  rssMiB: number;
  /** Threads of the process (V8's, libuv's pool once used, koffi's). */
  threads: number;
}

export function sampleProcess(): ProcessSample {
  return { fds: fdCount(), rssMiB: rssMiB(), threads: readdirSync('/proc/self/task').length };
}

/** CPU time per thread so far, ms (utime + stime of /proc/PID/task/N/stat), by "tid name"; of this process by default, empty for a process that is gone. */
export function threadCpuMs(pid: number | 'self' = 'self'): Map<string, number> {
  const hz = 100; // USER_HZ: 100 on every Linux this runs on
  const out = new Map<string, number>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended meanwhile
    }
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    out.set(`${tid} ${name}`, ((Number(f[11]) + Number(f[12])) * 1000) / hz);
  }
  return out;
}

/** user+sys CPU of the whole process (all threads: the DRM event poller's too), µs. */
export function cpuMicros(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** Nearest-rank percentile, as plugin/stats.ts SampleWindow does; NaN when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

export interface LatencySummary {
  p50: number;
  p95: number;
  p99: number;
  samples: number;
  /** Share of samples above one refresh period. */
  lateShare: number;
}

export function summarizeLatency(samplesMs: readonly number[], refreshMs: number): LatencySummary {
  const s = [...samplesMs].sort((a, b) => a - b);
  return {
    p50: percentile(s, 50),
    p95: percentile(s, 95),
    p99: percentile(s, 99),
    samples: s.length,
    lateShare: s.length ? s.filter((v) => v > refreshMs).length / s.length : NaN,
  };
}

/** The latency rows of a result: ms and refresh periods. */
export function latencyRows(l: LatencySummary, refreshMs: number): Array<[string, number, string]> {
  return [
    ['latency_p50', l.p50, 'ms'],
    ['latency_p95', l.p95, 'ms'],
    ['latency_p99', l.p99, 'ms'],
    ['latency_p50_refresh', l.p50 / refreshMs, 'refresh'],
    ['latency_p95_refresh', l.p95 / refreshMs, 'refresh'],
    ['latency_p99_refresh', l.p99 / refreshMs, 'refresh'],
    ['latency_over_1_refresh', l.lateShare * 100, '%'],
    ['latency_samples', l.samples, 'count'],
  ];
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
