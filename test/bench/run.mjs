#!/usr/bin/env node
// `npm run bench` — the benchmarks, in the VM rig, one run, every path side by side.
//
//   npm run bench                   human tables on stdout (progress on stderr)
//   npm run -s bench -- --json      one JSON object per line: {bench, path, metric, value, unit}
//                                   (-s: without npm's banner on stdout)
//   npm run bench -- --markdown     the tables as Markdown (for BENCHMARKS.md)
//   npm run bench -- --quick        shorter windows (a smoke run, ~10 min, most of it the five
//                                   nested guests of qemu-display; numbers are noisier)
//   npm run bench -- --from FILE    re-render a results.jsonl of an earlier run (no VM)
//   npm run bench -- --cpu-prof     also V8 CPU profiles (.cpuprofile, for Chrome DevTools or
//                                   speedscope) of the bench process (which runs our
//                                   compositor) and of qemu-display's `guestplane window`
//                                   process, into the run's directory (prof/)
//   npm run bench -- --only TEXT    only the scenarios whose bench name contains TEXT
//                                   (e.g. --only qemu-dbus, --only stream-1024x768)
//
// On the host: builds dist/ if any source is newer than its output, compiles the bench
// (test/bench/tsconfig.json) and the C floor (gcc + pkg-config libdrm), boots the rig and
// runs dist/test/bench/inner.js inside it; the results come back through the run's shared
// directory (results.jsonl, kept: its path is printed on stderr).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { buildKernel, fetchQemu, runInVm, projectDir } from '../rig/vm.mjs';
import { renderMeta, renderTables } from './report.mjs';

const args = process.argv.slice(2);
const json = args.includes('--json');
const markdown = args.includes('--markdown');
const quick = args.includes('--quick');
const cpuProf = args.includes('--cpu-prof');
const fromIdx = args.indexOf('--from');
const onlyIdx = args.indexOf('--only');
const only = onlyIdx >= 0 ? args[onlyIdx + 1] : undefined;
const log = (s) => process.stderr.write(`[bench] ${s}\n`);

function fail(msg) {
  process.stderr.write(`bench: ${msg}\n`);
  process.exit(1);
}

function run(cmd, argv, what) {
  const r = spawnSync(cmd, argv, { cwd: projectDir, encoding: 'utf8' });
  if (r.error) fail(`${what}: cannot run ${cmd}: ${r.error.message}`);
  if (r.status !== 0) fail(`${what} failed (exit ${r.status}):\n${(r.stdout + r.stderr).trim().split('\n').slice(-30).join('\n')}`);
  return r.stdout.trim();
}

/** Every .ts source of the main build whose dist/*.js is missing or older. */
function staleSources() {
  const stale = [];
  const walk = (dir) => {
    if (!existsSync(dir)) return;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) {
        const js = join(projectDir, 'dist', relative(projectDir, p)).replace(/\.ts$/, '.js');
        if (!existsSync(js) || statSync(js).mtimeMs < statSync(p).mtimeMs) stale.push(relative(projectDir, p));
      }
    }
  };
  for (const d of ['ffi', 'plugin', 'protocols', 'examples']) walk(join(projectDir, d));
  return stale;
}

const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');
const loadBefore = load();

function hostMeta(kernelVersion) {
  const cpu = cpus()[0]?.model?.trim() || 'unknown CPU';
  return [
    ['date', new Date().toISOString()],
    ['machine', `${cpus().length} × ${cpu} (host, ${release()}); the VM: QEMU TCG, 2 vCPUs`],
    ['rig_kernel', kernelVersion],
    // Other processes on the host's cores slow the emulated CPU down while they run.
    ['host_load_before', loadBefore],
    ['host_load_after', load()],
  ].map(([metric, value]) => ({ bench: 'meta', path: '-', metric, value, unit: '' }));
}

function parseResults(text) {
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l, i) => {
      try {
        return JSON.parse(l);
      } catch {
        fail(`results line ${i + 1} is not JSON: ${l.slice(0, 200)}`);
      }
    });
}

function print(metrics) {
  if (json) {
    for (const m of metrics) process.stdout.write(JSON.stringify(m) + '\n');
    return;
  }
  process.stdout.write(renderMeta(metrics) + '\n\n');
  process.stdout.write(renderTables(metrics, { markdown }) + '\n');
  if (!markdown) {
    process.stdout.write('QEMU TCG emulates the CPU: absolute times are many times those of real hardware; compare the columns of one run.\n');
  }
}

if (onlyIdx >= 0 && (!only || !/^[A-Za-z0-9._-]+$/.test(only))) fail(`--only needs a part of a bench name (letters, digits, . _ -), got ${only ?? 'nothing'}`);

if (fromIdx >= 0) {
  const file = args[fromIdx + 1];
  if (!file || !existsSync(file)) fail(`--from needs a results.jsonl file (got ${file ?? 'nothing'})`);
  print(parseResults(readFileSync(file, 'utf8')));
  process.exit(0);
}

const started = Date.now();
const stale = staleSources();
if (stale.length) {
  log(`dist is stale (${stale.slice(0, 3).join(', ')}${stale.length > 3 ? `, +${stale.length - 3}` : ''}): npx tsc -p tsconfig.json`);
  run('npx', ['tsc', '-p', 'tsconfig.json'], 'building dist (npx tsc -p tsconfig.json)');
}
log('compiling the bench (npx tsc -p test/bench/tsconfig.json)');
run('npx', ['tsc', '-p', 'test/bench/tsconfig.json'], 'compiling the bench');

const outDir = mkdtempSync(join(tmpdir(), 'guestplane-bench-'));
const libdrm = spawnSync('pkg-config', ['--cflags', '--libs', 'libdrm'], { encoding: 'utf8' });
if (libdrm.status !== 0) fail('pkg-config finds no libdrm: install libdrm-dev (apt-get install libdrm-dev pkg-config)');
log('compiling the C floor (gcc, libdrm)');
run('gcc', ['-O2', '-Wall', '-Wextra', '-o', join(outDir, 'floor'), join(projectDir, 'test/bench/floor.c'), ...libdrm.stdout.trim().split(/\s+/)], 'compiling test/bench/floor.c');

const kernel = await buildKernel({ log });
// The D-Bus rows run on the system QEMU and on the rig's second one (QEMU 10, fetched once
// into the cache); without it those rows say why.
const wantsQemu = !only || 'qemu-dbus-640x480'.includes(only) || only.includes('qemu');
const qemu10 = wantsQemu ? await fetchQemu({ log }) : { tree: null, missing: 'not needed' };
if (!qemu10.tree) log(`QEMU 10: ${qemu10.missing}`);
log(`booting the rig (${kernel.version}); the bench takes ${only ? 'at most ' : ''}${quick ? '~9' : '~15'} min inside (the nested guests of qemu-display take most of it)`);
const inner = [
  `node --expose-gc ${cpuProf ? '--cpu-prof --cpu-prof-dir=/mnt/rig/prof ' : ''}dist/test/bench/inner.js --out /mnt/rig/results.jsonl --floor /mnt/rig/floor`,
  quick ? '--quick' : '',
  only ? `--only ${only}` : '',
  cpuProf ? '--cpu-prof /mnt/rig/prof' : '',
].join(' ');
let pending = '';
const res = await runInVm({
  bzImage: kernel.bzImage,
  command: inner,
  outDir,
  timeoutMs: 35 * 60_000, // the qemu-display rows boot a nested guest five times
  ...(qemu10.tree ? { qemuTree: qemu10.tree } : { env: { GUESTPLANE_QEMU10_MISSING: qemu10.missing } }),
  onConsole: (s) => {
    // Relay the bench's progress lines; the rest of the console stays in the VM log.
    pending += s;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const l of lines) if (l.startsWith('[bench]') || l.startsWith('bench:')) process.stderr.write(l.replace(/\r$/, '') + '\n');
  },
});
const resultsFile = join(outDir, 'results.jsonl');
if (res.timedOut) fail(`the VM did not finish within 35 min; console tail:\n${res.console.split('\n').slice(-30).join('\n')}`);
if (!existsSync(resultsFile)) fail(`the VM wrote no results (exit code ${res.exitCode}); console tail:\n${res.console.split('\n').slice(-30).join('\n')}`);
const metrics = [...hostMeta(kernel.version), ...parseResults(readFileSync(resultsFile, 'utf8'))];
metrics.push({ bench: 'meta', path: '-', metric: 'wall_time', value: (Date.now() - started) / 1000, unit: 's' });
const allFile = join(outDir, 'bench.jsonl');
writeFileSync(allFile, metrics.map((m) => JSON.stringify(m)).join('\n') + '\n');
print(metrics);
log(`results in ${allFile} (re-render: npm run bench -- --from ${allFile}); VM exit code ${res.exitCode}`);
if (cpuProf) log(`CPU profiles (.cpuprofile: Chrome DevTools, speedscope) in ${join(outDir, 'prof')}`);
if (res.exitCode !== 0) process.exit(1);
