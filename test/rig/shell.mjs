#!/usr/bin/env node
// `npm run rig:shell`            an interactive shell inside the rig VM (exit to power off)
// `npm run rig:run -- <command>` run one command inside the rig, stream the console, exit with its status
//   e.g. npm run rig:run -- node node_modules/vitest/vitest.mjs run --project rig test/integration/smoke.test.ts
import { buildKernel, runInVm } from './vm.mjs';

const args = process.argv.slice(2);
const runMode = args[0] === '--run';
const command = runMode ? args.slice(1).join(' ') : 'exec /bin/sh -i </dev/console >/dev/console 2>&1';
if (runMode && !command) {
  console.error('usage: npm run rig:run -- <command>');
  process.exit(2);
}
const kernel = await buildKernel();
const res = await runInVm({
  bzImage: kernel.bzImage,
  command,
  interactive: !runMode,
  timeoutMs: 60 * 60_000,
  onConsole: (s) => process.stdout.write(s),
});
if (res.timedOut) console.error('rig: timed out');
console.error(`rig: exit code ${res.exitCode}, ${(res.durationMs / 1000).toFixed(1)} s, files in ${res.outDir}`);
process.exit(res.exitCode ?? 1);
