// The QEMUs the rig's D-Bus tests run on: Debian bookworm's own (7.2, /usr/bin, installed by
// .ci/install-deps) and a current one (Debian bookworm-backports' 10.0.x, unpacked into the
// cache by test/rig/fetch-qemu.sh; the rig runner names it in GUESTPLANE_QEMU10_DIR). The
// D-Bus display changed between them (QEMU 8.1 asks the listener for its interfaces, 9.0
// drops queued messages behind a new scanout, …), so each test names the QEMU it ran on.
// A third, the newest (trixie-backports' 11.x with its own glibc and libraries, run through
// its tree's loader: GUESTPLANE_QEMU11_DIR), only where it adds something the other two
// cannot show (ScanoutDMABUF2, 10.1+): qemuBuildsWithNewest().
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

export interface QemuBuild {
  /** "QEMU 7.2.x" / "QEMU 10.0.2": what test titles start with. */
  readonly label: string;
  /** Upstream version from --version ("7.2.19"), or null when the binary cannot run. */
  readonly version: string | null;
  /** Absolute path of qemu-system-x86_64, or null when there is none. */
  readonly binary: string | null;
  /** Where this QEMU loads its modules from (ui-dbus.so is the -display dbus one). */
  readonly moduleDir: string;
  /** -L directories, in order (empty: the binary's built-in firmware path). */
  readonly firmwareDirs: readonly string[];
  /** Environment the binary needs (QEMU_MODULE_DIR for an unpacked tree). */
  readonly env: Readonly<Record<string, string>>;
  /** Why this QEMU cannot be had here, or null. */
  readonly missing: string | null;
}

const SYSTEM_MODULE_DIR = '/usr/lib/x86_64-linux-gnu/qemu';

function findInPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {
      /* not here */
    }
  }
  return null;
}

function versionOf(binary: string, env: Readonly<Record<string, string>>, firmwareDirs: readonly string[]): string | null {
  const r = spawnSync(binary, [...firmwareDirs.flatMap((d) => ['-L', d]), '--version'], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, ...env } });
  return /version (\d+\.\d+\.\d+)/.exec(r.stdout ?? '')?.[1] ?? null;
}

function build(binary: string | null, moduleDir: string, firmwareDirs: readonly string[], env: Readonly<Record<string, string>>, fallbackLabel: string, whyMissing: string | null): QemuBuild {
  const version = binary && !whyMissing ? versionOf(binary, env, firmwareDirs) : null;
  const missing = whyMissing ?? (version ? null : `${binary} --version printed no version`);
  return { label: version ? `QEMU ${version}` : fallbackLabel, version, binary, moduleDir, firmwareDirs, env, missing };
}

/** Debian's own QEMU from PATH (bookworm: 7.2). */
export function systemQemu(): QemuBuild {
  const binary = findInPath('qemu-system-x86_64');
  return build(binary, SYSTEM_MODULE_DIR, [], {}, 'QEMU (system)', binary ? null : 'no qemu-system-x86_64 in PATH (Debian package qemu-system-x86)');
}

/**
 * The fetched current QEMU. Its tree only has what the four packages hold: the BIOS
 * (SeaBIOS) and qboot come from the host's /usr/share, as the backport's own
 * dependencies would install them.
 */
export function fetchedQemu(tree = process.env.GUESTPLANE_QEMU10_DIR): QemuBuild {
  if (!tree) {
    const why = process.env.GUESTPLANE_QEMU10_MISSING;
    return build(null, '', [], {}, 'QEMU 10', why ? `QEMU 10 could not be fetched: ${why}` : 'GUESTPLANE_QEMU10_DIR is not set (the rig runner sets it from test/rig/fetch-qemu.sh)');
  }
  const binary = join(tree, 'usr/bin/qemu-system-x86_64');
  const moduleDir = join(tree, 'usr/lib/x86_64-linux-gnu/qemu');
  const firmwareDirs = [join(tree, 'usr/share/qemu'), '/usr/share/seabios', '/usr/share/qemu'];
  return build(binary, moduleDir, firmwareDirs, { QEMU_MODULE_DIR: moduleDir }, 'QEMU 10', existsSync(binary) ? null : `no ${binary} (test/rig/fetch-qemu.sh unpacks it)`);
}

/**
 * The newest QEMU: Debian trixie-backports' 11.x unpacked with every library it needs, glibc
 * 2.41 included, by test/rig/fetch-qemu.sh (series 11). Its <tree>/qemu-system-x86_64 runs
 * it through the tree's own dynamic loader and sets its module, Mesa and firmware paths.
 */
export function newestQemu(tree = process.env.GUESTPLANE_QEMU11_DIR): QemuBuild {
  if (!tree) {
    const why = process.env.GUESTPLANE_QEMU11_MISSING;
    return build(null, '', [], {}, 'QEMU 11', why ? `QEMU 11 could not be fetched: ${why}` : 'GUESTPLANE_QEMU11_DIR is not set (the rig runner sets it from test/rig/fetch-qemu.sh, series 11)');
  }
  const binary = join(tree, 'qemu-system-x86_64');
  const moduleDir = join(tree, 'usr/lib/x86_64-linux-gnu/qemu');
  return build(binary, moduleDir, [], {}, 'QEMU 11', existsSync(binary) ? null : `no ${binary} (test/rig/fetch-qemu.sh writes it, series 11)`);
}

let cached: readonly QemuBuild[] | null = null;
/** Both QEMUs, the system's first; for describe.each (a missing one is still listed: its tests skip with the reason). */
export function qemuBuilds(): readonly QemuBuild[] {
  cached ??= [systemQemu(), fetchedQemu()];
  return cached;
}

let cachedAll: readonly QemuBuild[] | null = null;
/** The two above and the newest (11.x), for the tests where it adds information (ScanoutDMABUF2). */
export function qemuBuildsWithNewest(): readonly QemuBuild[] {
  cachedAll ??= [...qemuBuilds(), newestQemu()];
  return cachedAll;
}

/** The system QEMU: the default of every helper, for tests not parametrised over QEMUs. */
export function defaultQemu(): QemuBuild {
  return qemuBuilds()[0]!;
}

/**
 * The listener method `q` scans a dma-buf out with, given that our listener offers
 * Unix.ScanoutDMABUF2 in its Interfaces property: QEMU 10.1 and later use it then, earlier
 * ones know only ScanoutDMABUF. Null when the version is unknown.
 */
export function dmabufScanoutMember(q: QemuBuild): 'ScanoutDMABUF' | 'ScanoutDMABUF2' | null {
  const m = /^(\d+)\.(\d+)\./.exec(q.version ?? '');
  if (!m) return null;
  return Number(m[1]) * 100 + Number(m[2]) >= 1001 ? 'ScanoutDMABUF2' : 'ScanoutDMABUF';
}

/** -L arguments and the spawn environment of `q`. */
export function qemuLaunch(q: QemuBuild): { binary: string; args: string[]; env: Record<string, string> } {
  if (!q.binary || q.missing) throw new Error(`${q.label}: ${q.missing ?? 'no binary'}`);
  return { binary: q.binary, args: q.firmwareDirs.flatMap((d) => ['-L', d]), env: { ...q.env } };
}

/** Whether this QEMU is `major.minor` or later (false when its version is unknown). */
export function qemuAtLeast(q: QemuBuild, major: number, minor: number): boolean {
  const [ma, mi] = (q.version ?? '0.0').split('.').map(Number) as [number, number];
  return ma > major || (ma === major && mi >= minor);
}
