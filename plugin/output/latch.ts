// Late-latching for guests that cannot say when they flip (VFIO/mbochs, GVT-g: polled).
// Asking such a guest right at the vblank puts a flip it makes just after that query one
// whole refresh later than needed. Instead the output asks at a deadline before the next
// vblank: the predicted vblank minus what asking, planning and committing took lately
// (their p95 over the last 64 polls) and a margin, as gamescope schedules its commits.
// A guest flip before the deadline makes that vblank. The margin covers what is not
// measured here (the kernel's commit work, timer lateness) and is learned from outcomes:
// a latched commit that missed its vblank widens it by 2 ms, one that made it narrows it
// by 0.25 ms, down to 1.5 ms.
//
// Ownership: the latch owns one timer; cancel() clears it.

/** Polls remembered for the budget. */
const WINDOW = 64;
/** The least margin added to the measured cost; misses widen it. */
const MARGIN_MS = 1.5;
const MISS_STEP_MS = 2;
const HIT_STEP_MS = 0.25;
/** Before anything is measured. */
const INITIAL_BUDGET_MS = 4;

export class LateLatch {
  private timer: NodeJS.Timeout | null = null;
  private readonly costs: number[] = [];
  private margin = MARGIN_MS;
  /** The vblank the last poll aimed at, while its commit is in flight. */
  private target: bigint | null = null;
  private aim: bigint | null = null;
  /** Polls fired by the latch, and how their commits fared (tests and the benchmark). */
  fired = 0;
  hits = 0;
  misses = 0;

  constructor(
    private readonly refreshNs: number,
    private readonly poll: () => void,
  ) {}

  /** How long before the vblank the guest is asked, ms. */
  get budgetMs(): number {
    if (this.costs.length === 0) return Math.max(INITIAL_BUDGET_MS, this.margin);
    const sorted = [...this.costs].sort((a, b) => a - b);
    const p95 = sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.95))];
    return Math.min(p95 + this.margin, this.refreshNs / 1e6 - 1);
  }

  /** What one poll (query + plan + commit) took, ms. */
  noteCost(ms: number): void {
    this.costs.push(ms);
    if (this.costs.length > WINDOW) this.costs.shift();
  }

  /** A vblank happened at `vblankNs` (CLOCK_MONOTONIC, the kernel's stamp): poll before the next one. */
  schedule(vblankNs: bigint): void {
    this.cancel();
    this.aim = vblankNs + BigInt(this.refreshNs);
    const deadlineNs = this.aim - BigInt(Math.round(this.budgetMs * 1e6));
    const delayMs = Number(deadlineNs - process.hrtime.bigint()) / 1e6;
    if (delayMs <= 0) return this.fire();
    this.timer = setTimeout(() => this.fire(), delayMs);
  }

  private fire(): void {
    this.timer = null;
    this.fired++;
    this.target = this.aim;
    this.poll();
  }

  /** The poll found nothing to commit: no outcome to learn from. */
  noCommit(): void {
    this.target = null;
  }

  /** A flip completed at `flipNs`: if it was the latched commit's, did it make the vblank it aimed at? */
  landed(flipNs: bigint): void {
    if (this.target === null) return;
    const missed = flipNs > this.target + BigInt(Math.round(this.refreshNs / 2));
    this.target = null;
    if (missed) {
      this.misses++;
      this.margin = Math.min(this.margin + MISS_STEP_MS, this.refreshNs / 1e6 - 1);
    } else {
      this.hits++;
      this.margin = Math.max(MARGIN_MS, this.margin - HIT_STEP_MS);
    }
  }

  get pending(): boolean {
    return this.timer !== null;
  }

  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.target = null;
  }
}
