// The kiosk CLI as a child process (what an operator runs): its stderr lines, JSON stats,
// captures through SIGUSR1 (written by the kiosk from the writeback connector) read back.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { findCardByDriver } from '../../../plugin/kms/device.js';
import { readPng } from './png.js';

const CLI = join(process.cwd(), 'dist/plugin/cli.js');
const staged = new Map<number, string>();

/**
 * The CLI as `uid` can run it. A clone in a directory only root may enter (`mktemp -d`
 * makes 0700 ones) cannot be read by the unprivileged user of the seat tests, so then dist/
 * and the runtime dependencies are copied once into a world-readable directory of the rig.
 */
export function cliFor(uid: number): string {
  const ok = spawnSync('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', 'test', '-r', CLI]).status === 0;
  if (ok) return CLI;
  const have = staged.get(uid);
  if (have) return have;
  const dir = mkdtempSync('/tmp/gp-cli-');
  chmodSync(dir, 0o755);
  const root = process.cwd();
  cpSync(join(root, 'dist'), join(dir, 'dist'), { recursive: true });
  cpSync(join(root, 'package.json'), join(dir, 'package.json'));
  const deps = Object.keys((JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies);
  for (const d of deps) cpSync(join(root, 'node_modules', d), join(dir, 'node_modules', d), { recursive: true });
  const cli = join(dir, 'dist/plugin/cli.js');
  staged.set(uid, cli);
  return cli;
}

export class KioskProcess {
  readonly child: ChildProcess;
  lines: string[] = [];
  private waiters: { pred: (l: string) => boolean; resolve: (l: string) => void }[] = [];
  readonly exited: Promise<{ code: number | null; signal: string | null }>;

  /**
   * `guestplane kiosk --device <vkms> --connector Virtual-1 --stats json ARGS`; extraFds
   * are inherited as fd 3, 4…; `user`: run as this uid/gid (setpriv, no supplementary groups);
   * `bare`: `guestplane kiosk ARGS` alone (the multi-head kiosk takes neither --device nor --connector);
   * `command`: another subcommand than kiosk (e.g. compositor), always bare.
   */
  constructor(args: string[], extraFds: number[] = [], opts: { user?: number; env?: NodeJS.ProcessEnv; bare?: boolean; command?: string } = {}) {
    const cli = opts.user === undefined ? CLI : cliFor(opts.user);
    const argv = opts.command ? [cli, opts.command, ...args] : opts.bare ? [cli, 'kiosk', ...args] : [cli, 'kiosk', '--device', findCardByDriver('vkms')!, '--connector', 'Virtual-1', '--stats', 'json', ...args];
    const [cmd, cmdArgs] = opts.user === undefined ? [process.execPath, argv] : ['setpriv', [`--reuid=${opts.user}`, `--regid=${opts.user}`, '--clear-groups', process.execPath, ...argv]];
    this.child = spawn(cmd, cmdArgs, { stdio: ['ignore', 'pipe', 'pipe', ...extraFds], env: { ...process.env, ...opts.env } });
    let buf = '';
    this.child.stderr!.on('data', (b: Buffer) => {
      buf += b.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        this.lines.push(line);
        for (const w of this.waiters.splice(0)) {
          if (w.pred(line)) w.resolve(line);
          else this.waiters.push(w);
        }
      }
    });
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => resolve({ code, signal })));
  }

  /** Ends the process whatever state it is in, and waits until it is gone (DRM master free). */
  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }

  waitLine(pred: (l: string) => boolean, timeoutMs = 40_000): Promise<string> {
    const seen = this.lines.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`kiosk did not print the expected line within ${timeoutMs} ms; it printed:\n${this.lines.join('\n')}`)), timeoutMs);
      this.waiters.push({ pred, resolve: (l) => { clearTimeout(t); resolve(l); } });
    });
  }

  async stats(pred: (s: { fps: number; paths: Record<string, number>; imports: number; bytesCopiedPerSec: number; testOnlyCommits: number }) => boolean) {
    const l = await this.waitLine((x) => x.startsWith('{"stats"') && pred(JSON.parse(x).stats));
    return JSON.parse(l).stats;
  }

  async capture(): Promise<{ pixels: Uint32Array; meta: { content: { path: string; frame?: number; reason?: string } | null } }> {
    const n = this.lines.filter((l) => l.includes('captured ')).length;
    this.child.kill('SIGUSR1');
    await this.waitLine(() => this.lines.filter((l) => l.includes('captured ') || l.includes('capture failed')).length > n, 30_000);
    const last = this.lines.filter((l) => l.includes('captured ') || l.includes('capture failed')).at(-1)!;
    if (last.includes('capture failed')) throw new Error(last);
    const path = this.lines.filter((l) => l.includes('captured ')).at(-1)!.split('captured ')[1];
    const img = readPng(readFileSync(path));
    // AB24 (R,G,B,A) → 0xAARRGGBB words to compare with XR24 values.
    const px = new Uint32Array(img.width * img.height);
    const b = img.pixels;
    for (let i = 0; i < px.length; i++) px[i] = ((b[i * 4] << 16) | (b[i * 4 + 1] << 8) | b[i * 4 + 2]) >>> 0;
    return { pixels: px, meta: JSON.parse(readFileSync(path.replace(/\.png$/, '.json'), 'utf8')) };
  }
}
