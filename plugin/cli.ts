#!/usr/bin/env node
// The `guestplane` command. Subcommands:
//   info [--device PATH] [--json] [--all-modes]   what a KMS device offers
// Exit codes: 0 success, 1 failure (message on stderr), 2 usage error.
import { existsSync, readdirSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { KmsDevice, KmsOpenError } from './kms/device.js';
import { describeDevice, renderInfo } from './info.js';

export interface CliIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
}

const defaultIo: CliIo = {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
};

export const USAGE = `usage: guestplane <command> [options]

commands:
  info [--device PATH] [--json] [--all-modes]
      Describe a KMS device: driver, caps, CRTCs, connectors (modes, writeback),
      encoders and planes (formats with modifiers, zpos, rotations, properties).
      --device PATH   the card node (default: the first /dev/dri/card* with atomic KMS)
      --json          machine-readable output on stdout
      --all-modes     list every mode (text output shows 5 per connector otherwise)

  help                this text
`;

class UsageError extends Error {}

/** Card nodes in numeric order (card2 before card10). */
function cardNodes(dir = '/dev/dri'): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((n) => /^card\d+$/.test(n))
    .sort((a, b) => Number(a.slice(4)) - Number(b.slice(4)))
    .map((n) => `${dir}/${n}`);
}

/**
 * Opens the first card node with atomic KMS, read-only (no DRM master). Returns the
 * device and a note naming it and what was skipped.
 */
export function openFirstKmsDevice(): { dev: KmsDevice; note: string } {
  const skipped: string[] = [];
  for (const path of cardNodes()) {
    try {
      const dev = KmsDevice.open(path, { master: false });
      const why = skipped.length ? ` (skipped ${skipped.join('; ')})` : '';
      return { dev, note: `guestplane: using ${path} (${dev.driver.name})${why}; pass --device to choose another\n` };
    } catch (e) {
      if (e instanceof KmsOpenError) {
        skipped.push(`${path}: ${e.reason === 'no-atomic' ? 'no atomic KMS' : e.reason}`);
        continue;
      }
      throw e;
    }
  }
  const seen = skipped.length ? `: ${skipped.join('; ')}` : ' (no /dev/dri/card* nodes)';
  throw new Error(`no KMS device with atomic modesetting found${seen}`);
}

async function info(args: string[], io: CliIo): Promise<number> {
  let values: { device?: string; json?: boolean; 'all-modes'?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args,
      options: {
        device: { type: 'string', short: 'd' },
        json: { type: 'boolean' },
        'all-modes': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: false,
      strict: true,
    }));
  } catch (e) {
    throw new UsageError(`info: ${(e as Error).message}`);
  }
  if (values.help) {
    io.stdout(USAGE);
    return 0;
  }
  let dev: KmsDevice;
  if (values.device !== undefined) {
    if (values.device === '') throw new UsageError('info: --device needs a path, e.g. --device /dev/dri/card0');
    dev = KmsDevice.open(values.device, { master: false });
  } else {
    const r = openFirstKmsDevice();
    dev = r.dev;
    io.stderr(r.note);
  }
  try {
    const d = describeDevice(dev);
    if (values.json) io.stdout(JSON.stringify(d, null, 2) + '\n');
    else io.stdout(renderInfo(d, { allModes: values['all-modes'] }));
  } finally {
    await dev.close();
  }
  return 0;
}

/** Runs the CLI with `argv` (without node and the script). Resolves to the exit code. */
export async function main(argv: string[], io: CliIo = defaultIo): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'info':
        return await info(rest, io);
      case 'help':
      case '--help':
      case '-h':
        io.stdout(USAGE);
        return 0;
      case undefined:
        throw new UsageError('no command given');
      default:
        throw new UsageError(cmd.startsWith('-') ? `unknown option '${cmd}' (options go after the command)` : `unknown command '${cmd}'`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`guestplane: ${e.message}\n\n${USAGE}`);
      return 2;
    }
    io.stderr(`guestplane: ${(e as Error).message}\n`);
    return 1;
  }
}

function isEntryPoint(): boolean {
  const argv1 = process.argv[1];
  if (!argv1) return false;
  try {
    // npm's bin is a symlink to this file: compare real paths.
    return realpathSync(argv1) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`guestplane: ${(e as Error)?.stack ?? String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
