// Issue 13, zero-copy from a real guest OS: inside the rig, an unmodified QEMU (Debian's 7.2,
// the rig's 10.0.x and trixie-backports' 11.x, each a test of its own; TCG inside TCG) boots the rig kernel as a guest with virtio-gpu (blob=true, guest RAM a shared
// memfd) and -display dbus,gl=on. The guest's PID 1 (helpers/gp-guest-flip.c) page-flips
// numbered frames between two dumb buffers on its virtio-gpu card; the guest kernel makes
// them blob resources, QEMU exports each as a udmabuf of guest memory and sends it with
// ScanoutDMABUF; our QemuConsoleSource hands it to an Output on vkms, which scans it out
// (zero-copy), read back through writeback.
//
// QEMU 7.2 quirks this meets (see helpers/nested-guest.ts and gp-guest-flip.c):
//  - it makes a udmabuf of a blob only when the blob is in more than one piece of guest
//    memory; the guest program leaves single-page holes first so that its buffers are;
//  - every page flip is ScanoutDMABUF(new) then Disable (the release of the old buffer,
//    dpy_gl_release_dmabuf) then UpdateDMABUF: a source that takes that Disable as
//    "display off" shows no signal after the first flip;
//  - blob scanouts come with y0_top false, and the dumb buffers are stored top row first.
// QEMU 10.0 (9.2+): the Disable of a flip drops its ScanoutDMABUF if that was still queued
// in QEMU (most flips in the rig); the source tells it from a real Disable by the
// UpdateDMABUF that follows and registers a new listener to learn the buffer. At the end
// the guest turns its display off for real (a Disable alone): no signal.
// QEMU 10.1+ (11.x here): our listener offers Unix.ScanoutDMABUF2 in its Interfaces, so every
// scanout comes as ScanoutDMABUF2 (planes, the shown rectangle, the backing size) and
// never as ScanoutDMABUF; 7.2 and 10.0 send only ScanoutDMABUF.
// Timings (rig, 2 cores, other VMs on the host): QEMU spawn → guest init 26-28 s, 30 frames
// at ~10/s, the whole test ~45 s.
import { describe, it, expect } from 'vitest';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as libc from '../../ffi/libc.js';
import { dmabufExporter } from '../../ffi/dmabuf.js';
import { Output, type PresentEvent } from '../../plugin/output/output.js';
import { QemuDisplay } from '../../plugin/sources/qemu-display.js';
import { decodeFrameNumber, drawPattern } from '../../plugin/sources/pattern.js';
import { cleanupAfterEach, openVkms } from './helpers/cleanup.js';
import { patternMismatches, waitFor } from './helpers/faults.js';
import { startSessionBus, unexpectedQemuStderr } from './helpers/qemu.js';
import { nestedGuestMissing, rigKernel, startNestedGuest, waitForDisplayOnBus } from './helpers/nested-guest.js';
import { dmabufScanoutMember, qemuBuildsWithNewest, type QemuBuild } from './helpers/qemu-builds.js';

const cleanup = cleanupAfterEach();
const fdCount = () => readdirSync('/proc/self/fd').length;
const W = 640;
const H = 480;
const FRAMES = Number(process.env.GUESTPLANE_NESTED_FRAMES ?? 30);
const XR24 = 0x34325258;
const XB24 = 0x34324258; // XBGR8888: a GL texture's byte order (R first)
// QEMU 9.0+ trace the display messages their listener filter drops (dbus_filter).
const TRACE = (q: QemuBuild): string[] => (Number(q.version?.split('.')[0]) >= 9 ? ['-trace', 'enable=dbus_filter', '-trace', 'enable=dbus_gl_gfx_switch', '-trace', 'enable=dbus_scanout_texture'] : []);
const traced = (stderr: string) => stderr.split('\n').filter((l) => /dbus_(filter|gl_gfx_switch|scanout_texture)/.test(l));
const builds = qemuBuildsWithNewest().map((qemu) => ({ qemu, label: qemu.label, missing: nestedGuestMissing(qemu) }));
for (const b of builds) if (b.missing) console.log(`qemu-dbus-guest on ${b.label}: skipped: ${b.missing}`);

for (const { qemu, missing } of builds) describe(`${qemu.label}: a real guest OS on virtio-gpu (blob) through QEMU -display dbus`, () => {
  it.skipIf(missing)(
    `the guest flips ${FRAMES} frames between two dumb buffers; QEMU hands them over as udmabufs; they are scanned out zero-copy, pixel-exact, imported once each`,
    async () => {
      const t0 = Date.now();
      const dir = mkdtempSync(join(tmpdir(), 'gpn-'));
      const bus = startSessionBus(dir);
      cleanup.push(() => bus.close());
      const { guest, buildMs } = startNestedGuest({ dir, busAddress: bus.address, kernel: rigKernel()!, frames: FRAMES, width: W, height: H, qemu, extraArgs: TRACE(qemu) });
      cleanup.push(() => guest.close());
      const displayMs = await waitForDisplayOnBus(guest, bus.address);

      const display = await QemuDisplay.connect(bus.address);
      cleanup.push(() => display.close());
      const consoles = await display.consoles();
      expect(consoles.map((c) => [c.id, c.type, c.label])).toEqual([[0, 'Graphic', 'virtio-gpu-pci']]);

      const dev = openVkms(cleanup);
      const out = new Output(dev, { connector: 'Virtual-1', mode: { width: W, height: H } });
      cleanup.push(() => out.close());
      const errors: string[] = [];
      out.on('error', (e) => errors.push(`${e.cause}: ${e.message}`));
      const presents: PresentEvent[] = [];
      out.on('present', (p) => presents.push(p));
      out.enable();
      const src = await display.open(0);
      // What this QEMU sends, in order (S<buffer> = a ScanoutDMABUF of that buffer, S2<buffer>
      // a ScanoutDMABUF2), and how often each method came.
      const calls: string[] = [];
      const members = new Map<string, number>();
      src.onListenerCall = (m) => {
        members.set(m, (members.get(m) ?? 0) + 1);
        calls.push(m === 'ScanoutDMABUF' ? 'S' : m === 'ScanoutDMABUF2' ? 'S2' : m === 'UpdateDMABUF' ? 'U' : m === 'Disable' ? 'D' : m);
      };
      out.attach(src, 'native');

      // Every dma-buf QEMU hands over: who exported it, and whether QEMU said y0_top.
      const buffers = new Map<number, { exporter: string; y0Top: boolean; width: number; height: number; stride: number; format: number }>();
      src.on('changed', () => {
        const q = src.query('primary');
        if (q.state === 'ok' && (calls.at(-1) === 'S' || calls.at(-1) === 'S2')) calls[calls.length - 1] += String(q.plane.bufferId);
        if (q.state !== 'ok' || q.plane.transport !== 'dmabuf' || buffers.has(q.plane.bufferId)) return;
        const fd = src.exportDmabuf(q.plane);
        try {
          const exporter = dmabufExporter(fd) ?? '?';
          buffers.set(q.plane.bufferId, { exporter, y0Top: q.plane.transform !== undefined, width: q.plane.width, height: q.plane.height, stride: q.plane.stride, format: q.plane.format });
        } finally {
          libc.close(fd);
        }
      });

      const first = await guest.waitForLine(/^frame 1 /, 240_000);
      await guest.waitForLine(/^frame 3 /, 60_000);
      // The source's dma-buf fds apart: with QEMU 9.2+ a buffer's first ScanoutDMABUF may come
      // late (see below), so its one fd may be adopted after this baseline. Counted when no new
      // listener is being registered (a lost scanout's relisten holds two listener sockets for
      // a moment: a baseline taken then was 2 above the steady count, 29 against 27, on 10.0.2).
      await waitFor(() => !src.relistening, 'no relisten in flight', 10_000);
      const fds0 = fdCount() - src.heldFds;
      const held = await guest.waitForLine(/^holding frame/, 60_000 + FRAMES * 5_000);
      const done = guest.lines.find((l) => l.text.startsWith('done '))!;

      // The guest keeps its last frame: the screen must show exactly that frame.
      let decoded: number | null = null;
      let mismatches = -1;
      for (let tries = 0; tries < 10 && !(decoded === FRAMES && mismatches === 0); tries++) {
        const cap = await out.captureNext();
        decoded = decodeFrameNumber({ bytes: cap.pixels, offset: 0, width: W, height: H, stride: cap.stride });
        mismatches = decoded === FRAMES ? patternMismatches(cap, FRAMES, W, H, drawPattern) : -1;
      }
      await waitFor(() => !src.relistening, 'no relisten in flight', 10_000);
      const fdsAfter = fdCount() - src.heldFds;
      const stats = out.statsSnapshot();
      const frames = guest.frames();
      const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] ?? NaN;
      const init = /^init at ([\d.]+) s/.exec(guest.lines[0]?.text ?? '');
      console.log(
        [
          `nested guest: QEMU spawn → org.qemu ${displayMs} ms, → guest init ${guest.lines[0]?.at} ms (guest kernel says ${init?.[1]} s), → frame 1 ${first.at} ms, → frame ${FRAMES} held ${held.at} ms; guest program built in ${buildMs} ms`,
          `guest frames: ${done.text}; draw median ${med(frames.map((f) => f.drawMs)).toFixed(1)} ms, flip median ${med(frames.slice(1).map((f) => f.flipMs)).toFixed(1)} ms`,
          `buffers: ${JSON.stringify([...buffers.values()])}`,
          `source: ${JSON.stringify(src.stats)}; output: imports ${stats.imports}, paths ${JSON.stringify(stats.paths)}, bytes copied ${stats.bytesCopied}; fds ${fds0} → ${fdsAfter}; capture decoded ${decoded}, mismatches ${mismatches}`,
          `presents: ${JSON.stringify(presents.map((p) => `${p.path}${p.zeroCopy ? '*' : ''}:${p.frame ?? '-'}`))}`,
          `${qemu.label} listener calls: ${JSON.stringify(Object.fromEntries(members))}: ${calls.join(' ')}`,
          `${qemu.label} trace: ${traced(guest.stderr).length} lines: ${traced(guest.stderr).slice(0, 60).join(' | ')}`,
          `errors: ${JSON.stringify(errors)}; warnings ${JSON.stringify(src.warnings)}; test ${Date.now() - t0} ms`,
        ].join('\n'),
      );

      expect(decoded, 'the held frame is on screen').toBe(FRAMES);
      expect(mismatches, 'the held frame is pixel-exact (and upright)').toBe(0);
      // Both guest buffers came as udmabufs of guest memory, XRGB8888 as the guest draws them.
      // QEMU 11.1.3 with its Mesa 26 (llvmpipe on vgem) also hands over the console's 2D
      // surfaces before the guest's first flip (QEMU's placeholder, the guest kernel's console)
      // as dma-bufs, XBGR8888 textures exported as udmabufs; 7.2 and 10.0.2 on bookworm's Mesa
      // could not ("failed to get fd for texture"). Nothing else comes.
      const guestBuffers = [...buffers.values()].filter((b) => b.format === XR24);
      const surfaces = [...buffers.values()].filter((b) => b.format !== XR24);
      expect(guestBuffers.map((b) => b.exporter)).toEqual(['udmabuf', 'udmabuf']);
      expect(guestBuffers.every((b) => b.width === W && b.height === H && b.stride === W * 4)).toBe(true);
      expect(surfaces.every((b) => b.format === XB24 && b.width === W && b.height === H && b.stride === W * 4), JSON.stringify(surfaces)).toBe(true);
      expect(stats.imports, 'one FB import per guest buffer and per console surface').toBe(guestBuffers.length + surfaces.length);
      expect(stats.bytesCopied).toBe(0);
      const shown = presents.filter((p) => p.frame !== undefined);
      expect(shown.length).toBeGreaterThan(0);
      expect(shown.every((p) => p.path === 'scanout' && p.zeroCopy), JSON.stringify(shown.filter((p) => p.path !== 'scanout'))).toBe(true);
      expect(fdsAfter, 'fds (other than one per guest buffer) flat over the flips').toBe(fds0);
      expect(src.heldFds, 'one fd per known dma-buf').toBe(src.stats.buffersKnown);
      if (surfaces.length === 0) expect(src.heldFds, 'one fd per guest buffer').toBe(2);
      // Each flip's Disable (QEMU releasing the old buffer) was taken as such, never as "off".
      // QEMU 9.2+ drop the flip's ScanoutDMABUF when its Disable is queued before the message
      // left (dbus_filter): then Disable + UpdateDMABUF come alone, and the source learns the
      // new buffer from a new listener.
      expect(src.stats.releaseDisables + src.stats.lostScanouts).toBeGreaterThan(FRAMES / 2);
      expect(src.stats.relistens).toBeLessThanOrEqual(src.stats.lostScanouts);
      expect(presents.some((p) => p.path === 'no-signal' && presents.indexOf(p) > presents.findIndex((q) => q.frame !== undefined))).toBe(false);
      expect(src.stats.answered.timeout, 'no UpdateDMABUF waited for the backstop').toBe(0);
      expect(errors).toEqual([]);
      // The scanout method this QEMU uses with our listener (it read our Interfaces property).
      const expected = dmabufScanoutMember(qemu);
      const other = expected === 'ScanoutDMABUF2' ? 'ScanoutDMABUF' : 'ScanoutDMABUF2';
      expect(members.get(expected ?? 'ScanoutDMABUF') ?? 0, `${expected} calls`).toBeGreaterThan(0);
      expect(members.get(other) ?? 0, `${other} calls`).toBe(0);

      expect(unexpectedQemuStderr(guest.stderr).filter((l) => !traced(l).length), guest.stderr).toEqual([]);
      // What QEMU logs after this point is logged, not checked: QEMU 7.2 then timed out an
      // UpdateDMABUF the listener never saw (under investigation, see the commit).
      const stderrAtOff = guest.stderr.length;

      // The guest turns its display off for real (a Disable alone, nothing after it): no signal.
      const offFrom = presents.length;
      const callsFrom = calls.length;
      guest.type('off');
      await guest.waitForLine(/^display off/, 60_000);
      const dark = await waitFor(() => presents.slice(offFrom).some((p) => p.path === 'no-signal'), 'no signal', 15_000).then(() => true, () => false);
      console.log(`${qemu.label} after "off": listener calls ${calls.slice(callsFrom).join(' ') || '(none)'}; no signal ${dark}; trace ${traced(guest.stderr).slice(-4).join(' | ')}`);
      // QEMU 7.2 sends nothing then in the rig (the placeholder it switches to cannot be
      // exported: "failed to get fd for texture"), so the last frame stays; a Disable alone
      // must turn the screen dark, and nothing else may.
      const disabled = calls.slice(callsFrom).includes('D');
      expect(dark, `no signal after the guest turned its display off (QEMU sent ${disabled ? 'a Disable' : 'no Disable'})`).toBe(disabled);
      if (disabled) expect(src.query('primary').state).toBe('disabled');
      console.log(`${qemu.label} stderr after "off": ${guest.stderr.slice(stderrAtOff).trim() || '(none)'}`);
    },
    600_000,
  );
});
