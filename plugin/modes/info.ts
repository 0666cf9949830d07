// `guestplane info`: what a KMS device offers, as plain JSON-able data and as text for a
// person (in the spirit of drm_info and modetest). Everything here is read from a
// KmsDevice that has already probed the device; nothing is changed on it.
import { existsSync, realpathSync } from 'node:fs';
import { basename } from 'node:path';
import * as drm from '../../ffi/drm.js';
import type { KmsDevice, KmsPlane, KmsCaps } from '../kms/device.js';
import type { PropInfo } from '../kms/properties.js';

export interface ModeDescription {
  /** The kernel's mode name, e.g. '1024x768'. */
  name: string;
  /** 'WxH@Hz' with the refresh rate to two decimals: '1024x768@60.00'. */
  summary: string;
  width: number;
  height: number;
  /** Refresh rate computed from the timings (Hz, two decimals). */
  refresh: number;
  /** The kernel's integer vrefresh. */
  vrefresh: number;
  /** Pixel clock in kHz. */
  clock: number;
  hsyncStart: number;
  hsyncEnd: number;
  htotal: number;
  hskew: number;
  vsyncStart: number;
  vsyncEnd: number;
  vtotal: number;
  vscan: number;
  /** Flag names as modetest prints them: 'nhsync', 'pvsync', 'interlace'... */
  flags: string[];
  /** Type names: 'preferred', 'driver', 'userdef'... */
  type: string[];
  preferred: boolean;
}

export interface PropertyDescription {
  id: number;
  name: string;
  type: drm.DrmPropType;
  immutable: boolean;
  /** Current value as a decimal string (64-bit values do not fit a JSON number). */
  value: string;
  /** Enum / bitmask entry names. */
  enums?: string[];
  /** Range bounds as decimal strings. */
  range?: [string, string];
}

export interface CrtcDescription {
  id: number;
  index: number;
  active: boolean;
  mode: ModeDescription | null;
  fbId: number;
  props: string[];
  properties: PropertyDescription[];
}

export interface ConnectorDescription {
  id: number;
  name: string;
  type: string;
  status: 'connected' | 'disconnected' | 'unknown';
  writeback: boolean;
  /** CRTC it is routed to now (0 = none). */
  crtcId: number;
  encoders: number[];
  /** CRTC ids its encoders can drive. */
  possibleCrtcs: number[];
  mmWidth: number;
  mmHeight: number;
  modes: ModeDescription[];
  /** Writeback connectors: formats they can write (fourcc codes). */
  writebackFormats: string[];
  props: string[];
  properties: PropertyDescription[];
}

export interface EncoderDescription {
  id: number;
  type: string;
  crtcId: number;
  possibleCrtcs: number[];
  possibleCrtcsMask: number;
  possibleClonesMask: number | null;
}

export interface FormatDescription {
  /** fourcc code, trimmed: 'XR24', 'R8'. */
  format: string;
  modifiers: Array<{ name: string; value: string }>;
}

export interface PlaneDescription {
  id: number;
  type: 'primary' | 'overlay' | 'cursor';
  possibleCrtcs: number[];
  possibleCrtcsMask: number;
  crtcId: number;
  fbId: number;
  /** From IN_FORMATS when the plane has it, else the legacy list with LINEAR. */
  formats: FormatDescription[];
  inFormats: boolean;
  zpos: { min: number; max: number; value: number; immutable: boolean } | null;
  rotations: string[];
  blendModes: string[];
  props: string[];
  properties: PropertyDescription[];
}

export interface DeviceDescription {
  path: string;
  busid: string | null;
  driver: { name: string; desc: string; date: string; version: string };
  caps: KmsCaps;
  limits: { minWidth: number; maxWidth: number; minHeight: number; maxHeight: number } | null;
  crtcs: CrtcDescription[];
  connectors: ConnectorDescription[];
  encoders: EncoderDescription[];
  planes: PlaneDescription[];
}

// Bit i of drm_mode_modeinfo.flags / .type, named as modetest (libdrm tests) prints them.
const MODE_FLAG_NAMES = ['phsync', 'nhsync', 'pvsync', 'nvsync', 'interlace', 'dblscan', 'csync', 'pcsync', 'ncsync', 'hskew', 'bcast', 'pixmux', 'dblclk', 'clkdiv2'];
const MODE_TYPE_NAMES = ['builtin', 'clock_c', 'crtc_c', 'preferred', 'default', 'userdef', 'driver'];
const ENCODER_TYPE_NAMES = ['none', 'DAC', 'TMDS', 'LVDS', 'TVDAC', 'Virtual', 'DSI', 'DPMST', 'DPI'];

function bitNames(value: number, names: readonly string[]): string[] {
  const out: string[] = [];
  names.forEach((n, i) => {
    if (value & (1 << i)) out.push(n);
  });
  return out;
}

/** Refresh rate in Hz from the timings (as the kernel's drm_mode_vrefresh, unrounded). */
export function modeRefresh(m: drm.DrmModeInfo): number {
  if (!m.htotal || !m.vtotal) return 0;
  let r = (m.clock * 1000) / (m.htotal * m.vtotal);
  if (m.flags & drm.DRM_MODE_FLAG_INTERLACE) r *= 2;
  if (m.flags & drm.DRM_MODE_FLAG_DBLSCAN) r /= 2;
  if (m.vscan > 1) r /= m.vscan;
  return r;
}

export function describeMode(m: drm.DrmModeInfo): ModeDescription {
  const refresh = Math.round(modeRefresh(m) * 100) / 100;
  return {
    name: m.name,
    summary: `${m.hdisplay}x${m.vdisplay}@${refresh.toFixed(2)}`,
    width: m.hdisplay,
    height: m.vdisplay,
    refresh,
    vrefresh: m.vrefresh,
    clock: m.clock,
    hsyncStart: m.hsync_start,
    hsyncEnd: m.hsync_end,
    htotal: m.htotal,
    hskew: m.hskew,
    vsyncStart: m.vsync_start,
    vsyncEnd: m.vsync_end,
    vtotal: m.vtotal,
    vscan: m.vscan,
    flags: bitNames(m.flags, MODE_FLAG_NAMES),
    type: bitNames(m.type, MODE_TYPE_NAMES),
    preferred: (m.type & drm.DRM_MODE_TYPE_PREFERRED) !== 0,
  };
}

function describeProp(p: PropInfo): PropertyDescription {
  const d: PropertyDescription = { id: p.id, name: p.name, type: p.type, immutable: p.immutable, value: p.value.toString() };
  if (p.enums.size) d.enums = [...p.enums.keys()];
  if (p.range) d.range = [p.range[0].toString(), p.range[1].toString()];
  return d;
}

function crtcIdsOf(dev: KmsDevice, mask: number): number[] {
  return dev.crtcs.filter((c) => (mask & (1 << c.index)) !== 0).map((c) => c.id);
}

function describeFormats(plane: KmsPlane): FormatDescription[] {
  return [...plane.formats].map(([f, mods]) => ({
    format: drm.fourccName(f),
    modifiers: mods.map((m) => ({ name: drm.formatModifierName(m), value: `0x${m.toString(16).padStart(16, '0')}` })),
  }));
}

/**
 * The busid libdrm's drmOpen (and modetest -D) match, from sysfs: the kernel's unique
 * name of the device is its parent's device name ('vkms', a ConfigFS vkms directory name,
 * '0000:00:02.0'), with 'pci:' in front for PCI devices. null if the node is not in sysfs.
 */
export function busidFromSysfs(cardPath: string): string | null {
  try {
    const card = basename(realpathSync(cardPath));
    const devLink = `/sys/class/drm/${card}/device`;
    if (!/^(card|renderD)\d+$/.test(card) || !existsSync(devLink)) return null;
    const dev = realpathSync(devLink);
    const subsystem = existsSync(`${dev}/subsystem`) ? basename(realpathSync(`${dev}/subsystem`)) : '';
    return subsystem === 'pci' ? `pci:${basename(dev)}` : basename(dev);
  } catch {
    return null;
  }
}

/** A plain, JSON-able description of a probed KMS device. */
export function describeDevice(dev: KmsDevice): DeviceDescription {
  // drmGetBusid (GET_UNIQUE) answers '' until some client has called drmSetInterfaceVersion
  // on the device, so sysfs is asked when it has nothing.
  let busid: string | null = null;
  try {
    busid = drm.getBusid(dev.fd) || null;
  } catch {
    busid = null;
  }
  busid ??= busidFromSysfs(dev.path);
  let limits: DeviceDescription['limits'] = null;
  try {
    const r = drm.getResources(dev.fd);
    limits = { minWidth: r.min_width, maxWidth: r.max_width, minHeight: r.min_height, maxHeight: r.max_height };
  } catch {
    limits = null;
  }
  const v = dev.driver;
  return {
    path: dev.path,
    busid,
    driver: { name: v.name, desc: v.desc, date: v.date, version: `${v.major}.${v.minor}.${v.patch}` },
    caps: { ...dev.caps, prime: { ...dev.caps.prime } },
    limits,
    crtcs: dev.crtcs.map((c) => describeCrtc(c)),
    connectors: dev.connectors.map((c) => describeConnector(dev, c)),
    encoders: dev.encoders.map((e) => describeEncoder(dev, e)),
    planes: dev.planes.map((p) => describePlane(dev, p)),
  };
}

function describeCrtc(c: KmsDevice['crtcs'][number]): DeviceDescription['crtcs'][number] {
  const activeProp = c.props.get('ACTIVE');
  return {
    id: c.id,
    index: c.index,
    active: activeProp ? activeProp.value !== 0n : c.mode !== null,
    mode: c.mode ? describeMode(c.mode) : null,
    fbId: c.bufferId,
    props: c.props.names(),
    properties: c.props.all().map(describeProp),
  };
}

function describeConnector(dev: KmsDevice, c: KmsDevice['connectors'][number]): DeviceDescription['connectors'][number] {
  return {
    id: c.id,
    name: c.name,
    type: drm.connectorTypeName(c.type),
    status: c.connection,
    writeback: c.writeback,
    crtcId: c.crtcId,
    encoders: [...c.encoders],
    possibleCrtcs: crtcIdsOf(dev, c.possibleCrtcs),
    mmWidth: c.mmWidth,
    mmHeight: c.mmHeight,
    modes: c.modes.map(describeMode),
    writebackFormats: c.writebackFormats.map((f) => drm.fourccName(f)),
    props: c.props.names(),
    properties: c.props.all().map(describeProp),
  };
}

function describeEncoder(dev: KmsDevice, e: KmsDevice['encoders'][number]): DeviceDescription['encoders'][number] {
  let clones: number | null = null;
  try {
    clones = drm.getEncoder(dev.fd, e.id).possible_clones;
  } catch {
    clones = null;
  }
  return {
    id: e.id,
    type: ENCODER_TYPE_NAMES[e.type] ?? `type ${e.type}`,
    crtcId: e.crtcId,
    possibleCrtcs: crtcIdsOf(dev, e.possibleCrtcs),
    possibleCrtcsMask: e.possibleCrtcs,
    possibleClonesMask: clones,
  };
}

function describePlane(dev: KmsDevice, p: KmsDevice['planes'][number]): DeviceDescription['planes'][number] {
  const inFormats = p.props.get('IN_FORMATS');
  return {
    id: p.id,
    type: p.type,
    possibleCrtcs: crtcIdsOf(dev, p.possibleCrtcs),
    possibleCrtcsMask: p.possibleCrtcs,
    crtcId: p.crtcId,
    fbId: p.fbId,
    formats: describeFormats(p),
    inFormats: !!inFormats && inFormats.value !== 0n,
    zpos: p.zpos ? { min: Number(p.zpos.min), max: Number(p.zpos.max), value: Number(p.zpos.value), immutable: p.zpos.immutable } : null,
    rotations: [...p.rotations],
    blendModes: [...p.blendModes],
    props: p.props.names(),
    properties: p.props.all().map(describeProp),
  };
}

// ---- text -----------------------------------------------------------------------------

function list(xs: readonly (string | number)[]): string {
  return xs.length ? xs.join(', ') : 'none';
}

function modeLine(m: ModeDescription): string {
  const timings = `${m.width} ${m.hsyncStart} ${m.hsyncEnd} ${m.htotal} ${m.height} ${m.vsyncStart} ${m.vsyncEnd} ${m.vtotal}`;
  return `${m.summary.padEnd(20)} ${String(m.clock).padStart(7)} kHz  ${timings}  ${m.flags.join(',') || '-'}  ${m.type.join(',') || '-'}`;
}

/** Groups formats with identical modifier lists: "AR24 XR24 ...: LINEAR". */
function formatLines(formats: FormatDescription[]): string[] {
  const groups = new Map<string, string[]>();
  for (const f of formats) {
    const key = f.modifiers.map((m) => m.name).join(' ');
    const g = groups.get(key);
    if (g) g.push(f.format);
    else groups.set(key, [f.format]);
  }
  return [...groups].map(([mods, fs]) => `${fs.join(' ')}: ${mods || '(no modifiers)'}`);
}

export interface RenderOptions {
  /** Print every mode (default: the first 5 per connector, then a count). */
  allModes?: boolean;
}

/** Human-readable text for a device description. */
export function renderInfo(d: DeviceDescription, opts: RenderOptions = {}): string {
  const out: string[] = [];
  const c = d.caps;
  out.push(`${d.path}: ${d.driver.name} ${d.driver.version} "${d.driver.desc}"${d.busid ? ` (busid ${d.busid})` : ''}`);
  const yn = (b: boolean) => (b ? 'yes' : 'no');
  out.push(
    `  caps: dumb ${yn(c.dumbBuffer)}, prime import ${yn(c.prime.import)} export ${yn(c.prime.export)}, addfb2 modifiers ${yn(c.addFb2Modifiers)}, ` +
      `monotonic timestamps ${yn(c.timestampMonotonic)}, crtc in vblank event ${yn(c.crtcInVblankEvent)}, async flip ${yn(c.asyncPageFlip)} (atomic ${yn(c.atomicAsyncPageFlip)}), ` +
      `cursor ${c.cursorWidth}x${c.cursorHeight}`,
  );
  out.push(`  client caps: writeback connectors ${yn(c.writebackConnectors)}, cursor plane hotspot ${yn(c.cursorPlaneHotspot)}`);
  if (d.limits) out.push(`  framebuffer size: ${d.limits.minWidth}x${d.limits.minHeight} .. ${d.limits.maxWidth}x${d.limits.maxHeight}`);

  out.push(`CRTCs (${d.crtcs.length}):`);
  for (const crtc of d.crtcs) {
    out.push(`  CRTC ${crtc.id} (index ${crtc.index}): ${crtc.active ? 'active' : 'inactive'}${crtc.mode ? `, mode ${crtc.mode.summary}` : ''}${crtc.fbId ? `, fb ${crtc.fbId}` : ''}`);
    out.push(`    props: ${list(crtc.props)}`);
  }

  out.push(`Connectors (${d.connectors.length}):`);
  for (const con of d.connectors) {
    const routed = con.crtcId ? `, on CRTC ${con.crtcId}` : '';
    out.push(`  Connector ${con.id} ${con.name}: ${con.writeback ? 'writeback' : con.status}${routed}; encoders ${list(con.encoders)}; possible CRTCs ${list(con.possibleCrtcs)}${con.mmWidth || con.mmHeight ? `; ${con.mmWidth}x${con.mmHeight} mm` : ''}`);
    if (con.writeback) out.push(`    writeback formats: ${list(con.writebackFormats)}`);
    if (con.modes.length) {
      out.push(`    modes (${con.modes.length}):`);
      const shown = opts.allModes ? con.modes : con.modes.slice(0, 5);
      for (const m of shown) out.push(`      ${modeLine(m)}`);
      if (shown.length < con.modes.length) out.push(`      ... ${con.modes.length - shown.length} more (--all-modes)`);
    }
    out.push(`    props: ${list(con.props)}`);
  }

  out.push(`Encoders (${d.encoders.length}):`);
  for (const e of d.encoders) {
    out.push(`  Encoder ${e.id}: ${e.type}${e.crtcId ? `, on CRTC ${e.crtcId}` : ''}; possible CRTCs ${list(e.possibleCrtcs)}${e.possibleClonesMask !== null ? `; possible clones 0x${e.possibleClonesMask.toString(16)}` : ''}`);
  }

  out.push(`Planes (${d.planes.length}):`);
  for (const p of d.planes) {
    const zpos = p.zpos ? `zpos ${p.zpos.value} (${p.zpos.immutable ? 'immutable' : `${p.zpos.min}..${p.zpos.max}`})` : 'no zpos (fixed order)';
    const on = p.crtcId ? `, on CRTC ${p.crtcId} fb ${p.fbId}` : '';
    out.push(`  Plane ${p.id}: ${p.type}; possible CRTCs ${list(p.possibleCrtcs)}${on}; ${zpos}`);
    out.push(`    rotations: ${list(p.rotations)}; blend modes: ${list(p.blendModes)}`);
    out.push(`    formats (${p.formats.length}${p.inFormats ? ', IN_FORMATS' : ', no IN_FORMATS'}):`);
    for (const l of formatLines(p.formats)) out.push(`      ${l}`);
    out.push(`    props: ${list(p.props)}`);
  }
  return out.join('\n') + '\n';
}
