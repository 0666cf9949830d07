// What the subcommands share: the handle the entry point stops them by, and the seat session.
import type { SeatSession } from '../device/session.js';
import { SESSIONS, type Options } from './args.js';

export interface RunningCommand {
  /** Stops the command (screen restored); resolves to its exit code. */
  stop(reason: string): Promise<number>;
  done: Promise<number>;
  /** SIGUSR1: capture the screen (where the command was given a capture directory). */
  onUsr1?: () => void;
  /** SIGINT/SIGTERM go here instead of to stop() (the compositor passes them on to its application). */
  onSignal?: (sig: NodeJS.Signals) => void;
}

export type OnStart = (k: RunningCommand) => void;

/** --session: seat (libseat), direct (open the nodes), auto (direct as root unless LIBSEAT_BACKEND says otherwise). */
export async function openSession(o: Options): Promise<SeatSession | undefined> {
  const mode = o.oneOf('session', SESSIONS, 'auto');
  const seat = mode === 'seat' || (mode === 'auto' && (process.getuid?.() !== 0 || process.env['LIBSEAT_BACKEND'] !== undefined));
  if (!seat) return undefined;
  // Loaded here, not at the top: libseat's bindings only once a command really starts.
  return (await import('../device/session.js')).SeatSession.open();
}
