// vkms devices made to measure through ConfigFS (Documentation/gpu/vkms.rst, "Configuring
// With Configfs"), for rig tests that need more than the default device: several CRTCs,
// chosen plane sets, connectors to unplug.
//
// Layout under /sys/kernel/config/vkms/<name>:
//   crtcs/crtcN                 writeback = 0|1
//   encoders/encN/possible_crtcs/crtcN                  (symlink)
//   connectors/conN             status = 1 connected, 2 disconnected, 3 unknown
//   connectors/conN/possible_encoders/encN              (symlink)
//   planes/<name>               type = 0 overlay, 1 primary, 2 cursor
//   planes/<name>/possible_crtcs/crtcN                  (symlink)
//   enabled = 1 creates the DRM device (config frozen: EBUSY), 0 destroys it.
// The device's busid (drmGetBusid, debugfs unique) is the directory name.
//
// vkms has no zpos property: planes stack in creation order. We create all primaries,
// then all overlays, then all cursors, so each CRTC sees primary < overlays < cursor.
//
// Connector status may be written while the device is enabled: vkms_configfs.c stores it
// and calls vkms_trigger_connector_hotplug(), and the connector's detect() reads it back,
// so the next GETCONNECTOR reports the new status (disconnected: 0 modes).
import { existsSync, readdirSync, readFileSync, readlinkSync, rmdirSync, symlinkSync, unlinkSync, writeFileSync, mkdirSync, lstatSync } from 'node:fs';
import { basename, join } from 'node:path';

export const VKMS_CONFIGFS = '/sys/kernel/config/vkms';

export interface VkmsCrtcSpec {
  /** A writeback connector for this CRTC (default true). */
  writeback?: boolean;
  /** Overlay planes usable only on this CRTC (default 0). */
  overlays?: number;
  /** A cursor plane for this CRTC (default false). */
  cursor?: boolean;
  /** Connectors (each with its own encoder) routed to this CRTC (default 1). */
  connectors?: number;
  /** Initial status of this CRTC's connectors (default true = connected). */
  connected?: boolean;
}

export interface VkmsDeviceSpec {
  /** Directory name = busid. Default: a fresh `gp<pid>x<n>` name. */
  name?: string;
  crtcs: VkmsCrtcSpec[];
  /** Overlay planes usable on every CRTC (default 0). */
  sharedOverlays?: number;
  /** Milliseconds to wait for /dev/dri/cardN to appear (default 2000). */
  timeoutMs?: number;
}

export interface VkmsConfigfsConnector {
  /** ConfigFS item name, e.g. 'con1'. */
  item: string;
  /** Index of the CRTC (in the spec) it is routed to. */
  crtc: number;
  /** DRM connector name once enabled ('Virtual-3': type ids are global, not per device). */
  name: string;
  /** DRM connector id once enabled. */
  id: number;
}

export interface VkmsConfigfsDevice {
  readonly name: string;
  /** The ConfigFS directory. */
  readonly dir: string;
  /** drmGetBusid / debugfs unique: equals `name`. */
  readonly busid: string;
  /** /dev/dri/cardN of the enabled device. */
  readonly cardPath: string;
  /** The card's DRM minor (debugfs: /sys/kernel/debug/dri/<minor>). */
  readonly minor: number;
  /** Non-writeback connectors in ConfigFS creation order (= DRM id order). */
  readonly connectors: readonly VkmsConfigfsConnector[];
  /** DRM names of the non-writeback connectors, in the same order. */
  readonly connectorNames: readonly string[];
  /** Writes connector i's status (hotplug while enabled). Returns after the write. */
  setConnectorStatus(i: number, status: boolean | 'connected' | 'disconnected' | 'unknown'): void;
  /** Reads connector i's ConfigFS status. */
  connectorStatus(i: number): 'connected' | 'disconnected' | 'unknown';
  /** Disables and deletes the device (idempotent). */
  remove(): void;
  readonly removed: boolean;
}

let counter = 0;

function write(path: string, value: string): void {
  try {
    writeFileSync(path, value);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    throw new Error(`vkms configfs: writing '${value}' to ${path} failed: ${code || (e as Error).message}${code === 'EBUSY' ? ' (the device is enabled: its configuration is frozen)' : ''}`);
  }
}

function link(target: string, dir: string): void {
  try {
    symlinkSync(target, join(dir, basename(target)));
  } catch (e) {
    throw new Error(`vkms configfs: linking ${target} into ${dir} failed: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

function mkdir(path: string): void {
  try {
    mkdirSync(path);
  } catch (e) {
    throw new Error(`vkms configfs: mkdir ${path} failed: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Whether this kernel has vkms ConfigFS (CONFIG_CONFIGFS_FS, configfs mounted, vkms loaded). */
export function vkmsConfigfsAvailable(): boolean {
  return existsSync(VKMS_CONFIGFS);
}

/** Names of the ConfigFS vkms devices that exist now (enabled or not). */
export function listVkmsDevices(): string[] {
  return existsSync(VKMS_CONFIGFS) ? readdirSync(VKMS_CONFIGFS) : [];
}

/** The card node whose DRM device is `busid` (sysfs `device` link name), or null. */
export function findCardByBusid(busid: string): string | null {
  const cls = '/sys/class/drm';
  if (!existsSync(cls)) return null;
  for (const n of readdirSync(cls)) {
    if (!/^card\d+$/.test(n)) continue;
    try {
      if (basename(readlinkSync(join(cls, n, 'device'))) === busid) return `/dev/dri/${n}`;
    } catch {
      /* no device link */
    }
  }
  return null;
}

/**
 * Disables and deletes a ConfigFS vkms device, whatever state it is in (a partly built or
 * leftover one too): enabled=0, then the symlinks, the item directories, the device.
 * Missing pieces are skipped. Throws if something that exists cannot be removed.
 */
export function removeVkmsDevice(name: string): void {
  const dir = join(VKMS_CONFIGFS, name);
  if (!existsSync(dir)) return;
  const enabled = join(dir, 'enabled');
  if (existsSync(enabled) && readFileSync(enabled, 'utf8').trim() === '1') write(enabled, '0');
  const linkDirs: Array<[string, string]> = [
    ['planes', 'possible_crtcs'],
    ['encoders', 'possible_crtcs'],
    ['connectors', 'possible_encoders'],
  ];
  for (const [group, sub] of linkDirs) {
    const g = join(dir, group);
    if (!existsSync(g)) continue;
    for (const item of readdirSync(g)) {
      const d = join(g, item, sub);
      if (!existsSync(d)) continue;
      for (const l of readdirSync(d)) {
        const p = join(d, l);
        if (lstatSync(p).isSymbolicLink()) unlinkSync(p);
      }
    }
  }
  // Items in reverse of creation order: planes and connectors refer to crtcs/encoders.
  for (const group of ['planes', 'connectors', 'encoders', 'crtcs']) {
    const g = join(dir, group);
    if (!existsSync(g)) continue;
    for (const item of readdirSync(g)) rmdirSync(join(g, item));
  }
  rmdirSync(dir);
}

/** Removes every ConfigFS vkms device whose name starts with `prefix` (test cleanup). */
export function removeVkmsDevicesWithPrefix(prefix: string): string[] {
  const gone: string[] = [];
  for (const n of listVkmsDevices()) {
    if (!n.startsWith(prefix)) continue;
    removeVkmsDevice(n);
    gone.push(n);
  }
  return gone;
}

function statusValue(s: boolean | 'connected' | 'disconnected' | 'unknown'): string {
  if (s === true || s === 'connected') return '1';
  if (s === false || s === 'disconnected') return '2';
  return '3';
}

/** Major:minor of a character device node from sysfs (no stat rdev decoding needed). */
function cardMinorOf(cardPath: string): number {
  const dev = readFileSync(join('/sys/class/drm', basename(cardPath), 'dev'), 'utf8').trim();
  return Number(dev.split(':')[1]);
}

/** Reads the DRM names and ids of the device's non-writeback connectors from sysfs. */
function readConnectors(cardPath: string): Array<{ name: string; id: number }> {
  const card = basename(cardPath);
  const out: Array<{ name: string; id: number }> = [];
  for (const n of readdirSync('/sys/class/drm')) {
    if (!n.startsWith(`${card}-`)) continue;
    const name = n.slice(card.length + 1);
    if (name.startsWith('Writeback-')) continue;
    const idFile = join('/sys/class/drm', n, 'connector_id');
    const id = existsSync(idFile) ? Number(readFileSync(idFile, 'utf8').trim()) : 0;
    out.push({ name, id });
  }
  // ConfigFS creation order = DRM creation order = ascending ids (names as the fallback).
  const num = (s: string) => Number(/(\d+)$/.exec(s)?.[1] ?? 0);
  out.sort((a, b) => a.id - b.id || num(a.name) - num(b.name));
  return out;
}

/**
 * Creates and enables a vkms device with the given CRTCs. Each CRTC gets one primary
 * plane, its overlays and cursor, `connectors` connectors (each with its own encoder) and,
 * unless `writeback: false`, a writeback connector. On any failure what was created is
 * removed again before the error is thrown.
 */
export function createVkmsDevice(spec: VkmsDeviceSpec): VkmsConfigfsDevice {
  if (!vkmsConfigfsAvailable()) {
    throw new Error(`vkms configfs: ${VKMS_CONFIGFS} does not exist (needs CONFIG_CONFIGFS_FS, configfs mounted on /sys/kernel/config and vkms loaded)`);
  }
  if (spec.crtcs.length < 1 || spec.crtcs.length > 32) throw new RangeError(`vkms configfs: ${spec.crtcs.length} CRTCs (1..32)`);
  const name = spec.name ?? `gp${process.pid}x${counter++}`;
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw new Error(`vkms configfs: '${name}' is not a plain directory name`);
  const dir = join(VKMS_CONFIGFS, name);
  if (existsSync(dir)) throw new Error(`vkms configfs: ${dir} already exists (a leftover? remove it with removeVkmsDevice('${name}'))`);
  const cfgConnectors: Array<{ item: string; crtc: number; connected: boolean }> = [];
  mkdir(dir);
  try {
    const crtcDir = (i: number) => join(dir, 'crtcs', `crtc${i}`);
    spec.crtcs.forEach((c, i) => {
      mkdir(crtcDir(i));
      write(join(crtcDir(i), 'writeback'), c.writeback === false ? '0' : '1');
    });
    let enc = 0;
    let con = 0;
    spec.crtcs.forEach((c, i) => {
      const n = c.connectors ?? 1;
      for (let k = 0; k < n; k++) {
        const e = join(dir, 'encoders', `enc${enc++}`);
        mkdir(e);
        link(crtcDir(i), join(e, 'possible_crtcs'));
        const item = `con${con++}`;
        const cd = join(dir, 'connectors', item);
        mkdir(cd);
        write(join(cd, 'status'), c.connected === false ? '2' : '1');
        link(e, join(cd, 'possible_encoders'));
        cfgConnectors.push({ item, crtc: i, connected: c.connected !== false });
      }
    });
    const plane = (pname: string, type: number, crtcs: number[]) => {
      const p = join(dir, 'planes', pname);
      mkdir(p);
      write(join(p, 'type'), String(type));
      for (const i of crtcs) link(crtcDir(i), join(p, 'possible_crtcs'));
    };
    spec.crtcs.forEach((_, i) => plane(`primary${i}`, 1, [i]));
    spec.crtcs.forEach((c, i) => {
      for (let k = 0; k < (c.overlays ?? 0); k++) plane(`overlay${i}-${k}`, 0, [i]);
    });
    for (let k = 0; k < (spec.sharedOverlays ?? 0); k++) plane(`overlay-shared${k}`, 0, spec.crtcs.map((_, i) => i));
    spec.crtcs.forEach((c, i) => {
      if (c.cursor) plane(`cursor${i}`, 2, [i]);
    });
    write(join(dir, 'enabled'), '1');
  } catch (e) {
    try {
      removeVkmsDevice(name);
    } catch {
      /* report the first error */
    }
    throw e;
  }

  let cardPath: string | null = null;
  const deadline = Date.now() + (spec.timeoutMs ?? 2000);
  for (;;) {
    cardPath = findCardByBusid(name);
    if (cardPath && existsSync(cardPath)) break;
    if (Date.now() > deadline) {
      try {
        removeVkmsDevice(name);
      } catch {
        /* report the timeout */
      }
      throw new Error(`vkms configfs: device ${name} enabled but no /dev/dri/card* node for it appeared within ${spec.timeoutMs ?? 2000} ms`);
    }
    sleepSync(10);
  }
  const card = cardPath;
  const drmConnectors = readConnectors(card);
  if (drmConnectors.length !== cfgConnectors.length) {
    throw new Error(`vkms configfs: ${name} has ${drmConnectors.length} connectors in sysfs, expected ${cfgConnectors.length}`);
  }
  const connectors: VkmsConfigfsConnector[] = cfgConnectors.map((c, i) => ({ item: c.item, crtc: c.crtc, name: drmConnectors[i].name, id: drmConnectors[i].id }));
  let removed = false;
  const conDir = (i: number) => {
    const c = connectors[i];
    if (!c) throw new RangeError(`vkms configfs: ${name} has no connector ${i} (it has ${connectors.length})`);
    return join(dir, 'connectors', c.item);
  };
  return {
    name,
    dir,
    busid: name,
    cardPath: card,
    minor: cardMinorOf(card),
    connectors,
    connectorNames: connectors.map((c) => c.name),
    setConnectorStatus(i, status) {
      if (removed) throw new Error(`vkms configfs: ${name} was removed`);
      write(join(conDir(i), 'status'), statusValue(status));
    },
    connectorStatus(i) {
      const v = readFileSync(join(conDir(i), 'status'), 'utf8').trim();
      return v === '1' ? 'connected' : v === '2' ? 'disconnected' : 'unknown';
    },
    remove() {
      if (removed) return;
      removeVkmsDevice(name);
      removed = true;
    },
    get removed() {
      return removed;
    },
  };
}
