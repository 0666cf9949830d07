// EDID: what a monitor says about itself, read from the host connector and handed to
// the guest, so the guest renders at the host's native size and refresh and its buffer
// can be scanned out 1:1 (no scaling, no composition).
//
// - parseEdid(): the facts we use from an EDID 1.3/1.4 base block (+ the detailed timings
//   of CTA-861 extensions): identity, product name, physical size, preferred mode.
// - buildEdid(): a 128-byte EDID 1.4 whose first detailed timing (the preferred mode) is
//   a given KMS mode, for hosts whose connector has no EDID (vkms) or when the guest must
//   see a mode other than the monitor's preferred one (a region of a screen).
// - edidForHead(): picks between the host's own bytes and a built EDID.
// - writeGuestEdid(): the VFIO GFX EDID region protocol (QEMU hw/vfio/display.c):
//   link down → write blob → write size → link up; the guest sees a hotplug.
import * as libc from '../../ffi/libc.js';
import * as vfio from '../../ffi/vfio.js';
import * as drm from '../../ffi/drm.js';
import type { KmsConnector } from '../kms/device.js';
import type { VfioDevice } from '../sources/vfio.js';

export const EDID_BLOCK = 128;
const HEADER = [0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00];

export interface EdidTiming {
  /** Pixel clock, kHz (as in drmModeModeInfo.clock). */
  clock: number;
  hdisplay: number;
  hsyncStart: number;
  hsyncEnd: number;
  htotal: number;
  vdisplay: number;
  vsyncStart: number;
  vsyncEnd: number;
  vtotal: number;
  interlaced: boolean;
  hsyncPositive: boolean;
  vsyncPositive: boolean;
  /** Image size of this timing, mm (0 = not given). */
  widthMm: number;
  heightMm: number;
  /** Refresh rate, Hz, from the timing (not rounded). */
  refresh: number;
}

export interface Edid {
  /** Three-letter PNP id, 'DEL'. */
  manufacturer: string;
  productCode: number;
  serialNumber: number;
  /** Descriptor 0xFF, if present. */
  serialString: string | null;
  /** Descriptor 0xFC (Display Product Name), if present. */
  name: string | null;
  week: number;
  year: number;
  version: string;
  digital: boolean;
  /** Maximum image size from the base block, cm (0 = unknown/variable). */
  widthCm: number;
  heightCm: number;
  /** Physical size, mm: the preferred timing's image size, else the base block's cm × 10. */
  widthMm: number;
  heightMm: number;
  /** The first detailed timing: the preferred mode in EDID 1.3+. Null if none. */
  preferred: EdidTiming | null;
  /** Every detailed timing, base block first, then extension blocks. */
  timings: EdidTiming[];
  /** Vertical refresh range limits (descriptor 0xFD), Hz. */
  rangeHz: { min: number; max: number } | null;
  extensionCount: number;
}

export class EdidError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EdidError';
  }
}

function checksumOk(b: Uint8Array, off: number): boolean {
  let s = 0;
  for (let i = 0; i < EDID_BLOCK; i++) s = (s + b[off + i]) & 0xff;
  return s === 0;
}

function descriptorText(b: Uint8Array, off: number): string {
  // 13 bytes of text, ended by 0x0A and padded with spaces.
  let s = '';
  for (let i = off + 5; i < off + 18; i++) {
    if (b[i] === 0x0a) break;
    s += String.fromCharCode(b[i]);
  }
  return s.trimEnd();
}

function parseDtd(b: Uint8Array, o: number): EdidTiming | null {
  const clock10k = b[o] | (b[o + 1] << 8);
  if (clock10k === 0) return null; // a display descriptor, not a timing
  const hactive = b[o + 2] | ((b[o + 4] & 0xf0) << 4);
  const hblank = b[o + 3] | ((b[o + 4] & 0x0f) << 8);
  const vactive = b[o + 5] | ((b[o + 7] & 0xf0) << 4);
  const vblank = b[o + 6] | ((b[o + 7] & 0x0f) << 8);
  const hso = b[o + 8] | ((b[o + 11] & 0xc0) << 2);
  const hsw = b[o + 9] | ((b[o + 11] & 0x30) << 4);
  const vso = (b[o + 10] >> 4) | ((b[o + 11] & 0x0c) << 2);
  const vsw = (b[o + 10] & 0x0f) | ((b[o + 11] & 0x03) << 4);
  const wmm = b[o + 12] | ((b[o + 14] & 0xf0) << 4);
  const hmm = b[o + 13] | ((b[o + 14] & 0x0f) << 8);
  const flags = b[o + 17];
  const interlaced = (flags & 0x80) !== 0;
  const digitalSeparate = (flags & 0x18) === 0x18;
  const clock = clock10k * 10;
  const htotal = hactive + hblank;
  const vtotal = vactive + vblank;
  // For interlaced timings vtotal is per field, so this is the field rate, as edid-decode prints it.
  const refresh = (clock * 1000) / (htotal * vtotal);
  return {
    clock,
    hdisplay: hactive,
    hsyncStart: hactive + hso,
    hsyncEnd: hactive + hso + hsw,
    htotal,
    vdisplay: interlaced ? vactive * 2 : vactive,
    vsyncStart: vactive + vso,
    vsyncEnd: vactive + vso + vsw,
    vtotal,
    interlaced,
    hsyncPositive: digitalSeparate ? (flags & 0x02) !== 0 : false,
    vsyncPositive: digitalSeparate ? (flags & 0x04) !== 0 : false,
    widthMm: wmm,
    heightMm: hmm,
    refresh,
  };
}

/** Parses an EDID blob (base block and any extensions). Throws EdidError naming what is wrong. */
export function parseEdid(bytes: Uint8Array): Edid {
  if (bytes.length < EDID_BLOCK) throw new EdidError(`EDID is ${bytes.length} bytes; a base block is ${EDID_BLOCK}`);
  for (let i = 0; i < 8; i++) {
    if (bytes[i] !== HEADER[i]) throw new EdidError(`EDID header is ${Buffer.from(bytes.subarray(0, 8)).toString('hex')}, expected 00ffffffffffff00: not an EDID`);
  }
  if (!checksumOk(bytes, 0)) throw new EdidError('EDID base block checksum is wrong (bytes do not sum to 0 mod 256): a corrupted read?');
  const m = (bytes[8] << 8) | bytes[9];
  const letter = (v: number) => String.fromCharCode(64 + (v & 0x1f));
  const manufacturer = letter(m >> 10) + letter(m >> 5) + letter(m);
  const extensionCount = bytes[126];
  const timings: EdidTiming[] = [];
  let name: string | null = null;
  let serialString: string | null = null;
  let rangeHz: Edid['rangeHz'] = null;
  for (let d = 54; d < 126; d += 18) {
    const t = parseDtd(bytes, d);
    if (t) {
      timings.push(t);
      continue;
    }
    const tag = bytes[d + 3];
    if (tag === 0xfc) name = descriptorText(bytes, d);
    else if (tag === 0xff) serialString = descriptorText(bytes, d);
    else if (tag === 0xfd) {
      // EDID 1.4 offsets: byte 4 bits 0/1 add 255 to the min/max vertical rate.
      const add = bytes[d + 4];
      rangeHz = { min: bytes[d + 5] + (add & 0x01 ? 255 : 0), max: bytes[d + 6] + (add & 0x02 ? 255 : 0) };
    }
  }
  // CTA-861 extensions carry more detailed timings after their data blocks.
  for (let e = 1; e <= extensionCount && (e + 1) * EDID_BLOCK <= bytes.length; e++) {
    const o = e * EDID_BLOCK;
    if (bytes[o] !== 0x02 || !checksumOk(bytes, o)) continue;
    const dtdStart = bytes[o + 2];
    if (dtdStart < 4) continue;
    for (let d = o + dtdStart; d + 18 <= o + 127; d += 18) {
      const t = parseDtd(bytes, d);
      if (!t) break;
      timings.push(t);
    }
  }
  const widthCm = bytes[21];
  const heightCm = bytes[22];
  const preferred = timings[0] ?? null;
  const fromDtd = preferred && preferred.widthMm > 0 && preferred.heightMm > 0;
  return {
    manufacturer,
    productCode: bytes[10] | (bytes[11] << 8),
    serialNumber: (bytes[12] | (bytes[13] << 8) | (bytes[14] << 16) | (bytes[15] << 24)) >>> 0,
    serialString,
    name,
    week: bytes[16],
    year: bytes[17] + 1990,
    version: `${bytes[18]}.${bytes[19]}`,
    digital: (bytes[20] & 0x80) !== 0,
    widthCm,
    heightCm,
    widthMm: fromDtd ? preferred.widthMm : widthCm * 10,
    heightMm: fromDtd ? preferred.heightMm : heightCm * 10,
    preferred,
    timings,
    rangeHz,
    extensionCount,
  };
}

/** A KMS mode as EDID timing fields (hsync/vsync polarity from the mode flags). */
export function timingFromMode(mode: drm.DrmModeInfo): Omit<EdidTiming, 'widthMm' | 'heightMm' | 'refresh'> {
  return {
    clock: mode.clock,
    hdisplay: mode.hdisplay,
    hsyncStart: mode.hsync_start,
    hsyncEnd: mode.hsync_end,
    htotal: mode.htotal,
    vdisplay: mode.vdisplay,
    vsyncStart: mode.vsync_start,
    vsyncEnd: mode.vsync_end,
    vtotal: mode.vtotal,
    interlaced: (mode.flags & drm.DRM_MODE_FLAG_INTERLACE) !== 0,
    hsyncPositive: (mode.flags & drm.DRM_MODE_FLAG_PHSYNC) !== 0,
    vsyncPositive: (mode.flags & drm.DRM_MODE_FLAG_PVSYNC) !== 0,
  };
}

export interface BuildEdidOptions {
  timing: Omit<EdidTiming, 'widthMm' | 'heightMm' | 'refresh'>;
  /** Display Product Name, ≤ 13 characters. */
  name: string;
  manufacturer?: string;
  productCode?: number;
  serialNumber?: number;
  widthMm?: number;
  heightMm?: number;
}

/**
 * A 128-byte EDID 1.4, digital, whose preferred (first detailed) timing is `timing`.
 * Throws where EDID cannot express the timing (pixel clock above 655.35 MHz or fields
 * wider than their 12/10/6/4-bit slots): such modes need DisplayID, which we do not write.
 */
export function buildEdid(o: BuildEdidOptions): Uint8Array {
  const b = new Uint8Array(EDID_BLOCK);
  b.set(HEADER, 0);
  writeVendorAndBasics(b, o);
  writeDetailedTiming(b, 54, o.timing, o.widthMm ?? 0, o.heightMm ?? 0);
  writeRangeAndName(b, o.timing, o.name);
  b[126] = 0;
  let s = 0;
  for (let i = 0; i < 127; i++) s = (s + b[i]) & 0xff;
  b[127] = (256 - s) & 0xff;
  return b;
}

/** Bytes 8-53: vendor and product, version, basic display parameters, chromaticity, no standard timings. */
function writeVendorAndBasics(b: Uint8Array, o: BuildEdidOptions): void {
  const mfg = (o.manufacturer ?? 'GPL').toUpperCase();
  if (!/^[A-Z]{3}$/.test(mfg)) throw new EdidError(`manufacturer '${o.manufacturer}' must be three letters A-Z (a PNP id)`);
  const m = ((mfg.charCodeAt(0) - 64) << 10) | ((mfg.charCodeAt(1) - 64) << 5) | (mfg.charCodeAt(2) - 64);
  b[8] = m >> 8;
  b[9] = m & 0xff;
  const pc = o.productCode ?? 0x6770;
  b[10] = pc & 0xff;
  b[11] = (pc >> 8) & 0xff;
  const sn = (o.serialNumber ?? 0) >>> 0;
  b[12] = sn & 0xff;
  b[13] = (sn >> 8) & 0xff;
  b[14] = (sn >> 16) & 0xff;
  b[15] = (sn >>> 24) & 0xff;
  b[16] = 0; // no week
  b[17] = new Date().getUTCFullYear() - 1990;
  b[18] = 1;
  b[19] = 4;
  b[20] = 0xa5; // digital, 8 bits per colour, DisplayPort (any digital interface works for guests)
  b[21] = Math.min(255, Math.round((o.widthMm ?? 0) / 10));
  b[22] = Math.min(255, Math.round((o.heightMm ?? 0) / 10));
  b[23] = 120; // gamma 2.2
  b[24] = 0x06; // RGB 4:4:4, sRGB default, preferred timing is native
  // Chromaticity: sRGB primaries (what a guest assumes anyway).
  b.set([0xee, 0x91, 0xa3, 0x54, 0x4c, 0x99, 0x26, 0x0f, 0x50, 0x54], 25);
  // No established or standard timings: the guest should take the detailed one.
  for (let i = 38; i < 54; i++) b[i] = 0x01;
}

/** The 18-byte detailed timing descriptor at `d`; throws where a field does not fit. */
function writeDetailedTiming(b: Uint8Array, d: number, t: BuildEdidOptions['timing'], wmm: number, hmm: number): void {
  const hblank = t.htotal - t.hdisplay;
  const vactive = t.interlaced ? t.vdisplay / 2 : t.vdisplay;
  const vblank = t.vtotal - vactive;
  const hso = t.hsyncStart - t.hdisplay;
  const hsw = t.hsyncEnd - t.hsyncStart;
  const vso = t.vsyncStart - vactive;
  const vsw = t.vsyncEnd - t.vsyncStart;
  const clock10k = Math.round(t.clock / 10);
  const check = (what: string, v: number, bits: number) => {
    if (!Number.isInteger(v) || v < 0 || v >= 1 << bits) throw new EdidError(`mode ${t.hdisplay}x${t.vdisplay}: ${what} = ${v} does not fit EDID's ${bits}-bit field`);
  };
  check('pixel clock (10 kHz units)', clock10k, 16);
  check('hactive', t.hdisplay, 12);
  check('hblank', hblank, 12);
  check('vactive', vactive, 12);
  check('vblank', vblank, 12);
  check('hsync offset', hso, 10);
  check('hsync width', hsw, 10);
  check('vsync offset', vso, 6);
  check('vsync width', vsw, 6);
  if (clock10k === 0) throw new EdidError(`mode ${t.hdisplay}x${t.vdisplay} has no pixel clock`);
  b[d] = clock10k & 0xff;
  b[d + 1] = clock10k >> 8;
  b[d + 2] = t.hdisplay & 0xff;
  b[d + 3] = hblank & 0xff;
  b[d + 4] = ((t.hdisplay >> 8) << 4) | (hblank >> 8);
  b[d + 5] = vactive & 0xff;
  b[d + 6] = vblank & 0xff;
  b[d + 7] = ((vactive >> 8) << 4) | (vblank >> 8);
  b[d + 8] = hso & 0xff;
  b[d + 9] = hsw & 0xff;
  b[d + 10] = ((vso & 0x0f) << 4) | (vsw & 0x0f);
  b[d + 11] = ((hso >> 8) << 6) | ((hsw >> 8) << 4) | ((vso >> 4) << 2) | (vsw >> 4);
  b[d + 12] = wmm & 0xff;
  b[d + 13] = hmm & 0xff;
  b[d + 14] = (((wmm >> 8) & 0x0f) << 4) | ((hmm >> 8) & 0x0f);
  b[d + 17] = (t.interlaced ? 0x80 : 0) | 0x18 | (t.vsyncPositive ? 0x04 : 0) | (t.hsyncPositive ? 0x02 : 0);
}

/** Descriptors 2-4: range limits around the mode's refresh (so guests accept it), the product name, a dummy. */
function writeRangeAndName(b: Uint8Array, t: BuildEdidOptions['timing'], productName: string): void {
  const refresh = (t.clock * 1000) / (t.htotal * t.vtotal);
  const r = 72;
  b.set([0, 0, 0, 0xfd, 0], r);
  b[r + 5] = Math.max(1, Math.floor(refresh) - 1);
  b[r + 6] = Math.min(255, Math.ceil(refresh) + 1);
  const hkhz = (t.clock / t.htotal);
  b[r + 7] = Math.max(1, Math.floor(hkhz) - 1);
  b[r + 8] = Math.min(255, Math.ceil(hkhz) + 1);
  b[r + 9] = Math.min(255, Math.ceil(t.clock / 10000) + 1);
  b[r + 10] = 0x01; // range limits only, no timing formula
  b.set([0x0a, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20], r + 11);
  const n = 90;
  b.set([0, 0, 0, 0xfc, 0], n);
  const name = productName.replace(/[^\x20-\x7e]/g, '?').slice(0, 13);
  for (let i = 0; i < 13; i++) b[n + 5 + i] = i < name.length ? name.charCodeAt(i) : i === name.length ? 0x0a : 0x20;
  b.set([0, 0, 0, 0x10, 0], 108);
}

/** The connector's EDID blob (KMS property "EDID"), or null when it has none (vkms). */
export function readConnectorEdid(fd: number, conn: KmsConnector): Uint8Array | null {
  const p = conn.props.get('EDID');
  if (!p || p.value === 0n) return null;
  try {
    const blob = drm.getPropertyBlob(fd, Number(p.value));
    return blob.length >= EDID_BLOCK ? new Uint8Array(blob) : null;
  } catch {
    return null; // the blob went away with a hotplug between probe and read
  }
}

/** What a guest should be told about the screen area it gets. */
export interface GuestMonitor {
  edid: Uint8Array;
  /** 'host': the monitor's own bytes; 'built': made from the mode (no host EDID, or a region). */
  origin: 'host' | 'built';
  width: number;
  height: number;
  refresh: number;
}

/**
 * The EDID a guest should see for a head: the host monitor's own bytes when the head
 * shows the guest on the whole screen at the monitor's preferred mode; otherwise one
 * built for the head's size and the mode's real refresh, carrying the monitor's name,
 * manufacturer and physical size where the host has an EDID.
 */
export function edidForHead(hostEdid: Uint8Array | null, mode: drm.DrmModeInfo, area: { width: number; height: number } | null, maxBytes = 1024): GuestMonitor {
  const refresh = (mode.clock * 1000) / (mode.htotal * mode.vtotal);
  let host: Edid | null = null;
  if (hostEdid) {
    try {
      host = parseEdid(hostEdid);
    } catch {
      host = null; // a broken host EDID: describe the mode ourselves
    }
  }
  const whole = !area || (area.width === mode.hdisplay && area.height === mode.vdisplay);
  const p = host?.preferred;
  if (host && hostEdid && whole && p && p.hdisplay === mode.hdisplay && p.vdisplay === mode.vdisplay && p.clock === mode.clock && p.htotal === mode.htotal && p.vtotal === mode.vtotal) {
    let bytes = hostEdid;
    if (bytes.length > maxBytes) {
      // The region is too small for the extensions: the base block alone, extension count 0.
      bytes = bytes.slice(0, EDID_BLOCK);
      bytes[126] = 0;
      let s = 0;
      for (let i = 0; i < 127; i++) s = (s + bytes[i]) & 0xff;
      bytes[127] = (256 - s) & 0xff;
    }
    return { edid: bytes, origin: 'host', width: mode.hdisplay, height: mode.vdisplay, refresh };
  }
  let timing = timingFromMode(mode);
  if (!whole && area) {
    // A region: the guest renders at the region's size; keep the line rate's pixel
    // clock per line and the frame's line count so the refresh stays the host's.
    const hblank = mode.htotal - mode.hdisplay;
    const vblank = mode.vtotal - mode.vdisplay;
    const htotal = area.width + hblank;
    const vtotal = area.height + vblank;
    timing = {
      ...timing,
      hdisplay: area.width,
      hsyncStart: area.width + (mode.hsync_start - mode.hdisplay),
      hsyncEnd: area.width + (mode.hsync_end - mode.hdisplay),
      htotal,
      vdisplay: area.height,
      vsyncStart: area.height + (mode.vsync_start - mode.vdisplay),
      vsyncEnd: area.height + (mode.vsync_end - mode.vdisplay),
      vtotal,
      clock: Math.round((refresh * htotal * vtotal) / 1000),
    };
  }
  const physW = host?.widthMm ?? 0;
  const physH = host?.heightMm ?? 0;
  const edid = buildEdid({
    timing,
    name: host?.name ?? 'guestplane',
    manufacturer: host?.manufacturer,
    productCode: host?.productCode,
    serialNumber: host?.serialNumber,
    // A region's physical size: its share of the monitor.
    widthMm: whole ? physW : Math.round((physW * timing.hdisplay) / mode.hdisplay),
    heightMm: whole ? physH : Math.round((physH * timing.vdisplay) / mode.vdisplay),
  });
  const t = parseEdid(edid).preferred!;
  return { edid, origin: 'built', width: t.hdisplay, height: t.vdisplay, refresh: t.refresh };
}

// ---- VFIO GFX EDID region ---------------------------------------------------------------

const REG = {
  edidOffset: 0,
  edidMaxSize: 4,
  edidSize: 8,
  maxXres: 12,
  maxYres: 16,
  linkState: 20,
};

export interface GuestEdidRegion {
  index: number;
  offset: bigint;
  size: bigint;
  edidOffset: number;
  edidMaxSize: number;
  edidSize: number;
  /** 0 = no limit. */
  maxXres: number;
  maxYres: number;
  linkUp: boolean;
}

function readU32(dev: VfioDevice, at: bigint): number {
  const b = Buffer.alloc(4);
  libc.pread(dev.deviceFd, b, at, `${dev.name} EDID region`);
  return b.readUInt32LE(0);
}

function writeU32(dev: VfioDevice, at: bigint, v: number): void {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0, 0);
  libc.pwrite(dev.deviceFd, b, at, `${dev.name} EDID region`);
}

/** The device's GFX EDID region and its registers, or null when it has none. */
export function findGuestEdidRegion(dev: VfioDevice): GuestEdidRegion | null {
  const index = dev.findRegion(vfio.VFIO_REGION_TYPE_GFX, vfio.VFIO_REGION_SUBTYPE_GFX_EDID);
  if (index < 0) return null;
  const info = dev.regionInfo(index);
  const o = info.offset;
  return {
    index,
    offset: o,
    size: info.size,
    edidOffset: readU32(dev, o + BigInt(REG.edidOffset)),
    edidMaxSize: readU32(dev, o + BigInt(REG.edidMaxSize)),
    edidSize: readU32(dev, o + BigInt(REG.edidSize)),
    maxXres: readU32(dev, o + BigInt(REG.maxXres)),
    maxYres: readU32(dev, o + BigInt(REG.maxYres)),
    linkUp: readU32(dev, o + BigInt(REG.linkState)) === vfio.VFIO_DEVICE_GFX_LINK_STATE_UP,
  };
}

/**
 * Hands an EDID to the guest: link down, blob, size, link up (the guest driver sees the
 * link go down and up: a hotplug, and re-reads the EDID). Throws, naming the device and
 * the fix, when the EDID does not fit or its preferred mode exceeds the device's limits.
 */
export function writeGuestEdid(dev: VfioDevice, region: GuestEdidRegion, edid: Uint8Array): void {
  if (edid.length > region.edidMaxSize) {
    throw new EdidError(`${dev.name}: EDID of ${edid.length} bytes does not fit its EDID region (${region.edidMaxSize} bytes max); send the base block only`);
  }
  const p = parseEdid(edid).preferred;
  if (p && ((region.maxXres > 0 && p.hdisplay > region.maxXres) || (region.maxYres > 0 && p.vdisplay > region.maxYres))) {
    throw new EdidError(
      `${dev.name}: mode ${p.hdisplay}x${p.vdisplay} exceeds the device's maximum ${region.maxXres}x${region.maxYres}; use a smaller head mode or region, or a mediated device type with a larger limit`,
    );
  }
  const o = region.offset;
  writeU32(dev, o + BigInt(REG.linkState), vfio.VFIO_DEVICE_GFX_LINK_STATE_DOWN);
  libc.pwrite(dev.deviceFd, Buffer.from(edid), o + BigInt(region.edidOffset), `${dev.name} EDID blob`);
  writeU32(dev, o + BigInt(REG.edidSize), edid.length);
  writeU32(dev, o + BigInt(REG.linkState), vfio.VFIO_DEVICE_GFX_LINK_STATE_UP);
  region.edidSize = edid.length;
  region.linkUp = true;
}

/** Reads back the EDID blob from the region (what was written; for checks and tests). */
export function readGuestEdid(dev: VfioDevice, region: GuestEdidRegion): Uint8Array {
  const size = readU32(dev, region.offset + BigInt(REG.edidSize));
  const b = Buffer.alloc(Math.min(size, region.edidMaxSize));
  if (b.length > 0) libc.pread(dev.deviceFd, b, region.offset + BigInt(region.edidOffset), `${dev.name} EDID blob`);
  return new Uint8Array(b);
}
