// Issue 8, soak: a long stream of guest flips with a mode change every 1,000, and the
// process's kernel objects counted at the start and at the end. `npm test` runs a short
// soak (6,000 flips); GUESTPLANE_SOAK_FLIPS=100000 runs the long one (about 30 minutes at
// 60 Hz), whose last result is in BENCHMARKS.md.
import { describe, it, expect } from 'vitest';
import { KmsDevice, findCardByDriver } from '../../plugin/kms/device.js';
import { Output } from '../../plugin/output/output.js';
import { UdmabufSource } from '../../plugin/sources/udmabuf.js';
import { decodeFrameNumber } from '../../plugin/sources/pattern.js';
import { baseline, fbIds, rssMiB } from './helpers/faults.js';

const FLIPS = Number(process.env.GUESTPLANE_SOAK_FLIPS ?? 6000);
const MODES: [number, number][] = [
  [640, 480],
  [512, 384],
  [320, 240],
];

describe('soak', () => {
  it(`${FLIPS} guest flips paced by the host, a mode change every 1,000: fds, FBs and live imports end as they started`, { timeout: Math.max(300_000, FLIPS * 40) }, async () => {
    const card = findCardByDriver('vkms')!;
    const dev = KmsDevice.open(card);
    const out = new Output(dev, { connector: 'Virtual-1', mode: { width: 640, height: 480 } });
    const guest = new UdmabufSource({ width: 640, height: 480, buffers: 3 });
    const errors: string[] = [];
    out.on('error', (e) => errors.push(`${e.cause}: ${e.message}`));
    out.enable();
    out.attach(guest, 'native');
    let flips = 0;
    let presented = 0;
    const flipNext = () => {
      flips++;
      if (flips % 1000 === 0) {
        const [w, h] = MODES[(flips / 1000) % MODES.length];
        guest.setMode(w, h);
      }
      const i = flips % 3;
      guest.render(i, flips);
      guest.flip(i, flips);
    };
    // Counts are taken 20 flips into the same mode at the start (after a warm-up through
    // every mode, so one-time allocations are behind us) and at the end.
    const warmup = MODES.length * 1000;
    const total = FLIPS + 20;
    let start: ReturnType<typeof baseline> | null = null;
    let startFbs = 0;
    let startRss = 0;
    let startLive = 0;
    const done = new Promise<void>((resolve) => {
      out.on('present', () => {
        presented++;
        if (flips === warmup + 20 && !start) {
          start = baseline(card);
          startFbs = fbIds(card).length;
          startRss = rssMiB();
          startLive = out.cache.liveFbIds().length;
        }
        if (flips < total) flipNext();
        else resolve();
      });
    });
    flipNext();
    await done;
    await out.idle();
    const endFbs = fbIds(card).length;
    const endLive = out.cache.liveFbIds().length;
    const rss = rssMiB();
    const s = out.statsSnapshot();
    const cap = await out.captureNext(); // after the counts: the capture adds its own FB
    console.log(
      `soak: ${flips} flips, ${presented} presented, paths ${JSON.stringify(s.paths)}, imports ${s.imports}, TEST_ONLY ${s.testOnlyCommits}, ` +
        `FBs on the device ${startFbs} → ${endFbs}, live imports ${startLive} → ${endLive}, RSS ${startRss.toFixed(1)} → ${rss.toFixed(1)} MiB, latency p99 ${s.latencyMs.p99.toFixed(1)} ms`,
    );
    expect(flips).toBe(total);
    expect(errors.filter((e) => !e.startsWith('not-ready'))).toEqual([]);
    expect(s.bytesCopied).toBe(0);
    const [w, h] = MODES[Math.floor(FLIPS / 1000) % MODES.length];
    expect(decodeFrameNumber({ bytes: cap.pixels, offset: 0, width: 640, height: 480, stride: cap.stride }, (640 - w) / 2, (480 - h) / 2)).toBeGreaterThanOrEqual(FLIPS);
    expect(start, `GUESTPLANE_SOAK_FLIPS must be a multiple of 1,000 of at least ${warmup + 1000}`).not.toBeNull();
    expect((FLIPS - warmup) % (MODES.length * 1000)).toBe(0); // the same mode at start and end
    const st = start as unknown as ReturnType<typeof baseline>;
    expect(endFbs).toBe(startFbs);
    expect(endLive).toBe(startLive);
    expect(st.leakedFds()).toEqual([]);
    await out.close();
    guest.close();
    await dev.close();
  });
});
