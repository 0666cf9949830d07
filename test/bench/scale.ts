// Several guests at once on a 4-CRTC vkms ConfigFS device: one Output per CRTC, each
// showing one guest (1, 2, 4 guests). With 8 guests there are two per CRTC and each
// output switches between its two every `switchMs` (a kiosk cycling through VMs): an
// Output drives one primary plane and 4 CRTCs have 4 primaries, so 8 guests cannot all be
// on screen at once without overlay-plane allocation, which the Output does not do.
// Every guest keeps flipping (GUEST_FPS) whether shown or not, as running VMs do.
//
// Expected frames = guest flips made while that guest was on its output. A present counts
// when it shows a frame flipped while its guest was attached (frame numbers are disjoint
// per guest, so the present says whose frame it was); missed = expected − counted.
import { KmsDevice } from '../../plugin/kms/device.js';
import { setDrmEventPath, type DrmEventPath } from '../../plugin/kms/events.js';
import { Output, type PresentEvent } from '../../plugin/output/output.js';
import { createVkmsDevice, type VkmsConfigfsDevice } from '../integration/helpers/vkms-configfs.js';
import { BenchGuest } from './guest.js';
import { cpuMicros, sampleProcess, sleep, summarizeLatency, type LatencySummary, type ProcessSample } from './measure.js';

const FRAME_SPACE = 10_000_000;

export interface ScaleSpec {
  guests: number;
  /**
   * One vkms ConfigFS device per guest, one CRTC each (default: all on one 4-CRTC
   * device): every device has its own DRM fd and page-flip event reader.
   */
  devicePerGuest?: boolean;
  /** How the readers wait for page-flip events (default uv_poll). */
  drmEvents?: DrmEventPath;
  width: number;
  height: number;
  warmupMs: number;
  ms: number;
  switchMs: number;
}

export interface ScaleResult {
  outputs: number;
  expected: number;
  presented: number;
  missed: number;
  guestFrames: number;
  commits: number;
  testOnly: number;
  imports: number;
  switches: number;
  cpuUs: number;
  refreshMs: number;
  latency: LatencySummary;
  start: ProcessSample;
  end: ProcessSample;
  errors: string[];
}

interface Head {
  out: Output;
  dev: KmsDevice;
  guests: BenchGuest[];
  shown: number;
  /** guest.frames when it was last attached: its frames above this are expected. */
  attachedAt: number;
  /** Each guest's guest.frames when the window opened: earlier frames are the warm-up's. */
  windowFrom: number[];
}

export async function runScale(spec: ScaleSpec): Promise<ScaleResult> {
  const start = sampleProcess();
  const nOutputs = spec.devicePerGuest ? spec.guests : Math.min(4, spec.guests);
  const perOutput = Math.ceil(spec.guests / nOutputs);
  const vkmsDevs: VkmsConfigfsDevice[] = [];
  const devs: KmsDevice[] = [];
  const heads: Head[] = [];
  const errors = new Set<string>();
  setDrmEventPath(spec.drmEvents ?? 'uv');
  try {
    for (let d = 0; d < (spec.devicePerGuest ? nOutputs : 1); d++) {
      const v = createVkmsDevice({ crtcs: (spec.devicePerGuest ? [0] : [0, 1, 2, 3]).map(() => ({ writeback: false })) });
      vkmsDevs.push(v);
      devs.push(KmsDevice.open(v.cardPath));
    }
    let g = 0;
    for (let i = 0; i < nOutputs; i++) {
      const d = spec.devicePerGuest ? i : 0;
      const dev = devs[d]!;
      const out = new Output(dev, { connector: vkmsDevs[d]!.connectorNames[spec.devicePerGuest ? 0 : i]!, mode: { width: spec.width, height: spec.height } });
      const guests: BenchGuest[] = [];
      for (let k = 0; k < perOutput && g < spec.guests; k++, g++) {
        const guest = new BenchGuest(spec.width, spec.height, 3);
        guest.frameBase = g * FRAME_SPACE;
        guests.push(guest);
      }
      heads.push({ out, dev, guests, shown: 0, attachedAt: 0, windowFrom: guests.map(() => 0) });
      out.on('error', (e) => errors.add(`${e.cause}: ${e.message}`));
    }
    // measuring: guest flips count as expected; counting: presents count (a little longer,
    // so that frames flipped at the end of the window can land).
    let measuring = false;
    let counting = false;
    let expected = 0;
    let presented = 0;
    let guestFrames = 0;
    const lat: number[] = [];
    for (const h of heads) {
      h.out.enable();
      h.out.attach(h.guests[0].source, 'native');
      h.guests.forEach((guest, idx) => {
        guest.onFlip = () => {
          if (!measuring) return;
          guestFrames++;
          if (idx === h.shown) expected++;
        };
      });
      h.out.on('present', (p: PresentEvent) => {
        if (!counting || p.frame === undefined) return;
        const guest = h.guests[h.shown];
        const ownFrame = p.frame - guest.frameBase;
        // Another guest's frame, from before the switch, or from before the window.
        if (ownFrame <= Math.max(h.attachedAt, h.windowFrom[h.shown]) || ownFrame >= FRAME_SPACE) return;
        presented++;
        if (p.latencyNs !== undefined) lat.push(p.latencyNs / 1e6);
      });
    }
    for (const h of heads) for (const guest of h.guests) guest.start();
    let switches = 0;
    const switcher =
      perOutput > 1
        ? setInterval(() => {
            for (const h of heads) {
              h.shown = (h.shown + 1) % h.guests.length;
              const guest = h.guests[h.shown];
              h.attachedAt = guest.frames;
              h.out.attach(guest.source, 'native');
              if (measuring) switches++;
            }
          }, spec.switchMs)
        : null;
    await sleep(spec.warmupMs);
    const snap = () => heads.map((h) => h.out.statsSnapshot());
    const s0 = snap();
    const c0 = cpuMicros();
    for (const h of heads) h.windowFrom = h.guests.map((g) => g.frames);
    measuring = counting = true;
    await sleep(spec.ms);
    measuring = false;
    const c1 = cpuMicros();
    const s1 = snap();
    if (switcher) clearInterval(switcher);
    for (const h of heads) for (const guest of h.guests) {
      guest.stop();
      if (guest.error) errors.add(`guest: ${guest.error.message}`);
    }
    await sleep(60);
    counting = false;
    const imports = s1.reduce((a, s, i) => a + s.imports - s0[i].imports, 0);
    // Commit counters live on the device, shared by its outputs: once per device.
    const perDevice = (f: (s: (typeof s1)[number]) => number) => heads.reduce((a, h, i) => (heads.findIndex((x) => x.dev === h.dev) === i ? a + f(s1[i]) - f(s0[i]) : a), 0);
    const refreshMs = heads[0].out.refreshNs / 1e6;
    const result: ScaleResult = {
      outputs: nOutputs,
      expected,
      presented,
      missed: expected - presented,
      guestFrames,
      commits: perDevice((s) => s.commits),
      testOnly: perDevice((s) => s.testOnlyCommits),
      imports,
      switches,
      cpuUs: c1 - c0,
      refreshMs,
      latency: summarizeLatency(lat, refreshMs),
      start,
      end: start,
      errors: [...errors],
    };
    await release(heads, devs, vkmsDevs);
    result.end = sampleProcess();
    return result;
  } finally {
    await release(heads, devs, vkmsDevs);
  }
}

/** Closes the outputs, their guests, the devices and the ConfigFS devices (each list emptied). */
async function release(heads: Head[], devs: KmsDevice[], vkmsDevs: VkmsConfigfsDevice[]): Promise<void> {
  for (const h of heads.splice(0)) {
    await h.out.close();
    for (const guest of h.guests) guest.close();
  }
  for (const d of devs.splice(0)) await d.close();
  for (const v of vkmsDevs.splice(0)) v.remove();
}
