// Mediated devices (mdev) for rig tests: the mbochs and mdpy VFIO display samples.
//   create: echo <uuid> > /sys/class/mdev_bus/<parent>/mdev_supported_types/<type>/create
//   remove: echo 1 > /sys/bus/mdev/devices/<uuid>/remove
// Each mdev gets its own IOMMU group; its VFIO group node is /dev/vfio/<group>.
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { spawn } from 'node:child_process';

export const MDEV_BUS = '/sys/class/mdev_bus';
export const MDEV_DEVICES = '/sys/bus/mdev/devices';

export interface MdevType {
  parent: string;
  /** Directory name under mdev_supported_types, e.g. 'mbochs-small'. */
  type: string;
  name: string;
  description: string;
  deviceApi: string;
  availableInstances: number;
}

export interface MdevInstance {
  readonly uuid: string;
  readonly parent: string;
  readonly type: string;
  /** /sys/bus/mdev/devices/<uuid> */
  readonly sysfsPath: string;
  /** IOMMU group number. */
  readonly iommuGroup: number;
  /** /dev/vfio/<group> */
  readonly vfioGroupPath: string;
  /** Removes the mdev (idempotent; a VFIO user still holding it makes the kernel wait). */
  remove(): void;
  readonly removed: boolean;
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return '';
  }
}

/** Parent devices offering mdev types ('mbochs', 'mdpy', a GVT-g GPU's PCI address...). */
export function listMdevParents(): string[] {
  return existsSync(MDEV_BUS) ? readdirSync(MDEV_BUS) : [];
}

/** The mdev types of one parent, or of all parents. */
export function listMdevTypes(parent?: string): MdevType[] {
  const out: MdevType[] = [];
  for (const p of parent ? [parent] : listMdevParents()) {
    const dir = join(MDEV_BUS, p, 'mdev_supported_types');
    if (!existsSync(dir)) continue;
    for (const t of readdirSync(dir)) {
      const d = join(dir, t);
      out.push({
        parent: p,
        type: t,
        name: readText(join(d, 'name')) || t,
        description: readText(join(d, 'description')),
        deviceApi: readText(join(d, 'device_api')),
        availableInstances: Number(readText(join(d, 'available_instances')) || 0),
      });
    }
  }
  return out;
}

/** UUIDs of the mdevs that exist now. */
export function listMdevs(): string[] {
  return existsSync(MDEV_DEVICES) ? readdirSync(MDEV_DEVICES) : [];
}

/** Removes an mdev by UUID; a missing one is not an error. */
export function removeMdev(uuid: string): void {
  const path = join(MDEV_DEVICES, uuid.toLowerCase());
  if (!existsSync(path)) return;
  try {
    writeFileSync(join(path, 'remove'), '1');
  } catch (e) {
    if (!existsSync(path)) return; // removed meanwhile
    throw new Error(`mdev ${uuid}: remove failed: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** Processes holding a VFIO fd or mapping (what blocks an mdev's removal), for error messages. */
export function vfioHolders(): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let held = 0;
    try {
      for (const fd of readdirSync(`/proc/${pid}/fd`)) {
        try {
          if (/vfio/.test(readlinkSync(`/proc/${pid}/fd/${fd}`))) held++;
        } catch {
          /* closed meanwhile */
        }
      }
      const maps = readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n').filter((l) => /vfio/.test(l)).length;
      if (held || maps) out.push(`pid ${pid} (${readFileSync(`/proc/${pid}/comm`, 'utf8').trim()}): ${held} fds, ${maps} mappings`);
    } catch {
      /* process gone */
    }
  }
  return out;
}

/**
 * Removes an mdev without blocking this process: the kernel's removal waits until every
 * user has let go of the device, and a test that hangs there hides the failure that left a
 * user behind. Rejects after `timeoutMs` naming the holders; the removal then completes
 * by itself whenever they let go.
 */
export function removeMdevAsync(uuid: string, timeoutMs = 10_000): Promise<void> {
  const path = join(MDEV_DEVICES, uuid.toLowerCase());
  if (!existsSync(path)) return Promise.resolve();
  const p = spawn('sh', ['-c', `echo 1 > ${path}/remove`], { stdio: 'ignore' });
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      p.unref();
      reject(new Error(`mdev ${uuid}: removal still blocked after ${timeoutMs} ms; holders: ${vfioHolders().join('; ') || 'none found (a dma-buf or the kernel?)'}`));
    }, timeoutMs);
    p.on('close', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

/**
 * Creates an mdev of `parent`'s `type` (e.g. 'mbochs', 'mbochs-small'), waits for its
 * IOMMU group and VFIO group node, and returns it. `uuid` defaults to a random one.
 */
export function createMdev(parent: string, type: string, uuid: string = randomUUID(), timeoutMs = 2000): MdevInstance {
  const typeDir = join(MDEV_BUS, parent, 'mdev_supported_types', type);
  if (!existsSync(typeDir)) {
    const have = listMdevTypes().map((t) => `${t.parent}/${t.type}`);
    throw new Error(`mdev: no type ${parent}/${type}; available: ${have.length ? have.join(', ') : 'none (no mdev parent drivers loaded)'}`);
  }
  const id = uuid.toLowerCase();
  const avail = Number(readText(join(typeDir, 'available_instances')) || 0);
  try {
    writeFileSync(join(typeDir, 'create'), id);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new Error(`mdev: creating ${parent}/${type} ${id} failed: ${code}${avail === 0 ? ' (available_instances is 0: the type is used up)' : ''}${code === 'EEXIST' ? ' (that UUID exists)' : ''}`);
  }
  const sysfsPath = join(MDEV_DEVICES, id);
  let group = -1;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      group = Number(basename(readlinkSync(join(sysfsPath, 'iommu_group'))));
    } catch {
      group = -1;
    }
    if (group >= 0 && existsSync(`/dev/vfio/${group}`)) break;
    if (Date.now() > deadline) {
      removeMdev(id);
      throw new Error(`mdev: ${id} created but ${group < 0 ? 'it has no iommu_group' : `/dev/vfio/${group} did not appear`} within ${timeoutMs} ms`);
    }
    sleepSync(5);
  }
  let removed = false;
  return {
    uuid: id,
    parent,
    type,
    sysfsPath,
    iommuGroup: group,
    vfioGroupPath: `/dev/vfio/${group}`,
    remove() {
      if (removed) return;
      removeMdev(id);
      removed = true;
    },
    get removed() {
      return removed;
    },
  };
}

/**
 * An mdev of the parent's smallest display type with a free instance (mdpy-vga,
 * mbochs-small: the smallest frame keeps qtest writes and TCG quick).
 */
export function createSmallMdev(parent: string): MdevInstance {
  const types = listMdevTypes(parent).filter((t) => t.availableInstances > 0);
  const pick = types.find((t) => /vga|small/.test(t.type)) ?? types[0];
  if (!pick) throw new Error(`no ${parent} mdev type with a free instance`);
  return createMdev(parent, pick.type);
}
