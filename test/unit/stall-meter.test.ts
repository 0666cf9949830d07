// The kiosk's "longest event-loop stall" (LoopStallMeter): a loop held by synchronous work
// shows as a stall of about that length, an idle loop as (almost) none.
import { describe, it, expect } from 'vitest';
import { LoopStallMeter } from '../../plugin/stats.js';

const turns = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

describe('LoopStallMeter', () => {
  it('measures a 150 ms busy stretch as a stall of 150 ms or a little more, and an idle loop as much less', async () => {
    const m = new LoopStallMeter(10);
    try {
      await turns(60); // the sampler's first intervals
      m.take();
      await turns(100);
      const idle = m.take();
      const t0 = performance.now();
      while (performance.now() - t0 < 150) {
        /* hold the loop as a flood worked off in one go would */
      }
      await turns(30); // the sampler runs once more and records the stretch
      const held = m.take();
      console.log(`stall meter: idle ${idle.toFixed(1)} ms, held ${held.toFixed(1)} ms`);
      // Two samples at least 150 ms apart, less the 10 ms period (1 ms for rounding).
      expect(held).toBeGreaterThanOrEqual(139);
      expect(held).toBeLessThan(400);
      expect(idle).toBeLessThan(held / 2);
      expect(m.overall()).toBeGreaterThanOrEqual(held);
    } finally {
      m.stop();
    }
  });
});
