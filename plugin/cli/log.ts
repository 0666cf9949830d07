// The command's diagnostics on stderr, filtered by --log-level / GUESTPLANE_LOG_LEVEL:
// error (only why it failed), warn (and what it works around), info (default: what it
// shows where, stats lines, devices), debug (and a failure's stack).
import { UsageError } from './args.js';

export interface CliIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
}

export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** --log-level, else $GUESTPLANE_LOG_LEVEL, else info; a wrong value is a usage error naming where it came from. */
export function logLevel(option: string | undefined, env: string | undefined, cmd?: string): LogLevel {
  const [v, from] = option !== undefined ? [option, '--log-level'] : env !== undefined && env !== '' ? [env, 'GUESTPLANE_LOG_LEVEL'] : ['info', ''];
  if (!(LOG_LEVELS as readonly string[]).includes(v)) throw new UsageError(`${from} '${v}' is not one of ${LOG_LEVELS.join(', ')}`, from === '--log-level' ? cmd : undefined);
  return v as LogLevel;
}

export class CliLog {
  /** The last line logged at info or above: what a mode said before it stopped on a failure. */
  last = '';

  constructor(
    private readonly io: CliIo,
    readonly level: LogLevel,
  ) {}

  /** A stop with a failure's code: below info its reason (logged at info by the mode) is said again as the error. */
  failed(code: number): number {
    if (code !== 0 && !this.#on('info') && this.last) this.io.stderr(this.last + '\n');
    return code;
  }

  #on(l: LogLevel): boolean {
    return LOG_LEVELS.indexOf(l) <= LOG_LEVELS.indexOf(this.level);
  }

  #write(l: LogLevel, line: string): void {
    if (l !== 'debug') this.last = line;
    if (this.#on(l)) this.io.stderr(line.endsWith('\n') ? line : line + '\n');
  }

  error(line: string): void {
    this.#write('error', line);
  }
  warn(line: string): void {
    this.#write('warn', line);
  }
  info(line: string): void {
    this.#write('info', line);
  }
  debug(line: string): void {
    this.#write('debug', line);
  }
}
