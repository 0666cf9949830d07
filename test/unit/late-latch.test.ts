// plugin/output/latch.ts: the deadline arithmetic of late-latching (the latency it buys is
// measured by the benchmark, rows refresh-1024x768 vblank-poll vs late-latch; polled
// guests run through it in every rig test with a VFIO source).
import { describe, it, expect } from 'vitest';
import { LateLatch } from '../../plugin/output/latch.js';

const REFRESH_NS = 16_666_667;

describe('LateLatch', () => {
  it('a latched commit that missed its vblank widens the margin by 2 ms, one that made it narrows it by 0.25 ms down to 1.5 ms; a poll without a commit teaches nothing', () => {
    const l = new LateLatch(REFRESH_NS, () => {});
    for (let i = 0; i < 64; i++) l.noteCost(2);
    const vblank = process.hrtime.bigint() - 100_000_000n; // long past: schedule() polls at once
    const aimed = vblank + BigInt(REFRESH_NS);
    l.schedule(vblank);
    l.landed(aimed + BigInt(REFRESH_NS)); // one refresh late: missed
    expect(l.misses).toBe(1);
    expect(l.budgetMs).toBeCloseTo(2 + 3.5, 5);
    l.landed(aimed); // no latched commit in flight any more: ignored
    expect(l.hits + l.misses).toBe(1);
    l.schedule(vblank);
    l.landed(aimed + 1_000_000n); // on its vblank (stamps jitter): made it
    expect(l.hits).toBe(1);
    expect(l.budgetMs).toBeCloseTo(2 + 3.25, 5);
    l.schedule(vblank);
    l.noCommit();
    l.landed(aimed + BigInt(REFRESH_NS));
    expect(l.misses).toBe(1);
    for (let i = 0; i < 20; i++) {
      l.schedule(vblank);
      l.landed(aimed);
    }
    expect(l.budgetMs).toBeCloseTo(2 + 1.5, 5);
  });

  it('budget: 4 ms before anything is measured, then the p95 of the last 64 polls plus 1.5 ms, never more than a refresh minus 1 ms', () => {
    const l = new LateLatch(REFRESH_NS, () => {});
    expect(l.budgetMs).toBe(4);
    for (let i = 1; i <= 100; i++) l.noteCost(i <= 97 ? 2 : 10); // 3 slow polls of the last 64: past the p95
    expect(l.budgetMs).toBeCloseTo(2 + 1.5, 5);
    for (let i = 0; i < 10; i++) l.noteCost(10); // now 13 of 64 are slow
    expect(l.budgetMs).toBeCloseTo(11.5, 5);
    for (let i = 0; i < 64; i++) l.noteCost(40);
    expect(l.budgetMs).toBeCloseTo(REFRESH_NS / 1e6 - 1, 5);
  });

  it('a deadline already past polls at once; a future one waits for its timer; cancel stops it', async () => {
    let polls = 0;
    const l = new LateLatch(REFRESH_NS, () => polls++);
    l.schedule(process.hrtime.bigint() - 100_000_000n); // a vblank 100 ms ago: its next deadline is gone
    expect(polls).toBe(1);
    l.schedule(process.hrtime.bigint() + 1_000_000_000n); // a vblank 1 s ahead (a stamp from the future)
    expect(l.pending).toBe(true);
    expect(polls).toBe(1);
    l.cancel();
    expect(l.pending).toBe(false);
    l.schedule(process.hrtime.bigint()); // now: the deadline is 12.7 ms ahead
    expect(polls).toBe(1);
    await new Promise((r) => setTimeout(r, 200));
    expect(polls).toBe(2);
    expect(l.fired).toBe(2);
  });
});
