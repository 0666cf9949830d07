#!/usr/bin/env node
// `npm run demo`: shows guest displays on KMS planes and leaves PNG captures and a report.
//
// Where there is no KMS device to use (a server, CI, this kind of machine) it builds the
// project's VM rig kernel (first time only: several minutes, progress shown), boots it
// under QEMU, and runs test/demo-inside.mjs there on vkms. With --here it runs on this
// machine's own KMS device instead (it takes DRM master: not from inside a desktop).
//
// usage: npm run demo [-- --out DIR] [--here [--device PATH] [--connector NAME]] [--seconds N]
import { spawnSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { buildKernel, fetchQemu, runInVm, projectDir, shellQuote } from './rig/vm.mjs';

const { values } = parseArgs({
  options: {
    out: { type: 'string' },
    here: { type: 'boolean' },
    device: { type: 'string' },
    connector: { type: 'string' },
    seconds: { type: 'string' },
  },
});
const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
const outDir = resolve(values.out ?? join(projectDir, 'demo-output', stamp));
mkdirSync(outDir, { recursive: true });
const say = (s) => process.stderr.write(`[demo] ${s}\n`);

say('compiling (tsc)…');
const tscRun = (config) => spawnSync(process.execPath, [join(projectDir, 'node_modules/typescript/bin/tsc'), '-p', join(projectDir, config)], { stdio: 'inherit' }).status;
if (tscRun('tsconfig.json') !== 0 || tscRun('test/demo.tsconfig.json') !== 0) {
  say('the TypeScript build failed; run `npm ci` first');
  process.exit(1);
}

const passthrough = [];
if (values.seconds) passthrough.push('--seconds', values.seconds);

let code;
if (values.here) {
  const cards = existsSync('/dev/dri') ? readdirSync('/dev/dri').filter((n) => /^card\d+$/.test(n)) : [];
  if (!cards.length && !values.device) {
    say('--here: this machine has no /dev/dri/card* node; drop --here to use the VM rig');
    process.exit(1);
  }
  const args = [join(projectDir, 'test/demo-inside.mjs'), outDir, ...passthrough];
  if (values.device) args.push('--device', values.device);
  if (values.connector) args.push('--connector', values.connector);
  code = await new Promise((r) => spawn(process.execPath, args, { stdio: 'inherit' }).on('close', r));
} else {
  if (existsSync('/dev/dri')) say('this machine has /dev/dri, but the demo uses the VM rig unless you pass --here (it would take over the screen)');
  say('preparing the rig kernel (the first build takes several minutes on 2 cores; later runs reuse the cache)…');
  const t0 = Date.now();
  const kernel = await buildKernel({ log: (l) => say(l) });
  say(`kernel ready (${kernel.version}) after ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  // The real-guest row runs on a current QEMU (bookworm-backports' 10.0.x, fetched once into
  // the cache as the rig tests do); without it that row is skipped and says why.
  say('preparing QEMU 10 for the real-guest row (first time only: apt downloads four packages into ~/.cache/guestplane/qemu)…');
  const q = await fetchQemu({ log: (l) => say(l) }).catch((e) => ({ tree: null, missing: e.message.split('\n')[0] }));
  say(q.tree ? `QEMU 10 ready (${q.version})` : `no QEMU 10: ${q.missing}`);
  say('booting the VM (QEMU, software emulation)…');
  let pending = '';
  const res = await runInVm({
    bzImage: kernel.bzImage,
    qemuTree: q.tree ?? undefined,
    env: q.tree ? {} : { GUESTPLANE_QEMU10_MISSING: q.missing },
    outDir,
    command: `node test/demo-inside.mjs /mnt/rig ${passthrough.map(shellQuote).join(' ')}`,
    timeoutMs: 15 * 60_000,
    onConsole: (s) => {
      // The console arrives in arbitrary chunks: show whole lines only.
      pending += s;
      const lines = pending.split('\n');
      pending = lines.pop();
      for (const line of lines) if (line.startsWith('[demo]') || line.startsWith('rig-init')) process.stderr.write(line.replace(/\r$/, '') + '\n');
    },
  });
  code = res.timedOut ? 124 : res.exitCode ?? 1;
  if (code !== 0) say(`the demo failed inside the VM (exit ${code}); the console is in ${join(outDir, 'console.log')}`);
  (await import('node:fs')).writeFileSync(join(outDir, 'console.log'), res.console);
}
const md = join(outDir, 'report.md');
if (existsSync(md)) {
  process.stdout.write('\n' + readFileSync(md, 'utf8'));
  say(`PNG captures and report.{md,json} are in ${outDir}`);
}
process.exit(code ?? 1);
