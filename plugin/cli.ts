#!/usr/bin/env node
// The `guestplane` command's entry point (package.json's bin): signals and the exit code.
// The subcommands are in cli/ (main.ts dispatches; one file per subcommand; args.ts the
// checks of the command line; usage.ts the help texts). Exit codes: 0 clean stop (also on
// SIGINT/SIGTERM), 1 failure (message on stderr), 2 usage error; compositor -- CMD: CMD's.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { main, defaultIo } from './cli/main.js';
import type { RunningCommand } from './cli/common.js';

export { main } from './cli/main.js';
export { parseMode, parseSize, parseRate } from './cli/args.js';
export type { CliIo } from './cli/log.js';
export type { RunningCommand } from './cli/common.js';

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

/**
 * SIGINT/SIGTERM stop the running command cleanly (exit 0), or go to its application
 * (compositor -- CMD). One that comes while the command is still starting stops it as soon
 * as it has started; a third signal exits at once (130), as does one to `info`.
 */
function handleSignals(): (k: RunningCommand) => void {
  let running: RunningCommand | null = null;
  let pending: NodeJS.Signals | null = null;
  let signalled = 0;
  const deliver = (k: RunningCommand, sig: NodeJS.Signals) => (k.onSignal ? k.onSignal(sig) : void k.stop(`${sig} received`));
  const onSignal = (sig: NodeJS.Signals) => {
    signalled++;
    if (signalled > 2) process.exit(130); // a third Ctrl-C: the user insists
    if (running) deliver(running, sig);
    else if (commandStarts()) pending = sig;
    else process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGUSR1', () => running?.onUsr1?.());
  return (k) => {
    running = k;
    if (pending) deliver(k, pending);
  };
}

/** kiosk, heads and compositor start something to stop; info does not. */
function commandStarts(): boolean {
  const cmd = process.argv[2];
  return cmd === 'kiosk' || cmd === 'heads' || cmd === 'compositor';
}

if (isEntryPoint()) {
  const onStart = handleSignals();
  main(process.argv.slice(2), defaultIo, onStart).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`guestplane: ${(e as Error)?.stack ?? String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
