// Per-output presentation statistics, readable from the API and printed by the CLI.

export type PresentPath = 'scanout' | 'gles' | 'copy' | 'no-signal';

/** A bounded window of samples with percentiles (the last `capacity` values). */
export class SampleWindow {
  private readonly buf: Float64Array;
  private n = 0;
  private pos = 0;

  constructor(readonly capacity = 2048) {
    this.buf = new Float64Array(capacity);
  }

  add(v: number): void {
    this.buf[this.pos] = v;
    this.pos = (this.pos + 1) % this.capacity;
    if (this.n < this.capacity) this.n++;
  }

  get count(): number {
    return this.n;
  }

  /** Nearest-rank percentile (p in 0..100); NaN when empty. */
  percentile(p: number): number {
    if (this.n === 0) return NaN;
    const sorted = Array.from(this.buf.subarray(0, this.n)).sort((a, b) => a - b);
    const rank = Math.min(this.n - 1, Math.max(0, Math.ceil((p / 100) * this.n) - 1));
    return sorted[rank];
  }

  values(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.n; i++) out.push(this.buf[(this.pos - this.n + i + this.capacity) % this.capacity]);
    return out;
  }

  reset(): void {
    this.n = 0;
    this.pos = 0;
  }
}

export interface OutputStatsSnapshot {
  framesPresented: number;
  paths: Record<PresentPath, number>;
  imports: number;
  cacheHits: number;
  cacheMisses: number;
  bytesCopied: number;
  /** Bytes copied into GL textures (GLES path on drivers that cannot sample the dma-buf). */
  bytesUploaded: number;
  commits: number;
  testOnlyCommits: number;
  failedCommits: number;
  refreshes: number;
  latencyMs: { p50: number; p95: number; p99: number; samples: number };
  errors: Record<string, number>;
  /** Layer placements per presented frame: 'plane:overlay', 'composed:format'… */
  layers?: Record<string, number>;
  /** Plane allocation: assignments reused without TEST_ONLY vs searched, TEST_ONLY issued. */
  allocator?: { allocations: number; reuses: number; searches: number; tests: number; testCacheHits: number; commitFailures: number; lastSearchMs: number; maxSearchMs: number };
}

export class OutputStats {
  framesPresented = 0;
  readonly paths: Record<PresentPath, number> = { scanout: 0, gles: 0, copy: 0, 'no-signal': 0 };
  bytesCopied = 0;
  bytesUploaded = 0;
  refreshes = 0;
  readonly latencyMs = new SampleWindow();
  readonly errors: Record<string, number> = {};
  readonly layers: Record<string, number> = {};

  error(cause: string): void {
    this.errors[cause] = (this.errors[cause] ?? 0) + 1;
  }
}

/**
 * The event loop's longest stall: how long the loop could not run a timer that was due.
 * A peer that holds the loop (a flood worked off in one go, a blocking call) freezes
 * every frame, input event and signal; the kiosk prints this per stats line so that is
 * seen, and tests bound it. A timer every `resolutionMs` notes when it runs; a stall is
 * the time between two runs less the period. (Node's monitorEventLoopDelay did not see a
 * 150 ms busy stretch here: it measures against the loop's cached clock.)
 */
export class LoopStallMeter {
  readonly #timer: NodeJS.Timeout;
  #last = performance.now();
  #intervalMs = 0;
  #overallMs = 0;

  constructor(readonly resolutionMs = 10) {
    this.#timer = setInterval(() => this.#note(), resolutionMs);
    this.#timer.unref();
  }

  #note(): void {
    const now = performance.now();
    const stall = Math.max(0, now - this.#last - this.resolutionMs);
    this.#last = now;
    if (stall > this.#intervalMs) this.#intervalMs = stall;
  }

  /** The longest stall since the last take(), ms (a stall still going on counts so far); starts a new interval. */
  take(): number {
    this.#note();
    const ms = this.#intervalMs;
    this.#intervalMs = 0;
    if (ms > this.#overallMs) this.#overallMs = ms;
    return ms;
  }

  /** The longest stall since the meter started, ms. */
  overall(): number {
    return Math.max(this.#overallMs, this.take());
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
