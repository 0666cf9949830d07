// EDID parsing on real monitors' EDIDs (fixtures with their edid-decode readings), and
// EDIDs we build for guests: parsed back, they must say exactly the mode we meant.
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildEdid, edidForHead, parseEdid, timingFromMode, EdidError } from '../../plugin/device/edid.js';
import * as drm from '../../ffi/drm.js';

function fixture(name: string): Uint8Array {
  const text = readFileSync(join(import.meta.dirname, '..', 'fixtures', 'edid', name), 'utf8');
  const hex = text
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .join(' ')
    .trim()
    .split(/\s+/);
  return new Uint8Array(hex.map((h) => parseInt(h, 16)));
}

/** vkms's 1024x768@60 (DMT 0x10), as GETCONNECTOR returns it. */
const XGA: drm.DrmModeInfo = {
  clock: 65000,
  hdisplay: 1024,
  hsync_start: 1048,
  hsync_end: 1184,
  htotal: 1344,
  hskew: 0,
  vdisplay: 768,
  vsync_start: 771,
  vsync_end: 777,
  vtotal: 806,
  vscan: 0,
  vrefresh: 60,
  flags: drm.DRM_MODE_FLAG_NHSYNC | drm.DRM_MODE_FLAG_NVSYNC,
  type: drm.DRM_MODE_TYPE_PREFERRED,
  name: '1024x768',
};

describe('parseEdid on real monitors', () => {
  it('Dell E2219HN: identity, size, preferred 1920x1080@60 and the CTA timings', () => {
    const e = parseEdid(fixture('dell-e2219hn.hex'));
    expect({ m: e.manufacturer, p: e.productCode, week: e.week, year: e.year, v: e.version, digital: e.digital }).toEqual({ m: 'DEL', p: 0x2009, week: 15, year: 2019, v: '1.3', digital: true });
    expect(e.name).toBe('E2219HN');
    expect(e.serialString).toBe('CX2TG94B15UB');
    expect([e.widthCm, e.heightCm, e.widthMm, e.heightMm]).toEqual([48, 27, 476, 268]);
    expect(e.rangeHz).toEqual({ min: 56, max: 76 });
    expect(e.extensionCount).toBe(1);
    const p = e.preferred!;
    expect([p.hdisplay, p.vdisplay, p.clock, p.htotal, p.vtotal]).toEqual([1920, 1080, 148500, 2200, 1125]);
    // Hfront 88 Hsync 44, Vfront 4 Vsync 5, both positive (edid-decode).
    expect([p.hsyncStart, p.hsyncEnd, p.vsyncStart, p.vsyncEnd, p.hsyncPositive, p.vsyncPositive]).toEqual([2008, 2052, 1084, 1089, true, true]);
    expect(p.refresh).toBeCloseTo(60, 6);
    // DTD 1 in the base block, DTDs 2-5 in the CTA block.
    expect(e.timings.map((t) => `${t.hdisplay}x${t.vdisplay}${t.interlaced ? 'i' : ''}@${t.refresh.toFixed(2)}`)).toEqual([
      '1920x1080@60.00',
      '1920x1080@60.00',
      '1920x1080i@60.05',
      '1280x720@60.00',
      '1920x1080@50.00',
    ]);
  });

  it('Samsung SyncMaster: a single block with an odd refresh (60.020 Hz)', () => {
    const e = parseEdid(fixture('samsung-syncmaster.hex'));
    expect(e.manufacturer).toBe('SAM');
    expect(e.name).toBe('SyncMaster');
    expect(e.year).toBe(2004);
    expect([e.widthMm, e.heightMm]).toEqual([338, 270]);
    expect(e.extensionCount).toBe(0);
    const p = e.preferred!;
    expect([p.hdisplay, p.vdisplay, p.clock]).toEqual([1280, 1024, 108000]);
    expect(p.refresh.toFixed(3)).toBe('60.020');
    expect(e.rangeHz).toEqual({ min: 56, max: 75 });
  });

  it('refuses what is not an EDID, naming the problem', () => {
    const good = fixture('samsung-syncmaster.hex');
    expect(() => parseEdid(good.subarray(0, 100))).toThrow(/100 bytes; a base block is 128/);
    const badHeader = good.slice();
    badHeader[0] = 0x12;
    expect(() => parseEdid(badHeader)).toThrow(/not an EDID/);
    const badSum = good.slice();
    badSum[60] ^= 0x40;
    expect(() => parseEdid(badSum)).toThrow(EdidError);
    expect(() => parseEdid(badSum)).toThrow(/checksum/);
  });
});

describe('buildEdid', () => {
  it('round-trips a KMS mode: the parsed preferred timing is the mode', () => {
    const bytes = buildEdid({ timing: timingFromMode(XGA), name: 'Virtual-1', widthMm: 300, heightMm: 225 });
    expect(bytes.length).toBe(128);
    const e = parseEdid(bytes);
    const p = e.preferred!;
    expect([p.clock, p.hdisplay, p.hsyncStart, p.hsyncEnd, p.htotal, p.vdisplay, p.vsyncStart, p.vsyncEnd, p.vtotal]).toEqual([
      XGA.clock,
      XGA.hdisplay,
      XGA.hsync_start,
      XGA.hsync_end,
      XGA.htotal,
      XGA.vdisplay,
      XGA.vsync_start,
      XGA.vsync_end,
      XGA.vtotal,
    ]);
    expect([p.hsyncPositive, p.vsyncPositive]).toEqual([false, false]);
    expect(p.refresh).toBeCloseTo(60.004, 3);
    expect(e.name).toBe('Virtual-1');
    expect(e.version).toBe('1.4');
    expect([e.widthMm, e.heightMm, e.widthCm, e.heightCm]).toEqual([300, 225, 30, 23]);
    expect(e.rangeHz!.min).toBeLessThanOrEqual(60);
    expect(e.rangeHz!.max).toBeGreaterThanOrEqual(61);
  });

  it('rebuilds a real monitor preferred timing bit for bit in its DTD', () => {
    const dell = fixture('dell-e2219hn.hex');
    const p = parseEdid(dell).preferred!;
    const built = buildEdid({ timing: p, name: 'x', widthMm: p.widthMm, heightMm: p.heightMm });
    // Bytes 54..71 are DTD 1 in both; the Dell's flags byte is 0x1e (digital separate, +/+).
    expect(Buffer.from(built.subarray(54, 72)).toString('hex')).toBe(Buffer.from(dell.subarray(54, 72)).toString('hex'));
  });

  it('refuses modes EDID cannot express', () => {
    const huge = { ...timingFromMode(XGA), clock: 700_000 };
    expect(() => buildEdid({ timing: huge, name: 'x' })).toThrow(/pixel clock .* does not fit EDID's 16-bit field/);
    expect(() => buildEdid({ timing: timingFromMode(XGA), name: 'x', manufacturer: 'G1' })).toThrow(/three letters/);
  });
});

describe('edidForHead', () => {
  const dell = fixture('dell-e2219hn.hex');
  const dellMode: drm.DrmModeInfo = { ...XGA, clock: 148500, hdisplay: 1920, hsync_start: 2008, hsync_end: 2052, htotal: 2200, vdisplay: 1080, vsync_start: 1084, vsync_end: 1089, vtotal: 1125, flags: 5, name: '1920x1080' };

  it('passes the host monitor EDID through when the guest gets the whole screen at its preferred mode', () => {
    const g = edidForHead(dell, dellMode, null);
    expect(g.origin).toBe('host');
    expect(Buffer.from(g.edid).equals(Buffer.from(dell))).toBe(true);
  });

  it('keeps only the base block (checksum fixed) when the region is too small for extensions', () => {
    const g = edidForHead(dell, dellMode, null, 128);
    expect(g.edid.length).toBe(128);
    const e = parseEdid(g.edid);
    expect(e.extensionCount).toBe(0);
    expect(e.name).toBe('E2219HN');
  });

  it('builds one with the host identity for a region, at the region size and the host refresh', () => {
    const g = edidForHead(dell, dellMode, { width: 960, height: 1080 });
    expect(g.origin).toBe('built');
    const e = parseEdid(g.edid);
    expect([e.manufacturer, e.name, e.productCode]).toEqual(['DEL', 'E2219HN', 0x2009]);
    expect([e.preferred!.hdisplay, e.preferred!.vdisplay]).toEqual([960, 1080]);
    expect(e.preferred!.refresh).toBeCloseTo(60, 1);
    expect([e.widthMm, e.heightMm]).toEqual([238, 268]);
    expect([g.width, g.height]).toEqual([960, 1080]);
  });

  it('builds one from the mode when the host connector has no EDID (vkms)', () => {
    const g = edidForHead(null, XGA, null);
    expect(g.origin).toBe('built');
    expect(parseEdid(g.edid).name).toBe('guestplane');
    expect([g.width, g.height, g.refresh.toFixed(2)]).toEqual([1024, 768, '60.00']);
  });
});
