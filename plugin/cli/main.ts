// The command line: the subcommand, its options, and what a failure prints and exits with
// (0 clean stop, 1 failure, 2 usage error: one line and where the help is). The subcommands
// are loaded when run, not before (specs.ts has their options).
import { Options, UsageError, splitCommand } from './args.js';
import type { OnStart } from './common.js';
import { CliLog, logLevel, type CliIo } from './log.js';
import { COMPOSITOR_OPTIONS, HEADS_OPTIONS, INFO_OPTIONS, KIOSK_OPTIONS, WINDOW_OPTIONS } from './specs.js';
import { HELP, OVERVIEW, version } from './usage.js';

export const defaultIo: CliIo = {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
};

const COMMANDS = { info: INFO_OPTIONS, kiosk: KIOSK_OPTIONS, heads: HEADS_OPTIONS, compositor: COMPOSITOR_OPTIONS, window: WINDOW_OPTIONS } as const;
type Command = keyof typeof COMMANDS;

async function run(cmd: Command, rest: string[], io: CliIo, onStart: OnStart | undefined, setLog: (l: CliLog) => void): Promise<number> {
  const { options, command } = cmd === 'compositor' ? splitCommand(rest) : { options: rest, command: null };
  const o = Options.parse(cmd, options, COMMANDS[cmd]);
  if (o.flag('help')) {
    io.stdout(HELP[cmd]!);
    return 0;
  }
  const log = new CliLog(io, logLevel(o.str('log-level'), process.env['GUESTPLANE_LOG_LEVEL'], cmd));
  setLog(log);
  // Only now the subcommand, and with it koffi and the modes (0.2 s on a desktop, 15-20 s
  // under the rig's TCG): --help, --version and usage errors never load them.
  if (cmd === 'info') return (await import('./info.js')).info(o, io, log);
  if (cmd === 'kiosk') return (await import('./kiosk.js')).kiosk(o, log, onStart);
  if (cmd === 'heads') return (await import('./heads.js')).heads(o, log, onStart);
  if (cmd === 'window') return (await import('./window.js')).window(o, log, onStart);
  return (await import('./compositor.js')).compositor(o, command, io, log, onStart);
}

/** Runs the CLI with `argv` (without node and the script). Resolves to the exit code. */
export async function main(argv: string[], io: CliIo = defaultIo, onStart?: OnStart): Promise<number> {
  const [cmd, ...rest] = argv;
  let log: CliLog | null = null;
  try {
    if (cmd === undefined) throw new UsageError("no command given: guestplane info|kiosk|heads|compositor|window");
    if (cmd === 'help' || cmd === '--help' || cmd === '-h') {
      io.stdout(rest[0] && rest[0] in HELP ? HELP[rest[0]]! : OVERVIEW);
      return 0;
    }
    if (cmd === '--version' || cmd === '-V') {
      io.stdout(`guestplane ${version()}\n`);
      return 0;
    }
    if (!(cmd in COMMANDS)) throw new UsageError(cmd.startsWith('-') ? `unknown option '${cmd}' (options go after the command: guestplane <command> ${cmd})` : `unknown command '${cmd}': the commands are info, kiosk, heads, compositor and window`);
    return await run(cmd as Command, rest, io, onStart, (l) => (log = l));
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`guestplane${e.cmd ? ` ${e.cmd}` : ''}: ${e.message}\nsee 'guestplane${e.cmd ? ` ${e.cmd}` : ''} --help'\n`);
      return 2;
    }
    const l = log as CliLog | null;
    if (l?.level === 'debug') io.stderr(`guestplane: ${(e as Error).stack ?? String(e)}\n`);
    else io.stderr(`guestplane${cmd && cmd in COMMANDS ? ` ${cmd}` : ''}: ${(e as Error).message}\n`);
    return 1;
  }
}
