// Device-free checks of ffi/drm.ts: fourcc/format tables, DRM event and IN_FORMATS blob
// decoding (cross-checked against libdrm's own blob iterator), decoders of libdrm-owned
// structs fed with hand-built memory, and error naming of the native calls on an fd that
// is not a DRM device (a memfd: its ioctls fail with ENOTTY).
//
// Real IN_FORMATS blobs: drop `<name>.bin` files into test/fixtures/in-formats/ (e.g.
// captured in the rig with `writeFileSync(f, drm.getPropertyBlob(fd, inFormatsBlobId))`),
// optionally with `<name>.json` next to it holding the expected map
// ({ "XR24": ["0x0", "0x100000000000001"], ... }). Every fixture is parsed, checked
// against libdrm's drmModeFormatModifierBlobIterNext and, if present, the JSON.
import { describe, it, expect, afterEach } from 'vitest';
import koffi from 'koffi';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { fileURLToPath } from 'node:url';
import * as libc from '../../ffi/libc.js';
import * as drm from '../../ffi/drm.js';

const fds: number[] = [];
function memfd(): number {
  const fd = libc.memfdCreate('guestplane-drm-test', 0);
  fds.push(fd);
  return fd;
}
afterEach(() => {
  while (fds.length) libc.close(fds.pop()!);
});

function sysError(fn: () => unknown): libc.SysError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(libc.SysError);
    return e as libc.SysError;
  }
  throw new Error('expected a SysError');
}

const I915_X_TILED = 0x0100000000000001n;
const I915_Y_TILED = 0x0100000000000002n;
const AMD_SOMETHING = 0x0200000000012345n;

// ---- fourcc and formats ----------------------------------------------------------------------

describe('fourcc', () => {
  it('encodes and names codes like drm_fourcc.h', () => {
    expect(drm.fourcc('XR24')).toBe(0x34325258);
    expect(drm.fourcc('NV12')).toBe(0x3231564e);
    expect(drm.fourcc('R8')).toBe(drm.fourcc('R8  '));
    expect(drm.fourcc('R8')).toBe(0x20203852);
    expect(drm.fourccName(0x34325258)).toBe('XR24');
    expect(drm.fourccName(drm.fourcc('R8'))).toBe('R8');
    expect(drm.fourccName((drm.fourcc('XR24') | drm.DRM_FORMAT_BIG_ENDIAN) >>> 0)).toBe('XR24 BE');
    expect(drm.fourccName(0)).toBe('0x00000000');
    expect(drm.fourccName(0x01020304)).toBe('0x01020304');
  });
  it('rejects codes that are not 1-4 printable characters', () => {
    expect(() => drm.fourcc('')).toThrow(RangeError);
    expect(() => drm.fourcc('XRGB8888')).toThrow(RangeError);
    expect(() => drm.fourcc('X\n24')).toThrow(RangeError);
  });
});

describe('format table', () => {
  const required = [
    'XR24', 'AR24', 'XB24', 'AB24', 'RA24', 'BA24', 'RG24', 'BG24', 'RG16', 'BG16', 'XR30', 'AR30', 'XR48', 'AR48',
    'XB48', 'AB48', 'NV12', 'NV21', 'NV16', 'NV61', 'NV24', 'NV42', 'YU12', 'YV12', 'YU16', 'YV16', 'YU24', 'YV24',
    'P010', 'P012', 'P016', 'R8',
  ];
  it.each(required)('knows %s', (code) => {
    const info = drm.formatInfo(drm.fourcc(code));
    expect(info?.code).toBe(code);
    expect(info!.cpp.length).toBe(info!.planes);
    expect(drm.DRM_FORMAT[info!.name]).toBe(info!.fourcc);
  });
  it('has the layouts the kernel uses', () => {
    const f = (c: string) => drm.formatInfo(drm.fourcc(c))!;
    expect(f('XR24')).toMatchObject({ name: 'XRGB8888', planes: 1, cpp: [4], hsub: 1, vsub: 1, bpp: 32, hasAlpha: false, isYuv: false });
    expect(f('AR30')).toMatchObject({ cpp: [4], bpp: 32, hasAlpha: true });
    expect(f('XR48')).toMatchObject({ cpp: [8], bpp: 64 });
    expect(f('RG24')).toMatchObject({ cpp: [3], bpp: 24 });
    expect(f('RG16')).toMatchObject({ name: 'RGB565', cpp: [2], bpp: 16 });
    expect(f('NV12')).toMatchObject({ planes: 2, cpp: [1, 2], hsub: 2, vsub: 2, bpp: 12, isYuv: true });
    expect(f('NV16')).toMatchObject({ cpp: [1, 2], hsub: 2, vsub: 1, bpp: 16 });
    expect(f('NV24')).toMatchObject({ cpp: [1, 2], hsub: 1, vsub: 1, bpp: 24 });
    expect(f('P010')).toMatchObject({ planes: 2, cpp: [2, 4], hsub: 2, vsub: 2, bpp: 24 });
    expect(f('YU12')).toMatchObject({ name: 'YUV420', planes: 3, cpp: [1, 1, 1], hsub: 2, vsub: 2, bpp: 12 });
    expect(f('YV16')).toMatchObject({ name: 'YVU422', planes: 3, hsub: 2, vsub: 1, bpp: 16 });
    expect(f('YU24')).toMatchObject({ name: 'YUV444', planes: 3, hsub: 1, vsub: 1, bpp: 24 });
    expect(f('R8')).toMatchObject({ cpp: [1], bpp: 8 });
    expect(drm.formatInfo(drm.fourcc('ZZZZ'))).toBeUndefined();
  });
  it('computes plane sizes, rounding subsampled planes up', () => {
    const nv12 = drm.formatInfo(drm.fourcc('NV12'))!;
    expect(drm.planeWidth(nv12, 0, 1921)).toBe(1921);
    expect(drm.planeWidth(nv12, 1, 1921)).toBe(961);
    expect(drm.planeHeight(nv12, 1, 1081)).toBe(541);
    expect(drm.minPitch(nv12, 0, 1921)).toBe(1921);
    expect(drm.minPitch(nv12, 1, 1921)).toBe(1922);
    expect(drm.minPlaneSize(nv12, 1, 1920, 1080, 2048)).toBe(539 * 2048 + 1920);
    const xr24 = drm.formatInfo(drm.fourcc('XR24'))!;
    expect(drm.minPitch(xr24, 0, 1920)).toBe(7680);
    expect(drm.minPlaneSize(xr24, 0, 1920, 1080, 7680)).toBe(7680 * 1080);
    expect(() => drm.minPitch(xr24, 1, 1920)).toThrow(RangeError);
    const p010 = drm.formatInfo(drm.fourcc('P010'))!;
    expect(drm.minPitch(p010, 1, 1920)).toBe(3840);
  });
});

// ---- DRM events ------------------------------------------------------------------------------

function vblankEvent(type: number, userData: bigint, tvSec: number, tvUsec: number, seq: number, crtc: number): Buffer {
  const b = Buffer.alloc(32);
  b.writeUInt32LE(type, 0);
  b.writeUInt32LE(32, 4);
  b.writeBigUInt64LE(userData, 8);
  b.writeUInt32LE(tvSec, 16);
  b.writeUInt32LE(tvUsec, 20);
  b.writeUInt32LE(seq, 24);
  b.writeUInt32LE(crtc, 28);
  return b;
}

describe('parseDrmEvents', () => {
  it('decodes flip-complete, vblank and crtc-sequence events and skips unknown ones', () => {
    const vendor = Buffer.alloc(20);
    vendor.writeUInt32LE(0x80000001, 0);
    vendor.writeUInt32LE(20, 4);
    const seq = Buffer.alloc(32);
    seq.writeUInt32LE(drm.DRM_EVENT_CRTC_SEQUENCE, 0);
    seq.writeUInt32LE(32, 4);
    seq.writeBigUInt64LE(42n, 8);
    seq.writeBigInt64LE(123456789012345n, 16);
    seq.writeBigUInt64LE(77n, 24);
    const buf = Buffer.concat([
      vblankEvent(drm.DRM_EVENT_FLIP_COMPLETE, 0xfedcba9876543210n, 100, 999999, 7, 41),
      vendor,
      vblankEvent(drm.DRM_EVENT_VBLANK, 1n, 101, 5, 8, 0),
      seq,
      Buffer.alloc(13, 0xee), // garbage past `len`
    ]);
    const events = drm.parseDrmEvents(buf, buf.length - 13);
    expect(events).toEqual([
      { type: drm.DRM_EVENT_FLIP_COMPLETE, userData: 0xfedcba9876543210n, tvSec: 100, tvUsec: 999999, sequence: 7, crtcId: 41 },
      { type: drm.DRM_EVENT_VBLANK, userData: 1n, tvSec: 101, tvUsec: 5, sequence: 8, crtcId: 0 },
      { type: drm.DRM_EVENT_CRTC_SEQUENCE, userData: 42n, timeNs: 123456789012345n, sequence: 77n },
    ]);
  });
  it('returns nothing for an empty read', () => {
    expect(drm.parseDrmEvents(Buffer.alloc(64), 0)).toEqual([]);
  });
  it('rejects truncated and malformed events', () => {
    const ev = vblankEvent(drm.DRM_EVENT_FLIP_COMPLETE, 1n, 0, 0, 0, 0);
    expect(() => drm.parseDrmEvents(ev, 31)).toThrow(RangeError);
    expect(() => drm.parseDrmEvents(ev, 4)).toThrow(RangeError);
    expect(() => drm.parseDrmEvents(ev, 33)).toThrow(RangeError);
    const zero = Buffer.alloc(16); // length 0 would loop forever
    expect(() => drm.parseDrmEvents(zero)).toThrow(RangeError);
    const short = Buffer.alloc(16);
    short.writeUInt32LE(drm.DRM_EVENT_FLIP_COMPLETE, 0);
    short.writeUInt32LE(16, 4);
    expect(() => drm.parseDrmEvents(short)).toThrow(/vblank event of 16 bytes/);
  });
});

// ---- IN_FORMATS --------------------------------------------------------------------------------

interface BlobModifier {
  modifier: bigint;
  offset: number;
  formats: bigint;
}
/** Lays a blob out as the kernel's create_in_format_blob does. */
function inFormatsBlob(formats: number[], modifiers: BlobModifier[]): Buffer {
  const formatsOffset = 24;
  const modifiersOffset = (formatsOffset + 4 * formats.length + 7) & ~7;
  const b = Buffer.alloc(modifiersOffset + 24 * modifiers.length);
  b.writeUInt32LE(drm.FORMAT_BLOB_CURRENT, 0);
  b.writeUInt32LE(0, 4);
  b.writeUInt32LE(formats.length, 8);
  b.writeUInt32LE(formatsOffset, 12);
  b.writeUInt32LE(modifiers.length, 16);
  b.writeUInt32LE(modifiersOffset, 20);
  formats.forEach((f, i) => b.writeUInt32LE(f, formatsOffset + 4 * i));
  modifiers.forEach((m, i) => {
    const o = modifiersOffset + 24 * i;
    b.writeBigUInt64LE(m.formats, o);
    b.writeUInt32LE(m.offset, o + 8);
    b.writeBigUInt64LE(m.modifier, o + 16);
  });
  return b;
}

// libdrm's iterator over (format, modifier) pairs, as an independent decoder.
const iterNext = drm.libdrm.func('bool drmModeFormatModifierBlobIterNext(const void *blob, void *iter)');
function libdrmPairs(blob: Buffer): Map<number, bigint[]> {
  const data = koffi.alloc('uint8_t', Math.max(blob.length, 1));
  const res = koffi.alloc(drm.drmModePropertyBlobRes, 1);
  try {
    new Uint8Array(koffi.view(data, blob.length)).set(blob);
    koffi.encode(res, drm.drmModePropertyBlobRes, { id: 0, length: blob.length, data });
    const iter = Buffer.alloc(24); // drmModeFormatModifierIterator {fmt_idx, mod_idx, fmt, mod}
    const out = new Map<number, bigint[]>();
    while (iterNext(res, iter)) {
      const fmt = iter.readUInt32LE(8);
      const mod = iter.readBigUInt64LE(16);
      const list = out.get(fmt) ?? [];
      if (!list.includes(mod)) list.push(mod);
      out.set(fmt, list);
    }
    return out;
  } finally {
    koffi.free(res);
    koffi.free(data);
  }
}
/**
 * Whether libdrm 2.4.114's iterator can be trusted on this blob: it tests format #n of a
 * window with an int `1 << (n - offset)`, wrong from n - offset = 31 on (see below).
 */
function libdrmTrustworthy(blob: Buffer): boolean {
  const countFormats = blob.readUInt32LE(8);
  const countModifiers = blob.readUInt32LE(16);
  const at = blob.readUInt32LE(20);
  for (let i = 0; i < countModifiers; i++) {
    if (countFormats > blob.readUInt32LE(at + 24 * i + 8) + 31) return false;
  }
  return true;
}
function withoutEmpty(m: Map<number, bigint[]>): Map<number, bigint[]> {
  return new Map([...m].filter(([, mods]) => mods.length > 0));
}

describe('parseInFormats', () => {
  const XR24 = drm.fourcc('XR24');
  const AR24 = drm.fourcc('AR24');
  const NV12 = drm.fourcc('NV12');
  const RG16 = drm.fourcc('RG16');

  it('maps each format to the modifiers whose window covers it', () => {
    const blob = inFormatsBlob(
      [XR24, AR24, NV12, RG16],
      [
        { modifier: drm.DRM_FORMAT_MOD_LINEAR, offset: 0, formats: 0b0111n },
        { modifier: I915_X_TILED, offset: 0, formats: 0b0011n },
        { modifier: I915_Y_TILED, offset: 0, formats: 0b0101n },
      ],
    );
    const m = drm.parseInFormats(blob);
    expect([...m.keys()]).toEqual([XR24, AR24, NV12, RG16]);
    expect(m.get(XR24)).toEqual([drm.DRM_FORMAT_MOD_LINEAR, I915_X_TILED, I915_Y_TILED]);
    expect(m.get(AR24)).toEqual([drm.DRM_FORMAT_MOD_LINEAR, I915_X_TILED]);
    expect(m.get(NV12)).toEqual([drm.DRM_FORMAT_MOD_LINEAR, I915_Y_TILED]);
    expect(m.get(RG16)).toEqual([]); // listed, but no modifier names it
    expect(drm.parseInFormats(new Uint8Array(blob))).toEqual(m);
    expect(libdrmTrustworthy(blob)).toBe(true);
    expect(withoutEmpty(m)).toEqual(libdrmPairs(blob));
  });

  it('honours offset windows over more than 64 formats', () => {
    const formats = Array.from({ length: 100 }, (_, i) => (0x30303030 + i) >>> 0);
    const blob = inFormatsBlob(formats, [
      { modifier: drm.DRM_FORMAT_MOD_LINEAR, offset: 0, formats: 0xffffffffffffffffn },
      { modifier: drm.DRM_FORMAT_MOD_LINEAR, offset: 64, formats: (1n << 36n) - 1n },
      // bits 0 and 35 of a window at 40: formats 40 and 75
      { modifier: AMD_SOMETHING, offset: 40, formats: (1n << 35n) | 1n },
    ]);
    const m = drm.parseInFormats(blob);
    expect(m.size).toBe(100);
    expect(libdrmTrustworthy(blob)).toBe(false);
    for (let i = 0; i < 100; i++) {
      const want = i === 40 || i === 75 ? [drm.DRM_FORMAT_MOD_LINEAR, AMD_SOMETHING] : [drm.DRM_FORMAT_MOD_LINEAR];
      expect(m.get(formats[i]), `format #${i}`).toEqual(want);
    }
  });

  it('reads mask bits 31-63, which libdrm 2.4.114 gets wrong', () => {
    // libdrm's iterator tests `mod->formats & (1 << n)` with an int 1: 1 << 31 is negative
    // and sign-extends over bits 31-63, 1 << 35 is undefined (x86: 1 << 3). So format #31
    // "has" X_TILED and #35 does not. Planes with more than 32 formats exist.
    const formats = Array.from({ length: 40 }, (_, i) => (0x41414100 + i) >>> 0);
    const blob = inFormatsBlob(formats, [
      { modifier: drm.DRM_FORMAT_MOD_LINEAR, offset: 0, formats: (1n << 40n) - 1n },
      { modifier: I915_X_TILED, offset: 0, formats: 1n << 35n },
    ]);
    const ours = drm.parseInFormats(blob);
    expect(ours.get(formats[35])).toEqual([drm.DRM_FORMAT_MOD_LINEAR, I915_X_TILED]);
    expect(ours.get(formats[3])).toEqual([drm.DRM_FORMAT_MOD_LINEAR]);
    expect(libdrmTrustworthy(blob)).toBe(false);
    const theirs = libdrmPairs(blob);
    // Either a fixed libdrm (agrees with us) or the known int-shift bug, nothing else.
    if (!isDeepStrictEqual(withoutEmpty(ours), theirs)) {
      expect(theirs.get(formats[35])).toEqual([drm.DRM_FORMAT_MOD_LINEAR]);
      expect(theirs.get(formats[31])).toEqual([drm.DRM_FORMAT_MOD_LINEAR, I915_X_TILED]);
    }
  });

  it('rejects malformed blobs', () => {
    expect(() => drm.parseInFormats(Buffer.alloc(10))).toThrow(RangeError);
    const v0 = inFormatsBlob([XR24], []);
    v0.writeUInt32LE(0, 0);
    expect(() => drm.parseInFormats(v0)).toThrow(/version 0/);
    const overrun = inFormatsBlob([XR24], [{ modifier: 0n, offset: 0, formats: 1n }]);
    expect(() => drm.parseInFormats(overrun.subarray(0, overrun.length - 1))).toThrow(/overrun/);
    const stray = inFormatsBlob([XR24, AR24], [{ modifier: 0n, offset: 0, formats: 0b100n }]);
    expect(() => drm.parseInFormats(stray)).toThrow(/format #2 of 2/);
  });

  const fixtureDir = fileURLToPath(new URL('../fixtures/in-formats/', import.meta.url));
  const fixtures = existsSync(fixtureDir) ? readdirSync(fixtureDir).filter((f) => f.endsWith('.bin')).sort() : [];
  it.skipIf(fixtures.length > 0)('has no captured blobs in test/fixtures/in-formats/ yet', () => {});
  it.each(fixtures)('parses captured blob %s like libdrm does', (file) => {
    const blob = readFileSync(join(fixtureDir, file));
    const m = drm.parseInFormats(blob);
    expect(m.size).toBeGreaterThan(0);
    if (libdrmTrustworthy(blob)) expect(withoutEmpty(m)).toEqual(libdrmPairs(blob));
    for (const [fmt, mods] of m) {
      expect(drm.fourccName(fmt), `format 0x${fmt.toString(16)}`).toMatch(/^[\x20-\x7e]{1,4}( BE)?$/);
      expect(new Set(mods).size).toBe(mods.length);
      expect(mods).not.toContain(drm.DRM_FORMAT_MOD_INVALID);
    }
    const expected = join(fixtureDir, file.replace(/\.bin$/, '.json'));
    if (existsSync(expected)) {
      const want = JSON.parse(readFileSync(expected, 'utf8')) as Record<string, string[]>;
      const got = Object.fromEntries([...m].map(([f, mods]) => [drm.fourccName(f), mods.map((x) => `0x${x.toString(16)}`)]));
      expect(got).toEqual(want);
    }
  });
});

// ---- property flags, connector names, modes ------------------------------------------------------

describe('decodePropFlags', () => {
  it('separates the type from IMMUTABLE and ATOMIC', () => {
    expect(drm.decodePropFlags(drm.DRM_MODE_PROP_RANGE)).toEqual({ type: 'range', immutable: false, atomic: false });
    expect(drm.decodePropFlags(drm.DRM_MODE_PROP_SIGNED_RANGE | drm.DRM_MODE_PROP_ATOMIC)).toEqual({
      type: 'signed_range',
      immutable: false,
      atomic: true,
    });
    expect(drm.decodePropFlags(drm.DRM_MODE_PROP_ENUM | drm.DRM_MODE_PROP_IMMUTABLE).type).toBe('enum');
    expect(drm.decodePropFlags(drm.DRM_MODE_PROP_BITMASK).type).toBe('bitmask');
    expect(drm.decodePropFlags(drm.DRM_MODE_PROP_BLOB | drm.DRM_MODE_PROP_IMMUTABLE)).toEqual({
      type: 'blob',
      immutable: true,
      atomic: false,
    });
    expect(drm.decodePropFlags(drm.DRM_MODE_PROP_OBJECT | drm.DRM_MODE_PROP_ATOMIC)).toEqual({
      type: 'object',
      immutable: false,
      atomic: true,
    });
    // 0x80000000 as the kernel hands it over (unsigned) and as a JS int32
    expect(drm.decodePropFlags(0x80000000 | drm.DRM_MODE_PROP_OBJECT).atomic).toBe(true);
    expect(drm.decodePropFlags(drm.DRM_MODE_PROP_RANGE | drm.DRM_MODE_PROP_ENUM).type).toBe('unknown');
  });
});

describe('connector names', () => {
  const libdrmName = drm.libdrm.func('const char *drmModeGetConnectorTypeName(uint32_t type)');
  it('spells every type like libdrm', () => {
    for (let t = 0; t <= drm.DRM_MODE_CONNECTOR_USB; t++) expect(drm.connectorTypeName(t)).toBe(libdrmName(t));
    expect(drm.DRM_CONNECTOR_TYPE_NAMES.length).toBe(drm.DRM_MODE_CONNECTOR_USB + 1);
  });
  it('builds kernel-style names', () => {
    expect(drm.connectorName(drm.DRM_MODE_CONNECTOR_VIRTUAL, 1)).toBe('Virtual-1');
    expect(drm.connectorName(drm.DRM_MODE_CONNECTOR_WRITEBACK, 1)).toBe('Writeback-1');
    expect(drm.connectorName(drm.DRM_MODE_CONNECTOR_HDMIA, 2)).toBe('HDMI-A-2');
    expect(drm.connectorName(99, 1)).toBe('Unknown99-1');
  });
});

const MODE_1080P: drm.DrmModeInfo = {
  clock: 148500,
  hdisplay: 1920,
  hsync_start: 2008,
  hsync_end: 2052,
  htotal: 2200,
  hskew: 0,
  vdisplay: 1080,
  vsync_start: 1084,
  vsync_end: 1089,
  vtotal: 1125,
  vscan: 0,
  vrefresh: 60,
  flags: drm.DRM_MODE_FLAG_PHSYNC | drm.DRM_MODE_FLAG_PVSYNC,
  type: drm.DRM_MODE_TYPE_PREFERRED | drm.DRM_MODE_TYPE_DRIVER,
  name: '1920x1080',
};

describe('mode info', () => {
  it('encodes struct drm_mode_modeinfo for MODE_ID blobs and decodes it back', () => {
    const b = drm.encodeModeInfo(MODE_1080P);
    expect(b.length).toBe(68);
    expect(b.readUInt32LE(0)).toBe(148500);
    expect(b.readUInt16LE(4)).toBe(1920);
    expect(b.readUInt16LE(14)).toBe(1080);
    expect(b.readUInt32LE(24)).toBe(60);
    expect(b.subarray(36, 46).toString('latin1')).toBe('1920x1080\0');
    expect(drm.decodeModeInfo(b)).toEqual(MODE_1080P);
  });
  it('refuses names that do not fit and short buffers', () => {
    expect(() => drm.encodeModeInfo({ ...MODE_1080P, name: 'x'.repeat(32) })).toThrow(RangeError);
    expect(() => drm.decodeModeInfo(Buffer.alloc(67))).toThrow(RangeError);
  });
});

// ---- decoders of libdrm-owned memory, fed hand-built structs ----------------------------------------

describe('libdrm struct decoders', () => {
  const allocs: unknown[] = [];
  function mem(type: string | koffi.IKoffiCType, values: unknown[]): unknown {
    const p = koffi.alloc(type, values.length);
    allocs.push(p);
    koffi.encode(p, koffi.array(type, values.length), values);
    return p;
  }
  function struct(type: koffi.IKoffiCType, value: Record<string, unknown>): unknown {
    const p = koffi.alloc(type, 1);
    allocs.push(p);
    koffi.encode(p, type, value);
    return p;
  }
  afterEach(() => {
    while (allocs.length) koffi.free(allocs.pop());
  });

  it('decodes drmVersion', () => {
    const name = mem('char', [...Buffer.from('vkms\0')]);
    const date = mem('char', [...Buffer.from('20180514\0')]);
    const v = struct(drm.drmVersion, {
      version_major: 1,
      version_minor: 0,
      version_patchlevel: 0,
      name_len: 4,
      name,
      date_len: 8,
      date,
      desc_len: 0,
      desc: null,
    });
    expect(drm._decode.version(v)).toEqual({ name: 'vkms', date: '20180514', desc: '', major: 1, minor: 0, patch: 0 });
  });

  it('decodes drmModeConnector with its modes, properties and encoders', () => {
    const second = { ...MODE_1080P, hdisplay: 1280, vdisplay: 720, name: '1280x720', type: drm.DRM_MODE_TYPE_DRIVER };
    const p = struct(drm.drmModeConnector, {
      connector_id: 35,
      encoder_id: 34,
      connector_type: drm.DRM_MODE_CONNECTOR_VIRTUAL,
      connector_type_id: 1,
      connection: drm.DRM_MODE_CONNECTED,
      mmWidth: 520,
      mmHeight: 290,
      subpixel: drm.DRM_MODE_SUBPIXEL_NONE,
      count_modes: 2,
      modes: mem(drm.drm_mode_modeinfo, [MODE_1080P, second]),
      count_props: 3,
      props: mem('uint32_t', [1, 2, 20]),
      prop_values: mem('uint64_t', [0n, 0xffffffffffffffffn, 7n]),
      count_encoders: 1,
      encoders: mem('uint32_t', [34]),
    });
    expect(drm._decode.connector(p)).toEqual({
      connector_id: 35,
      encoder_id: 34,
      connector_type: drm.DRM_MODE_CONNECTOR_VIRTUAL,
      connector_type_id: 1,
      name: 'Virtual-1',
      connection: drm.DRM_MODE_CONNECTED,
      mmWidth: 520,
      mmHeight: 290,
      subpixel: drm.DRM_MODE_SUBPIXEL_NONE,
      modes: [MODE_1080P, second],
      props: [1, 2, 20],
      prop_values: [0n, 0xffffffffffffffffn, 7n],
      encoders: [34],
    });
  });

  it('decodes empty lists behind NULL pointers', () => {
    const p = struct(drm.drmModeConnector, {
      connector_id: 40,
      encoder_id: 0,
      connector_type: drm.DRM_MODE_CONNECTOR_WRITEBACK,
      connector_type_id: 1,
      connection: drm.DRM_MODE_UNKNOWNCONNECTION,
      mmWidth: 0,
      mmHeight: 0,
      subpixel: drm.DRM_MODE_SUBPIXEL_UNKNOWN,
      count_modes: 0,
      modes: null,
      count_props: 0,
      props: null,
      prop_values: null,
      count_encoders: 0,
      encoders: null,
    });
    expect(drm._decode.connector(p)).toMatchObject({ name: 'Writeback-1', modes: [], props: [], prop_values: [], encoders: [] });
  });

  it('decodes drmModeRes, drmModeCrtc, drmModePlane and drmModeEncoder', () => {
    const res = struct(drm.drmModeRes, {
      count_fbs: 0,
      fbs: null,
      count_crtcs: 2,
      crtcs: mem('uint32_t', [31, 32]),
      count_connectors: 1,
      connectors: mem('uint32_t', [35]),
      count_encoders: 1,
      encoders: mem('uint32_t', [34]),
      min_width: 1,
      max_width: 8192,
      min_height: 1,
      max_height: 8192,
    });
    expect(drm._decode.resources(res)).toEqual({
      fbs: [],
      crtcs: [31, 32],
      connectors: [35],
      encoders: [34],
      min_width: 1,
      max_width: 8192,
      min_height: 1,
      max_height: 8192,
    });
    const crtc = struct(drm.drmModeCrtc, {
      crtc_id: 31,
      buffer_id: 50,
      x: 0,
      y: 0,
      width: 1920,
      height: 1080,
      mode_valid: 1,
      mode: MODE_1080P,
      gamma_size: 1024,
    });
    expect(drm._decode.crtc(crtc)).toEqual({
      crtc_id: 31,
      buffer_id: 50,
      x: 0,
      y: 0,
      width: 1920,
      height: 1080,
      mode_valid: true,
      mode: MODE_1080P,
      gamma_size: 1024,
    });
    const plane = struct(drm.drmModePlane, {
      count_formats: 2,
      formats: mem('uint32_t', [drm.fourcc('XR24'), drm.fourcc('AR24')]),
      plane_id: 33,
      crtc_id: 31,
      fb_id: 50,
      crtc_x: 0,
      crtc_y: 0,
      x: 0,
      y: 0,
      possible_crtcs: 0b1,
      gamma_size: 0,
    });
    expect(drm._decode.plane(plane)).toMatchObject({ plane_id: 33, possible_crtcs: 1, formats: [drm.fourcc('XR24'), drm.fourcc('AR24')] });
    const enc = struct(drm.drmModeEncoder, { encoder_id: 34, encoder_type: drm.DRM_MODE_ENCODER_VIRTUAL, crtc_id: 31, possible_crtcs: 1, possible_clones: 0 });
    expect(drm._decode.encoder(enc)).toEqual({ encoder_id: 34, encoder_type: 5, crtc_id: 31, possible_crtcs: 1, possible_clones: 0 });
    const pres = struct(drm.drmModePlaneRes, { count_planes: 3, planes: mem('uint32_t', [33, 36, 37]) });
    expect(drm._decode.planeResources(pres)).toEqual([33, 36, 37]);
  });

  it('decodes properties, object property lists, blobs and lessee lists', () => {
    const prop = struct(drm.drmModePropertyRes, {
      prop_id: 8,
      flags: drm.DRM_MODE_PROP_ENUM | drm.DRM_MODE_PROP_IMMUTABLE,
      name: 'type',
      count_values: 3,
      values: mem('uint64_t', [0n, 1n, 2n]),
      count_enums: 3,
      enums: mem(drm.drm_mode_property_enum, [
        { value: 0n, name: 'Overlay' },
        { value: 1n, name: 'Primary' },
        { value: 2n, name: 'Cursor' },
      ]),
      count_blobs: 0,
      blob_ids: null,
    });
    expect(drm._decode.property(prop)).toEqual({
      prop_id: 8,
      flags: drm.DRM_MODE_PROP_ENUM | drm.DRM_MODE_PROP_IMMUTABLE,
      name: 'type',
      values: [0n, 1n, 2n],
      enums: [
        { name: 'Overlay', value: 0n },
        { name: 'Primary', value: 1n },
        { name: 'Cursor', value: 2n },
      ],
      blob_ids: [],
    });
    const signed = struct(drm.drmModePropertyRes, {
      prop_id: 9,
      flags: drm.DRM_MODE_PROP_SIGNED_RANGE | drm.DRM_MODE_PROP_ATOMIC,
      name: 'CRTC_X',
      count_values: 2,
      values: mem('uint64_t', [BigInt.asUintN(64, -2147483648n), 2147483647n]),
      count_enums: 0,
      enums: null,
      count_blobs: 0,
      blob_ids: null,
    });
    const crtcX = drm._decode.property(signed);
    expect(crtcX.values.map((v) => BigInt.asIntN(64, v))).toEqual([-2147483648n, 2147483647n]);
    expect(drm.decodePropFlags(crtcX.flags)).toEqual({ type: 'signed_range', immutable: false, atomic: true });

    const objProps = struct(drm.drmModeObjectProperties, {
      count_props: 2,
      props: mem('uint32_t', [8, 9]),
      prop_values: mem('uint64_t', [1n, 0x1234567890abcdefn]),
    });
    expect(drm._decode.objectProperties(objProps)).toEqual({ props: [8, 9], values: [1n, 0x1234567890abcdefn] });

    const bytes = drm.encodeModeInfo(MODE_1080P);
    const blob = struct(drm.drmModePropertyBlobRes, { id: 60, length: bytes.length, data: mem('uint8_t', [...bytes]) });
    const copy = drm._decode.propertyBlob(blob);
    expect(copy.equals(bytes)).toBe(true);
    expect(drm._decode.propertyBlob(struct(drm.drmModePropertyBlobRes, { id: 61, length: 0, data: null })).length).toBe(0);

    const list = mem('uint32_t', [3, 101, 102, 103]); // { count = 3, lessees[] }
    expect(drm._decode.objectList(list)).toEqual([101, 102, 103]);
    expect(drm._decode.objectList(mem('uint32_t', [0]))).toEqual([]);
  });
});

// ---- native calls on a non-DRM fd ----------------------------------------------------------------

describe('libdrm calls on a non-DRM fd', () => {
  it('name the call, the object and the errno', () => {
    const fd = memfd();
    const v = sysError(() => drm.getVersion(fd));
    expect(v.call).toBe('drmGetVersion');
    expect(v.code).toBe('ENOTTY');
    expect(v.object).toBe(`fd ${fd}`);
    expect(sysError(() => drm.getCap(fd, drm.DRM_CAP_DUMB_BUFFER)).message).toBe(`drmGetCap(fd ${fd} cap 0x1) failed: ENOTTY`);
    expect(sysError(() => drm.setClientCap(fd, drm.DRM_CLIENT_CAP_ATOMIC, 1)).call).toBe('drmSetClientCap');
    expect(sysError(() => drm.getResources(fd)).call).toBe('drmModeGetResources');
    expect(sysError(() => drm.getConnector(fd, 35)).object).toBe(`fd ${fd} connector 35`);
    expect(sysError(() => drm.getPlane(fd, 33)).code).toBe('ENOTTY');
    expect(sysError(() => drm.objectGetProperties(fd, 33, drm.DRM_MODE_OBJECT_PLANE)).object).toBe(
      `fd ${fd} object 33 type 0xeeeeeeee`,
    );
    expect(sysError(() => drm.getPropertyBlob(fd, 60)).call).toBe('drmModeGetPropertyBlob');
    expect(sysError(() => drm.createPropertyBlob(fd, Buffer.alloc(68))).code).toBe('ENOTTY');
    expect(sysError(() => drm.rmFB(fd, 50)).call).toBe('drmModeRmFB');
    expect(sysError(() => drm.primeFDToHandle(fd, 99)).call).toBe('drmPrimeFDToHandle');
    expect(sysError(() => drm.primeHandleToFD(fd, 1)).call).toBe('drmPrimeHandleToFD');
    expect(sysError(() => drm.createLease(fd, [31, 35, 33])).object).toBe(`fd ${fd} objects [31,35,33]`);
    expect(sysError(() => drm.listLessees(fd)).call).toBe('drmModeListLessees');
    expect(sysError(() => drm.revokeLease(fd, 1)).call).toBe('drmModeRevokeLease');
    expect(sysError(() => drm.setMaster(fd)).call).toBe('drmSetMaster');
    expect(drm.getDeviceNameFromFd2(fd)).toBeNull();
    const bad = sysError(() => drm.getVersion(-1));
    expect(bad.code).toBe('EBADF');
  });

  it('reports addFB2WithModifiers with size and format', () => {
    const fd = memfd();
    const e = sysError(() =>
      drm.addFB2WithModifiers(fd, 1920, 1080, drm.fourcc('XR24'), [1], [7680], [0], [drm.DRM_FORMAT_MOD_LINEAR]),
    );
    expect(e.message).toBe(`drmModeAddFB2WithModifiers(fd ${fd} 1920x1080 XR24) failed: ENOTTY`);
    expect(() => drm.addFB2WithModifiers(fd, 1, 1, 0, [1, 2, 3, 4, 5], [], [], null)).toThrow(RangeError);
  });

  it('uses raw ioctls for dumb buffers and GEM close', () => {
    const fd = memfd();
    const e = sysError(() => drm.createDumb(fd, 64, 64, 32));
    expect(e.call).toBe('ioctl DRM_IOCTL_MODE_CREATE_DUMB');
    expect(e.code).toBe('ENOTTY');
    expect(sysError(() => drm.mapDumb(fd, 1)).call).toBe('ioctl DRM_IOCTL_MODE_MAP_DUMB');
    expect(sysError(() => drm.destroyDumb(fd, 1)).call).toBe('ioctl DRM_IOCTL_MODE_DESTROY_DUMB');
    expect(sysError(() => drm.gemClose(fd, 1)).call).toBe('ioctl DRM_IOCTL_GEM_CLOSE');
  });

  it('says when CLOSEFB is missing', () => {
    const fd = memfd();
    const e = sysError(() => drm.closeFB(fd, 50));
    expect(e.call).toBe('drmModeCloseFB');
    expect(e.message).toMatch(/ENOTTY \(kernel lacks DRM_IOCTL_MODE_CLOSEFB/);
    expect(drm.probeCloseFB(fd)).toBe(false);
  });

  it('names modifiers through libdrm', () => {
    expect(drm.formatModifierName(drm.DRM_FORMAT_MOD_LINEAR)).toBe('LINEAR');
    expect(drm.formatModifierName(I915_X_TILED)).toBe('X_TILED');
  });
});

describe('atomic requests', () => {
  it('add properties, move the cursor and name commit failures', () => {
    const req = drm.atomicAlloc();
    try {
      expect(drm.atomicGetCursor(req)).toBe(0);
      expect(drm.atomicAddProperty(req, 33, 10, 50)).toBe(1);
      expect(drm.atomicAddProperty(req, 33, 11, -10)).toBe(2); // CRTC_X < 0
      expect(drm.atomicAddProperty(req, 33, 12, 0xffffffffffffffffn)).toBe(3);
      drm.atomicSetCursor(req, 1);
      expect(drm.atomicGetCursor(req)).toBe(1);
      const e = sysError(() =>
        drm.atomicCommit(-1, req, drm.DRM_MODE_ATOMIC_NONBLOCK | drm.DRM_MODE_PAGE_FLIP_EVENT, 0xdeadbeefcafef00dn),
      );
      expect(e.message).toBe('drmModeAtomicCommit(fd -1 flags 0x201) failed: EBADF');
      expect(() => drm.atomicCommit(-1, req, 0, -1n)).toThrow(RangeError);
      expect(() => drm.atomicCommit(-1, req, 0, 1n << 64n)).toThrow(RangeError);
    } finally {
      drm.atomicFree(req);
    }
  });
  it('an empty request never reaches the kernel (libdrm returns 0)', () => {
    const req = drm.atomicAlloc();
    try {
      expect(() => drm.atomicCommit(-1, req, drm.DRM_MODE_ATOMIC_TEST_ONLY)).not.toThrow();
    } finally {
      drm.atomicFree(req);
    }
  });
});

describe('ioctl numbers', () => {
  it('match the kernel uapi', () => {
    expect(drm.DRM_IOCTL_GEM_CLOSE).toBe(0x40086409);
    expect(drm.DRM_IOCTL_SET_CLIENT_CAP).toBe(0x4010640d);
    expect(drm.DRM_IOCTL_MODE_CREATE_DUMB).toBe(0xc02064b2);
    expect(drm.DRM_IOCTL_MODE_MAP_DUMB).toBe(0xc01064b3);
    expect(drm.DRM_IOCTL_MODE_DESTROY_DUMB).toBe(0xc00464b4);
    // Not in bookworm's headers, so not in ABI: DRM_IOWR(0xD0, struct drm_mode_closefb) from Linux 6.8.
    expect(drm.DRM_IOCTL_MODE_CLOSEFB).toBe(0xc00864d0);
    expect(koffi.sizeof(drm.drm_mode_closefb)).toBe(8);
  });
});
