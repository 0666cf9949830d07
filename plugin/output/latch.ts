// Late-latching for guests that cannot say when they flip (VFIO/mbochs, GVT-g: polled).
// Asking such a guest right at the vblank puts a flip it makes just after that query one
// whole refresh later than needed. Instead the output asks at a deadline before the next
// vblank: the predicted vblank minus what asking, planning and committing took lately
// (their p95 over the last 64 polls, plus a margin), as gamescope schedules its commits.
// A guest flip before the deadline makes that vblank.
//
// Ownership: the latch owns one timer; cancel() clears it.

/** Polls remembered for the budget. */
const WINDOW = 64;
/** Added to the measured cost: timer lateness and the kernel's own commit work. */
const MARGIN_MS = 1.5;
/** Before anything is measured. */
const INITIAL_BUDGET_MS = 4;

export class LateLatch {
  private timer: NodeJS.Timeout | null = null;
  private readonly costs: number[] = [];
  /** Polls fired by the latch (tests and the benchmark). */
  fired = 0;

  constructor(
    private readonly refreshNs: number,
    private readonly poll: () => void,
  ) {}

  /** How long before the vblank the guest is asked, ms. */
  get budgetMs(): number {
    if (this.costs.length === 0) return INITIAL_BUDGET_MS;
    const sorted = [...this.costs].sort((a, b) => a - b);
    const p95 = sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.95))];
    return Math.min(p95 + MARGIN_MS, this.refreshNs / 1e6 - 1);
  }

  /** What one poll (query + plan + commit) took, ms. */
  noteCost(ms: number): void {
    this.costs.push(ms);
    if (this.costs.length > WINDOW) this.costs.shift();
  }

  /** A vblank happened at `vblankNs` (CLOCK_MONOTONIC, the kernel's stamp): poll before the next one. */
  schedule(vblankNs: bigint): void {
    this.cancel();
    const deadlineNs = vblankNs + BigInt(this.refreshNs) - BigInt(Math.round(this.budgetMs * 1e6));
    const delayMs = Number(deadlineNs - process.hrtime.bigint()) / 1e6;
    if (delayMs <= 0) return this.fire();
    this.timer = setTimeout(() => this.fire(), delayMs);
  }

  private fire(): void {
    this.timer = null;
    this.fired++;
    this.poll();
  }

  get pending(): boolean {
    return this.timer !== null;
  }

  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
