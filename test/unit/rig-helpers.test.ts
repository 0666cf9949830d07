// The rig helpers' parsers and pixel tools, on output captured from the rig kernel
// (test/fixtures: modetest 2.4.114 and 7.3.4 debugfs, see each test for how it was made).
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseModetest } from '../integration/helpers/modetest.js';
import { parseFramebuffers, parseState, parseClients } from '../integration/helpers/debugfs.js';
import { comparePixels, countNotColour, describeCompare, encodePng, readPng, toRgba } from '../integration/helpers/png.js';
import { fourcc } from '../../ffi/drm.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');
const fixture = (name: string) => readFileSync(join(fixtures, name), 'utf8');

const VKMS_FORMATS = 'AR24 AB24 BA24 RA24 XR24 XB24 RG24 BG24 XR48 XB48 AR48 AB48 RG16 BG16 NV12 NV16 NV24 NV21 NV61 NV42 YU12 YU16 YU24 YV12 YV16 YV24 P010 P012 P016 R1 R2 R4 R8'.split(' ');

describe('modetest parser', () => {
  it('reads the default vkms device (modetest -M vkms -D vkms -c -e -p)', () => {
    const d = parseModetest(fixture('modetest-vkms-default.txt'));
    expect(d.encoders.map((e) => e.id)).toEqual([86, 92]);
    expect(d.encoders[0]).toEqual({ id: 86, crtc: 0, type: 'Virtual', possibleCrtcs: 1, possibleClones: 3 });
    expect(d.connectors).toHaveLength(1); // modetest never shows the writeback connector
    const c = d.connectors[0];
    expect(c).toMatchObject({ id: 93, encoder: 0, status: 'connected', name: 'Virtual-1', mmWidth: 0, mmHeight: 0, modeCount: 34, encoders: [92] });
    expect(c.modes).toHaveLength(34);
    expect(c.modes[0]).toEqual({
      index: 0, name: '1024x768', refresh: 60, hdisplay: 1024, hsyncStart: 1048, hsyncEnd: 1184, htotal: 1344,
      vdisplay: 768, vsyncStart: 771, vsyncEnd: 777, vtotal: 806, clock: 65000, flags: ['nhsync', 'nvsync'], type: ['preferred', 'driver'],
    });
    expect(c.modes[33]).toMatchObject({ index: 33, name: '640x480', refresh: 59.94, clock: 25175 });
    // Legacy (non-atomic) properties only.
    expect(c.props.map((p) => p.name)).toEqual(['DPMS', 'link-status', 'non-desktop', 'TILE']);
    expect(c.props[0]).toMatchObject({ id: 2, flags: 'enum', enums: { On: '0', Standby: '1', Suspend: '2', Off: '3' }, value: '0' });
    expect(d.crtcs).toHaveLength(1);
    expect(d.crtcs[0]).toMatchObject({ id: 85, fb: 0, x: 0, y: 0, width: 0, height: 0, mode: null });
    expect(d.planes.map((p) => p.id)).toEqual([35, 40, 45, 50, 55, 60, 65, 70, 75, 80]);
    for (const p of d.planes) {
      expect(p.possibleCrtcs).toBe(1);
      expect(p.formats).toEqual(VKMS_FORMATS);
      expect(Object.keys(p.inFormats!)).toEqual(VKMS_FORMATS);
      expect(Object.values(p.inFormats!).every((m) => m.length === 1 && m[0] === 'LINEAR')).toBe(true);
    }
    const type = (id: number) => d.planes.find((p) => p.id === id)!.props.find((p) => p.name === 'type')!;
    expect(type(35)).toMatchObject({ id: 9, flags: 'immutable enum', enums: { Overlay: '0', Primary: '1', Cursor: '2' }, value: '1' });
    expect(type(80).value).toBe('2');
    expect(d.planes.filter((p) => p.props.find((q) => q.name === 'type')!.value === '0')).toHaveLength(8);
    const inFormats = d.planes[0].props.find((p) => p.name === 'IN_FORMATS')!;
    expect(inFormats.flags).toBe('immutable blob');
    expect(inFormats.value.startsWith('01000000000000002100000018000000')).toBe(true);
    const rotation = d.planes[0].props.find((p) => p.name === 'rotation')!;
    expect(rotation).toMatchObject({ flags: 'bitmask', value: '1' });
    expect(rotation.enums).toEqual({ 'rotate-0': '0x1', 'rotate-90': '0x2', 'rotate-180': '0x4', 'rotate-270': '0x8', 'reflect-x': '0x10', 'reflect-y': '0x20' });
    const enc = d.planes[0].props.find((p) => p.name === 'COLOR_ENCODING')!;
    expect(enc.enums).toEqual({ 'ITU-R BT.601 YCbCr': '0', 'ITU-R BT.709 YCbCr': '1', 'ITU-R BT.2020 YCbCr': '2' });
    expect(d.framebuffers).toBeNull();
  });

  it('reads atomic properties with -a', () => {
    const d = parseModetest(fixture('modetest-vkms-default-atomic.txt'));
    expect(d.crtcs[0].props.map((p) => p.name)).toEqual(['ACTIVE', 'MODE_ID', 'OUT_FENCE_PTR', 'VRR_ENABLED', 'GAMMA_LUT', 'GAMMA_LUT_SIZE', 'BACKGROUND_COLOR']);
    expect(d.crtcs[0].props.find((p) => p.name === 'BACKGROUND_COLOR')).toMatchObject({ flags: 'range', values: ['0', '18446744073709551615'], value: '18446462598732840960' });
    expect(d.connectors[0].props.map((p) => p.name)).toContain('CRTC_ID');
    const primary = d.planes[0];
    expect(primary.props.map((p) => p.name)).toEqual([
      'type', 'FB_ID', 'IN_FENCE_FD', 'CRTC_ID', 'CRTC_X', 'CRTC_Y', 'CRTC_W', 'CRTC_H', 'SRC_X', 'SRC_Y', 'SRC_W', 'SRC_H', 'IN_FORMATS', 'rotation', 'COLOR_ENCODING', 'COLOR_RANGE',
    ]);
    expect(primary.props.find((p) => p.name === 'CRTC_X')).toMatchObject({ flags: 'signed range', values: ['-2147483648', '2147483647'], value: '0' });
    expect(primary.props.find((p) => p.name === 'FB_ID')).toMatchObject({ flags: 'object', value: '0' });
  });

  it('reads a lit 2-CRTC ConfigFS device with a disconnected connector (-a -c -e -p -f)', () => {
    // Made with: ConfigFS gp3 (2 CRTCs with writeback, a shared overlay, a cursor on crtc0),
    // con1 status=2, `modetest -M vkms -D gp3 -s 68:640x480` running in the background.
    const d = parseModetest(fixture('modetest-configfs-2crtc-lit-atomic.txt'));
    expect(d.encoders.map((e) => [e.id, e.crtc, e.possibleCrtcs, e.possibleClones])).toEqual([
      [56, 0, 1, 5], [63, 0, 2, 10], [66, 55, 1, 5], [67, 0, 2, 10],
    ]);
    expect(d.connectors.map((c) => [c.id, c.name, c.status, c.encoder, c.modeCount, c.modes.length, c.encoders])).toEqual([
      [68, 'Virtual-2', 'connected', 66, 34, 34, [66]],
      [69, 'Virtual-3', 'disconnected', 0, 0, 0, [67]],
    ]);
    expect(d.connectors[0].props.find((p) => p.name === 'CRTC_ID')!.value).toBe('55');
    expect(d.crtcs.map((c) => c.id)).toEqual([55, 62]);
    expect(d.crtcs[0]).toMatchObject({ fb: 70, width: 640, height: 480 });
    expect(d.crtcs[0].mode).toMatchObject({ name: '640x480', refresh: 59.94, clock: 25175, flags: ['nhsync', 'nvsync'], type: ['driver'] });
    expect(d.crtcs[0].props.find((p) => p.name === 'ACTIVE')!.value).toBe('1');
    expect(d.crtcs[1].mode).toBeNull();
    expect(d.planes.map((p) => [p.id, p.crtc, p.fb, p.possibleCrtcs])).toEqual([
      [35, 55, 70, 1], [40, 0, 0, 2], [45, 0, 0, 3], [50, 0, 0, 1],
    ]);
    expect(d.planes.map((p) => p.props.find((q) => q.name === 'type')!.value)).toEqual(['1', '1', '0', '2']);
    expect(d.framebuffers).toEqual([]); // modetest -f lists only its own FBs
  });

  it('legacy and atomic dumps of the same device agree on objects', () => {
    const a = parseModetest(fixture('modetest-configfs-2crtc-lit-atomic.txt'));
    const l = parseModetest(fixture('modetest-configfs-2crtc-lit.txt'));
    expect(l.encoders).toEqual(a.encoders);
    expect(l.connectors.map((c) => c.modes)).toEqual(a.connectors.map((c) => c.modes));
    expect(l.planes.map((p) => [p.id, p.formats, p.inFormats])).toEqual(a.planes.map((p) => [p.id, p.formats, p.inFormats]));
  });
});

describe('debugfs parsers', () => {
  it('framebuffer', () => {
    const fbs = parseFramebuffers(fixture('debugfs-framebuffer.txt'));
    expect(fbs).toEqual([
      {
        id: 70, allocatedBy: 'modetest', refcount: 3, format: 'XR24', modifier: 0n, width: 640, height: 480,
        layers: [{ width: 640, height: 480, pitch: 2560, offset: 0, objSize: 1228800, imported: false }],
      },
    ]);
    expect(parseFramebuffers('')).toEqual([]);
  });
  it('state', () => {
    const s = parseState(fixture('debugfs-state.txt'));
    expect(s.planes.map((p) => [p.id, p.name, p.crtc, p.fb])).toEqual([
      [35, 'plane-0', 'crtc-0', 70], [40, 'plane-1', null, 0], [45, 'plane-2', null, 0], [50, 'plane-3', null, 0],
    ]);
    expect(s.crtcs.map((c) => [c.id, c.name, c.enable, c.active, c.mode])).toEqual([
      [55, 'crtc-0', true, true, { name: '640x480', hdisplay: 640, vdisplay: 480 }],
      [62, 'crtc-1', false, false, null],
    ]);
    expect(s.connectors.map((c) => [c.id, c.name, c.crtc])).toEqual([
      [57, 'Writeback-2', null], [64, 'Writeback-3', null], [68, 'Virtual-2', 'crtc-0'], [69, 'Virtual-3', null],
    ]);
  });
  it('clients', () => {
    expect(parseClients(fixture('debugfs-clients.txt'))).toEqual([{ command: 'modetest', pid: 82, minor: 2, master: true, authenticated: true }]);
  });
});

describe('pixel helpers', () => {
  const img = (w: number, h: number, stride: number, fill: (x: number, y: number) => number, format = fourcc('XR24')) => {
    const px = new Uint8Array(stride * h);
    const dv = new DataView(px.buffer);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) dv.setUint32(y * stride + x * 4, fill(x, y) >>> 0, true);
    return { width: w, height: h, stride, format, pixels: px };
  };

  it('compares RGB, ignores X, reports the first mismatch', () => {
    const a = img(8, 4, 40, (x, y) => 0xff000000 | (x << 16) | (y << 8));
    const b = img(8, 4, 32, (x, y) => 0x00000000 | (x << 16) | (y << 8) | (x === 5 && y === 2 ? 7 : 0));
    const r = comparePixels(a, b);
    expect(r).toEqual({ total: 32, mismatches: 1, first: { x: 5, y: 2, expected: 0x050200, actual: 0x050207 }, maxDelta: 7 });
    expect(describeCompare(r)).toMatch(/1 of 32 pixels differ.*\(5,2\): expected #050200, got #050207/);
    expect(comparePixels(a, b, { tolerance: 7 }).mismatches).toBe(0);
    expect(comparePixels(a, b, { x: 0, y: 0, width: 4, height: 4 }).mismatches).toBe(0);
  });

  it('compares across byte orders and with an offset', () => {
    const xr = img(4, 4, 16, (x) => 0x00112233 + x);
    // XB24 stores R,G,B,X: the same colour 0x112233 is 0x..332211 as a little-endian word.
    const xb = img(6, 6, 24, (x, y) => (x >= 2 && y >= 1 ? ((0x33 + x - 2) << 16) | 0x2211 : 0), fourcc('XB24'));
    const r = comparePixels(xr, xb, { dx: 2, dy: 1, width: 4, height: 4 });
    expect(r.mismatches).toBe(0);
    expect(countNotColour(img(3, 3, 12, () => 0xff00ff), 0xff00ff).mismatches).toBe(0);
    expect(countNotColour(img(3, 3, 12, (x) => (x ? 0xff00ff : 0)), 0xff00ff).mismatches).toBe(3);
  });

  it('writes PNGs that decode to the same pixels', () => {
    const a = img(5, 3, 32, (x, y) => ((x * 40) << 16) | ((y * 80) << 8) | 0x11);
    const png = encodePng(a);
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    const back = readPng(png);
    expect(back.width).toBe(5);
    expect(comparePixels(a, back).mismatches).toBe(0);
    expect(toRgba(a).subarray(0, 4)).toEqual(Buffer.from([0, 0, 0x11, 255]));
  });
});
