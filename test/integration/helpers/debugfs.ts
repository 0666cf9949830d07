// What the kernel says about a DRM device and about us, for leak checks in rig tests:
//   /sys/kernel/debug/dri/<minor>/framebuffer   every FB (id, who made it, format, size)
//   /sys/kernel/debug/dri/<minor>/state         the atomic state (planes, CRTCs, connectors)
//   /sys/kernel/debug/dri/<minor>/clients       open DRM files (process, pid, master)
//   /proc/self/fd                               our open fds (DRM, dma-buf, memfd, VFIO...)
// In 7.x /sys/kernel/debug/dri/<minor> is a symlink to dri/<unique> (the busid).
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';

export const DRI_DEBUGFS = '/sys/kernel/debug/dri';

/** The DRM minor of a card (or render) node: /dev/dri/card1 → 1, renderD128 → 128. */
export function cardMinor(cardPath: string): number {
  const sys = join('/sys/class/drm', basename(cardPath), 'dev');
  if (existsSync(sys)) return Number(readFileSync(sys, 'utf8').trim().split(':')[1]);
  // Fall back to the node's rdev (glibc encoding of the minor).
  const rdev = statSync(cardPath).rdev;
  return (rdev & 0xff) | ((rdev >>> 12) & 0xfff00);
}

function minorOf(device: string | number): number {
  return typeof device === 'number' ? device : cardMinor(device);
}

/** /sys/kernel/debug/dri/<minor> for a card path or minor; throws if debugfs lacks it. */
export function debugfsDir(device: string | number): string {
  const d = join(DRI_DEBUGFS, String(minorOf(device)));
  if (!existsSync(d)) {
    throw new Error(`debugfs: ${d} does not exist (debugfs mounted on /sys/kernel/debug? CONFIG_DEBUG_FS? root?)`);
  }
  return d;
}

/** debugfs 'name': driver, dev and unique (= busid). */
export function readDebugfsName(device: string | number): { driver: string; dev: string; unique: string } {
  const line = readFileSync(join(debugfsDir(device), 'name'), 'utf8').trim();
  const [driver, ...rest] = line.split(' ');
  const kv = Object.fromEntries(rest.map((s) => s.split('=') as [string, string]));
  return { driver, dev: kv.dev ?? '', unique: kv.unique ?? '' };
}

// ---- framebuffers ---------------------------------------------------------------------

export interface DebugfsFbLayer {
  width: number;
  height: number;
  pitch: number;
  offset: number;
  /** The GEM object's size, when printed. */
  objSize: number | null;
  imported: boolean | null;
}

export interface DebugfsFramebuffer {
  id: number;
  /** comm of the process that created it ("node", "modetest"...): 15 characters at most. */
  allocatedBy: string;
  refcount: number;
  /** 'XR24' (from "XR24 little-endian (0x34325258)"). */
  format: string;
  modifier: bigint;
  width: number;
  height: number;
  layers: DebugfsFbLayer[];
}

/** Parses the debugfs 'framebuffer' file (drm_framebuffer_info). */
export function parseFramebuffers(text: string): DebugfsFramebuffer[] {
  const out: DebugfsFramebuffer[] = [];
  let fb: DebugfsFramebuffer | null = null;
  let layer: DebugfsFbLayer | null = null;
  let inObj = false;
  for (const raw of text.split('\n')) {
    const m = /^framebuffer\[(\d+)\]:$/.exec(raw);
    if (m) {
      fb = { id: Number(m[1]), allocatedBy: '', refcount: 0, format: '', modifier: 0n, width: 0, height: 0, layers: [] };
      out.push(fb);
      layer = null;
      inObj = false;
      continue;
    }
    if (!fb) continue;
    const line = raw.trim();
    const depth = raw.length - raw.trimStart().length;
    let k: RegExpExecArray | null;
    if ((k = /^allocated by = (.*)$/.exec(line))) fb.allocatedBy = k[1];
    else if (depth === 1 && (k = /^refcount=(\d+)$/.exec(line))) fb.refcount = Number(k[1]);
    else if ((k = /^format=(\S+)/.exec(line))) fb.format = k[1];
    else if ((k = /^modifier=(0x[0-9a-f]+)$/i.exec(line))) fb.modifier = BigInt(k[1]);
    else if (depth === 1 && (k = /^size=(\d+)x(\d+)$/.exec(line))) {
      fb.width = Number(k[1]);
      fb.height = Number(k[2]);
    } else if ((k = /^size\[(\d+)\]=(\d+)x(\d+)$/.exec(line))) {
      layer = { width: Number(k[2]), height: Number(k[3]), pitch: 0, offset: 0, objSize: null, imported: null };
      fb.layers.push(layer);
      inObj = false;
    } else if (layer && (k = /^pitch\[\d+\]=(\d+)$/.exec(line))) layer.pitch = Number(k[1]);
    else if (layer && (k = /^offset\[\d+\]=(\d+)$/.exec(line))) layer.offset = Number(k[1]);
    else if (layer && /^obj\[\d+\]:/.test(line)) inObj = true;
    else if (layer && inObj && (k = /^size=(\d+)$/.exec(line))) layer.objSize = Number(k[1]);
    else if (layer && inObj && (k = /^imported=(yes|no)$/.exec(line))) layer.imported = k[1] === 'yes';
  }
  return out;
}

/** The device's framebuffers as debugfs lists them. */
export function readFramebuffers(device: string | number): DebugfsFramebuffer[] {
  return parseFramebuffers(readFileSync(join(debugfsDir(device), 'framebuffer'), 'utf8'));
}

// ---- atomic state -----------------------------------------------------------------------

export interface DebugfsStateObject {
  kind: 'plane' | 'crtc' | 'connector';
  id: number;
  /** Kernel name: 'plane-0', 'crtc-1', 'Virtual-2'. */
  name: string;
  /** key=value lines as printed (and 'mode' for CRTCs). */
  fields: Record<string, string>;
}

export interface DebugfsState {
  planes: Array<DebugfsStateObject & { crtc: string | null; fb: number }>;
  crtcs: Array<DebugfsStateObject & { enable: boolean; active: boolean; mode: { name: string; hdisplay: number; vdisplay: number } | null }>;
  connectors: Array<DebugfsStateObject & { crtc: string | null }>;
}

/** Parses the debugfs 'state' file (drm_state_dump). */
export function parseState(text: string): DebugfsState {
  const objs: DebugfsStateObject[] = [];
  let cur: DebugfsStateObject | null = null;
  for (const raw of text.split('\n')) {
    const m = /^(plane|crtc|connector)\[(\d+)\]: (.*)$/.exec(raw);
    if (m) {
      cur = { kind: m[1] as DebugfsStateObject['kind'], id: Number(m[2]), name: m[3], fields: {} };
      objs.push(cur);
      continue;
    }
    if (!cur || !raw.startsWith('\t') || raw.startsWith('\t\t')) continue;
    const line = raw.slice(1);
    const mode = /^mode: (.*)$/.exec(line);
    if (mode) {
      cur.fields.mode = mode[1];
      continue;
    }
    const eq = line.indexOf('=');
    if (eq > 0) cur.fields[line.slice(0, eq)] = line.slice(eq + 1);
  }
  const nullable = (v: string | undefined) => (v === undefined || v === '(null)' ? null : v);
  const state: DebugfsState = { planes: [], crtcs: [], connectors: [] };
  for (const o of objs) {
    if (o.kind === 'plane') state.planes.push({ ...o, crtc: nullable(o.fields.crtc), fb: Number(o.fields.fb ?? 0) });
    else if (o.kind === 'connector') state.connectors.push({ ...o, crtc: nullable(o.fields.crtc) });
    else {
      // DRM_MODE_FMT: "name": vrefresh clock hdisplay hss hse htotal vdisplay vss vse vtotal type flags
      const mm = /^"([^"]*)": (-?\d+) (\d+) (\d+) \d+ \d+ \d+ (\d+)/.exec(o.fields.mode ?? '');
      const mode = mm && Number(mm[4]) > 0 ? { name: mm[1], hdisplay: Number(mm[4]), vdisplay: Number(mm[5]) } : null;
      state.crtcs.push({ ...o, enable: o.fields.enable === '1', active: o.fields.active === '1', mode });
    }
  }
  return state;
}

export function readStateText(device: string | number): string {
  return readFileSync(join(debugfsDir(device), 'state'), 'utf8');
}

/** The device's atomic state as debugfs prints it. */
export function readState(device: string | number): DebugfsState {
  return parseState(readStateText(device));
}

// ---- clients ----------------------------------------------------------------------------

export interface DebugfsClient {
  command: string;
  pid: number;
  minor: number;
  master: boolean;
  authenticated: boolean;
}

/** Parses the debugfs 'clients' file: one open DRM file per line. */
export function parseClients(text: string): DebugfsClient[] {
  const out: DebugfsClient[] = [];
  for (const line of text.split('\n').slice(1)) {
    // "%20s %5d %3d   %c    %c %5d %10u ..." -- command may contain spaces: match from the right of it.
    const m = /^\s*(.*?)\s+(\d+)\s+(\d+)\s+([yn])\s+([yn])\s+\d+\s+\d+/.exec(line);
    if (!m) continue;
    out.push({ command: m[1], pid: Number(m[2]), minor: Number(m[3]), master: m[4] === 'y', authenticated: m[5] === 'y' });
  }
  return out;
}

/** Open DRM files of the device (all processes). */
export function readClients(device: string | number): DebugfsClient[] {
  return parseClients(readFileSync(join(debugfsDir(device), 'clients'), 'utf8'));
}

// ---- our fds ---------------------------------------------------------------------------

export interface OpenFd {
  fd: number;
  /** readlink of /proc/self/fd/N: '/dev/dri/card1', 'anon_inode:dmabuf', '/memfd:x (deleted)'... */
  target: string;
}

/** This process's open fds (without the one used to list them). */
export function listOpenFds(): OpenFd[] {
  const out: OpenFd[] = [];
  for (const n of readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${n}`);
    } catch {
      continue; // the directory fd readdir used, already closed
    }
    out.push({ fd: Number(n), target });
  }
  return out.sort((a, b) => a.fd - b.fd);
}

/** Number of open fds, optionally only those whose target matches. */
export function countOpenFds(filter?: RegExp): number {
  const fds = listOpenFds();
  return filter ? fds.filter((f) => filter.test(f.target)).length : fds.length;
}

/**
 * Fds that hold kernel objects guestplane manages: DRM nodes, dma-bufs, sync files,
 * memfds, udmabuf, VFIO, eventfds. Node's own fds (pipes, sockets, epoll) are left out,
 * since they come and go with the runtime.
 */
export const KERNEL_OBJECT_FDS = /^(\/dev\/(dri|udmabuf|vfio|dma_heap)|anon_inode:(dmabuf|sync_file|\[eventfd\]|\[vfio-device\]|vfio-device)|\/memfd:)/;

/** A snapshot of our fds, to report what a piece of code left open. */
export function fdSnapshot(filter: RegExp = KERNEL_OBJECT_FDS): { fds: OpenFd[]; leakedSince(): OpenFd[] } {
  const before = listOpenFds().filter((f) => filter.test(f.target));
  const key = (f: OpenFd) => `${f.fd} ${f.target}`;
  const had = new Set(before.map(key));
  return {
    fds: before,
    leakedSince: () => listOpenFds().filter((f) => filter.test(f.target) && !had.has(key(f))),
  };
}
