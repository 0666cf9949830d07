// seatd (Debian's seatd) for rig tests, and the VT switches a user makes: the kiosk's seat
// session meets the real seat daemon and the kernel's VT layer, never a stand-in.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import type { Cleanup } from './cleanup.js';

const SEATD = '/usr/sbin/seatd';
const SOCK = '/run/seatd.sock';

/** Why seat tests cannot run here, or null. */
export function seatdMissing(): string | null {
  if (!existsSync(SEATD)) return `no ${SEATD} (Debian package seatd)`;
  if (!existsSync('/dev/tty0')) return 'no /dev/tty0 (the rig kernel needs CONFIG_VT)';
  return null;
}

export interface Seatd {
  /** The environment a client needs: SEATD_SOCK, LIBSEAT_BACKEND=seatd. */
  env: Record<string, string>;
  /** What seatd logged so far. */
  log(): string;
  close(): Promise<void>;
}

/**
 * Starts seatd on seat0 (VT-bound), its socket owned by `user` (a uid's name) so that user
 * may connect. seatd 0.7 always listens on /run/seatd.sock (it has no option for the path),
 * so one runs at a time: the seat tests live in one file.
 */
export async function startSeatd(user = 'nobody'): Promise<Seatd> {
  const sock = SOCK;
  rmSync(sock, { force: true });
  let out = '';
  const child: ChildProcess = spawn(SEATD, ['-u', user, '-l', 'info'], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  for (let i = 0; i < 100 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50));
  if (!existsSync(sock)) {
    child.kill('SIGKILL');
    throw new Error(`seatd did not create ${sock} within 5 s: ${out}`);
  }
  return {
    env: { SEATD_SOCK: sock, LIBSEAT_BACKEND: 'seatd' },
    log: () => out,
    async close() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
      rmSync(sock, { force: true });
    },
  };
}

/** The foreground VT's number (the kernel's, from sysfs). */
export function activeVt(): number {
  return Number(readFileSync('/sys/class/tty/tty0/active', 'utf8').trim().replace(/^tty/, ''));
}

/** The evdev code of the F key that Ctrl+Alt+F<n> switches to VT n with (F1..F10: 59..68). */
export function fKeyOf(vt: number): number {
  if (vt < 1 || vt > 10) throw new Error(`no F key before F11 switches to VT ${vt}`);
  return 58 + vt;
}

/** Switches the foreground VT as `chvt` does (VT_ACTIVATE + VT_WAITACTIVE); with seatd's VT_PROCESS mode this waits for the seat's acknowledgement. */
export function chvt(n: number): void {
  execFileSync('busybox', ['chvt', String(n)], { timeout: 20_000 });
}

/**
 * seatd for `user`, and the VT the test started on to come back to: `cleanup` switches back
 * (if a step failed while away) and then stops seatd.
 */
export async function seatdAndHomeVt(cleanup: Cleanup, user = 'nobody'): Promise<{ seatd: Seatd; home: number }> {
  const seatd = await startSeatd(user);
  cleanup.push(() => seatd.close());
  const home = activeVt();
  cleanup.push(() => {
    if (activeVt() !== home) chvt(home);
  });
  return { seatd, home };
}
