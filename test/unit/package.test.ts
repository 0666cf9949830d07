// Issue 30: the package a user installs. `npm pack` of the built tree (run after `npm run
// pretest`, so --ignore-scripts: no second build) holds what a user runs and nothing of the
// test rig, the protocol scanner or source maps (whose .ts sources are not shipped). It is
// installed into an empty project with `npm install --offline`; the runtime dependencies are
// given as this checkout's node_modules directories (npm links them), since an offline
// install cannot fetch them and the test must not reach the registry. Then the installed
// bin runs `--version` and `info --help`, and `import('guestplane')` gives the API (and
// nothing under guestplane/ffi).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(import.meta.dirname, '../..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string; dependencies: Record<string, string> };
let dir = '';
let tarball = '';
let files: string[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'gp-pack-'));
  const out = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const [info] = JSON.parse(out) as { filename: string; files: { path: string }[] }[];
  tarball = join(dir, info!.filename);
  files = info!.files.map((f) => f.path);
}, 120_000);
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the npm package', () => {
  it('ships the runtime: the bin, the entry point and its types, the ffi bindings and generated protocols', () => {
    for (const f of ['package.json', 'README.md', 'LICENSE', 'dist/plugin/cli.js', 'dist/plugin/cli/main.js', 'dist/plugin/index.js', 'dist/plugin/index.d.ts', 'dist/ffi/drm.js', 'dist/protocols/runtime.js']) expect(files, f).toContain(f);
    expect(files.some((f) => f.startsWith('dist/protocols/generated/') && f.endsWith('.js'))).toBe(true);
  });

  it('ships no test rig, no scanner, no source maps, no TypeScript sources', () => {
    expect(files.filter((f) => f.startsWith('test/') || f.includes('/test/') || f.includes('scanner') || f.endsWith('.map') || (f.endsWith('.ts') && !f.endsWith('.d.ts')) || f.startsWith('protocols/'))).toEqual([]);
  });

  it('installs offline into an empty project; guestplane --version, info --help and import() work there', () => {
    const project = join(dir, 'project');
    execFileSync('mkdir', ['-p', project]);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'empty', private: true }));
    // The runtime dependencies from this checkout (a symlinked node_modules is resolved first).
    const deps = Object.keys(pkg.dependencies).map((d) => realpathSync(join(root, 'node_modules', d)));
    const npm = spawnSync('npm', ['install', '--offline', '--ignore-scripts', '--no-audit', '--no-fund', ...deps, tarball], { cwd: project, encoding: 'utf8' });
    expect(npm.status, npm.stderr).toBe(0);
    const bin = join(project, 'node_modules/.bin/guestplane');
    expect(execFileSync(bin, ['--version'], { encoding: 'utf8' })).toBe(`guestplane ${pkg.version}\n`);
    expect(execFileSync(bin, ['info', '--help'], { encoding: 'utf8' })).toMatch(/^usage: guestplane info /);
    const usage = spawnSync(bin, ['info', '--frobnicate'], { encoding: 'utf8' });
    expect([usage.status, usage.stderr]).toEqual([2, "guestplane info: Unknown option '--frobnicate'\nsee 'guestplane info --help'\n"]);
    const script = "const m = await import('guestplane'); const ffi = await import('guestplane/ffi/drm').then(() => 'importable', (e) => e.code); console.log(JSON.stringify({ Backend: typeof m.Backend, open: typeof m.SeatSession.open, runHeads: typeof m.runHeads, ffi }));";
    const imported = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: project, encoding: 'utf8' });
    expect(JSON.parse(imported)).toEqual({ Backend: 'function', open: 'function', runHeads: 'function', ffi: 'ERR_PACKAGE_PATH_NOT_EXPORTED' });
  }, 180_000);
});
