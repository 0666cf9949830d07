// The pure parts of the GPU composition path: EGL attribute lists, error-name tables,
// the modifier policy, quad geometry, GBM import structs and the target ring. No GPU.
import { describe, it, expect } from 'vitest';
import koffi from 'koffi';
import * as egl from '../../ffi/egl.js';
import * as gbm from '../../ffi/gbm.js';
import { fourcc, DRM_FORMAT_MOD_INVALID, DRM_FORMAT_MOD_LINEAR } from '../../ffi/drm.js';
import { TargetRing, checkLayerRects, eglModifierFor, isPixelCopy, quadVertices, uploadFormat } from '../../plugin/compose/gles.js';

const XR24 = fourcc('XR24');
const NV12 = fourcc('NV12');

/** [name, value] pairs of an EGL attribute list, checking the EGL_NONE terminator. */
function pairs(list: Int32Array): [number, number][] {
  expect(list.length % 2).toBe(1);
  expect(list[list.length - 1]).toBe(egl.EGL_NONE);
  const out: [number, number][] = [];
  for (let i = 0; i + 1 < list.length; i += 2) out.push([list[i], list[i + 1]]);
  return out;
}

describe('EGL attribute lists', () => {
  it('attribList terminates with EGL_NONE', () => {
    expect(Array.from(egl.attribList([]))).toEqual([egl.EGL_NONE]);
    expect(Array.from(egl.attribList([[egl.EGL_CONTEXT_MAJOR_VERSION, 3]]))).toEqual([0x3098, 3, 0x3038]);
  });

  it('a single-plane dma-buf without modifier: size, fourcc, fd/offset/pitch only', () => {
    const list = egl.dmabufImageAttribs({ width: 640, height: 480, format: XR24, planes: [{ fd: 7, offset: 64, pitch: 2560 }] }, true);
    expect(pairs(list)).toEqual([
      [egl.EGL_WIDTH, 640],
      [egl.EGL_HEIGHT, 480],
      [egl.EGL_LINUX_DRM_FOURCC_EXT, XR24],
      [egl.EGL_DMA_BUF_PLANE0_FD_EXT, 7],
      [egl.EGL_DMA_BUF_PLANE0_OFFSET_EXT, 64],
      [egl.EGL_DMA_BUF_PLANE0_PITCH_EXT, 2560],
    ]);
  });

  it('DRM_FORMAT_MOD_INVALID means implicit: no modifier attributes', () => {
    const list = egl.dmabufImageAttribs(
      { width: 4, height: 4, format: XR24, planes: [{ fd: 3, offset: 0, pitch: 16 }], modifier: DRM_FORMAT_MOD_INVALID },
      true,
    );
    expect(pairs(list).map(([k]) => k)).not.toContain(egl.EGL_DMA_BUF_PLANE0_MODIFIER_LO_EXT);
  });

  it('an explicit modifier is split into LO/HI per plane (two planes: NV12)', () => {
    const mod = 0x0100000000000002n; // I915_FORMAT_MOD_Y_TILED
    const list = egl.dmabufImageAttribs(
      {
        width: 64,
        height: 32,
        format: NV12,
        planes: [
          { fd: 5, offset: 0, pitch: 64 },
          { fd: 5, offset: 2048, pitch: 64 },
        ],
        modifier: mod,
      },
      true,
    );
    expect(pairs(list)).toEqual([
      [egl.EGL_WIDTH, 64],
      [egl.EGL_HEIGHT, 32],
      [egl.EGL_LINUX_DRM_FOURCC_EXT, NV12],
      [egl.EGL_DMA_BUF_PLANE0_FD_EXT, 5],
      [egl.EGL_DMA_BUF_PLANE0_OFFSET_EXT, 0],
      [egl.EGL_DMA_BUF_PLANE0_PITCH_EXT, 64],
      [egl.EGL_DMA_BUF_PLANE0_MODIFIER_LO_EXT, 2],
      [egl.EGL_DMA_BUF_PLANE0_MODIFIER_HI_EXT, 0x01000000],
      [egl.EGL_DMA_BUF_PLANE1_FD_EXT, 5],
      [egl.EGL_DMA_BUF_PLANE1_OFFSET_EXT, 2048],
      [egl.EGL_DMA_BUF_PLANE1_PITCH_EXT, 64],
      [egl.EGL_DMA_BUF_PLANE1_MODIFIER_LO_EXT, 2],
      [egl.EGL_DMA_BUF_PLANE1_MODIFIER_HI_EXT, 0x01000000],
    ]);
  });

  it('modifier words with the top bit set survive as signed EGLint', () => {
    const list = egl.dmabufImageAttribs(
      { width: 1, height: 1, format: XR24, planes: [{ fd: 0, offset: 0, pitch: 4 }], modifier: 0x80000001_fffffffen },
      true,
    );
    const p = new Map(pairs(list));
    expect(p.get(egl.EGL_DMA_BUF_PLANE0_MODIFIER_LO_EXT)! >>> 0).toBe(0xfffffffe);
    expect(p.get(egl.EGL_DMA_BUF_PLANE0_MODIFIER_HI_EXT)! >>> 0).toBe(0x80000001);
  });

  it('without the modifiers extension: LINEAR is left implicit, other modifiers refused', () => {
    const base = { width: 4, height: 4, format: XR24, planes: [{ fd: 3, offset: 0, pitch: 16 }] };
    expect(pairs(egl.dmabufImageAttribs({ ...base, modifier: DRM_FORMAT_MOD_LINEAR }, false))).toHaveLength(6);
    expect(() => egl.dmabufImageAttribs({ ...base, modifier: 0x0100000000000001n }, false)).toThrow(/EGL_EXT_image_dma_buf_import_modifiers/);
  });

  it('refuses nonsense before EGL sees it', () => {
    const p = [{ fd: 3, offset: 0, pitch: 16 }];
    expect(() => egl.dmabufImageAttribs({ width: 0, height: 4, format: XR24, planes: p }, true)).toThrow(RangeError);
    expect(() => egl.dmabufImageAttribs({ width: 4, height: 4, format: XR24, planes: [] }, true)).toThrow(/0 planes/);
    expect(() => egl.dmabufImageAttribs({ width: 4, height: 4, format: XR24, planes: [{ fd: -1, offset: 0, pitch: 16 }] }, true)).toThrow(/fd -1/);
    expect(() => egl.dmabufImageAttribs({ width: 4, height: 4, format: XR24, planes: [{ fd: 3, offset: 0, pitch: 0 }] }, true)).toThrow(/pitch 0/);
    const five = Array.from({ length: 5 }, () => p[0]);
    expect(() => egl.dmabufImageAttribs({ width: 4, height: 4, format: XR24, planes: five }, true)).toThrow(/5 planes/);
  });
});

describe('error names', () => {
  it('EGL errors by name', () => {
    expect(egl.eglErrorName(0x3009)).toBe('EGL_BAD_MATCH');
    expect(egl.eglErrorName(egl.EGL_BAD_ALLOC)).toBe('EGL_BAD_ALLOC');
    expect(egl.eglErrorName(egl.EGL_SUCCESS)).toBe('EGL_SUCCESS');
    expect(egl.eglErrorName(egl.EGL_CONTEXT_LOST)).toBe('EGL_CONTEXT_LOST');
    expect(egl.eglErrorName(0x1234)).toBe('EGL error 0x1234');
    // Every EGL 1.5 error code 0x3000..0x300e has a name.
    for (let c = 0x3000; c <= 0x300e; c++) expect(egl.eglErrorName(c)).toMatch(/^EGL_[A-Z_]+$/);
  });

  it('GL errors and framebuffer status by name', () => {
    expect(egl.glErrorName(0x0502)).toBe('GL_INVALID_OPERATION');
    expect(egl.glErrorName(egl.GL_OUT_OF_MEMORY)).toBe('GL_OUT_OF_MEMORY');
    expect(egl.glErrorName(egl.GL_INVALID_FRAMEBUFFER_OPERATION)).toBe('GL_INVALID_FRAMEBUFFER_OPERATION');
    expect(egl.glErrorName(0x0507)).toBe('GL error 0x507');
    expect(egl.framebufferStatusName(egl.GL_FRAMEBUFFER_COMPLETE)).toBe('GL_FRAMEBUFFER_COMPLETE');
    expect(egl.framebufferStatusName(egl.GL_FRAMEBUFFER_UNSUPPORTED)).toBe('GL_FRAMEBUFFER_UNSUPPORTED');
  });

  it('EglError and GlError messages name the call, the object and the error', () => {
    const e = new egl.EglError('eglCreateImageKHR', 'dma-buf 64x64 XR24', egl.EGL_BAD_MATCH);
    expect(e.message).toBe('eglCreateImageKHR(dma-buf 64x64 XR24) failed: EGL_BAD_MATCH');
    expect(e.code).toBe('EGL_BAD_MATCH');
    const g = new egl.GlError('glReadPixels', '1x1', egl.GL_OUT_OF_MEMORY);
    expect(g.message).toBe('glReadPixels(1x1) failed: GL_OUT_OF_MEMORY');
    const c = new egl.GlError('glCompileShader', 'fragment shader', 0, "0:1(35): error: `x' undeclared\n");
    expect(c.message).toBe("glCompileShader(fragment shader) failed:\n0:1(35): error: `x' undeclared");
  });

  it('extension strings split into sets', () => {
    expect([...egl.parseExtensions(' EGL_KHR_a  EGL_EXT_b ')]).toEqual(['EGL_KHR_a', 'EGL_EXT_b']);
    expect(egl.parseExtensions(null).size).toBe(0);
  });
});

describe('modifier policy for imports', () => {
  const linear = [{ modifier: DRM_FORMAT_MOD_LINEAR, externalOnly: false }];
  it('implicit stays implicit', () => {
    expect(eglModifierFor(undefined, linear)).toEqual({ modifier: undefined, externalOnly: false });
    expect(eglModifierFor(DRM_FORMAT_MOD_INVALID, undefined)).toEqual({ modifier: undefined, externalOnly: false });
  });
  it('a listed modifier is passed, with its external-only flag', () => {
    expect(eglModifierFor(DRM_FORMAT_MOD_LINEAR, linear)).toEqual({ modifier: 0n, externalOnly: false });
    expect(eglModifierFor(7n, [{ modifier: 7n, externalOnly: true }])).toEqual({ modifier: 7n, externalOnly: true });
  });
  it('drivers listing no modifiers (kms_swrast) take LINEAR as implicit and nothing else', () => {
    expect(eglModifierFor(DRM_FORMAT_MOD_LINEAR, [])).toEqual({ modifier: undefined, externalOnly: false });
    const r = eglModifierFor(0x0100000000000001n, []);
    expect(r).toMatchObject({ reason: 'unsupported-modifier' });
    expect('error' in r && r.error).toMatch(/implicit layouts only/);
  });
  it('an unlisted modifier is refused, naming what is listed', () => {
    const r = eglModifierFor(0x0100000000000001n, linear);
    expect(r).toMatchObject({ reason: 'unsupported-modifier' });
    expect('error' in r && r.error).toMatch(/LINEAR/);
  });
});

describe('upload formats', () => {
  it('32-bit RGB formats map to GL formats; X formats are opaque', () => {
    const byte = { glType: egl.GL_UNSIGNED_BYTE, needsGles3: false, swapRedBlue: false };
    expect(uploadFormat(fourcc('XR24'))).toEqual({ glFormat: egl.GL_BGRA_EXT, internalFormat: egl.GL_BGRA_EXT, opaque: true, needsBgra: true, ...byte });
    expect(uploadFormat(fourcc('AR24'))).toEqual({ glFormat: egl.GL_BGRA_EXT, internalFormat: egl.GL_BGRA_EXT, opaque: false, needsBgra: true, ...byte });
    expect(uploadFormat(fourcc('AB24'))).toEqual({ glFormat: egl.GL_RGBA, internalFormat: egl.GL_RGBA, opaque: false, needsBgra: false, ...byte });
    expect(uploadFormat(NV12)).toBeNull();
  });
  it('10-bit formats upload as GLES 3 RGB10_A2; XR30/AR30 (blue in the low bits) swap red and blue by swizzle, XB30 does not', () => {
    const ten = { glFormat: egl.GL_RGBA, glType: egl.GL_UNSIGNED_INT_2_10_10_10_REV, internalFormat: egl.GL_RGB10_A2, needsBgra: false, needsGles3: true };
    expect(uploadFormat(fourcc('XR30'))).toEqual({ ...ten, opaque: true, swapRedBlue: true });
    expect(uploadFormat(fourcc('AR30'))).toEqual({ ...ten, opaque: false, swapRedBlue: true });
    expect(uploadFormat(fourcc('XB30'))).toEqual({ ...ten, opaque: true, swapRedBlue: false });
    expect(uploadFormat(fourcc('AB30'))).toEqual({ ...ten, opaque: false, swapRedBlue: false });
  });
});

describe('layer geometry', () => {
  it('the whole buffer onto the whole target covers NDC and [0,1] texture space, unflipped', () => {
    const v = Array.from(quadVertices({ x: 0, y: 0, width: 64, height: 32 }, { x: 0, y: 0, width: 640, height: 480 }, 64, 32, 640, 480));
    // x, y, u, v per vertex; strip order (x0,y0) (x1,y0) (x0,y1) (x1,y1); y0 = top row = NDC -1.
    expect(v).toEqual([-1, -1, 0, 0, 1, -1, 1, 0, -1, 1, 0, 1, 1, 1, 1, 1]);
  });

  it('Y_INVERT (flipped-180) swaps the texture rows: the last row of src is drawn at the top of dst', () => {
    const v = Array.from(quadVertices({ x: 0, y: 8, width: 64, height: 16 }, { x: 0, y: 0, width: 640, height: 480 }, 64, 32, 640, 480, 6));
    expect(v).toEqual([-1, -1, 0, 0.75, 1, -1, 1, 0.75, -1, 1, 0, 0.25, 1, 1, 1, 0.25]);
  });

  it('90°: the picture\'s top-left corner samples the buffer\'s bottom-left, its top-right the top-left', () => {
    const v = Array.from(quadVertices({ x: 0, y: 0, width: 32, height: 64 }, { x: 0, y: 0, width: 640, height: 480 }, 32, 64, 640, 480, 1));
    // (x, y, u, v) for the corners top-left, top-right, bottom-left, bottom-right of dst.
    expect(v).toEqual([-1, -1, 0, 1, 1, -1, 0, 0, -1, 1, 1, 1, 1, 1, 1, 0]);
  });

  it('maps sub-rectangles to NDC and normalised texture coordinates', () => {
    const v = quadVertices({ x: 16, y: 8, width: 32, height: 16 }, { x: 160, y: 120, width: 320, height: 240 }, 64, 32, 640, 480);
    expect(v[0]).toBeCloseTo(-0.5);
    expect(v[1]).toBeCloseTo(-0.5);
    expect(v[2]).toBeCloseTo(0.25);
    expect(v[3]).toBeCloseTo(0.25);
    expect(v[12]).toBeCloseTo(0.5);
    expect(v[13]).toBeCloseTo(0.5);
    expect(v[14]).toBeCloseTo(0.75);
    expect(v[15]).toBeCloseTo(0.75);
  });

  it('recognises unscaled whole-pixel copies (where nearest and linear agree)', () => {
    expect(isPixelCopy({ x: 3, y: 4, width: 10, height: 20 }, { x: 100, y: 7, width: 10, height: 20 })).toBe(true);
    expect(isPixelCopy({ x: 3, y: 4, width: 10, height: 20 }, { x: 100.5, y: 7, width: 10, height: 20 })).toBe(false);
    expect(isPixelCopy({ x: 0, y: 0, width: 10, height: 20 }, { x: 0, y: 0, width: 20, height: 20 })).toBe(false);
  });

  it('checks source rectangles against the buffer and destinations for emptiness', () => {
    expect(checkLayerRects(undefined, { x: 0, y: 0, width: 1, height: 1 }, 10, 20)).toEqual({ x: 0, y: 0, width: 10, height: 20 });
    expect(() => checkLayerRects({ x: 5, y: 0, width: 6, height: 1 }, { x: 0, y: 0, width: 1, height: 1 }, 10, 20)).toThrow(/not inside the 10x20 buffer/);
    expect(() => checkLayerRects({ x: 0, y: 0, width: 0, height: 1 }, { x: 0, y: 0, width: 1, height: 1 }, 10, 20)).toThrow(RangeError);
    expect(() => checkLayerRects(undefined, { x: 0, y: 0, width: 1, height: 0 }, 10, 20)).toThrow(/destination .* is empty/);
    expect(() => checkLayerRects(undefined, { x: NaN, y: 0, width: 1, height: 1 }, 10, 20)).toThrow(RangeError);
    // Destinations may reach outside the target: GL clips them.
    expect(() => checkLayerRects(undefined, { x: -50, y: -50, width: 5000, height: 5000 }, 10, 20)).not.toThrow();
  });
});

describe('target ring', () => {
  const stubs = (n: number) => Array.from({ length: n }, (_, i) => ({ i, closed: false, close() { this.closed = true; } }));

  it('triple buffering: one on screen, one waiting for its flip, one being drawn', () => {
    const t = stubs(3);
    const ring = new TargetRing(t);
    const a = ring.acquire();
    ring.displayed(a); // first frame on screen
    const b = ring.acquire(); // drawn, committed, flip pending
    const c = ring.acquire(); // drawn while b waits
    expect(new Set([a, b, c]).size).toBe(3);
    expect(() => ring.acquire()).toThrow(/all 3 targets are in use/);
    ring.displayed(b); // b's flip completed: a is free again
    expect(ring.state(a)).toBe('free');
    expect(ring.state(b)).toBe('scanout');
    expect(ring.state(c)).toBe('busy');
    expect(ring.onScreen).toBe(b);
    expect(ring.acquire()).toBe(a);
  });

  it('double buffering alternates; release() returns a target whose commit failed', () => {
    const ring = new TargetRing(stubs(2));
    const a = ring.acquire();
    ring.displayed(a);
    const b = ring.acquire();
    expect(b).not.toBe(a);
    expect(() => ring.acquire()).toThrow(/in use/);
    ring.release(b);
    expect(ring.acquire()).toBe(b);
    ring.displayed(b);
    expect(ring.acquire()).toBe(a);
  });

  it('rejects strangers and un-acquired targets; close() closes every target', () => {
    const t = stubs(2);
    const ring = new TargetRing(t);
    expect(() => ring.displayed({ i: 9, closed: false, close() {} } as (typeof t)[number])).toThrow(/not one of this ring/);
    expect(() => ring.displayed(t[0])).toThrow(/not acquired/);
    ring.close();
    expect(t.every((x) => x.closed)).toBe(true);
    expect(() => ring.acquire()).toThrow(/closed/);
  });
});

describe('GBM import struct', () => {
  it('encodes struct gbm_import_fd_modifier_data with unused planes zeroed', () => {
    const buf = gbm.encodeImportFdModifier({ width: 640, height: 480, format: XR24, fds: [9], strides: [2560], offsets: [128], modifier: 0n });
    expect(buf.length).toBe(koffi.sizeof(gbm.gbm_import_fd_modifier_data));
    const d = koffi.decode(buf, gbm.gbm_import_fd_modifier_data) as Record<string, unknown>;
    expect(d).toMatchObject({ width: 640, height: 480, format: XR24, num_fds: 1 });
    expect([d.fds, d.strides, d.offsets].map((a) => Array.from(a as ArrayLike<number>))).toEqual([
      [9, 0, 0, 0],
      [2560, 0, 0, 0],
      [128, 0, 0, 0],
    ]);
    expect(BigInt(d.modifier as number)).toBe(0n);
    expect(buf.readBigUInt64LE(koffi.offsetof(gbm.gbm_import_fd_modifier_data, 'modifier'))).toBe(0n);
  });
  it('refuses inconsistent plane arrays', () => {
    expect(() => gbm.encodeImportFdModifier({ width: 1, height: 1, format: XR24, fds: [1, 2], strides: [4], offsets: [0, 0], modifier: 0n })).toThrow(/2 fds but 1 strides/);
    expect(() => gbm.encodeImportFdModifier({ width: 1, height: 1, format: XR24, fds: [], strides: [], offsets: [], modifier: 0n })).toThrow(/0 planes/);
  });
});
