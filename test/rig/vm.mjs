// The VM rig runner: builds (or reuses) the rig kernel and boots it under QEMU with the
// host root shared read-only, runs one shell command inside, and returns its exit code,
// the console and the files it wrote. Used by `npm test`, `npm run demo` and the bench.
// Plain JS (ESM) so that node can run it before anything is compiled.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, existsSync, mkdirSync, chmodSync, rmSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const projectDir = resolve(here, '..', '..');

/** Kernel parameters every rig boot gets: vkms with all plane types and writeback. */
export const RIG_KERNEL_ARGS = [
  'vkms.enable_overlay=1',
  'vkms.enable_cursor=1',
  'vkms.enable_writeback=1',
];

const live = new Set();
function killAll() {
  for (const p of live) {
    try { p.kill('SIGKILL'); } catch { /* already gone */ }
  }
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => { killAll(); process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1)); });
}

function need(cmd, pkg) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`]);
  if (r.status !== 0) throw new Error(`rig: '${cmd}' not found: install the Debian package ${pkg} (apt-get install ${pkg})`);
}

/**
 * Runs one of the rig's set-up scripts (beside this file): resolves its exit code, stdout
 * and stderr; stderr lines starting with `prefix` are passed to `log` as they come.
 */
function runRigScript(script, prefix, log, env = {}) {
  return new Promise((resolvePromise) => {
    const p = spawn('bash', [join(here, script)], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => {
      err += d;
      for (const line of String(d).split('\n')) if (line.startsWith(prefix)) log(line);
    });
    p.on('close', (code) => resolvePromise({ code, out, err }));
  });
}

const lastLines = (text) => text.split('\n').slice(-15).join('\n');

/**
 * Builds the rig kernel if its cache key changed; returns the bzImage path.
 * Progress lines go to `log` (stderr by default): the first build takes ~11 min.
 */
export async function buildKernel({ log = (l) => process.stderr.write(l + '\n') } = {}) {
  const { code, out, err } = await runRigScript('build-kernel.sh', '[kernel]', log);
  if (code !== 0) throw new Error(`rig kernel build failed (exit ${code}):\n${lastLines(err)}`);
  const path = out.trim().split('\n').pop();
  if (!path || !existsSync(path)) throw new Error(`rig kernel build printed no bzImage path`);
  const info = join(dirname(path), 'version');
  return { bzImage: path, version: existsSync(info) ? readFileSync(info, 'utf8').trim() : 'unknown' };
}

/**
 * Fetches a current QEMU for the rig (test/rig/fetch-qemu.sh, unpacked once into the cache):
 * series '10.0' (default) is Debian bookworm-backports' 10.0.x, '11' trixie-backports' 11.x
 * with its own glibc and libraries. Resolves `{ tree, version, ms }`, or `{ tree: null,
 * missing }` when the archive cannot be reached (or offers no such QEMU) and nothing is
 * cached: the tests on that QEMU then skip with that reason. Any other failure rejects,
 * unless `optional` (the third QEMU: its tests skip with the failure as the reason).
 */
export async function fetchQemu({ log = (l) => process.stderr.write(l + '\n'), series = '10.0', optional = false } = {}) {
  const started = Date.now();
  const { code, out, err } = await runRigScript('fetch-qemu.sh', '[qemu]', log, { GUESTPLANE_QEMU_SERIES: series });
  const tail = err.split('\n').filter((l) => l.startsWith('[qemu]')).slice(-3).join('; ');
  if (code === 2) return { tree: null, missing: tail || 'fetch-qemu.sh could not reach the archive' };
  if (code !== 0) {
    if (optional) return { tree: null, missing: `fetch-qemu.sh (series ${series}) failed, exit ${code}: ${tail || lastLines(err)}` };
    throw new Error(`fetching QEMU for the rig failed (exit ${code}):\n${lastLines(err)}`);
  }
  const tree = out.trim().split('\n').pop();
  const stamp = tree ? join(tree, '.complete') : '';
  if (!tree || !existsSync(stamp)) {
    if (optional) return { tree: null, missing: `fetch-qemu.sh (series ${series}) printed no QEMU tree` };
    throw new Error('fetch-qemu.sh printed no QEMU tree');
  }
  return { tree, version: readFileSync(stamp, 'utf8').trim(), ms: Date.now() - started };
}

/**
 * Boots the rig and runs `command` (a shell snippet) inside, in `cwd` (default: the
 * project directory, seen at the same path inside). Resolves when the VM is gone.
 * @param {{ command: string, bzImage: string, cwd?: string, env?: Record<string,string>,
 *   timeoutMs?: number, kernelArgs?: string[], outDir?: string, memoryMb?: number,
 *   onConsole?: (chunk: string) => void, interactive?: boolean, qemuTree?: string,
 *   qemuTrees?: Record<string, string> }} opts
 * `qemuTrees`: QEMU trees from fetchQemu() by the variable that names each inside
 * (GUESTPLANE_QEMU10_DIR, GUESTPLANE_QEMU11_DIR), each seen inside at the same path (shared
 * read-only when the cache is on a path the VM hides). `qemuTree`: the QEMU 10 one alone.
 */
export function runInVm(opts) {
  need('qemu-system-x86_64', 'qemu-system-x86');
  const outDir = opts.outDir ?? mkdtempSync(join(tmpdir(), 'guestplane-rig-'));
  mkdirSync(outDir, { recursive: true });
  rmSync(join(outDir, 'exit-code'), { force: true });
  // The rig kernel is also the nested test guest's kernel (qemu-dbus-guest.test.ts); the
  // cache under /root is hidden by a tmpfs inside the VM, so it travels in the results share.
  copyFileSync(opts.bzImage, join(outDir, 'bzImage'));
  const trees = { ...(opts.qemuTree ? { GUESTPLANE_QEMU10_DIR: opts.qemuTree } : {}), ...(opts.qemuTrees ?? {}) };
  const env = { GUESTPLANE_RIG_KERNEL: '/mnt/rig/bzImage', ...trees, ...(opts.env ?? {}) };
  const exports = Object.entries(env).map(([k, v]) => `export ${k}=${shellQuote(v)}`).join('\n');
  // The VM mounts tmpfs over /tmp, /root, /run, /var/tmp and /mnt, hiding a clone there
  // (CI checkouts often live in one): the project also comes as its own share, mounted at
  // the same path when the host root does not show it.
  const dir = shellQuote(projectDir);
  const mountProject = `[ -e ${dir}/package.json ] || { /bin/busybox mkdir -p ${dir} && /bin/busybox mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=loose,ro project ${dir}; } || { echo "rig: cannot see the project at ${projectDir} inside the VM"; exit 99; }`;
  // The QEMU trees live in the cache under $HOME, which is a tmpfs inside (/root): each is
  // mounted at the same path from its own share when the host root does not show it.
  const shares = Object.values(trees).map((tree, i) => ({ tree, tag: `qemutree${i}` }));
  const mountQemu = shares
    .map(({ tree, tag }) => {
      const q = shellQuote(tree);
      return `[ -e ${q}/.complete ] || { /bin/busybox mkdir -p ${q} && /bin/busybox mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=loose,ro ${tag} ${q}; } || { echo "rig: cannot see the QEMU tree ${tree} inside the VM"; exit 99; }`;
    })
    .join('\n');
  writeFileSync(join(outDir, 'cmd.sh'), `${exports}\n${mountProject}\n${mountQemu}\ncd ${shellQuote(opts.cwd ?? projectDir)} || exit 99\n${opts.command}\n`);
  chmodSync(join(outDir, 'cmd.sh'), 0o755);

  const append = [
    'console=ttyS0', 'loglevel=4', 'panic=-1',
    'root=hostroot', 'rootfstype=9p', 'rootflags=trans=virtio,version=9p2000.L,msize=512000,cache=loose', 'ro',
    `init=${join(here, 'init.sh')}`,
    ...RIG_KERNEL_ARGS,
    ...(opts.kernelArgs ?? []),
  ].join(' ');
  const bios = existsSync('/usr/share/qemu/qboot.rom') ? ['-bios', '/usr/share/qemu/qboot.rom'] : [];
  const args = [
    '-machine', 'q35', '-cpu', 'max', '-smp', '2', '-m', `${opts.memoryMb ?? 2048}M`,
    ...bios, '-vga', 'none', '-nic', 'none', '-no-reboot',
    '-kernel', opts.bzImage, '-append', append,
    '-virtfs', 'local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap',
    '-virtfs', `local,path=${outDir},mount_tag=rigout,security_model=none,multidevs=remap`,
    '-virtfs', `local,path=${projectDir},mount_tag=project,security_model=none,readonly=on,multidevs=remap`,
    ...shares.flatMap(({ tree, tag }) => ['-virtfs', `local,path=${tree},mount_tag=${tag},security_model=none,readonly=on,multidevs=remap`]),
  ];
  if (opts.interactive) args.push('-nographic');
  else args.push('-display', 'none', '-monitor', 'none', '-serial', 'stdio');

  const started = Date.now();
  return new Promise((resolvePromise, reject) => {
    const p = spawn('qemu-system-x86_64', args, { stdio: opts.interactive ? 'inherit' : ['ignore', 'pipe', 'pipe'] });
    live.add(p);
    let consoleText = '';
    let timedOut = false;
    const onData = (d) => {
      const s = String(d);
      consoleText += s;
      opts.onConsole?.(s);
    };
    p.stdout?.on('data', onData);
    p.stderr?.on('data', onData);
    const timer = setTimeout(() => { timedOut = true; p.kill('SIGKILL'); }, opts.timeoutMs ?? 20 * 60_000);
    p.on('error', (e) => { clearTimeout(timer); live.delete(p); reject(e); });
    p.on('close', () => {
      clearTimeout(timer);
      live.delete(p);
      const codeFile = join(outDir, 'exit-code');
      const exitCode = existsSync(codeFile) ? Number(readFileSync(codeFile, 'utf8').trim()) : null;
      resolvePromise({ exitCode, timedOut, outDir, console: consoleText, durationMs: Date.now() - started });
    });
  });
}

export function shellQuote(s) {
  return `'${String(s).replace(/'/g, `'\\''`)}'`;
}
