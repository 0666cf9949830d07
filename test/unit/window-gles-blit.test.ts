// Window mode's GLES blit (plugin/window/gles-blit.ts), the parts the host can run: which
// format/modifier the blit targets take from the desktop's dma-buf feedback, which device
// nodes are tried, and what a window says when no GLES device can be opened (the host has
// no /dev/dri). The blit itself (GBM targets, guest import/upload, the wl_buffers, the
// picture on screen) needs a DRM device: test/integration/window-compositor.test.ts runs it
// in the rig on our compositor on vkms.
import { describe, it, expect } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fourcc, DRM_FORMAT_MOD_INVALID } from '../../ffi/drm.js';
import { GlesBlits, listDrmNodes, nodeCandidates, pickBlitPair } from '../../plugin/window/gles-blit.js';
import { pairKey, type DmabufFeedback, type FeedbackTranche } from '../../plugin/window/dmabuf-feedback.js';
import type { Desktop } from '../../plugin/window/connection.js';
import type { GuestPlaneInfo, GuestSource } from '../../plugin/sources/source.js';

const XR24 = fourcc('XR24');
const AR24 = fourcc('AR24');
const XB24 = fourcc('XB24');
const XR30 = fourcc('XR30');
const tranche = (scanout: boolean, pairs: [number, bigint][]): FeedbackTranche => ({ device: 0n, scanout, pairs: new Set(pairs.map(([f, m]) => pairKey(f, m))) });
const feedback = (...tranches: FeedbackTranche[]): DmabufFeedback => ({ mainDevice: 0xe280n, tranches });
const none = () => false;

describe('the blit target pair', () => {
  it('a scanout tranche\'s pair first, even when a render tranche comes first in the compositor\'s order', () => {
    const f = feedback(tranche(false, [[XR24, 0n], [XR30, 0n]]), tranche(true, [[AR24, 0n], [XR24, 0n]]));
    expect(pickBlitPair(f, none, false)).toEqual({ format: XR24, modifier: 0n, scanout: true });
  });
  it('an opaque guest prefers XR24, a guest with alpha AR24; LINEAR before implicit', () => {
    const f = feedback(tranche(false, [[AR24, 0n], [XR24, DRM_FORMAT_MOD_INVALID], [XR24, 0n]]));
    expect(pickBlitPair(f, none, false)).toEqual({ format: XR24, modifier: 0n, scanout: false });
    expect(pickBlitPair(f, none, true)).toEqual({ format: AR24, modifier: 0n, scanout: false });
  });
  it('implicit when that is all the compositor lists (Weston 10 on Mesa\'s software drivers)', () => {
    const f = feedback(tranche(false, [[XB24, DRM_FORMAT_MOD_INVALID]]));
    expect(pickBlitPair(f, none, false)).toEqual({ format: XB24, modifier: DRM_FORMAT_MOD_INVALID, scanout: false });
  });
  it('only tiled pairs, or no 8-bit RGB format: none', () => {
    expect(pickBlitPair(feedback(tranche(true, [[XR24, 0x0100000000000001n], [XR30, 0n]])), none, false)).toBeNull();
  });
  it('without v4 feedback: the v3 format list', () => {
    const v3 = new Set([pairKey(AR24, 0n)]);
    expect(pickBlitPair(null, (f, m) => v3.has(pairKey(f, m)), false)).toEqual({ format: AR24, modifier: 0n, scanout: false });
    expect(pickBlitPair(null, none, false)).toBeNull();
  });
});

describe('device nodes', () => {
  it('the feedback\'s main device first, then render nodes, then card nodes, in number order', () => {
    const nodes = [
      { path: '/dev/dri/card1', rdev: 0xe201n },
      { path: '/dev/dri/renderD129', rdev: 0xe281n },
      { path: '/dev/dri/card0', rdev: 0xe200n },
      { path: '/dev/dri/renderD128', rdev: 0xe280n },
    ];
    expect(nodeCandidates(0xe201n, nodes)).toEqual(['/dev/dri/card1', '/dev/dri/renderD128', '/dev/dri/renderD129', '/dev/dri/card0']);
    expect(nodeCandidates(null, nodes)).toEqual(['/dev/dri/renderD128', '/dev/dri/renderD129', '/dev/dri/card0', '/dev/dri/card1']);
  });
  it('lists only DRM node names of a directory; none when it is missing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gp-dri-'));
    for (const n of ['card0', 'renderD128', 'by-path', 'controlD64']) writeFileSync(join(dir, n), '');
    expect(listDrmNodes(dir).map((n) => n.path).sort()).toEqual([join(dir, 'card0'), join(dir, 'renderD128')]);
    expect(listDrmNodes(join(dir, 'missing'))).toEqual([]);
  });
});

describe('no GLES device', () => {
  // The host has no DRM device: the failure is real, not faked. The Desktop is never
  // reached before a device is open, so none is connected here.
  const plane: GuestPlaneInfo = {
    kind: 'primary', bufferId: 1, transport: 'dmabuf', format: XR30, modifier: 0n, width: 64, height: 64, stride: 256, offset: 0, size: 16384,
    x: 0, y: 0, hotX: -1, hotY: -1, generation: 0,
  };
  const source = { name: 'test guest', exportDmabuf: () => { throw new Error('not reached: no device'); } } as unknown as GuestSource;
  const desktop = {} as Desktop;

  it('no node at all: failed, saying so; tried once, the same answer after', () => {
    let asked = 0;
    const b = new GlesBlits(desktop, () => {}, { nodes: () => (asked++, []) });
    expect(b.blit(source, 1, plane, null)).toEqual({ kind: 'failed', reason: 'no GLES: no DRM device node to open (/dev/dri is empty or missing)' });
    expect(b.blit(source, 1, plane, null).kind).toBe('failed');
    expect(asked).toBe(1);
    b.close();
  });
  it('a node that cannot be opened: the reason names it', () => {
    const b = new GlesBlits(desktop, () => {}, { nodes: () => ['/nonexistent/renderD128'] });
    const r = b.blit(source, 1, plane, feedback());
    expect(r.kind).toBe('failed');
    expect(r.kind === 'failed' && r.reason).toMatch(/^no GLES: .*\/nonexistent\/renderD128/);
    b.close();
  });
  it('a region plane or a multi-plane format is refused before any device is opened', () => {
    const b = new GlesBlits(desktop, () => {}, { nodes: () => { throw new Error('not reached'); } });
    expect(b.blit(source, 1, { ...plane, transport: 'region' }, null)).toEqual({ kind: 'failed', reason: 'the guest plane is no dma-buf' });
    expect(b.blit(source, 1, { ...plane, planes: [{ offset: 4096, stride: 64 }] }, null).kind).toBe('failed');
    b.close();
  });
});
