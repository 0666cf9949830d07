// The command line's words checked before anything is opened: options per subcommand,
// sizes, modes, rates, addresses, chords. Every refusal is a UsageError naming the
// subcommand, the option, the value and what is wrong; main() prints it as one line and
// points at the subcommand's --help (exit 2). Light on purpose: main.ts loads it for every
// start, --help included, so nothing here may load koffi or a mode (qemu-address.ts does).
import { parseArgs } from 'node:util';
import type { FitMode } from '../geometry.js';
import type { ModeRequest } from '../output/output.js';
import type { InputStackOptions } from '../input/devices.js';
import { parseChords, type ChordName } from '../input/chords.js';

/** A wrong command line: `cmd` is the subcommand whose --help to point at (undefined: the top level). */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly cmd?: string,
  ) {
    super(message);
  }
}

export type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string }>;

/** Options every subcommand takes. */
const COMMON: OptionSpec = { help: { type: 'boolean', short: 'h' }, 'log-level': { type: 'string' } };

/** A subcommand's options: strict (unknown ones are usage errors naming the command). */
export class Options {
  private constructor(
    readonly cmd: string,
    private readonly values: Record<string, string | boolean | undefined>,
  ) {}

  static parse(cmd: string, args: string[], options: OptionSpec): Options {
    try {
      const { values } = parseArgs({ args, options: { ...options, ...COMMON }, allowPositionals: false, strict: true });
      return new Options(cmd, values as Record<string, string | boolean | undefined>);
    } catch (e) {
      const m = /Unexpected argument '(.*)'/.exec((e as Error).message);
      if (m && cmd === 'compositor') throw new UsageError(`'${m[1]}': the command to run goes after '--' (guestplane compositor [options] -- ${m[1]} ARGS…)`, cmd);
      // parseArgs explains a value that starts with '-' over three lines: one is enough.
      const dash = /^Option '(-[^']*)' argument is ambiguous/.exec((e as Error).message);
      if (dash) throw new UsageError(`${dash[1]} needs a value; one that starts with '-' is written ${dash[1]}=VALUE`, cmd);
      throw new UsageError((e as Error).message.replace(/\. To specify a positional argument starting with a '-'.*$/s, '').split('\n')[0]!, cmd);
    }
  }

  str(k: string): string | undefined {
    const v = this.values[k];
    return typeof v === 'string' ? v : undefined;
  }

  flag(k: string): boolean {
    return this.values[k] === true;
  }

  given(k: string): boolean {
    return this.values[k] !== undefined;
  }

  /** Throws naming the option when `k` has a value outside `allowed`; the value or `dflt`. */
  oneOf<T extends string>(k: string, allowed: readonly T[], dflt: T): T {
    const v = this.str(k) ?? dflt;
    if (!(allowed as readonly string[]).includes(v)) throw new UsageError(`--${k} '${v}' is not one of ${allowed.join(', ')}`, this.cmd);
    return v as T;
  }
}

export const FITS: readonly FitMode[] = ['native', 'fit', 'fill'];
export const SESSIONS = ['auto', 'seat', 'direct'] as const;
export const STATS = ['text', 'json', 'none'] as const;

/** The largest width or height taken (KMS's own limits are far below). */
export const MAX_SIDE = 16384;

/** WxH: a size in pixels; the message says what is wrong with it. */
export function parseSize(s: string, what = '--mode', cmd?: string): { width: number; height: number } {
  const m = /^(\d+)x(\d+)(@.*)?$/.exec(s);
  if (!m) throw new UsageError(`${what} '${s}' is not WxH (e.g. 1920x1080)`, cmd);
  if (m[3] !== undefined) throw new UsageError(`${what} '${s}': a rate is not accepted here; give WxH${what === '--udmabuf' ? ' (the test guest\'s rate is --fps)' : ''}`, cmd);
  const [width, height] = [Number(m[1]), Number(m[2])];
  if (width === 0 || height === 0) throw new UsageError(`${what} '${s}': a zero ${width === 0 ? 'width' : 'height'}; give the size in pixels, e.g. 1920x1080`, cmd);
  if (width > MAX_SIDE || height > MAX_SIDE) throw new UsageError(`${what} '${s}': ${Math.max(width, height)} is out of range (1 to ${MAX_SIDE} pixels a side)`, cmd);
  return { width, height };
}

/** WxH or WxH@Hz: a display mode. */
export function parseMode(s: string, what = '--mode', cmd?: string): ModeRequest {
  const at = s.indexOf('@');
  if (at < 0) return parseSize(s, what, cmd);
  if (!/^\d+x\d+$/.test(s.slice(0, at))) throw new UsageError(`${what} '${s}' is not WxH or WxH@Hz (e.g. 1920x1080@60)`, cmd);
  const size = parseSize(s.slice(0, at), what, cmd);
  const hz = s.slice(at + 1);
  const refresh = Number(hz);
  if (!/^\d+(\.\d+)?$/.test(hz)) throw new UsageError(`${what} '${s}': '${hz}' is not a refresh rate in Hz (e.g. 1920x1080@60)`, cmd);
  if (refresh <= 0 || refresh > 1000) throw new UsageError(`${what} '${s}': refresh rate ${hz} is out of range (above 0, up to 1000 Hz)`, cmd);
  return { ...size, refresh };
}

/** A frame rate in (0, 1000]. */
export function parseRate(s: string, what: string, cmd?: string): number {
  const n = Number(s);
  if (s.trim() === '' || !Number.isFinite(n)) throw new UsageError(`${what} '${s}' is not a frame rate (a number of frames per second, e.g. 30)`, cmd);
  if (n <= 0 || n > 1000) throw new UsageError(`${what} '${s}' is not a frame rate in (0, 1000]: out of range`, cmd);
  return n;
}

/** --connect-timeout SECONDS (QEMU's D-Bus handshake and first answer): ms, or undefined when not given. */
export function connectTimeoutOption(o: Options): number | undefined {
  const s = o.str('connect-timeout');
  if (s === undefined) return undefined;
  if (!o.given('qemu-dbus')) throw new UsageError('--connect-timeout bounds the connection to QEMU; use it with --qemu-dbus', o.cmd);
  const n = Number(s);
  if (s.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--connect-timeout '${s}' is not a number of seconds (e.g. 5, or 0.5)`, o.cmd);
  if (n <= 0 || n > 600) throw new UsageError(`--connect-timeout '${s}' is out of range: above 0, up to 600 seconds`, o.cmd);
  return Math.round(n * 1000);
}

export function parseConsole(s: string | undefined, cmd: string): number {
  if (s === undefined) return 0;
  const n = Number(s);
  if (!/^\d+$/.test(s) || !Number.isSafeInteger(n)) throw new UsageError(`--console '${s}' is not a console number (0, 1, …; see guestplane info --qemu-dbus ADDRESS)`, cmd);
  return n;
}

/** --chords all|none|quit,grab,vt (default all). */
export function chordsOption(o: Options): ChordName[] | undefined {
  const s = o.str('chords');
  if (s === undefined) return undefined;
  try {
    return parseChords(s);
  } catch (e) {
    throw new UsageError(`--chords '${s}': ${(e as Error).message}`, o.cmd);
  }
}

/** --no-input / --input-devices P,Q: the devices for the input stack; undefined: the default (seat0). */
export function inputOption(o: Options): InputStackOptions | false | undefined {
  if (o.flag('no-input') && o.given('input-devices')) throw new UsageError('--no-input and --input-devices contradict each other; give one', o.cmd);
  if (o.flag('no-input')) return false;
  const p = o.str('input-devices');
  if (p === undefined) return undefined;
  const paths = p.split(',').filter(Boolean);
  if (!paths.length) throw new UsageError(`--input-devices '${p}' names no device; give /dev/input/event* nodes separated by commas`, o.cmd);
  return { paths };
}

/** The options of the seat, input and chords, which kiosk, heads and compositor share. */
export const SEAT_OPTIONS: OptionSpec = {
  'no-input': { type: 'boolean' },
  'input-devices': { type: 'string' },
  session: { type: 'string' },
  chords: { type: 'string' },
};

/** Splits `[options] -- CMD ARGS…` at the first '--' (the compositor's); an empty CMD is a usage error. */
export function splitCommand(args: string[]): { options: string[]; command: string[] | null } {
  const i = args.indexOf('--');
  if (i < 0) return { options: args, command: null };
  const command = args.slice(i + 1);
  if (!command.length) throw new UsageError("nothing after '--': give the application to run, e.g. guestplane compositor -- foot", 'compositor');
  return { options: args.slice(0, i), command };
}
