// Issue 6: present()'s input checks. A host compositor's mistakes are refused before
// anything reaches the kernel, naming the layer, the field and the fix.
import { describe, it, expect } from 'vitest';
import { checkHostLayers, HostLayerSource, type HostLayer } from '../../plugin/planes/host-layers.js';
import * as drm from '../../ffi/drm.js';

const buf = (over: Partial<Record<string, unknown>> = {}) => ({ fd: 5, bufferId: 1, format: drm.fourcc('XR24'), modifier: drm.DRM_FORMAT_MOD_LINEAR, width: 64, height: 32, stride: 256, offset: 0, ...over }) as HostLayer['buffer'];
const layer = (over: Partial<HostLayer> = {}): HostLayer => ({ id: 'panel', buffer: buf(), dst: { x: 0, y: 0, width: 64, height: 32 }, zIndex: 1, ...over });

describe('checkHostLayers', () => {
  it('fills src with the whole buffer and copies the rectangles', () => {
    const l = layer();
    const [c] = checkHostLayers([l]);
    expect(c.src).toEqual({ x: 0, y: 0, width: 64, height: 32 });
    expect(c.dst).not.toBe(l.dst);
  });

  it.each([
    ['reserved id', [layer({ id: 'guest' })], /"guest" is the output's own layer/],
    ['duplicate id', [layer(), layer({ zIndex: 2 })], /appears twice/],
    ['zIndex 0 (the guest)', [layer({ zIndex: 0 })], /0 is the attached guest's/],
    ['zIndex beyond the cursor', [layer({ zIndex: 1_000_000 })], /\|zIndex\| < 1000000/],
    ['shared zIndex', [layer(), layer({ id: 'b' })], /zIndex 1 is also layer "panel"'s/],
    ['empty dst', [layer({ dst: { x: 0, y: 0, width: 0, height: 5 } })], /dst must be an integer rectangle/],
    ['alpha', [layer({ alpha: 1.5 })], /alpha 1.5 outside 0..1/],
    ['fd', [layer({ buffer: buf({ fd: -1 }) })], /buffer.fd -1 is not a file descriptor/],
    ['stride', [layer({ buffer: buf({ stride: 100 }) })], /layer 0 "panel": host buffer.*stride 100 < width 64/],
    ['multi-planar format', [layer({ buffer: buf({ format: drm.fourcc('NV12') }) })], /format NV12 has 2 planes but the guest described 1/],
    ['src outside the buffer', [layer({ src: { x: 10, y: 0, width: 64, height: 32 } })], /reaches outside the 64x32 picture/],
    // A 90° buffer of 64x32 holds a 32x64 picture: src is in picture coordinates.
    ['src outside a rotated picture', [layer({ buffer: buf({ transform: 1 }), src: { x: 0, y: 0, width: 64, height: 32 } })], /reaches outside the 32x64 picture/],
    ['bad transform', [layer({ buffer: buf({ transform: 9 as never }) })], /buffer.transform 9 is not a wl_output.transform/],
    ['not a source', [layer({ buffer: { source: {} } as unknown as HostLayer['buffer'] })], /not a GuestSource/],
  ])('refuses %s', (_what, layers, msg) => {
    expect(() => checkHostLayers(layers)).toThrow(msg);
  });

  it('takes a guest source as a layer (its src is known only when queried)', () => {
    const source = new HostLayerSource('other'); // any GuestSource
    const [c] = checkHostLayers([{ id: 'vm', buffer: { source }, dst: { x: 0, y: 0, width: 10, height: 10 }, zIndex: -1 }]);
    expect(c.src.width).toBe(0);
  });
});

describe('HostLayerSource', () => {
  it('refuses to export a buffer of another generation than presented (a stale cache entry must not dup a reused fd)', () => {
    const s = new HostLayerSource('panel');
    s.update({ fd: 0, bufferId: 7, generation: 2, format: drm.fourcc('XR24'), modifier: 0n, width: 1, height: 1, stride: 4, offset: 0 });
    const plane = { kind: 'primary' as const, bufferId: 7, transport: 'dmabuf' as const, format: 0, modifier: 0n, width: 1, height: 1, stride: 4, offset: 0, size: 0, x: 0, y: 0, hotX: -1, hotY: -1, generation: 1 };
    expect(() => s.exportDmabuf(plane)).toThrow(/buffer 7 generation 1 is not in the presented frame/);
    s.forget(7);
    expect(() => s.exportDmabuf({ ...plane, generation: 2 })).toThrow(/not in the presented frame/);
  });
});
