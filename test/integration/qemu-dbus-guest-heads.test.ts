// Issue 26 item 6, two heads of one real guest: inside the rig an unmodified QEMU (the rig's
// 10.0.x first, then Debian's 7.2, skipped: QEMU72_CRASH) boots the rig kernel as a guest with a virtio-gpu of two
// outputs (max_outputs=2, blob=true) and -display dbus,gl=on, which puts two consoles on the
// bus. `guestplane heads` (HeadManager, from a heads file as the CLI reads it) shows console 0
// on one connector and console 1 on another connector of a two-CRTC vkms device (ConfigFS),
// each console a guest entry of its own with the same bus address.
//
// QEMU's virtio-gpu keeps every output but the first off until a display sends SetUIInfo for
// its console: the second head exists for the guest only because heads tells QEMU the
// screen's size (heads.ts tellGuest). The guest's PID 1 (helpers/gp-guest-flip.c with
// GP_HEADS=2) waits for its second connector to be connected, then flips numbered frames on
// both, each on its own CRTC between its own two dumb buffers: frame N on the first head,
// pattern N + 500 on the second. Checked on each head: the held frame on screen pixel-exact
// (writeback), every guest frame scanned out zero-copy from QEMU's udmabufs, two imports,
// and the process's fds flat over the flips.
//
// One nested boot per QEMU (30-140 s under nested TCG); the test waits for the guest, never
// for a fixed time.
import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as libc from '../../ffi/libc.js';
import { dmabufExporter } from '../../ffi/dmabuf.js';
import type { Output, PresentEvent } from '../../plugin/output/output.js';
import { loadHeadsConfig } from '../../plugin/modes/heads-config.js';
import { runHeads } from '../../plugin/modes/heads.js';
import { QemuGuest } from '../../plugin/sources/qemu-guest.js';
import { decodeFrameNumber, drawPattern } from '../../plugin/sources/pattern.js';
import { cleanupAfterEach } from './helpers/cleanup.js';
import { patternMismatches } from './helpers/faults.js';
import { startSessionBus, unexpectedQemuStderr } from './helpers/qemu.js';
import { QEMU72_TWO_HEADS_CRASH as QEMU72_CRASH, nestedGuestMissing, rigKernel, startNestedGuest, waitForDisplayOnBus } from './helpers/nested-guest.js';
import { qemuBuilds, type QemuBuild } from './helpers/qemu-builds.js';
import { createVkmsDevice, removeVkmsDevicesWithPrefix, vkmsConfigfsAvailable } from './helpers/vkms-configfs.js';

const PREFIX = `gpgh${process.pid}`;
const cleanup = cleanupAfterEach();
afterAll(() => removeVkmsDevicesWithPrefix(PREFIX));
const fdCount = () => readdirSync('/proc/self/fd').length;
const W = 640;
const H = 480;
const FRAMES = 16;
/** What the guest program adds to the frame number on its second head. */
const HEAD2_BASE = 500;
// QEMU 9.0+ trace the display messages their listener filter drops (dbus_filter).
const major = (q: QemuBuild) => Number(q.version?.split('.')[0]);
const TRACE = (q: QemuBuild): string[] => (major(q) >= 9 ? ['-trace', 'enable=dbus_filter'] : []);
// QEMU 7.2 itself crashes on this guest: SIGSEGV in pixman_image_get_data, called from a static
// function of hw-display-virtio-gpu.so under virtio_gpu_simple_process_cmd (a guest command on
// QEMU's main thread, not the D-Bus listener), at the guest's 8th and 4th frame pair in the
// two rig runs that had it (the second under gdb: set CRASH_TRACE_72 below to true to run it so
// again). The one-head guest (qemu-dbus-guest.test.ts) passes on 7.2. Skipped with that reason
// (helpers/nested-guest.ts QEMU72_TWO_HEADS_CRASH) until it is understood; QEMU 10.0.2 passes.
const CRASH_TRACE_72 = false;
const builds = [...qemuBuilds()].reverse().map((qemu) => ({ qemu, missing: nestedGuestMissing(qemu) ?? (vkmsConfigfsAvailable() ? null : 'no vkms ConfigFS') ?? (major(qemu) < 8 && !CRASH_TRACE_72 ? QEMU72_CRASH : null) }));
for (const b of builds) if (b.missing) console.log(`qemu-dbus-guest-heads on ${b.qemu.label}: skipped: ${b.missing}`);

/** Captures until `out` shows pattern `frame` pixel-exact (the guest holds it), at most 10 tries. */
async function heldFrame(out: Output, frame: number): Promise<{ decoded: number | null; mismatches: number; path: string | undefined }> {
  let r = { decoded: null as number | null, mismatches: -1, path: undefined as string | undefined };
  for (let tries = 0; tries < 10 && !(r.decoded === frame && r.mismatches === 0); tries++) {
    const cap = await out.captureNext();
    const decoded = decodeFrameNumber({ bytes: cap.pixels, offset: 0, width: W, height: H, stride: cap.stride });
    r = { decoded, mismatches: decoded === frame ? patternMismatches(cap, frame, W, H, drawPattern) : -1, path: cap.content?.path };
  }
  return r;
}

let seq = 0;
for (const { qemu, missing } of builds) describe(`${qemu.label}: two heads of one real guest (virtio-gpu max_outputs=2, -display dbus,gl=on) through guestplane heads`, () => {
  it.skipIf(missing)(
    `console 0 and console 1 of one QEMU on two vkms connectors: the guest flips ${FRAMES} frames on each head; both scanned out zero-copy, pixel-exact, imported once per buffer; fds flat`,
    async () => {
      const t0 = Date.now();
      const dir = mkdtempSync(join(tmpdir(), 'gpgh-'));
      const bus = startSessionBus(dir);
      cleanup.push(() => bus.close());
      // QEMU 7.2 crashed (see QEMU72_CRASH): under gdb a crash leaves its backtrace on the
      // console stream.
      const gdb = major(qemu) < 9;
      const { guest, buildMs } = startNestedGuest({ dir, busAddress: bus.address, kernel: rigKernel()!, frames: FRAMES, width: W, height: H, qemu, heads: 2, gdb, extraArgs: TRACE(qemu) });
      cleanup.push(() => guest.close());
      const crash = () => {
        const at = guest.console.search(/received signal|Thread \d+ .* received/);
        return at < 0 ? '' : `\ngdb:\n${guest.console.slice(at, at + 30_000)}`;
      };
      const displayMs = await waitForDisplayOnBus(guest, bus.address);

      const vd = createVkmsDevice({ name: `${PREFIX}-${seq++}`, crtcs: [{ writeback: true }, { writeback: true }] });
      cleanup.push(() => vd.remove());
      const [ca, cb] = vd.connectorNames as [string, string];
      // The file a user writes: one guest entry per console, the same bus.
      const file = join(dir, 'heads.json');
      const qemuGuest = (console: number) => ({ type: 'qemu-dbus', address: bus.address, console });
      writeFileSync(
        file,
        JSON.stringify({
          device: vd.cardPath,
          guests: { vm0: qemuGuest(0), vm1: qemuGuest(1) },
          heads: [
            { guest: 'vm0', connector: ca, mode: { width: W, height: H }, scale: 'native', input: false },
            { guest: 'vm1', connector: cb, mode: { width: W, height: H }, scale: 'native', input: false },
          ],
        }),
      );
      const log: string[] = [];
      const m = await runHeads(loadHeadsConfig(file), { hotplug: false, log: (l) => log.push(`${Date.now() - guest.spawnedAt} ms ${l}`) });
      cleanup.push(() => m.close());
      const outs = [m.output(ca)!, m.output(cb)!];
      const srcs = [m.guest('vm0'), m.guest('vm1')].map((g) => {
        if (!(g instanceof QemuGuest)) throw new Error('heads made no QemuGuest');
        return g;
      });
      const presents: PresentEvent[][] = [[], []];
      const errors: string[][] = [[], []];
      outs.forEach((o, i) => {
        o.on('present', (p) => presents[i]!.push(p));
        o.on('error', (e) => errors[i]!.push(`${e.cause}: ${e.message}`));
      });
      // Every dma-buf QEMU hands over on each console, by exporter (udmabuf: guest memory).
      const exporters: Map<number, string>[] = [new Map(), new Map()];
      srcs.forEach((src, i) =>
        src.on('changed', () => {
          const q = src.query('primary');
          if (q.state !== 'ok' || q.plane.transport !== 'dmabuf' || exporters[i]!.has(q.plane.bufferId)) return;
          const fd = src.exportDmabuf(q.plane);
          try {
            exporters[i]!.set(q.plane.bufferId, dmabufExporter(fd) ?? '?');
          } finally {
            libc.close(fd);
          }
        }),
      );
      await Promise.all(srcs.map((s) => s.attached()));
      // What QEMU sends each console's listener, in order (S = ScanoutDMABUF, U = UpdateDMABUF, D = Disable).
      const calls: string[][] = [[], []];
      srcs.forEach((s, i) => (s.console!.onListenerCall = (m) => calls[i]!.push(m === 'ScanoutDMABUF' ? 'S' : m === 'UpdateDMABUF' ? 'U' : m === 'Disable' ? 'D' : m)));
      const consoles = srcs.map((s) => s.console!.info).map((c) => [c.id, c.type, c.head]);

      // A guest line, or what both consoles saw and QEMU's backtrace (under gdb) when it never comes.
      const line = (re: RegExp, ms: number) =>
        guest.waitForLine(re, ms).catch((e: Error) => {
          console.log(`${qemu.label} two heads: no line ${re}; listener calls ${calls.map((c, i) => `console ${i}: ${c.join(' ')}`).join(' / ')}; presents ${JSON.stringify(presents.map((ps) => ps.map((p) => `${p.path}:${p.frame ?? '-'}`)))}${crash()}`);
          throw new Error(`${e.message}${crash()}`);
        });
      const first = await line(/^head 2 frame 1 /, 300_000);
      await line(/^head 2 frame 3 /, 60_000);
      const held = () => srcs.reduce((n, s) => n + (s.console?.heldFds ?? 0), 0);
      const fds0 = fdCount() - held();
      const stats0 = outs.map((o) => o.statsSnapshot());
      const holding = await line(/^holding frame/, 60_000 + FRAMES * 10_000);
      const shot = [await heldFrame(outs[0]!, FRAMES), await heldFrame(outs[1]!, FRAMES + HEAD2_BASE)];
      const fdsAfter = fdCount() - held();
      const stats = outs.map((o) => o.statsSnapshot());
      const cs = srcs.map((s) => s.console!.stats);
      console.log(
        [
          `${qemu.label} two heads: QEMU spawn → org.qemu ${displayMs} ms, → guest init ${guest.lines[0]?.at} ms, → both heads at frame 1 ${first.at} ms, → holding ${holding.at} ms; guest program built in ${buildMs} ms`,
          `guest: ${guest.lines.filter((l) => /^(mode|head 2 (mode|waiting))|^done/.test(l.text)).map((l) => `${l.at} ms ${l.text}`).join(' | ')}`,
          `consoles [id, type, head]: ${JSON.stringify(consoles)}; exporters ${JSON.stringify(exporters.map((e) => [...e.values()]))}`,
          ...[0, 1].map((i) => `head ${i} (${i ? cb : ca}): imports ${stats[i]!.imports} (${stats0[i]!.imports} at frame 3), paths ${JSON.stringify(stats[i]!.paths)}, bytes copied ${stats[i]!.bytesCopied}; capture ${JSON.stringify(shot[i])}; source ${JSON.stringify(cs[i])}; presents ${JSON.stringify(presents[i]!.map((p) => `${p.path}${p.zeroCopy ? '*' : ''}:${p.frame ?? '-'}`))}`),
          `fds ${fds0} → ${fdsAfter} (held dma-buf fds apart: ${held()}); errors ${JSON.stringify(errors)}; test ${Date.now() - t0} ms`,
          `heads log: ${log.join(' | ')}`,
          ...[0, 1].map((i) => `console ${i} listener calls: ${calls[i]!.join(' ')}`),
          `${qemu.label} trace: ${guest.stderr.split('\n').filter((l) => l.includes('dbus_filter')).slice(0, 40).join(' | ')}`,
        ].join('\n'),
      );

      // Two consoles of one virtio-gpu: heads 0 and 1.
      expect(consoles).toEqual([[0, 'Graphic', 0], [1, 'Graphic', 1]]);
      for (const i of [0, 1]) {
        const what = `head ${i} (console ${i} on ${i ? cb : ca})`;
        expect.soft(shot[i]!.decoded, `${what}: the held frame on screen`).toBe(i ? FRAMES + HEAD2_BASE : FRAMES);
        expect.soft(shot[i]!.mismatches, `${what}: pixel-exact`).toBe(0);
        expect.soft(shot[i]!.path, `${what}: the held frame is scanned out`).toBe('scanout');
        // Both guest buffers of the head came as udmabufs of guest memory, nothing else did.
        expect.soft([...exporters[i]!.values()], what).toEqual(['udmabuf', 'udmabuf']);
        expect.soft(stats[i]!.imports, `${what}: one FB import per guest buffer`).toBe(2);
        expect.soft(stats[i]!.bytesCopied - stats0[i]!.bytesCopied, `${what}: nothing copied while the guest flips`).toBe(0);
        const from = presents[i]!.findIndex((p) => p.path === 'scanout');
        const shown = from < 0 ? [] : presents[i]!.slice(from);
        expect.soft(shown.length, what).toBeGreaterThan(0);
        const other = shown.filter((p) => !(p.path === 'scanout' && p.zeroCopy)).map((p) => `${p.path}${p.zeroCopy ? '*' : ''}:${p.frame ?? '-'} at present ${shown.indexOf(p)} of ${shown.length}`);
        expect.soft(other, `${what}: every present from the first guest frame on is a zero-copy scanout`).toEqual([]);
        expect.soft(srcs[i]!.console!.heldFds, `${what}: one fd per guest buffer`).toBe(2);
        expect.soft(cs[i]!.answered.timeout, `${what}: no UpdateDMABUF waited for the backstop`).toBe(0);
        expect.soft(errors[i], what).toEqual([]);
      }
      expect.soft(fdsAfter, 'fds (other than one per guest buffer) flat over the flips').toBe(fds0);
      expect.soft(unexpectedQemuStderr(guest.stderr).filter((l) => !l.includes('dbus_filter') && !(gdb && /^warning: Error disabling address space randomization/.test(l))), guest.stderr.split('\n').filter((l) => !/dbus_filter|connection is closed|fd for texture/.test(l)).join('\n')).toEqual([]);
    },
    900_000,
  );
});
