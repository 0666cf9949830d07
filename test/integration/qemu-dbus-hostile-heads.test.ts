// Issue 25 item 3: the multi-head kiosk (`guestplane kiosk --config`, one process, one event
// loop for every head) with two QEMUs, each on its own bus (helpers/fake-qemu.ts, written
// from the protocol): head A's QEMU floods, lies or hangs; head B's QEMU is well-behaved and
// shows a dma-buf frame every 33 ms the way a virtio-gpu blob scanout does (ScanoutDMABUF of
// the next of two udmabufs, then UpdateDMABUF, whose answer the kiosk holds until the frame is
// on screen); a uinput keyboard bound to head B types a key every 100 ms (udevd, libinput).
// Measured in each window, from B's side: how long each B frame took to be shown (the
// UpdateDMABUF round trip), the longest time between two shown B frames, B's presented frames
// per second (the kiosk's own stats), how long each key took from uinput to B's QEMU, and the
// kiosk's longest event-loop stall. First with A well-behaved (the baseline), then while A:
//   - floods 4,000 Update calls written at once (worked off in slices; A composes each);
//   - floods 5,000 calls of an unknown method;
//   - hangs its attach (GetAll never answered, then RegisterListener never answered).
// Afterwards A's QEMU is gone: the kiosk holds what it held before A came (fds, dma-bufs,
// sockets), and SIGTERM restores both screens.
import { describe, it, expect, afterAll } from 'vitest';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as drm from '../../ffi/drm.js';
import { FakeQemu, PIXMAN_X8R8G8B8, type FakeListener, type RawOut } from './helpers/fake-qemu.js';
import { GuestRam } from './helpers/guest-ram.js';
import { KioskProcess } from './helpers/kiosk-process.js';
import { formatUsage, pollUntil, usageOf, type Usage } from './helpers/process-usage.js';
import { startSessionBus } from './helpers/qemu.js';
import { cleanupAfterEach } from './helpers/cleanup.js';
import { keyboard, startUdevd, udevSettle, uinputMissing } from './helpers/uinput.js';
import { createVkmsDevice, removeVkmsDevicesWithPrefix } from './helpers/vkms-configfs.js';

const PREFIX = `gphh${process.pid}`;
const cleanup = cleanupAfterEach();
afterAll(() => removeVkmsDevicesWithPrefix(PREFIX));
const missing = !existsSync('/dev/udmabuf') ? 'no /dev/udmabuf' : !existsSync('/sys/kernel/config/vkms') ? 'no vkms ConfigFS' : uinputMissing();
if (missing) console.log(`qemu-dbus-hostile-heads: skipped: ${missing}`);

const W = 640;
const H = 480;
const XR24 = drm.fourcc('XR24');
const KEYBOARD_B = 'gp hostile heads keyboard B';
const KEY_A = 30;
const FRAME_MS = 33;
const FLOOD_UPDATES = 4_000;
const FLOOD_UNKNOWN = 5_000;

interface HeadsLine {
  heads: { head: number; connector: string; state: string; fps: number; paths: Record<string, number> }[];
  t: number;
  stallMs: number;
}

/** What head B saw in one window. */
interface Window {
  what: string;
  seconds: number;
  /** B frames shown (UpdateDMABUF answered) per second, as B's QEMU saw them. */
  shownPerSec: number;
  /** The longest time between two shown B frames, ms. */
  longestGapMs: number;
  /** UpdateDMABUF round trips, ms: p50 and the longest. */
  showP50Ms: number;
  showMaxMs: number;
  /** Frames presented on B's connector per second (the kiosk's stats), each whole second in the window. */
  presentedPerSec: number[];
  /** Frames presented on A's connector per second (the kiosk's stats). */
  aPresentedPerSec: number[];
  /** Keys: sent, arrived in B's QEMU, and the p50 and longest time from uinput to B's QEMU, ms. */
  keysSent: number;
  keysArrived: number;
  keyP50Ms: number;
  keyMaxMs: number;
  /** The kiosk's longest event-loop stall in the window, ms. */
  stallMs: number;
}

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))]! : NaN;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Head B's QEMU: a frame every FRAME_MS, each ScanoutDMABUF + UpdateDMABUF of the next of two buffers. */
class Producer {
  shown: { sent: number; answered: number }[] = [];
  #stop = false;
  readonly done: Promise<void>;

  constructor(l: FakeListener, ram: GuestRam) {
    this.done = this.#run(l, ram);
  }

  async #run(l: FakeListener, ram: GuestRam): Promise<void> {
    for (let n = 0; !this.#stop; n++) {
      const t0 = performance.now();
      const fd = ram.dmabuf((n % 2) * W * 4 * H, W * 4 * H);
      try {
        await l.scanoutDmabuf(fd, { width: W, height: H, stride: W * 4, fourcc: XR24 });
      } finally {
        ram.drop(fd);
      }
      await l.updateDmabuf(W, H);
      const t1 = performance.now();
      this.shown.push({ sent: t0, answered: t1 });
      await sleep(Math.max(0, FRAME_MS - (t1 - t0)));
    }
  }

  async stop(): Promise<void> {
    this.#stop = true;
    await this.done;
  }
}

/** What the kiosk holds now, the least over 1.5 s of samples. */
async function settled(pid: number, card: string): Promise<Usage> {
  const samples: Usage[] = [];
  const end = Date.now() + 1500;
  while (Date.now() < end) {
    samples.push(usageOf(pid, card));
    await sleep(50);
  }
  const min = (f: (u: Usage) => number) => Math.min(...samples.map(f));
  return { fds: min((u) => u.fds), sockets: min((u) => u.sockets), dmabufs: min((u) => u.dmabufs), fbs: min((u) => u.fbs), rssMiB: samples.at(-1)!.rssMiB, marked: 0 };
}

describe.skipIf(missing)('multi-head kiosk with two QEMUs, one hostile (issue 25 item 3)', () => {
  it("a flooding or hanging QEMU on head A delays neither head B's frames nor its keys; A's QEMU leaves nothing behind; SIGTERM restores both screens", async () => {
    startUdevd();
    const kbd = keyboard(KEYBOARD_B);
    cleanup.push(() => kbd.close());
    udevSettle();
    const vd = createVkmsDevice({ name: `${PREFIX}-0`, crtcs: [{ writeback: false }, { writeback: false }] });
    cleanup.push(() => vd.remove());
    const [ca, cb] = vd.connectorNames as [string, string];
    const dir = mkdtempSync(join(tmpdir(), 'gp-hostile-heads-'));
    const busA = startSessionBus(join(dir, 'a'));
    cleanup.push(() => busA.close());
    const busB = startSessionBus(join(dir, 'b'));
    cleanup.push(() => busB.close());
    const ram = new GuestRam(4 * 1024 * 1024);
    cleanup.push(() => ram.close());
    const config = join(dir, 'heads.json');
    writeFileSync(
      config,
      JSON.stringify({
        device: vd.cardPath,
        guests: { a: { type: 'qemu-dbus', address: busA.address }, b: { type: 'qemu-dbus', address: busB.address } },
        heads: [
          { guest: 'a', connector: ca, mode: { width: W, height: H }, scale: 'native' },
          { guest: 'b', connector: cb, mode: { width: W, height: H }, scale: 'native', input: { devices: [KEYBOARD_B] } },
        ],
      }),
    );
    const k = new KioskProcess(['--config', config, '--stats', 'json'], [], { bare: true });
    cleanup.push(() => k.kill());
    const fakes: FakeQemu[] = [];
    cleanup.push(() => fakes.forEach((f) => f.close()));
    const fake = async (address: string) => {
      const f = await FakeQemu.start(address, { width: W, height: H });
      fakes.push(f);
      return f;
    };
    const lines = () => k.lines.filter((l) => l.startsWith('{"heads"')).map((l) => JSON.parse(l) as HeadsLine);
    const kioskLog = () => k.lines.filter((l) => !l.startsWith('{"heads"')).slice(-30).join('\n');
    await k.waitLine((l) => l.includes(KEYBOARD_B) && l.includes('heads[1]'), 20_000).catch((e: Error) => {
      throw new Error(`${e.message}; the kiosk said:\n${kioskLog()}`);
    });

    const qb = await fake(busB.address);
    const producer = new Producer(await qb.nextListener(), ram);
    cleanup.push(() => producer.stop());
    await pollUntil(() => producer.shown.length >= 10, 20_000);
    // What the kiosk holds with B streaming and no QEMU on A.
    const idle = await settled(k.child.pid!, vd.cardPath);

    const keyTimes: number[] = [];
    /** B's side of the next `ms` (at least), or until `until` settles. */
    const measure = async (what: string, ms: number, until: Promise<unknown> = Promise.resolve()): Promise<Window> => {
      // The kiosk's stats lines that came while this process was busy (encoding a flood, just
      // before) are still in the pipe: read them first, or `from` counts them into the window.
      // (CI at 9d0dc42: two such lines, the second from the second in which the encoding held
      // B's producer here, made "B presented 0" in a window where B's longest gap was 242 ms.)
      await sleep(200);
      const t0 = performance.now();
      const from = lines().length;
      const framesFrom = producer.shown.length;
      const pressFrom = qb.input.filter((i) => i.member === 'Press').length;
      const sent: number[] = [];
      let running = true;
      const typing = (async () => {
        while (running) {
          sent.push(performance.now());
          kbd.key(KEY_A, true);
          kbd.key(KEY_A, false);
          await sleep(100);
        }
      })();
      await Promise.all([sleep(ms), until]);
      running = false;
      await typing;
      await sleep(500); // the last keys and frames arrive
      const seconds = (performance.now() - t0) / 1000;
      const frames = producer.shown.slice(framesFrom).filter((f) => f.sent < t0 + seconds * 1000);
      const answered = frames.map((f) => f.answered);
      const gaps = answered.slice(1).map((a, i) => a - answered[i]!);
      const presses = qb.input.filter((i) => i.member === 'Press').slice(pressFrom);
      const keyMs = presses.slice(0, sent.length).map((p, i) => p.at - sent[i]!);
      keyTimes.push(...keyMs);
      const ls = lines().slice(from + 1); // the first line's second began before the window
      const w: Window = {
        what,
        seconds,
        shownPerSec: frames.length / seconds,
        longestGapMs: Math.max(0, ...gaps),
        showP50Ms: quantile(frames.map((f) => f.answered - f.sent), 0.5),
        showMaxMs: Math.max(0, ...frames.map((f) => f.answered - f.sent)),
        presentedPerSec: ls.map((l) => l.heads.find((h) => h.connector === cb)?.fps ?? 0),
        aPresentedPerSec: ls.map((l) => l.heads.find((h) => h.connector === ca)?.fps ?? 0),
        keysSent: sent.length,
        keysArrived: presses.length,
        keyP50Ms: quantile(keyMs, 0.5),
        keyMaxMs: Math.max(0, ...keyMs),
        stallMs: Math.max(0, ...ls.map((l) => l.stallMs)),
      };
      console.log(
        `hostile heads: ${what}: ${seconds.toFixed(1)} s; B shown ${w.shownPerSec.toFixed(1)}/s (p50 ${w.showP50Ms.toFixed(0)} ms, longest ${w.showMaxMs.toFixed(0)} ms, longest gap ${w.longestGapMs.toFixed(0)} ms), presented per second [${w.presentedPerSec.join(' ')}] (A [${w.aPresentedPerSec.join(' ')}]); keys ${w.keysArrived}/${w.keysSent} (p50 ${w.keyP50Ms.toFixed(0)} ms, longest ${w.keyMaxMs.toFixed(0)} ms); longest stall ${w.stallMs.toFixed(0)} ms`,
      );
      return w;
    };

    // Baseline: A's QEMU well-behaved, showing a pixel surface.
    let qa = await fake(busA.address);
    let la = await qa.nextListener();
    await la.scanoutPixels(7);
    const base = await measure('baseline (A well-behaved)', 4000);

    // A busy but well-behaved A: a whole-surface Update every 33 ms, each answered before the
    // next (A composes each on the CPU: its own frames cost the shared loop as much as a flood's).
    let busy = true;
    const busyA = (async () => {
      for (let i = 0; busy; i++) {
        await la.call('Update', [{ type: 'i', value: 0 }, { type: 'i', value: 0 }, { type: 'i', value: 64 }, { type: 'i', value: 48 }, { type: 'u', value: 256 }, { type: 'u', value: PIXMAN_X8R8G8B8 }, { type: 'ay', value: new Uint8Array(64 * 48 * 4).fill(i & 255) }]);
        await sleep(FRAME_MS);
      }
    })();
    const busyWindow = await measure('A well-behaved, updating its surface every 33 ms', 4000);
    busy = false;
    await busyA;

    // The floods are encoded before they are written: the writer shares the rig's CPUs with the
    // kiosk, and its own encoding would delay B's producer and keys in this process.
    const flood = async (msgs: readonly RawOut[]) => {
      await la.write(msgs);
      // The stream is ordered: once this is answered, every message above was read.
      await la.call('MouseSet', [{ type: 'i', value: 1 }, { type: 'i', value: 1 }, { type: 'i', value: 1 }], 120_000);
    };
    const windows = [
      await measure(`A floods ${FLOOD_UPDATES} Update calls`, 3000, flood(Array.from({ length: FLOOD_UPDATES }, (_, i) => la.tinyUpdate(i)))),
      await measure(`A floods ${FLOOD_UNKNOWN} calls of an unknown method`, 3000, flood(Array.from({ length: FLOOD_UNKNOWN }, (_, i) => la.message('NoSuchMethod', [{ type: 'u', value: i }])))),
    ];
    // A's QEMU exits; the next one hangs its attach at GetAll, then at RegisterListener.
    qa.close();
    await k.waitLine((l) => l.includes('guests.a') && l.includes('until QEMU is back'), 20_000);
    qa = await fake(busA.address);
    qa.steps.vmGetAll = 'never';
    qa.steps.register = 'never';
    const hang = (async () => {
      await pollUntil(() => qa.counts.vmGetAll >= 1, 20_000);
      await sleep(3000);
      qa.steps.vmGetAll = 'answer';
      await pollUntil(() => qa.counts.register >= 1, 30_000);
      await sleep(3000);
    })();
    windows.push(await measure("A hangs its attach (GetAll, then RegisterListener, never answered)", 6000, hang));
    expect(qa.counts.register, 'A reached RegisterListener').toBeGreaterThanOrEqual(1);
    qa.close();

    console.log(`hostile heads: key latency over all windows: p50 ${quantile(keyTimes, 0.5).toFixed(0)} ms, p99 ${quantile(keyTimes, 0.99).toFixed(0)} ms`);
    for (const w of [base, busyWindow, ...windows]) {
      // Every key reached B's QEMU; frames kept being shown and presented every second.
      expect(w.keysArrived, w.what).toBe(w.keysSent);
      expect(Math.min(...w.presentedPerSec), `${w.what}: B presented every second`).toBeGreaterThan(0);
    }
    for (const [i, w] of windows.entries()) {
      // A flooding A against a busy well-behaved A (both compose A's frames on the CPU), a
      // hanging A against an idle one. Measured in the rig (TCG, alone): B shown at 0.70 (Update
      // flood), 0.79 (unknown methods) and 1.09 (hang) of the comparison (with 4 ms read slices
      // and the read-ahead, the Update flood fell to 0.55-0.58, and 0.48 once in CI; with 2 ms
      // slices 0.67-0.69 in three runs, unknown methods 0.87-1.12); longest gap between
      // shown B frames 79-177 ms, longest key 37-89 ms, longest stall 29-53 ms (one run with the
      // floods encoded while measured: gap 524 ms, key 436 ms, stall 107 ms). A loop held by A
      // would show seconds (36-108 s before the D-Bus rewrite, issue 25).
      const like = i < 2 ? busyWindow : base;
      expect(w.shownPerSec, `${w.what} against ${like.what}`).toBeGreaterThan(like.shownPerSec * 0.5);
      expect(w.longestGapMs, w.what).toBeLessThan(1000);
      expect(w.keyMaxMs, w.what).toBeLessThan(1000);
      expect(w.stallMs, w.what).toBeLessThan(500);
    }

    // A's QEMU is gone: the kiosk holds what it held before A came.
    let u = usageOf(k.child.pid!, vd.cardPath);
    await pollUntil(() => {
      u = usageOf(k.child.pid!, vd.cardPath);
      return u.fds <= idle.fds && u.sockets <= idle.sockets && u.dmabufs <= idle.dmabufs;
    }, 15_000);
    console.log(`hostile heads: after A's QEMUs: ${formatUsage(u)}; before A came: ${formatUsage(idle)}`);
    expect({ fds: u.fds, sockets: u.sockets, dmabufs: u.dmabufs }).toEqual({ fds: idle.fds, sockets: idle.sockets, dmabufs: idle.dmabufs });
    // A's output keeps its own buffers for its life: background and the CPU composer's two.
    expect(u.fbs).toBeLessThanOrEqual(idle.fbs + 3);

    await producer.stop();
    k.child.kill('SIGTERM');
    const ex = await k.exited;
    expect(ex.code, kioskLog()).toBe(0);
    expect(k.lines.join('\n')).toMatch(/SIGTERM.*screens restored/);
  }, 300_000);
});
