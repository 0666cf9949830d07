// A real QEMU for rig tests: an unmodified qemu-system-x86_64 (Debian's 7.2, or the rig's
// fetched 10.0.x: `opts.qemu`, see qemu-builds.ts) with an mdev behind
// `vfio-pci,display=on` and `-display dbus`, on a private session bus, driven over qtest.
// Why this command line (shared/notes/qemu-dbus/findings.md):
//  - Debian ships no qtest accelerator ('-accel qtest: invalid accelerator'), so the machine
//    runs on TCG with its CPU never started (-S); qtest still reads and writes the address
//    spaces, and that is all a test guest needs: PCI config cycles, BAR MMIO, VRAM writes.
//  - mbochs exports only dma-bufs, so its display needs gl=on (gl=off exits with
//    'vfio-display-dmabuf: opengl not available'); mdpy is a plain region, shown with gl=off.
// The device is always at 00:05.0 of the default i440fx machine.
import { spawn, spawnSync, type ChildProcessByStdio } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { delimiter, join } from 'node:path';
import type { Readable } from 'node:stream';
import { listMdevParents, type MdevInstance } from './mdev.js';
import { drawPattern } from '../../../plugin/sources/pattern.js';
import { defaultQemu, qemuLaunch, type QemuBuild } from './qemu-builds.js';

export const QEMU_BINARY = 'qemu-system-x86_64';
/** PCI slot the helper puts the vfio-pci device in (bus 0, function 0). */
export const QEMU_PCI_SLOT = 5;

// ---------------------------------------------------------------------------------------
// What is missing

function findInPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* not here */
    }
  }
  return null;
}

/**
 * Why tests with a real QEMU and its D-Bus display cannot run here, or null when they can.
 * `parents`: the mdev parent drivers the test needs (default both display samples);
 * `gl`: whether it needs a render node for `-display dbus,gl=on` (every mbochs test does).
 * Use as `describe.skipIf(qemuDbusMissing() !== null)` and print the reason.
 */
export function qemuDbusMissing(need: { parents?: readonly string[]; gl?: boolean } = {}, qemu: QemuBuild = defaultQemu()): string | null {
  const parents = need.parents ?? ['mbochs', 'mdpy'];
  const gl = need.gl ?? parents.includes('mbochs');
  const why: string[] = [];
  if (qemu.missing) why.push(qemu.missing);
  else if (!existsSync(join(qemu.moduleDir, 'ui-dbus.so'))) why.push(`no ${qemu.moduleDir}/ui-dbus.so: ${qemu.label} has no -display dbus (Debian: qemu-system-x86 ≥ 7.0, qemu-system-modules-opengl from 10.0)`);
  if (!findInPath('dbus-daemon')) why.push('no dbus-daemon in PATH (Debian package dbus-daemon)');
  if (!findInPath('dbus-send')) why.push('no dbus-send in PATH (Debian package dbus-bin)');
  if (!existsSync('/dev/vfio/vfio')) why.push('no /dev/vfio/vfio (kernel without VFIO; these tests run in the rig)');
  const have = listMdevParents();
  for (const p of parents) if (!have.includes(p)) why.push(`no mdev parent '${p}' (have: ${have.join(', ') || 'none'}; the rig kernel builds the VFIO samples in)`);
  if (gl) {
    let nodes: string[] = [];
    try {
      nodes = readdirSync('/dev/dri').filter((n) => n.startsWith('renderD'));
    } catch {
      /* no /dev/dri */
    }
    if (nodes.length === 0) why.push('no /dev/dri/renderD*: -display dbus,gl=on needs a render node (vgem in the rig)');
  }
  return why.length ? why.join('; ') : null;
}

// ---------------------------------------------------------------------------------------
// Processes left behind when the test process ends without closing them

const liveChildren = new Set<number>();
let exitHookInstalled = false;
function trackPid(pid: number): void {
  liveChildren.add(pid);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // A test that throws before its finally, or a worker that is torn down, must not leave a
  // QEMU holding the mdev (its removal would then block the next file) or a bus daemon.
  process.on('exit', () => {
    for (const p of liveChildren) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  });
}

function pidAlive(pid: number): boolean {
  try {
    // A zombie still answers kill(0); it no longer runs, which is what counts here.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

// ---------------------------------------------------------------------------------------
// Private session bus

export interface SessionBus {
  /** D-Bus address for DBUS_SESSION_BUS_ADDRESS / dbus-send --bus=. */
  readonly address: string;
  readonly pid: number;
  /** Stops the daemon (SIGTERM, SIGKILL after 2 s) and removes its socket; idempotent. */
  close(): void;
}

function checkSocketPath(path: string, what: string): void {
  // sockaddr_un.sun_path is 108 bytes including the NUL.
  if (Buffer.byteLength(path) > 107) throw new Error(`${what}: socket path ${path} is longer than 107 bytes; use a shorter dir (e.g. mkdtemp under /tmp)`);
}

/**
 * Starts a private `dbus-daemon` whose socket is `<dir>/bus.sock` and returns its address.
 * Its own configuration, not session.conf: no service activation (nothing but QEMU and the
 * test on this bus) and nothing else needed from the host's D-Bus set-up.
 */
export function startSessionBus(dir: string): SessionBus {
  const daemon = findInPath('dbus-daemon');
  if (!daemon) throw new Error('startSessionBus: no dbus-daemon in PATH (install Debian package dbus-daemon)');
  mkdirSync(dir, { recursive: true });
  const sock = join(dir, 'bus.sock');
  checkSocketPath(sock, 'startSessionBus');
  rmSync(sock, { force: true });
  const conf = join(dir, 'session-bus.conf');
  writeFileSync(
    conf,
    `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=${sock}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
  <!-- session.conf's limits: a 2D Scanout of a large guest is one big message. -->
  <limit name="max_incoming_bytes">1000000000</limit>
  <limit name="max_outgoing_bytes">1000000000</limit>
  <limit name="max_message_size">1000000000</limit>
</busconfig>
`,
  );
  // --fork: the daemon has printed its address when the parent exits, so one synchronous
  // call gives a bus that is ready; it is reparented, hence the pid for close().
  const r = spawnSync(daemon, ['--config-file', conf, '--fork', '--print-address=1', '--print-pid=1'], { encoding: 'utf8', timeout: 20_000 });
  const lines = (r.stdout ?? '').split('\n').map((l) => l.trim()).filter(Boolean);
  const address = lines.find((l) => l.includes(':'));
  const pid = Number(lines.find((l) => /^\d+$/.test(l)));
  if (r.status !== 0 || !address || !(pid > 0)) {
    if (pid > 0) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    throw new Error(`startSessionBus: dbus-daemon ${r.error ? `failed: ${r.error.message}` : `exited with ${r.status ?? r.signal}`}; stdout ${JSON.stringify(r.stdout)}, stderr ${JSON.stringify(r.stderr)}`);
  }
  trackPid(pid);
  let closed = false;
  return {
    address,
    pid,
    close() {
      if (closed) return;
      closed = true;
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        /* gone */
      }
      const deadline = Date.now() + 2000;
      while (pidAlive(pid) && Date.now() < deadline) sleepSync(10);
      if (pidAlive(pid)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
        const hard = Date.now() + 2000;
        while (pidAlive(pid) && Date.now() < hard) sleepSync(10);
      }
      liveChildren.delete(pid);
      rmSync(sock, { force: true });
      if (pidAlive(pid)) throw new Error(`startSessionBus: dbus-daemon pid ${pid} survived SIGKILL for 2 s`);
    },
  };
}

/** Runs `dbus-send --print-reply=literal` on `address` and returns its output (throws with its stderr). */
export function dbusSend(address: string, args: readonly string[], timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn('dbus-send', [`--bus=${address}`, '--print-reply=literal', `--reply-timeout=${timeoutMs}`, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    p.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    p.on('error', (e) => reject(new Error(`dbus-send ${args.join(' ')}: ${e.message} (install Debian package dbus-bin)`)));
    p.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`dbus-send ${args.join(' ')}: exit ${code}: ${err.trim() || out.trim()}`))));
  });
}

/** Whether `name` has an owner on the bus at `address`. */
export async function busNameHasOwner(address: string, name: string): Promise<boolean> {
  const out = await dbusSend(address, ['--dest=org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus.NameHasOwner', `string:${name}`]);
  return /\btrue\b/.test(out);
}

// ---------------------------------------------------------------------------------------
// qtest

/** Width of a PCI config access in bytes. */
export type PciWidth = 1 | 2 | 4;

function hex(n: number, what: string): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new TypeError(`qtest: ${what} must be a non-negative integer, got ${n}`);
  return `0x${n.toString(16)}`;
}

function shorten(line: string): string {
  return line.length > 120 ? `${line.slice(0, 100)}… (${line.length} chars)` : line;
}

interface Waiter {
  line: string;
  resolve(answer: string): void;
  reject(e: Error): void;
}

/**
 * qtest client over a connected socket. Every exchange is serialised: QEMU answers in order
 * and a malformed argument makes it abort (g_assert), so arguments are checked here first.
 */
export class Qtest {
  /**
   * Bytes per b64write command. Small chunks pay QEMU's per-command cost, large ones its line
   * assembly (it rescans its whole input buffer for '\n' on every 1 KiB it reads). Rig, 1.2 MB,
   * two boots: 4 KiB 0.17–1.1 s, 16 KiB 0.17–0.53 s, 64 KiB 0.19–0.39 s, 256 KiB 0.29–0.42 s,
   * 1 MiB 0.6–0.7 s.
   */
  static readonly WRITE_CHUNK = 64 * 1024;
  /** Bytes per b64read command (answers are assembled by us, linearly). */
  static readonly READ_CHUNK = 256 * 1024;

  readonly #sock: Socket;
  readonly #context: () => string;
  #rx = '';
  #waiters: Waiter[] = [];
  #chain: Promise<unknown> = Promise.resolve();
  #closedReason: string | null = null;
  /** Answers per command timeout; reset by every answer, so long pipelined writes do not trip it. */
  timeoutMs = 30_000;
  /** `IRQ raise|lower n` lines seen (skipped as answers). */
  irqLines: string[] = [];

  /** `context()` is appended to errors about a lost connection (e.g. QEMU's stderr). */
  constructor(sock: Socket, context: () => string = () => '') {
    this.#sock = sock;
    this.#context = context;
    sock.setEncoding('latin1');
    sock.on('data', (s: string) => this.#onData(s));
    sock.on('error', (e) => this.#fail(`qtest socket error: ${e.message}`));
    sock.on('close', () => this.#fail('qtest connection closed (QEMU exited or closed it)'));
  }

  get closed(): boolean {
    return this.#closedReason !== null;
  }

  #onData(s: string): void {
    this.#rx += s;
    let nl: number;
    while ((nl = this.#rx.indexOf('\n')) >= 0) {
      const line = this.#rx.slice(0, nl);
      this.#rx = this.#rx.slice(nl + 1);
      // IRQ notifications come unasked (only after irq_intercept_*), between answers.
      if (line.startsWith('IRQ')) {
        this.irqLines.push(line);
        continue;
      }
      const w = this.#waiters.shift();
      if (w) w.resolve(line);
      else this.#fail(`qtest: unexpected line from QEMU with no command waiting: ${shorten(line)}`);
    }
  }

  #fail(reason: string): void {
    if (this.#closedReason === null) this.#closedReason = reason;
    const ctx = this.#context();
    for (const w of this.#waiters.splice(0)) w.reject(new Error(`${reason}, waiting for the answer to '${shorten(w.line)}'${ctx ? `\n${ctx}` : ''}`));
    this.#sock.destroy();
  }

  /** Sends `lines` back to back and resolves with their answers once all are in, in order. */
  #exchange(lines: readonly string[]): Promise<string[]> {
    if (this.#closedReason !== null) {
      const ctx = this.#context();
      return Promise.reject(new Error(`qtest: ${this.#closedReason}; cannot send '${shorten(lines[0] ?? '')}'${ctx ? `\n${ctx}` : ''}`));
    }
    for (const l of lines) if (l.includes('\n')) throw new TypeError(`qtest: a command must be one line: ${JSON.stringify(shorten(l))}`);
    return new Promise<string[]>((resolve, reject) => {
      const answers: string[] = [];
      let timer: NodeJS.Timeout | undefined;
      let done = false;
      const arm = () => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          const pending = lines[answers.length] ?? '';
          done = true;
          reject(new Error(`qtest: no answer to '${shorten(pending)}' within ${this.timeoutMs} ms (QEMU stuck?)\n${this.#context()}`));
          // The answer may still come and would be taken for the next command's: drop the link.
          this.#fail(`qtest: gave up after ${this.timeoutMs} ms without an answer`);
        }, this.timeoutMs);
      };
      arm();
      lines.forEach((line, i) => {
        this.#waiters.push({
          line,
          resolve: (a) => {
            answers.push(a);
            if (i < lines.length - 1) return arm();
            clearTimeout(timer);
            done = true;
            resolve(answers);
          },
          reject: (e) => {
            clearTimeout(timer);
            if (!done) {
              done = true;
              reject(e);
            }
          },
        });
      });
      this.#sock.write(lines.join('\n') + '\n', 'latin1');
    });
  }

  /** Runs a batch as one serialised unit and checks every answer is OK. */
  #batch(lines: readonly string[]): Promise<string[]> {
    const run = this.#chain.then(async () => {
      const answers = await this.#exchange(lines);
      answers.forEach((a, i) => {
        if (a !== 'OK' && !a.startsWith('OK ')) throw new Error(`qtest: '${shorten(lines[i] ?? '')}' answered '${shorten(a)}'`);
      });
      return answers;
    });
    this.#chain = run.catch(() => undefined);
    return run;
  }

  /** Sends one command line; resolves with its answer ('OK' or 'OK <value>'), throws on FAIL/ERR. */
  async cmd(line: string): Promise<string> {
    const [a] = await this.#batch([line]);
    return a ?? '';
  }

  /**
   * Sends several command lines back to back as one unit and resolves with their answers
   * (throws naming the first that was not OK, after all have been answered). A round trip
   * costs milliseconds in the rig, so register sequences go out this way.
   */
  cmds(lines: readonly string[]): Promise<string[]> {
    return lines.length ? this.#batch(lines) : Promise.resolve([]);
  }

  /** The value of a 'OK 0x…' answer. */
  static valueOf(answer: string): number {
    return Qtest.#value(answer, '');
  }

  static #value(answer: string, line: string): number {
    const v = answer.split(' ')[1];
    if (!v) throw new Error(`qtest: '${line}' answered '${answer}' with no value`);
    const n = Number.parseInt(v, 16);
    if (Number.isNaN(n)) throw new Error(`qtest: '${line}' answered '${answer}': not a hex value`);
    return n;
  }

  /** Command lines for the accessors, for cmds() batches. */
  static readonly line = {
    writew: (addr: number, v: number): string => `writew ${hex(addr, 'address')} ${hex(v & 0xffff, 'value')}`,
    writel: (addr: number, v: number): string => `writel ${hex(addr, 'address')} ${hex(v >>> 0, 'value')}`,
    readw: (addr: number): string => `readw ${hex(addr, 'address')}`,
    readl: (addr: number): string => `readl ${hex(addr, 'address')}`,
  };

  async #read(line: string): Promise<number> {
    return Qtest.#value(await this.cmd(line), line);
  }

  outb(port: number, v: number): Promise<string> {
    return this.cmd(`outb ${hex(port, 'port')} ${hex(v & 0xff, 'value')}`);
  }
  outw(port: number, v: number): Promise<string> {
    return this.cmd(`outw ${hex(port, 'port')} ${hex(v & 0xffff, 'value')}`);
  }
  outl(port: number, v: number): Promise<string> {
    return this.cmd(`outl ${hex(port, 'port')} ${hex(v >>> 0, 'value')}`);
  }
  inb(port: number): Promise<number> {
    return this.#read(`inb ${hex(port, 'port')}`);
  }
  inw(port: number): Promise<number> {
    return this.#read(`inw ${hex(port, 'port')}`);
  }
  inl(port: number): Promise<number> {
    return this.#read(`inl ${hex(port, 'port')}`);
  }
  readb(addr: number): Promise<number> {
    return this.#read(`readb ${hex(addr, 'address')}`);
  }
  readw(addr: number): Promise<number> {
    return this.#read(`readw ${hex(addr, 'address')}`);
  }
  readl(addr: number): Promise<number> {
    return this.#read(`readl ${hex(addr, 'address')}`);
  }
  writeb(addr: number, v: number): Promise<string> {
    return this.cmd(`writeb ${hex(addr, 'address')} ${hex(v & 0xff, 'value')}`);
  }
  writew(addr: number, v: number): Promise<string> {
    return this.cmd(Qtest.line.writew(addr, v));
  }
  writel(addr: number, v: number): Promise<string> {
    return this.cmd(Qtest.line.writel(addr, v));
  }

  /**
   * Writes `bytes` at guest-physical `addr` with b64write (QEMU ≥ 2.5; a third of hex
   * `write`'s size), `chunk` bytes per command, all commands pipelined in one unit.
   */
  async write(addr: number, bytes: Uint8Array, chunk: number = Qtest.WRITE_CHUNK): Promise<void> {
    hex(addr, 'address');
    hex(addr + bytes.byteLength, 'end address');
    if (!(chunk > 0)) throw new TypeError(`qtest.write: chunk must be positive, got ${chunk}`);
    if (bytes.byteLength === 0) return;
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const lines: string[] = [];
    for (let off = 0; off < buf.length; off += chunk) {
      const part = buf.subarray(off, Math.min(off + chunk, buf.length));
      lines.push(`b64write ${hex(addr + off, 'address')} ${hex(part.length, 'length')} ${part.toString('base64')}`);
    }
    await this.#batch(lines);
  }

  /** Reads `len` bytes at guest-physical `addr` (b64read). */
  async read(addr: number, len: number): Promise<Uint8Array> {
    hex(addr, 'address');
    hex(len, 'length');
    const out = new Uint8Array(len);
    const lines: string[] = [];
    for (let off = 0; off < len; off += Qtest.READ_CHUNK) lines.push(`b64read ${hex(addr + off, 'address')} ${hex(Math.min(Qtest.READ_CHUNK, len - off), 'length')}`);
    const answers = await this.#batch(lines);
    answers.forEach((a, i) => out.set(Buffer.from(a.slice(3), 'base64'), i * Qtest.READ_CHUNK));
    return out;
  }

  /** Fills `len` bytes at `addr` with `byte` (one command, no data on the wire). */
  async memset(addr: number, len: number, byte: number): Promise<void> {
    if (len === 0) return;
    await this.cmd(`memset ${hex(addr, 'address')} ${hex(len, 'length')} ${hex(byte & 0xff, 'byte')}`);
  }

  static #cf8(reg: number, slot: number): number {
    if (!Number.isInteger(reg) || reg < 0 || reg > 0xff) throw new RangeError(`pci: config register ${reg} is outside 0..0xff (mechanism 1 reaches no extended space)`);
    if (!Number.isInteger(slot) || slot < 0 || slot > 31) throw new RangeError(`pci: slot ${slot} is outside 0..31`);
    return (0x80000000 | (slot << 11) | (reg & 0xfc)) >>> 0;
  }

  /** Reads a config register of 00:<slot>.0 (mechanism 1: address to 0xcf8, data at 0xcfc). */
  async pciRead(reg: number, width: PciWidth = 4, slot: number = QEMU_PCI_SLOT): Promise<number> {
    if (reg % width) throw new RangeError(`pci: register 0x${reg.toString(16)} is not aligned to its width ${width}`);
    const op = width === 4 ? 'inl' : width === 2 ? 'inw' : 'inb';
    const data = `${op} ${hex(0xcfc + (reg & 3), 'port')}`;
    // One unit: another caller's address write must not land between ours and the read.
    const answers = await this.#batch([`outl 0xcf8 ${hex(Qtest.#cf8(reg, slot), 'address')}`, data]);
    return Qtest.#value(answers[1] ?? '', data);
  }

  /** Writes a config register of 00:<slot>.0. */
  async pciWrite(reg: number, value: number, width: PciWidth = 4, slot: number = QEMU_PCI_SLOT): Promise<void> {
    if (reg % width) throw new RangeError(`pci: register 0x${reg.toString(16)} is not aligned to its width ${width}`);
    const op = width === 4 ? 'outl' : width === 2 ? 'outw' : 'outb';
    const mask = width === 4 ? 0xffffffff : width === 2 ? 0xffff : 0xff;
    await this.#batch([`outl 0xcf8 ${hex(Qtest.#cf8(reg, slot), 'address')}`, `${op} ${hex(0xcfc + (reg & 3), 'port')} ${hex((value & mask) >>> 0, 'value')}`]);
  }

  /** Closes the connection (QEMU keeps running; pending commands fail). */
  close(): void {
    this.#fail('qtest closed by the test');
  }
}

// ---------------------------------------------------------------------------------------
// QEMU

export interface QemuExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface QemuOptions {
  mdev: MdevInstance;
  /** -display dbus,gl=on (mbochs needs it) or gl=off (2D: mdpy). */
  gl: boolean;
  /** Session bus QEMU registers org.qemu on (startSessionBus().address). */
  busAddress: string;
  /** Writable directory for the qtest socket; QEMU's cwd. */
  dir: string;
  /** Appended to the command line. */
  extraArgs?: readonly string[];
  /** The whole -display value instead of dbus,gl=on|off (e.g. 'dbus,p2p=yes,gl=off'). */
  display?: string;
  /** Extra environment (e.g. { GBM_ALWAYS_SOFTWARE: '1' }). */
  env?: Record<string, string>;
  /** Guest RAM in MiB (the CPU never runs; 128 keeps QEMU small). */
  memoryMb?: number;
  /** How long QEMU may take to connect to qtest (TCG rig: about a second). */
  startTimeoutMs?: number;
  /** Which QEMU (default: the system's, qemu-builds.ts). */
  qemu?: QemuBuild;
}

/** stderr lines QEMU 7.2 prints in the rig that mean nothing is wrong (see findings.md). */
export const QEMU_HARMLESS_STDERR: readonly RegExp[] = [
  /^MESA-LOADER: failed to open vgem\b/, // vgem has no Mesa driver; EGL falls back to software
  /^failed to load driver: vgem$/,
  /dbus_scanout_texture: failed to get fd for texture/, // the 2D placeholder before the guest sets a mode
  /^MESA-LOADER: failed to retrieve device information$/, // Mesa probing vkms/vgem nodes (no PCI info)
  /Could not enable error recovery for the device/, // mdevs have no AER
  /Cannot reset device .*, no available reset mechanism/, // nor a reset
  /terminating on signal \d+ from pid/, // our own close()
  // A listener that went away (its test ended) while QEMU still sent it updates.
  /Failed to call update: (The connection is closed|.*UnknownMethod.*\/org\/qemu\/Display1\/Listener)/,
];

/** The lines of QEMU's stderr not in QEMU_HARMLESS_STDERR (what a test should look at). */
export function unexpectedQemuStderr(stderr: string): string[] {
  return stderr
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l && !QEMU_HARMLESS_STDERR.some((re) => re.test(l)));
}

const OUTPUT_CAP = 1 << 20;

function hintFor(stderr: string, opts: QemuOptions): string {
  if (/opengl not available/.test(stderr)) return `\nhint: ${opts.mdev.parent} exports dma-bufs only; start it with gl: true`;
  if (/invalid accelerator/.test(stderr)) return '\nhint: this QEMU lacks the TCG accelerator module (accel-tcg-x86_64.so)';
  if (/Device or resource busy|is already in use|group .* is not viable/.test(stderr)) return `\nhint: the mdev ${opts.mdev.uuid} is open elsewhere (a VfioDevice or another QEMU); close it first`;
  if (/dbus|D-Bus|session bus/i.test(stderr)) return `\nhint: QEMU could not use the bus ${opts.busAddress}; is the startSessionBus() daemon still running?`;
  return '';
}

/** A QEMU child process with its qtest connection. */
export class QemuVm {
  readonly child: ChildProcessByStdio<null, Readable, Readable>;
  readonly pid: number;
  readonly args: readonly string[];
  readonly qtest: Qtest;
  readonly busAddress: string;
  /** Resolves when QEMU has exited (never rejects). */
  readonly exited: Promise<QemuExit>;
  /** Date.now() just before spawn. */
  readonly spawnedAt: number;
  /** Spawn to qtest connection, ms. */
  readonly qtestConnectMs: number;
  /** Spawn to QEMU's first qtest answer (start-up done, devices created), ms. */
  readyMs = 0;
  /** Spawn to org.qemu on the bus, ms, once waitForDisplay() has seen it. */
  displayReadyMs: number | null = null;
  #out: { stdout: string; stderr: string };
  #exit: QemuExit | null = null;
  #closing: Promise<QemuExit> | null = null;

  /** @internal use startQemu() */
  constructor(init: {
    child: ChildProcessByStdio<null, Readable, Readable>;
    args: readonly string[];
    sock: Socket;
    busAddress: string;
    spawnedAt: number;
    qtestConnectMs: number;
    out: { stdout: string; stderr: string };
    exited: Promise<QemuExit>;
  }) {
    this.child = init.child;
    this.pid = init.child.pid ?? -1;
    this.args = init.args;
    this.busAddress = init.busAddress;
    this.spawnedAt = init.spawnedAt;
    this.qtestConnectMs = init.qtestConnectMs;
    this.#out = init.out;
    this.exited = init.exited.then((e) => (this.#exit = e));
    this.qtest = new Qtest(init.sock, () => this.describe());
  }

  get stdout(): string {
    return this.#out.stdout;
  }
  get stderr(): string {
    return this.#out.stderr;
  }
  /** How QEMU exited, or null while it runs. */
  get exitStatus(): QemuExit | null {
    return this.#exit;
  }

  /** State and stderr for error messages. */
  describe(): string {
    const st = this.#exit ? `QEMU pid ${this.pid} exited (${this.#exit.signal ?? `status ${this.#exit.code}`})` : `QEMU pid ${this.pid} running`;
    const err = this.stderr.trim();
    return `${st}; stderr:\n${err ? err.split('\n').slice(-20).join('\n') : '(empty)'}`;
  }

  /**
   * Waits until QEMU owns org.qemu on its bus (its -display dbus objects are exported then),
   * failing at once if QEMU exits. Returns the ms since spawn.
   */
  async waitForDisplay(timeoutMs = 30_000, intervalMs = 50): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.#exit) throw new Error(`waitForDisplay: QEMU exited before org.qemu appeared on ${this.busAddress}\n${this.describe()}`);
      if (await busNameHasOwner(this.busAddress, 'org.qemu')) {
        this.displayReadyMs ??= Date.now() - this.spawnedAt;
        return this.displayReadyMs;
      }
      if (Date.now() > deadline) throw new Error(`waitForDisplay: org.qemu not on ${this.busAddress} after ${timeoutMs} ms (is -display dbus on that bus?)\n${this.describe()}`);
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }

  async #stop(first: NodeJS.Signals, graceMs: number): Promise<QemuExit> {
    if (this.#exit) return this.#exit;
    const signal = (s: NodeJS.Signals) => {
      try {
        process.kill(this.pid, s);
      } catch {
        /* already gone */
      }
    };
    signal(first);
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), graceMs)));
    const r = await Promise.race([this.exited, graceOver]);
    clearTimeout(timer);
    if (r === 'timeout') {
      signal('SIGKILL');
      let hardTimer: NodeJS.Timeout | undefined;
      const hard = new Promise<'timeout'>((res) => (hardTimer = setTimeout(() => res('timeout'), 10_000)));
      const r2 = await Promise.race([this.exited, hard]);
      clearTimeout(hardTimer);
      // Stuck in the kernel (D state): usually a VFIO release waiting on something.
      if (r2 === 'timeout') throw new Error(`QEMU pid ${this.pid} did not exit 10 s after SIGKILL (stuck in the kernel? /proc/${this.pid}/stack)`);
    }
    this.qtest.close();
    return this.#exit ?? (await this.exited);
  }

  /** Sends `signal` (default SIGKILL: a VMM that crashes) and waits for the exit. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<QemuExit> {
    return this.#stop(signal, 5000);
  }

  /** Stops QEMU: SIGTERM, SIGKILL after `graceMs`, awaits the exit; idempotent. */
  close(graceMs = 5000): Promise<QemuExit> {
    this.#closing ??= this.#stop('SIGTERM', graceMs);
    return this.#closing;
  }
}

/** The QEMU command line (without the binary) startQemu() uses. */
export function qemuArgs(opts: Pick<QemuOptions, 'mdev' | 'gl' | 'extraArgs' | 'memoryMb' | 'display'>, qtestSocket: string): string[] {
  return [
    '-accel', 'tcg,tb-size=32',
    '-S',
    '-qtest', `unix:${qtestSocket}`,
    // Without -qtest-log QEMU logs every command to stderr; 'none' skips the logging entirely.
    '-qtest-log', 'none',
    '-no-user-config', '-nodefaults', '-vga', 'none',
    '-m', String(opts.memoryMb ?? 128),
    '-device', `vfio-pci,sysfsdev=${opts.mdev.sysfsPath},display=on,addr=${QEMU_PCI_SLOT.toString(16).padStart(2, '0')}.0`,
    '-display', opts.display ?? `dbus,gl=${opts.gl ? 'on' : 'off'}`,
    ...(opts.extraArgs ?? []),
  ];
}

/**
 * Starts QEMU on `opts.mdev` with its display on the bus at `busAddress` and returns once it
 * has answered its first qtest command (devices created, CPU stopped). Throws with QEMU's
 * stderr (and a hint for known causes) when it exits or does not connect in time.
 * org.qemu appears on the bus a little later: waitForDisplay().
 */
export async function startQemu(opts: QemuOptions): Promise<QemuVm> {
  if (opts.mdev.removed) throw new Error(`startQemu: mdev ${opts.mdev.uuid} was removed`);
  if (!existsSync(opts.mdev.sysfsPath)) throw new Error(`startQemu: ${opts.mdev.sysfsPath} does not exist (mdev removed behind the helper's back?)`);
  const launch = qemuLaunch(opts.qemu ?? defaultQemu());
  const bin = launch.binary;
  mkdirSync(opts.dir, { recursive: true });
  const sockPath = join(opts.dir, 'qtest.sock');
  checkSocketPath(sockPath, 'startQemu');
  rmSync(sockPath, { force: true });

  // QEMU's -qtest chardev is a client: we listen first, it connects during start-up.
  const server: Server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(new Error(`startQemu: cannot listen on ${sockPath}: ${e.message}`)));
    server.listen(sockPath, resolve);
  });
  const connection = new Promise<Socket>((resolve) => server.once('connection', resolve));

  const args = [...launch.args, ...qemuArgs(opts, sockPath)];
  const spawnedAt = Date.now();
  const child = spawn(bin, args, {
    cwd: opts.dir,
    env: { ...process.env, ...launch.env, ...opts.env, DBUS_SESSION_BUS_ADDRESS: opts.busAddress },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out = { stdout: '', stderr: '' };
  const collect = (key: 'stdout' | 'stderr') => (s: string) => {
    if (out[key].length < OUTPUT_CAP) out[key] += s;
  };
  child.stdout.setEncoding('utf8').on('data', collect('stdout'));
  child.stderr.setEncoding('utf8').on('data', collect('stderr'));
  const exited = new Promise<QemuExit>((resolve) => {
    // 'close' (not 'exit'): stdout/stderr are complete then, so error messages have all of it.
    child.once('close', (code, signal) => {
      if (child.pid) liveChildren.delete(child.pid);
      resolve({ code, signal });
    });
    child.once('error', (e) => {
      out.stderr += `\n[spawn error: ${e.message}]`;
      resolve({ code: null, signal: null });
    });
  });
  if (child.pid) trackPid(child.pid);

  const timeoutMs = opts.startTimeoutMs ?? 60_000;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)));
  const first = await Promise.race([connection, exited, timeout]);
  clearTimeout(timer);
  server.close();
  rmSync(sockPath, { force: true });
  if (first === 'timeout' || !('write' in first)) {
    if (first === 'timeout') {
      child.kill('SIGKILL');
      await exited;
    }
    const e = await exited;
    const why = first === 'timeout' ? `did not connect to qtest within ${timeoutMs} ms` : `exited (${e.signal ?? `status ${e.code}`}) before connecting to qtest`;
    throw new Error(`startQemu: ${QEMU_BINARY} ${why}\ncommand: ${bin} ${args.join(' ')}\nstderr:\n${out.stderr.trim() || '(empty)'}${hintFor(out.stderr, opts)}`);
  }
  const vm = new QemuVm({ child, args, sock: first, busAddress: opts.busAddress, spawnedAt, qtestConnectMs: Date.now() - spawnedAt, out, exited });
  // QEMU connects to qtest before it creates the -device's (a vfio or display error comes
  // after that) and answers only from its main loop: the first answer means start-up is over.
  try {
    await vm.qtest.cmd('endianness');
  } catch (e) {
    let t: NodeJS.Timeout | undefined;
    await Promise.race([vm.exited, new Promise((r) => (t = setTimeout(r, 5000)))]);
    clearTimeout(t);
    await vm.kill();
    throw new Error(`startQemu: ${QEMU_BINARY} failed during start-up (${(e as Error).message.split('\n')[0]})\ncommand: ${bin} ${args.join(' ')}\n${vm.describe()}${hintFor(out.stderr, opts)}`);
  }
  vm.readyMs = Date.now() - spawnedAt;
  return vm;
}

// ---------------------------------------------------------------------------------------
// Devices behind the vfio-pci at 00:05.0

/** Guest-physical addresses the helpers program the BARs to (inside i440fx's PCI hole). */
export const BAR0_ADDR = 0xe0000000;
export const BAR2_ADDR = 0xe8000000;

const PCI_COMMAND = 0x04;
const PCI_COMMAND_MEMORY = 0x2;
const PCI_CAPABILITY_LIST = 0x34;

/** Sizes a memory BAR (all-ones write), then places it at `addr`; returns its size. */
async function placeMemoryBar(qt: Qtest, bar: number, addr: number, what: string): Promise<number> {
  const reg = 0x10 + 4 * bar;
  const orig = await qt.pciRead(reg);
  if (orig & 1) throw new Error(`${what}: BAR${bar} is an I/O BAR (0x${orig.toString(16)}), expected memory`);
  await qt.pciWrite(reg, 0xffffffff);
  const mask = (await qt.pciRead(reg)) & 0xfffffff0;
  if (mask === 0) throw new Error(`${what}: BAR${bar} sizes to 0 (not implemented by the device?)`);
  const size = (~mask >>> 0) + 1;
  if (addr % size) throw new Error(`${what}: BAR${bar} of 0x${size.toString(16)} bytes cannot sit at unaligned 0x${addr.toString(16)}`);
  await qt.pciWrite(reg, addr);
  if (((orig >>> 1) & 3) === 2) await qt.pciWrite(reg + 4, 0); // 64-bit BAR: upper half
  const now = (await qt.pciRead(reg)) & 0xfffffff0;
  if (now >>> 0 !== addr >>> 0) throw new Error(`${what}: BAR${bar} reads 0x${now.toString(16)} after programming 0x${addr.toString(16)}`);
  return size;
}

async function enableMemoryDecoding(qt: Qtest): Promise<void> {
  const cmd = await qt.pciRead(PCI_COMMAND, 2);
  await qt.pciWrite(PCI_COMMAND, cmd | PCI_COMMAND_MEMORY, 2);
}

/** Writes `bytes` into BAR0 (a framebuffer for both samples) at `offset`. */
async function writeBar0(qt: Qtest, offset: number, bytes: Uint8Array, size: number | undefined, what: string): Promise<void> {
  if (size !== undefined && offset + bytes.byteLength > size) throw new RangeError(`${what}: write of ${bytes.byteLength} bytes at 0x${offset.toString(16)} passes the end of its 0x${size.toString(16)}-byte BAR0`);
  await qt.write(BAR0_ADDR + offset, bytes);
}

// --- mbochs: bochs dispi (VBE) registers in BAR2 at 0x500, VRAM in BAR0 ---------------

export const MBOCHS_PCI_ID = 0x11111234; // device 0x1111, vendor 0x1234 (QEMU's stdvga ids)
export const VBE_DISPI_ID5 = 0xb0c5;
const VBE = { id: 0, xres: 1, yres: 2, bpp: 3, enable: 4, bank: 5, virtWidth: 6, virtHeight: 7, xOffset: 8, yOffset: 9, videoMemory64k: 0xa } as const;
const VBE_ENABLED = 0x01;
const VBE_LFB_ENABLED = 0x40;

export interface MbochsInfo {
  pciId: number;
  /** BAR0 (VRAM) size in bytes, from BAR sizing. */
  vramSize: number;
  /** BAR2 (MMIO) size in bytes. */
  mmioSize: number;
  /** VBE ID register (0xb0c5). */
  vbeId: number;
}

function vbeAddr(index: number): number {
  return BAR2_ADDR + 0x500 + 2 * index;
}

/** Places mbochs's BAR0 at BAR0_ADDR and BAR2 at BAR2_ADDR, enables memory decoding, checks the VBE id. */
export async function mbochsInit(qt: Qtest): Promise<MbochsInfo> {
  const pciId = (await qt.pciRead(0)) >>> 0;
  if (pciId !== MBOCHS_PCI_ID) throw new Error(`mbochsInit: 00:05.0 has id 0x${pciId.toString(16)}, expected 0x${MBOCHS_PCI_ID.toString(16)} (is the mdev an mbochs type?)`);
  const vramSize = await placeMemoryBar(qt, 0, BAR0_ADDR, 'mbochsInit');
  if (BAR0_ADDR + vramSize > BAR2_ADDR) throw new Error(`mbochsInit: a ${vramSize >> 20} MiB BAR0 at 0x${BAR0_ADDR.toString(16)} overlaps BAR2 at 0x${BAR2_ADDR.toString(16)}`);
  const mmioSize = await placeMemoryBar(qt, 2, BAR2_ADDR, 'mbochsInit');
  await enableMemoryDecoding(qt);
  const vbeId = await qt.readw(vbeAddr(VBE.id));
  if (vbeId !== VBE_DISPI_ID5) throw new Error(`mbochsInit: VBE id reads 0x${vbeId.toString(16)}, expected 0x${VBE_DISPI_ID5.toString(16)} (BAR2 not decoded at 0x${BAR2_ADDR.toString(16)}?)`);
  return { pciId, vramSize, mmioSize, vbeId };
}

export interface MbochsMode {
  width: number;
  height: number;
  /** Rows of the virtual framebuffer (≥ height; 2×height gives a second page for Y-offset flips). */
  virtHeight?: number;
}


/**
 * The preferred mode of the EDID QEMU wrote into an mbochs device's GFX EDID region (what
 * the guest reads at BAR2 offset 0) after SetUIInfo, as WxH; 'no EDID' before any.
 */
export async function mbochsEdidMode(qt: Qtest): Promise<string> {
  const e = await qt.read(BAR2_ADDR, 128);
  return e[0] === 0 && e[1] === 0xff ? `${e[56]! | ((e[58]! & 0xf0) << 4)}x${e[59]! | ((e[61]! & 0xf0) << 4)}` : 'no EDID';
}

/**
 * Sets an XRGB8888 mode (bpp 32, stride width×4): disable, program, enable | LFB (0x41).
 * mbochs accepts anything and silently shows no framebuffer when the mode does not fit, so
 * the fit is checked here against the VRAM the device reports.
 */
export async function mbochsSetMode(qt: Qtest, mode: MbochsMode): Promise<void> {
  const { width, height } = mode;
  const virtHeight = mode.virtHeight ?? height;
  for (const [k, v] of [['width', width], ['height', height], ['virtHeight', virtHeight]] as const) {
    if (!Number.isInteger(v) || v < 64 || v > 0xffff) throw new RangeError(`mbochsSetMode: ${k} ${v} is outside 64..65535 (mbochs refuses modes under 64x64)`);
  }
  if (virtHeight < height) throw new RangeError(`mbochsSetMode: virtHeight ${virtHeight} is less than height ${height}`);
  const vram = (await qt.readw(vbeAddr(VBE.videoMemory64k))) * 65536;
  if (width * 4 * virtHeight > vram) throw new RangeError(`mbochsSetMode: ${width}x${virtHeight}x4 bytes do not fit the mdev's ${vram >> 20} MiB VRAM; use a larger mbochs type or a smaller mode`);
  const w = (i: number, v: number) => Qtest.line.writew(vbeAddr(i), v);
  // Disabled while programming, so QEMU's refresh never queries a half-set mode.
  await qt.cmds([
    w(VBE.enable, 0),
    w(VBE.xres, width),
    w(VBE.yres, height),
    w(VBE.bpp, 32),
    w(VBE.virtWidth, width),
    w(VBE.virtHeight, virtHeight),
    w(VBE.xOffset, 0),
    w(VBE.yOffset, 0),
    w(VBE.enable, VBE_ENABLED | VBE_LFB_ENABLED),
  ]);
}

/** Scans out from row `y` of the virtual framebuffer (VBE index 9: a page flip). */
export async function mbochsSetYOffset(qt: Qtest, y: number): Promise<void> {
  if (!Number.isInteger(y) || y < 0 || y > 0xffff) throw new RangeError(`mbochsSetYOffset: y ${y} is outside 0..65535`);
  await qt.writew(vbeAddr(VBE.yOffset), y);
}

/** Switches the display off (VBE enable 0). QEMU then stops updating; it sends no Disable. */
export async function mbochsDisable(qt: Qtest): Promise<void> {
  await qt.writew(vbeAddr(VBE.enable), 0);
}

/** Reads the VBE registers back (what mbochs will use for its next plane query). */
export async function mbochsReadMode(qt: Qtest): Promise<{ width: number; height: number; bpp: number; enable: number; virtWidth: number; virtHeight: number; yOffset: number }> {
  const idx = [VBE.xres, VBE.yres, VBE.bpp, VBE.enable, VBE.virtWidth, VBE.virtHeight, VBE.yOffset];
  const [width, height, bpp, enable, virtWidth, virtHeight, yOffset] = (await qt.cmds(idx.map((i) => Qtest.line.readw(vbeAddr(i))))).map((a) => Qtest.valueOf(a));
  return { width, height, bpp, enable, virtWidth, virtHeight, yOffset };
}

/** Writes pixels into mbochs VRAM (BAR0) at byte `offset`; pass `info` to bound-check. */
export function writeVram(qt: Qtest, offset: number, bytes: Uint8Array, info?: Pick<MbochsInfo, 'vramSize'>): Promise<void> {
  return writeBar0(qt, offset, bytes, info?.vramSize, 'writeVram');
}

// --- mdpy: fixed-mode framebuffer in BAR0, its format in a vendor capability -----------
// samples/vfio-mdev/mdpy-defs.h: ids 1b36:000f, vendor capability at 0x40 whose dwords
// +4/+8/+0xc are the DRM fourcc, width and height. Nothing for the guest to set: the mode
// is the mdev type's (mdpy-vga 640x480, mdpy-xga 1024x768, mdpy-hd 1920x1080), stride is
// width×4 (XRGB8888 is the only format), BAR0 is the next power of two of the frame.
// mdpy's read()/write() path copies every BAR0 access to the start of the framebuffer (it
// drops the offset); writes land right only because QEMU mmaps BAR0 and qtest writes go
// through that mapping (checked pixel-exact in the rig). With gl=off the first Scanout a new
// listener gets is QEMU's 640x480 placeholder; the mdpy surface follows at the next refresh.

export const MDPY_PCI_ID = 0x000f1b36; // device 0x000f, vendor 0x1b36 (Red Hat)
const MDPY_VENDORCAP = 0x40;
const PCI_CAP_ID_VNDR = 0x09;
export const DRM_FORMAT_XRGB8888 = 0x34325258; // 'XR24'

export interface MdpyInfo {
  pciId: number;
  width: number;
  height: number;
  /** Bytes per row (width × 4). */
  stride: number;
  /** DRM fourcc from config space (XRGB8888). */
  fourcc: number;
  /** BAR0 size in bytes. */
  fbSize: number;
}

/** Reads mdpy's mode from config space, places BAR0 at BAR0_ADDR and enables memory decoding. */
export async function mdpyInit(qt: Qtest): Promise<MdpyInfo> {
  const pciId = (await qt.pciRead(0)) >>> 0;
  if (pciId !== MDPY_PCI_ID) throw new Error(`mdpyInit: 00:05.0 has id 0x${pciId.toString(16)}, expected 0x${MDPY_PCI_ID.toString(16)} (is the mdev an mdpy type?)`);
  const capPtr = (await qt.pciRead(PCI_CAPABILITY_LIST, 1)) & 0xfc;
  const capId = await qt.pciRead(MDPY_VENDORCAP, 1);
  if (capPtr !== MDPY_VENDORCAP || capId !== PCI_CAP_ID_VNDR) throw new Error(`mdpyInit: expected the vendor capability (id 9) at 0x40, got capability pointer 0x${capPtr.toString(16)} and id 0x${capId.toString(16)} there (QEMU hid it?)`);
  const fourcc = (await qt.pciRead(MDPY_VENDORCAP + 4)) >>> 0;
  const width = await qt.pciRead(MDPY_VENDORCAP + 8);
  const height = await qt.pciRead(MDPY_VENDORCAP + 0xc);
  if (fourcc !== DRM_FORMAT_XRGB8888) throw new Error(`mdpyInit: format 0x${fourcc.toString(16)} is not XRGB8888, the only one mdpy has`);
  if (!(width > 0 && height > 0)) throw new Error(`mdpyInit: mode ${width}x${height} read from config space 0x48/0x4c is empty`);
  const fbSize = await placeMemoryBar(qt, 0, BAR0_ADDR, 'mdpyInit');
  if (fbSize < width * height * 4) throw new Error(`mdpyInit: BAR0 of ${fbSize} bytes is smaller than the ${width}x${height} frame`);
  await enableMemoryDecoding(qt);
  return { pciId, width, height, stride: width * 4, fourcc, fbSize };
}

/** Writes pixels into mdpy's framebuffer (BAR0) at byte `offset`; pass `info` to bound-check. */
export function mdpyWriteFramebuffer(qt: Qtest, offset: number, bytes: Uint8Array, info?: Pick<MdpyInfo, 'fbSize'>): Promise<void> {
  return writeBar0(qt, offset, bytes, info?.fbSize, 'mdpyWriteFramebuffer');
}

/** Test pattern frame `n` (plugin/sources/pattern.ts) in mdpy's layout: what the guest shows, or the reference to compare with. */
export function mdpyPatternFrame(mode: Pick<MdpyInfo, 'width' | 'height' | 'stride'>, n: number): Uint8Array {
  const frame = new Uint8Array(mode.stride * mode.height);
  drawPattern({ bytes: frame, offset: 0, width: mode.width, height: mode.height, stride: mode.stride }, n);
  return frame;
}

/** The guest draws test pattern frame `n` into mdpy's framebuffer (through qtest). */
export function mdpyShowPattern(qt: Qtest, mode: MdpyInfo, n: number): Promise<void> {
  return mdpyWriteFramebuffer(qt, 0, mdpyPatternFrame(mode, n), mode);
}

/** QMP `cont`: input only reaches QEMU's input layer (and its trace) while the VM runs. */
export async function qmpCont(sock: string): Promise<void> {
  const c = createConnection(sock);
  let buf = '';
  const replies: string[] = [];
  c.on('data', (d) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      replies.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
  await new Promise<void>((r, j) => c.once('connect', r).once('error', j));
  await waitUntil(() => replies.length >= 1, 'QMP greeting');
  c.write('{"execute":"qmp_capabilities"}\n');
  await waitUntil(() => replies.length >= 2, 'QMP capabilities');
  c.write('{"execute":"cont"}\n');
  await waitUntil(() => replies.slice(2).some((r) => r.includes('"return"') || r.includes('"error"')), `QMP cont (got ${replies.join(' ')})`).catch((e: Error) => {
    throw new Error(`${e.message}: ${replies.join(' | ')}`);
  });
  const answer = replies.slice(2).find((r) => r.includes('"return"') || r.includes('"error"'))!;
  if (answer.includes('"error"')) throw new Error(`QMP cont: ${answer}`);
  c.end();
}

async function waitUntil(pred: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Hands `fd` to QEMU through QMP (getfd needs SCM_RIGHTS; python3 sends it) and adds it as a D-Bus display client. */
export async function qmpAddDbusClient(qmpSock: string, fd: number): Promise<string> {
  const script = [
    'import socket, sys, json',
    's = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f = s.makefile("r")',
    'def rd():',
    '    while True:',
    '        m = json.loads(f.readline())',
    '        if "event" not in m: return m',
    'rd(); s.sendall(b\'{"execute":"qmp_capabilities"}\\n\'); rd()',
    'socket.send_fds(s, [b\'{"execute":"getfd","arguments":{"fdname":"gp"}}\\n\'], [3]); r1 = rd()',
    's.sendall(b\'{"execute":"add_client","arguments":{"protocol":"@dbus-display","fdname":"gp"}}\\n\'); r2 = rd()',
    'print(json.dumps([r1, r2]))',
  ].join('\n');
  return new Promise((resolve, reject) => {
    const p = spawn('python3', ['-c', script, qmpSock], { stdio: ['ignore', 'pipe', 'pipe', fd] });
    let out = '';
    p.stdout!.on('data', (d) => (out += d));
    p.stderr!.on('data', (d) => (out += d));
    p.on('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`QMP add_client failed: ${out}`))));
  });
}
