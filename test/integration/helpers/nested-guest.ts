// A real guest OS for rig tests: QEMU (unmodified: Debian's 7.2 or the rig's 10.0.x, see
// qemu-builds.ts) inside the rig, TCG inside
// TCG, boots the rig's own kernel (it has virtio-gpu built in) with a virtio-gpu whose blob
// resources live in a memfd guest RAM, and `-display dbus,gl=on`. The guest's PID 1 is
// gp-guest-flip.c (static, built here with gcc), alone on a read-only 9p root: it flips
// numbered frames between two dumb buffers on the virtio-gpu card and reports on the serial
// console (QEMU's stdout). With blob=true the guest kernel makes its dumb buffers blob
// resources, QEMU makes each a udmabuf of guest memory and sends it with ScanoutDMABUF.
//
// The kernel comes from the rig runner (test/rig/vm.mjs copies the bzImage it booted into
// the results share and names it in GUESTPLANE_RIG_KERNEL): /root, where the cache is, is
// a tmpfs inside the rig.
import { execFileSync, spawn, type ChildProcessByStdio } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { defaultQemu, qemuLaunch, type QemuBuild } from './qemu-builds.js';
import { busNameHasOwner } from './qemu.js';

const here = dirname(fileURLToPath(import.meta.url));
// Compiled for the demo (test/demo.tsconfig.json) this module runs from dist/test/…, where
// tsc does not copy the C source: it is read from the source tree then.
export const GUEST_PROGRAM_SOURCE = [join(here, 'gp-guest-flip.c'), join(here, '../../../../test/integration/helpers/gp-guest-flip.c')].find((p) => existsSync(p)) ?? join(here, 'gp-guest-flip.c');
const QBOOT = '/usr/share/qemu/qboot.rom';

function which(name: string): string | null {
  for (const d of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    if (d && existsSync(join(d, name))) return join(d, name);
  }
  return null;
}

/** The rig kernel's bzImage as the nested guest's kernel, or null outside the rig. */
export function rigKernel(): string | null {
  const k = process.env.GUESTPLANE_RIG_KERNEL;
  return k && existsSync(k) ? k : null;
}

/**
 * Why a nested guest cannot run here, or null. The running kernel is the guest's kernel,
 * so its virtio-gpu driver shows in sysfs whether the guest will have one.
 */
export function nestedGuestMissing(qemu: QemuBuild = defaultQemu()): string | null {
  const why: string[] = [];
  if (qemu.missing) why.push(qemu.missing);
  else if (!existsSync(join(qemu.moduleDir, 'ui-dbus.so'))) why.push(`no ${qemu.moduleDir}/ui-dbus.so (-display dbus)`);
  if (!which('dbus-daemon')) why.push('no dbus-daemon (Debian package dbus-daemon)');
  if (!which('gcc') || !existsSync('/usr/lib/x86_64-linux-gnu/libc.a')) why.push('no gcc with a static libc (build-essential, libc6-dev)');
  if (!existsSync('/usr/include/libdrm/drm_mode.h')) why.push('no /usr/include/libdrm/drm_mode.h (libdrm-dev)');
  if (!existsSync('/dev/udmabuf')) why.push('no /dev/udmabuf: QEMU needs it for blob resources (rig kernel has UDMABUF)');
  let render = false;
  try {
    render = readdirSync('/dev/dri').some((n) => n.startsWith('renderD'));
  } catch {
    /* no /dev/dri */
  }
  if (!render) why.push('no render node for -display dbus,gl=on (vgem in the rig)');
  if (!rigKernel()) why.push('GUESTPLANE_RIG_KERNEL does not name the rig kernel (these tests run inside the rig, booted by test/rig/vm.mjs)');
  if (!existsSync('/sys/bus/virtio/drivers/virtio_gpu')) why.push('this kernel (also the guest kernel) has no virtio-gpu driver (DRM_VIRTIO_GPU in test/rig/build-kernel.sh)');
  return why.length ? why.join('; ') : null;
}

/**
 * Why the two-head guest (heads: 2) is skipped on QEMU 7.2: QEMU itself crashes there
 * (qemu-dbus-guest-heads.test.ts has the backtrace and how to run it again under gdb).
 */
export const QEMU72_TWO_HEADS_CRASH = 'QEMU 7.2 crashes (SIGSEGV in its virtio-gpu command processing, pixman_image_get_data) when the guest flips blob scanouts on two outputs: 2 of 2 rig runs of qemu-dbus-guest-heads.test.ts';

/** Builds the guest root in `<dir>/root`: /init (gp-guest-flip, static) and an empty /dev. */
export function buildGuestRoot(dir: string): { root: string; init: string; buildMs: number } {
  const root = join(dir, 'root');
  mkdirSync(join(root, 'dev'), { recursive: true });
  const init = join(root, 'init');
  const t0 = Date.now();
  try {
    execFileSync('gcc', ['-static', '-O2', '-Wall', '-I/usr/include/libdrm', '-o', init, GUEST_PROGRAM_SOURCE], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`building the guest program failed (gcc -static, libdrm-dev headers): ${err.stderr?.toString() || err.message}`);
  }
  return { root, init, buildMs: Date.now() - t0 };
}

export interface NestedGuestOptions {
  /** Writable directory (the guest root is built in <dir>/root). */
  dir: string;
  /** Session bus QEMU puts org.qemu on. */
  busAddress: string;
  kernel: string;
  /** Guest program settings (kernel command line → its environment). */
  frames: number;
  width: number;
  height: number;
  /** ms the guest keeps its last frame before powering off; -1 = until killed. */
  holdMs?: number;
  /** Guest RAM (a shared memfd: QEMU makes udmabufs of it), MiB. */
  memoryMb?: number;
  /** Kernel log level in the guest (4: warnings; more costs serial time under nested TCG). */
  loglevel?: number;
  extraArgs?: readonly string[];
  /** Which QEMU (default: the system's). */
  qemu?: QemuBuild;
  /**
   * 2: the virtio-gpu gets max_outputs=2 (two consoles on the bus) and the guest program
   * drives both connectors (GP_HEADS=2; the second once a display sent SetUIInfo for
   * console 1). Default 1: the command line is the one-head one.
   */
  heads?: 1 | 2;
  /**
   * Run QEMU under gdb (batch: run, then a backtrace of every thread when it stops on a
   * crash), printed on the console stream: for a QEMU that crashes in a test (7.2's SIGSEGV).
   */
  gdb?: boolean;
  /**
   * QEMU's -display (default 'dbus,gl=on'): the bench puts QEMU's own displays ('sdl,gl=off',
   * 'gtk,gl=on', …) beside window mode, on the same guest.
   */
  display?: string;
}

/** The nested QEMU's command line (without the binary). */
export function nestedQemuArgs(opts: NestedGuestOptions, root: string): string[] {
  const mem = opts.memoryMb ?? 128;
  const append = [
    'console=ttyS0',
    `loglevel=${opts.loglevel ?? 4}`,
    'panic=-1',
    'root=guestroot',
    'rootfstype=9p',
    'rootflags=trans=virtio,version=9p2000.L,cache=loose',
    'ro',
    'init=/init',
    // Nested TCG is 30-60x slower than the rig: no ACPI tables to interpret (virtio-pci
    // uses MSI-X), no PS/2 probing, no vkms device (the rig kernel builds vkms in).
    'acpi=off',
    'i8042.noaux',
    'i8042.nokbd',
    'vkms.create_default_dev=0',
    `GP_FRAMES=${opts.frames}`,
    `GP_WIDTH=${opts.width}`,
    `GP_HEIGHT=${opts.height}`,
    `GP_HOLD_MS=${opts.holdMs ?? -1}`,
    ...(opts.heads === 2 ? ['GP_HEADS=2'] : []),
  ].join(' ');
  return [
    '-accel', 'tcg',
    '-machine', 'pc,memory-backend=mem',
    '-object', `memory-backend-memfd,id=mem,size=${mem}M,share=on`,
    '-m', `${mem}M`,
    '-smp', '1',
    ...(existsSync(QBOOT) ? ['-bios', QBOOT] : []),
    '-no-user-config', '-nodefaults', '-vga', 'none', '-nic', 'none', '-no-reboot',
    '-device', `virtio-gpu-pci,blob=true,xres=${opts.width},yres=${opts.height}${opts.heads === 2 ? ',max_outputs=2' : ''}`,
    '-display', opts.display ?? 'dbus,gl=on',
    '-fsdev', `local,id=guestroot,path=${root},security_model=none,readonly=on`,
    '-device', 'virtio-9p-pci,fsdev=guestroot,mount_tag=guestroot',
    '-kernel', opts.kernel,
    '-append', append,
    '-serial', 'stdio',
    '-monitor', 'none',
    ...(opts.extraArgs ?? []),
  ];
}

export interface GuestLine {
  /** ms since QEMU was spawned. */
  at: number;
  text: string;
}

export interface GuestFrame {
  frame: number;
  buffer: number;
  drawMs: number;
  flipMs: number;
  /** Guest's CLOCK_BOOTTIME, s. */
  bootTime: number;
}

/** A nested QEMU and its guest's console. */
export class NestedGuest {
  readonly child: ChildProcessByStdio<Writable, Readable, Readable>;
  readonly args: readonly string[];
  readonly spawnedAt: number;
  console = '';
  stderr = '';
  /** The guest program's lines ("gp-guest: " stripped), with the host time they arrived. */
  readonly lines: GuestLine[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  #partial = '';
  #waiters = new Set<() => void>();

  constructor(child: ChildProcessByStdio<Writable, Readable, Readable>, args: readonly string[], spawnedAt: number) {
    this.child = child;
    this.args = args;
    this.spawnedAt = spawnedAt;
    child.stdout.setEncoding('utf8').on('data', (s: string) => this.#onConsole(s));
    child.stdin.on('error', () => {
      /* QEMU gone: the exit status says so */
    });
    child.stderr.setEncoding('utf8').on('data', (s: string) => {
      if (this.stderr.length < 1 << 20) this.stderr += s;
    });
    this.exited = new Promise((resolve) => {
      child.once('close', (code, signal) => {
        this.#exit = { code, signal };
        for (const w of this.#waiters) w();
        resolve(this.#exit);
      });
    });
  }

  #onConsole(s: string): void {
    if (this.console.length < 4 << 20) this.console += s;
    this.#partial += s;
    let nl: number;
    while ((nl = this.#partial.indexOf('\n')) >= 0) {
      const line = this.#partial.slice(0, nl).replace(/\r$/, '');
      this.#partial = this.#partial.slice(nl + 1);
      const i = line.indexOf('gp-guest: ');
      if (i >= 0) this.lines.push({ at: Date.now() - this.spawnedAt, text: line.slice(i + 10) });
    }
    for (const w of this.#waiters) w();
  }

  get exitStatus() {
    return this.#exit;
  }

  /** Types `line` on the guest's serial console (gp-guest-flip reads "off" while it holds). */
  type(line: string): void {
    this.child.stdin.write(`${line}\n`);
  }

  /** The first guest line matching `re` (already there or to come). */
  waitForLine(re: RegExp, timeoutMs: number): Promise<GuestLine> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const hit = this.lines.find((l) => re.test(l.text));
        if (hit) return done(() => resolve(hit));
        const err = this.lines.find((l) => /^error: /.test(l.text));
        if (err) return done(() => reject(new Error(`the guest program failed: ${err.text}\n${this.describe()}`)));
        if (this.#exit) return done(() => reject(new Error(`QEMU exited before the guest printed ${re}\n${this.describe()}`)));
      };
      const timer = setTimeout(() => done(() => reject(new Error(`no guest line ${re} within ${timeoutMs} ms\n${this.describe()}`))), timeoutMs);
      const done = (f: () => void) => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        f();
      };
      this.#waiters.add(check);
      check();
    });
  }

  /** Per-frame timings the guest printed so far. */
  frames(): GuestFrame[] {
    const out: GuestFrame[] = [];
    for (const l of this.lines) {
      const m = /^frame (\d+) buffer (\d+) draw ([\d.]+) ms flip ([\d.]+) ms at ([\d.]+) s/.exec(l.text);
      if (m) out.push({ frame: Number(m[1]), buffer: Number(m[2]), drawMs: Number(m[3]), flipMs: Number(m[4]), bootTime: Number(m[5]) });
    }
    return out;
  }

  describe(): string {
    const st = this.#exit ? `QEMU exited (${this.#exit.signal ?? `status ${this.#exit.code}`})` : 'QEMU running';
    const tail = this.console.split('\n').slice(-25).join('\n');
    return `${st}\nQEMU stderr:\n${this.stderr.trim() || '(empty)'}\nguest console (last lines):\n${tail}`;
  }

  /** SIGTERM, SIGKILL after `graceMs`; resolves when QEMU is gone. */
  async close(graceMs = 3000): Promise<void> {
    if (this.#exit) return;
    this.child.kill('SIGTERM');
    let t: NodeJS.Timeout | undefined;
    const r = await Promise.race([this.exited, new Promise<'t'>((res) => (t = setTimeout(() => res('t'), graceMs)))]);
    clearTimeout(t);
    if (r === 't') {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }
}

/**
 * Waits until the nested QEMU has put org.qemu on `busAddress` (its display is ready for a
 * listener; the guest is still booting); returns the ms since QEMU was spawned. Throws with
 * QEMU's stderr and the guest console when QEMU exits first or `timeoutMs` passes.
 */
export async function waitForDisplayOnBus(guest: NestedGuest, busAddress: string, timeoutMs = 60_000): Promise<number> {
  for (;;) {
    if (guest.exitStatus) throw new Error(`QEMU exited before its display was on the bus\n${guest.describe()}`);
    if (await busNameHasOwner(busAddress, 'org.qemu')) return Date.now() - guest.spawnedAt;
    if (Date.now() - guest.spawnedAt > timeoutMs) throw new Error(`org.qemu not on the bus after ${timeoutMs / 1000} s\n${guest.describe()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Builds the guest root and starts the nested QEMU (the guest boots on its own). */
export function startNestedGuest(opts: NestedGuestOptions): { guest: NestedGuest; buildMs: number } {
  if (!statSync(opts.kernel).isFile()) throw new Error(`startNestedGuest: kernel ${opts.kernel} is not a file`);
  const { root, buildMs } = buildGuestRoot(opts.dir);
  const launch = qemuLaunch(opts.qemu ?? defaultQemu());
  const args = [...launch.args, ...nestedQemuArgs(opts, root)];
  const gdb = ['-q', '-batch', '-ex', 'set pagination off', '-ex', 'handle SIGPIPE SIGUSR1 SIGUSR2 nostop noprint pass', '-ex', 'run', '-ex', 'bt', '-ex', 'thread apply all bt', '--args', launch.binary];
  const spawnedAt = Date.now();
  const child = spawn(opts.gdb ? 'gdb' : launch.binary, opts.gdb ? [...gdb, ...args] : args, {
    cwd: opts.dir,
    env: { ...process.env, ...launch.env, DBUS_SESSION_BUS_ADDRESS: opts.busAddress },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.once('error', () => {
    /* reported through close */
  });
  // A worker that dies before the test's cleanup must not leave a guest running.
  const pid = child.pid;
  if (pid) {
    const kill = () => {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    };
    process.once('exit', kill);
    child.once('close', () => process.off('exit', kill));
  }
  return { guest: new NestedGuest(child, args, spawnedAt), buildMs };
}
