// guestplane compositor [options] [-- CMD ARGS…]: the kiosk Wayland compositor, and with a
// command cage's behaviour: CMD starts once the socket is ready (WAYLAND_DISPLAY and
// XDG_RUNTIME_DIR set), SIGINT/SIGTERM are passed on to it, and when it exits the screen is
// restored and the command exits with CMD's status (128+N for a signal N, as a shell says).
import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:os';
import { dirname, isAbsolute } from 'node:path';
import type { runCompositor } from '../modes/compositor.js';
import { FITS, Options, UsageError, chordsOption, inputOption, parseMode } from './args.js';
import { openSession, type OnStart } from './common.js';
import type { CliIo, CliLog } from './log.js';

/** The environment CMD gets: ours, with the compositor's socket. */
export function clientEnv(socket: string, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const runtime = env['XDG_RUNTIME_DIR'] || (isAbsolute(socket) ? dirname(socket) : undefined);
  return { ...env, WAYLAND_DISPLAY: socket, ...(runtime ? { XDG_RUNTIME_DIR: runtime } : {}) };
}

/** An exit status as a shell reports it: the code, or 128 + the signal's number. */
export function exitStatus(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  return 128 + (signal ? (constants.signals[signal] ?? 0) : 0);
}

export async function compositor(o: Options, command: string[] | null, io: CliIo, log: CliLog, onStart?: OnStart): Promise<number> {
  const fit = o.oneOf('fit', FITS, 'native');
  const mode = o.given('mode') ? parseMode(o.str('mode')!, '--mode', 'compositor') : undefined;
  const input = inputOption(o);
  const chords = chordsOption(o);
  if (chords?.some((c) => c !== 'vt')) throw new UsageError(`--chords '${o.str('chords')}': the compositor has only the vt chord (Ctrl+Alt+Q and G are the client's); give all, none or vt`, 'compositor');
  const mode_ = await import('../modes/compositor.js'); // after the checks: a bad option loads no mode
  const session = await openSession(o);
  let c: Awaited<ReturnType<typeof runCompositor>>;
  try {
    c = await mode_.runCompositor({ session, device: o.str('device'), connector: o.str('connector'), mode, socket: o.str('socket'), fit, leasing: !o.flag('no-lease'), input, chords, log: (m) => log.info(`guestplane compositor: ${m}`) });
  } catch (e) {
    await session?.close();
    throw e;
  }
  if (session) log.info(`guestplane compositor: on seat ${session.name} (devices through libseat)`);
  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((r) => (resolveDone = r));
  let stopping = false;
  const stop = async (reason: string, code = 0) => {
    if (!stopping) {
      stopping = true;
      await c.close();
      await session?.close();
      log.info(`guestplane compositor: ${reason}; screen restored`);
      resolveDone(code);
    }
    return done;
  };
  if (!command) {
    io.stdout(`WAYLAND_DISPLAY=${c.socket}\n`);
    onStart?.({ done, stop: (reason) => stop(reason) });
    return done;
  }
  const child = startClient(command, clientEnv(c.socket), log, (status, why) => void stop(why, status));
  onStart?.({
    done,
    stop: (reason) => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return stop(reason);
    },
    onSignal: (sig) => {
      // The application decides: it exits (and so does the compositor) or it does not.
      log.info(`guestplane compositor: ${sig} passed on to ${command[0]} (pid ${child.pid ?? '?'})`);
      child.kill(sig);
    },
  });
  return done;
}

/** Starts the application; `ended` once with its status (1 if it could not start) and why. */
function startClient(command: string[], env: NodeJS.ProcessEnv, log: CliLog, ended: (status: number, why: string) => void): ChildProcess {
  const [cmd, ...args] = command as [string, ...string[]];
  const child = spawn(cmd, args, { env, stdio: 'inherit' });
  let over = false;
  child.on('spawn', () => log.info(`guestplane compositor: started ${cmd} (pid ${child.pid}) on WAYLAND_DISPLAY=${env['WAYLAND_DISPLAY']}`));
  child.on('error', (e: NodeJS.ErrnoException) => {
    if (over) return;
    over = true;
    const why = e.code === 'ENOENT' ? 'no such command (check the name and $PATH)' : e.code === 'EACCES' ? 'permission denied (is it executable?)' : e.message;
    log.error(`guestplane compositor: cannot start '${cmd}': ${why}`);
    ended(1, `${cmd} did not start`);
  });
  child.on('exit', (code, signal) => {
    if (over) return;
    over = true;
    const status = exitStatus(code, signal);
    ended(status, `${cmd} exited (${signal ? `signal ${signal}` : `status ${code}`})`);
  });
  return child;
}
