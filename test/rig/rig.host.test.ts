// Host side of the rig: boot the VM, run the `rig` vitest project inside it, and replay
// every inner result here as a test of its own, so a failing integration test fails
// `npm test` with its own file and name.
//
// GUESTPLANE_RIG_FILTER   extra vitest filters for the inner run (e.g. "writeback")
// GUESTPLANE_RIG_VERBOSE  stream the VM console to stderr while it runs
import { describe, it, expect } from 'vitest';
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join, relative } from 'node:path';
// @ts-expect-error plain JS module without types
import { buildKernel, fetchQemu, runInVm, projectDir } from './vm.mjs';

interface AssertionResult {
  ancestorTitles: string[];
  title: string;
  status: 'passed' | 'failed' | 'skipped' | 'pending' | 'todo';
  failureMessages: string[];
  duration?: number;
}
interface FileResult {
  name: string;
  status: string;
  message?: string;
  assertionResults: AssertionResult[];
}

const verbose = !!process.env.GUESTPLANE_RIG_VERBOSE;
const filter = process.env.GUESTPLANE_RIG_FILTER ?? '';
const resultsDir = join(projectDir, 'test', 'rig', '.results');
mkdirSync(resultsDir, { recursive: true });

let bootError = '';
let fileResults: FileResult[] = [];
let kernelVersion = 'unknown';
let consoleTail = '';
let duration = 0;
/** The rig's second and third QEMUs (the D-Bus tests run on 7.2 and on them): their versions, or why there is none. */
let qemu10 = '';
let qemu11 = '';
try {
  const kernel = await buildKernel({ log: (l: string) => process.stderr.write(l + '\n') });
  kernelVersion = kernel.version;
  type Fetched = { tree: string; version: string; ms: number } | { tree: null; missing: string };
  const log = (l: string) => process.stderr.write(l + '\n');
  const q = (await fetchQemu({ log })) as Fetched;
  qemu10 = q.tree === null ? `none: ${q.missing}` : `${q.version}, ${q.ms} ms`;
  process.stderr.write(`[rig] second QEMU: ${qemu10}\n`);
  // The third (trixie-backports' 11.x with its own glibc) only adds tests: any failure to
  // fetch it skips them with the reason, it never fails the run.
  const q11 = (await fetchQemu({ log, series: '11', optional: true })) as Fetched;
  qemu11 = q11.tree === null ? `none: ${q11.missing}` : `${q11.version}, ${q11.ms} ms`;
  process.stderr.write(`[rig] third QEMU: ${qemu11}\n`);
  const inner = [
    // --configLoader runner: the default bundler writes next to the (read-only) config.
    'node node_modules/vitest/vitest.mjs run --configLoader runner --project rig',
    '--reporter=default --reporter=json --outputFile.json=/mnt/rig/results.json',
    filter,
  ].join(' ');
  process.stderr.write(`[rig] booting ${kernel.bzImage} (${kernelVersion}) and running the integration suite\n`);
  const res = await runInVm({
    bzImage: kernel.bzImage,
    qemuTrees: { ...(q.tree === null ? {} : { GUESTPLANE_QEMU10_DIR: q.tree }), ...(q11.tree === null ? {} : { GUESTPLANE_QEMU11_DIR: q11.tree }) },
    env: { ...(q.tree === null ? { GUESTPLANE_QEMU10_MISSING: q.missing } : {}), ...(q11.tree === null ? { GUESTPLANE_QEMU11_MISSING: q11.missing } : {}) },
    command: inner,
    timeoutMs: 45 * 60_000,
    onConsole: verbose ? (s: string) => process.stderr.write(s) : undefined,
  });
  duration = res.durationMs;
  writeFileSync(join(resultsDir, 'console.log'), res.console);
  consoleTail = res.console.split('\n').slice(-60).join('\n');
  const resultsFile = join(res.outDir, 'results.json');
  if (res.timedOut) bootError = `the VM did not finish within 45 min`;
  else if (!existsSync(resultsFile)) bootError = `the VM wrote no results (exit code ${res.exitCode})`;
  else {
    const json = JSON.parse(readFileSync(resultsFile, 'utf8')) as { testResults: FileResult[] };
    fileResults = json.testResults;
    writeFileSync(join(resultsDir, 'results.json'), JSON.stringify(json, null, 1));
  }
  process.stderr.write(`[rig] VM run took ${(duration / 1000).toFixed(1)} s; console in test/rig/.results/console.log\n`);
} catch (e) {
  bootError = e instanceof Error ? e.message : String(e);
}

describe(`rig (${kernelVersion})`, () => {
  it('boots the VM and runs the integration suite', () => {
    if (bootError) throw new Error(`${bootError}\n--- console tail ---\n${consoleTail}`);
    expect(fileResults.length).toBeGreaterThan(0);
  });
  for (const file of fileResults) {
    const name = relative(projectDir, file.name);
    describe(name, () => {
      if (file.assertionResults.length === 0) {
        it('loads', () => {
          throw new Error(file.message || `${name} reported no tests (status ${file.status})`);
        });
      }
      for (const t of file.assertionResults) {
        const title = [...t.ancestorTitles, t.title].join(' > ');
        if (t.status === 'skipped' || t.status === 'pending' || t.status === 'todo') it.skip(title, () => {});
        else
          it(title, () => {
            if (t.status !== 'passed') throw new Error(t.failureMessages.join('\n') || `status ${t.status}`);
          });
      }
    });
  }
});
