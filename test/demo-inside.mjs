// The demo's inside half: runs where a KMS device is (the rig VM, or a real host with
// --here). Shows four guests, one after the other, on one output: through the public API
// the udmabuf test guest (guest RAM as dma-bufs), an mbochs mediated device driven like a
// VMM drives it, and an unmodified QEMU feeding us over its D-Bus display (mdpy, gl=off);
// then, through `guestplane kiosk --qemu-dbus` as a child process, a real guest Linux under
// QEMU 10 (virtio-gpu blob udmabufs, gl=on: zero-copy; test/demo-nested.ts; in the rig
// only, where the rig kernel is also the guest's). Captures PNGs through the writeback
// connector and writes a report whose figures come from the run's own present events and
// stats.
//
// usage: node test/demo-inside.mjs OUT_DIR [--device PATH] [--connector NAME] [--seconds N]
import { writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { spawn } from 'node:child_process';
import { Backend, UdmabufSource, VfioDevice, VfioSource, QemuGuest, animate, udmabufStep, findCardByDriver } from '../dist/plugin/index.js';
import { qemuDemoMissing, startQemuDemoGuest } from '../dist/test/demo-qemu.js';
import { nestedDemoMissing, showNestedGuest } from '../dist/test/demo-nested.js';
import { BochsDispi, BochsTestGuest, bochsVramReader } from '../dist/plugin/sources/bochs.js';
import { decodeFrameNumber } from '../dist/plugin/sources/pattern.js';
import { placement } from '../dist/plugin/compose/cpu.js';
import { encodePng } from '../dist/plugin/png.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { device: { type: 'string' }, connector: { type: 'string' }, seconds: { type: 'string' } },
});
const outDir = positionals[0];
if (!outDir) {
  console.error('usage: node test/demo-inside.mjs OUT_DIR [--device PATH] [--connector NAME] [--seconds N]');
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });
const seconds = Number(values.seconds ?? 4);
const log = (s) => process.stderr.write(`[demo] ${s}\n`);
const device = values.device ?? findCardByDriver('vkms') ?? undefined;
const backend = Backend.open({ device });
const connector = values.connector ?? backend.listOutputs().find((o) => o.connected)?.name;
if (!connector) throw new Error(`no connected display on ${backend.device.path}`);
log(`device ${backend.device.path} (${backend.device.driver.name}), output ${connector}`);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Runs one guest for `seconds`, capturing `shots` PNGs; returns its report section. */
async function showGuest(name, source, guestSize, startGuest, shots) {
  const out = backend.enableOutput(connector, { mode: { width: 1024, height: 768 } });
  const perPath = {};
  const latencies = [];
  const reasons = new Set();
  let presents = 0;
  out.on('present', (p) => {
    presents++;
    if (p.reason) reasons.add(`${p.path}: ${p.reason}`);
    perPath[p.path] = (perPath[p.path] ?? 0) + 1;
    if (p.latencyNs !== undefined) latencies.push(p.latencyNs / 1e6);
  });
  const errors = [];
  out.on('error', (e) => errors.push(`${e.cause}: ${e.message}`));
  out.attach(source, 'native');
  const tStart = Date.now();
  const guest = startGuest(out);
  // Time to the first guest frame on screen is reported on its own: it includes one-time
  // set-up (the GLES compositor, tried for buffers no plane takes, takes seconds under TCG).
  await new Promise((resolve) => {
    const t = setTimeout(resolve, 30_000);
    const on = (p) => {
      if (p.path === 'no-signal') return;
      clearTimeout(t);
      out.off('present', on);
      resolve();
    };
    out.on('present', on);
  });
  const firstFrameMs = Date.now() - tStart;
  // Measure next, capture after: a writeback capture pauses presentation until vkms has
  // composed the frame (~0.1 s under TCG), which would show up as latency.
  const base = { presents, perPath: { ...perPath }, nLat: latencies.length, guestFrames: guest.frames, stats: out.statsSnapshot() };
  const t0 = Date.now();
  await sleep(seconds * 1000);
  const elapsed = (Date.now() - t0) / 1000;
  const s1 = out.statsSnapshot();
  const s = { ...s1, bytesCopied: s1.bytesCopied - base.stats.bytesCopied, commits: s1.commits - base.stats.commits, testOnlyCommits: s1.testOnlyCommits - base.stats.testOnlyCommits, importsBefore: base.stats.imports };
  const delta = (now, then) => Object.fromEntries(Object.entries(now).map(([k, v]) => [k, v - (then[k] ?? 0)]).filter(([, v]) => v > 0));
  const measured = { presents: presents - base.presents, perPath: delta(perPath, base.perPath), latencies: latencies.slice(base.nLat), guestFrames: guest.frames - base.guestFrames };
  const captures = [];
  for (let i = 1; i <= shots; i++) {
    await sleep(300);
    const c = await out.captureNext();
    const file = `${name}-${i}.png`;
    writeFileSync(join(outDir, file), encodePng(c));
    const pl = placement('native', guestSize.width, guestSize.height, c.width, c.height);
    const frameInPixels = decodeFrameNumber({ bytes: c.pixels, offset: 0, width: c.width, height: c.height, stride: c.stride }, pl.dst.x, pl.dst.y);
    captures.push({ file, path: c.content?.path ?? null, frameShown: c.content?.frame ?? null, frameInPixels });
    log(`${name}: ${file} shows guest frame ${frameInPixels} (${c.content?.path})`);
  }
  guest.stop();
  await out.close();
  const lat = measured.latencies.sort((a, b) => a - b);
  const pct = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))] : null);
  return {
    guest: name,
    guestSize: `${guestSize.width}x${guestSize.height}`,
    seconds: Number(elapsed.toFixed(2)),
    firstFrameMs,
    guestFrames: measured.guestFrames,
    framesPresented: measured.presents,
    paths: measured.perPath,
    latencyMs: { p50: pct(50), p95: pct(95), p99: pct(99), samples: lat.length },
    refreshMs: out.refreshNs / 1e6,
    bytesCopied: s.bytesCopied,
    imports: s.imports,
    importsDuringWindow: s.imports - s.importsBefore,
    commits: s.commits,
    testOnlyCommits: s.testOnlyCommits,
    errors: s.errors,
    whyNotZeroCopy: [...reasons],
    firstErrors: errors,
    captures,
  };
}

const sections = [];

// 1. udmabuf: guest memory exported as dma-bufs, triple-buffered, 60 Hz.
{
  const src = new UdmabufSource({ width: 800, height: 600, buffers: 3 });
  try {
    sections.push(await showGuest('udmabuf', src, { width: 800, height: 600 }, (out) => animate(udmabufStep(src, () => out.buffersInUse()), 60), 3));
  } finally {
    src.close();
  }
}

// 2. mbochs: a VFIO mediated device; this script plays the VMM and the guest driver.
if (existsSync('/sys/class/mdev_bus/mbochs')) {
  const uuid = randomUUID();
  writeFileSync('/sys/class/mdev_bus/mbochs/mdev_supported_types/mbochs-medium/create', uuid);
  const vdev = VfioDevice.open(uuid);
  const dispi = new BochsDispi(vdev);
  const src = new VfioSource(vdev, { cpuReader: bochsVramReader(dispi) });
  try {
    const g = new BochsTestGuest(dispi, 3);
    g.setMode(800, 600);
    sections.push(await showGuest('mbochs', src, { width: 800, height: 600 }, () => animate(() => g.step(), 30), 2));
  } finally {
    src.close();
    dispi.close();
    vdev.close();
    // The kernel's removal waits for every user of the device: never block on it here.
    const rm = spawn('sh', ['-c', `echo 1 > /sys/bus/mdev/devices/${uuid}/remove`], { stdio: 'ignore' });
    const removed = await new Promise((r) => { const t = setTimeout(() => r(false), 10_000); rm.on('close', () => { clearTimeout(t); r(true); }); });
    if (!removed) { log(`mbochs ${uuid}: removal still blocked after 10 s (something holds the device)`); rm.unref(); }
  }
} else {
  log('no mbochs parent (/sys/class/mdev_bus/mbochs): the mbochs part is skipped');
  sections.push({ guest: 'mbochs', skipped: 'no mbochs parent device on this machine (modprobe mbochs, or run the demo in the rig)' });
}
// 3. QEMU: an unmodified QEMU (-display dbus,gl=off, an mdpy device) feeding guestplane
// over D-Bus; this script plays the guest's display driver through qtest.
const qemuMissing = qemuDemoMissing();
if (!qemuMissing) {
  const q = await startQemuDemoGuest();
  const src = new QemuGuest({ address: q.address, log });
  try {
    await src.attached();
    sections.push(await showGuest('qemu-dbus', src, { width: q.width, height: q.height }, () => q.start(), 2));
  } finally {
    src.close();
    await q.close();
  }
} else {
  log(`the QEMU D-Bus part is skipped: ${qemuMissing}`);
  sections.push({ guest: 'qemu-dbus', skipped: qemuMissing });
}
const devicePath = backend.device.path;
const deviceName = `${devicePath} (${backend.device.driver.name})`;
// The kiosk process of the next row must become DRM master: this process lets go first.
await backend.close();

// 4. A real guest OS under QEMU 10, shown by the kiosk CLI (zero-copy udmabufs).
let failed = false;
const nestedMissing = nestedDemoMissing();
if (!nestedMissing) {
  try {
    sections.push(await showNestedGuest({ outDir, device: devicePath, connector, seconds, log }));
  } catch (e) {
    failed = true;
    log(`the real-guest part failed: ${e.message}`);
    sections.push({ guest: 'qemu-guest', failed: e.message.split('\n')[0] });
  }
} else {
  log(`the real-guest part is skipped: ${nestedMissing}`);
  sections.push({ guest: 'qemu-guest', skipped: nestedMissing });
}

const report = {
  date: new Date().toISOString(),
  device: deviceName,
  connector,
  kernel: (await import('node:os')).release(),
  sections,
};
writeFileSync(join(outDir, 'report.json'), JSON.stringify(report, null, 2) + '\n');

const fmt = (x) => (x === null || x === undefined ? '–' : typeof x === 'number' ? (Number.isInteger(x) ? String(x) : x.toFixed(2)) : String(x));
let md = `# guestplane demo report\n\n${report.date} · ${report.device} · output ${connector} · kernel ${report.kernel}\n\n`;
md += `Each guest is measured for a window that starts once its first frame is on screen (time to it in "first frame"); counts are for that window, imports are totals.\n\n`;
md += `| guest | size | first frame ms | window s | guest frames | presented | paths | latency p50 / p95 / p99 ms (refresh ${fmt(sections[0].refreshMs)} ms) | bytes copied | imports | TEST_ONLY | commits |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n`;
for (const s of sections) {
  if (s.skipped || s.failed) {
    md += `| ${s.guest} | ${s.skipped ? `skipped: ${s.skipped}` : `FAILED: ${s.failed}`} ||||||||||\n`;
    continue;
  }
  const paths = Object.entries(s.paths).map(([p, n]) => `${p} ${n}`).join(', ');
  md += `| ${s.guest} | ${s.guestSize} | ${s.firstFrameMs} | ${fmt(s.seconds)} | ${s.guestFrames} | ${s.framesPresented} | ${paths} | ${fmt(s.latencyMs.p50)} / ${fmt(s.latencyMs.p95)} / ${fmt(s.latencyMs.p99)} | ${s.bytesCopied} | ${s.imports} | ${s.testOnlyCommits} | ${s.commits} |\n`;
}
md += `\nCaptures (writeback connector; the frame number is readable in the digits and decoded from the bit row):\n\n`;
for (const s of sections) for (const c of s.captures ?? []) md += `- ${c.file}: ${c.path}, guest frame ${fmt(c.frameInPixels)}${c.mismatches === undefined ? '' : c.mismatches === 0 ? ', pixel-exact' : `, ${fmt(c.mismatches)} pixels off the guest's pattern`}\n`;
for (const s of sections.filter((x) => x.kioskUsage)) {
  const u = (x) => `fds ${x.fds} (dma-bufs ${x.dmabufs}), sockets ${x.sockets}, FBs ${x.fbs}`;
  const t = s.timings;
  md += `\n${s.guest}: a guest Linux under ${s.qemu} (nested: TCG inside the rig's TCG), virtio-gpu blob, \`-display dbus,gl=on\`, shown by \`guestplane kiosk --qemu-dbus\` (a child process; kiosk: ${s.kioskExit} on SIGTERM). `;
  md += `QEMU's display on the bus ${(t.qemuToBusMs / 1000).toFixed(1)} s after its start, guest program's first line ${(t.qemuToGuestInitMs / 1000).toFixed(1)} s, first flip ${(t.qemuToGuestFrame1Ms / 1000).toFixed(1)} s; this row took ${(t.rowMs / 1000).toFixed(0)} s. `;
  md += `Its "first frame" counts from the kiosk's start (the guest still booting); its latency p50/p99 is over all the frames the kiosk showed (its stats line has the last 2048 frames, no per-window figure; under nested TCG the first frames wait seconds); the guest's own medians in the window: draw ${fmt(s.guestFrameMs.draw)} ms, flip ${fmt(s.guestFrameMs.flip)} ms. `;
  md += `"presented" counts the kiosk's commits shown in the window, "guest frames" the flips the guest's console reported in it (they differ when a guest buffer is shown again, e.g. after QEMU 10 dropped a flip's ScanoutDMABUF and the kiosk learnt the buffer from a new listener). `;
  md += `The guest held a frame before and after the window (captures 1 and 2); the kiosk process then${s.kioskUsage.quiet ? '' : ' (NOT idle for a second both times)'}: ${u(s.kioskUsage.start)} → ${u(s.kioskUsage.end)}: ${s.kioskUsage.flat ? 'flat' : 'NOT flat'}.\n`;
  if (s.qemuStderr.length) md += `\n${s.guest}: QEMU's stderr (beyond the lines the rig tests call harmless): ${s.qemuStderr.slice(0, 5).join(' | ')}\n`;
}
for (const s of sections) for (const r of s.whyNotZeroCopy ?? []) md += `\n${s.guest} not zero-copy because: ${r}\n`;
writeFileSync(join(outDir, 'report.md'), md);
log(`report written to ${join(outDir, 'report.md')}`);
if (failed) process.exit(1);
