// Issue 8, untrusted guest input at the validation level (no kernel): arbitrary plane
// descriptions and buffer sizes thrown at validatePlane and at the CPU copy that runs on
// what it accepts. The oracle is independent of validate.ts: the kernel's own linear
// framebuffer rule (drm_framebuffer_check: (height-1)*pitch + width*cpp + offset <= size,
// u32 pitches/offsets) computed in BigInt, so no float rounding can hide an overflow.
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import * as drm from '../../ffi/drm.js';
import { validatePlane, MAX_DIMENSION, MAX_STRIDE, MAX_POSITION, type ValidationCause } from '../../plugin/buffers/validate.js';
import { blit, placement, type FitMode } from '../../plugin/compose/cpu.js';
import type { GuestPlaneInfo } from '../../plugin/sources/source.js';
import type { Transform } from '../../plugin/transform.js';

const RUNS = Number(process.env.GUESTPLANE_FUZZ_RUNS ?? 3000);
const U32 = 2 ** 32;
const U64 = 1n << 64n;

const knownFormats = [...drm.DRM_FORMATS.values()];
const singlePlane = knownFormats.filter((f) => f.planes === 1);
const rgb32 = singlePlane.filter((f) => f.cpp[0] === 4);

// Numbers a guest (or a buggy mediated driver) can put in a u32/s32 field, plus what a
// careless source could hand on: negatives, fractions, NaN, infinities, 2^53+.
const nastyNumber = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: -8, max: 20_000 }) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: U32 - 1 }) },
  { weight: 1, arbitrary: fc.constantFrom(NaN, Infinity, -Infinity, -0, 0.5, 2 ** 31, U32, U32 + 4, 2 ** 40, 2 ** 53, 2 ** 53 + 2, 1e300, -(2 ** 31)) },
  { weight: 1, arbitrary: fc.double() },
);
const nastyFormat = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...knownFormats.map((f) => f.fourcc)) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: U32 - 1 }) },
  { weight: 1, arbitrary: fc.constantFrom(0, -1, NaN, drm.fourcc('XR24') + 0.5, U32 + drm.fourcc('XR24')) },
);
const nastyModifier = fc.oneof(
  fc.constantFrom(0n, drm.DRM_FORMAT_MOD_INVALID, (1n << 56n) | 1n, U64 - 1n, U64, -1n, 1n << 70n),
  fc.bigInt({ min: 0n, max: U64 - 1n }),
  fc.bigInt({ min: -(1n << 70n), max: 1n << 70n }),
);
const nastyHot = fc.oneof(fc.constant(-1), nastyNumber);

const arbitraryPlane: fc.Arbitrary<GuestPlaneInfo> = fc.record({
  kind: fc.constantFrom('primary' as const, 'cursor' as const),
  bufferId: fc.oneof(fc.integer({ min: 0, max: U32 - 1 }), fc.constantFrom(-1, NaN)),
  transport: fc.constantFrom('dmabuf' as const, 'region' as const),
  format: nastyFormat,
  modifier: nastyModifier,
  width: nastyNumber,
  height: nastyNumber,
  stride: nastyNumber,
  offset: nastyNumber,
  size: nastyNumber,
  x: nastyNumber,
  y: nastyNumber,
  hotX: nastyHot,
  hotY: nastyHot,
  generation: fc.integer({ min: 0, max: 1000 }),
  transform: fc.oneof(fc.constant(undefined), fc.integer({ min: 0, max: 7 }) as fc.Arbitrary<Transform>, fc.constantFrom(-1, 8, 1.5, NaN) as fc.Arbitrary<Transform>),
  crop: fc.oneof(fc.constant(undefined), fc.record({ x: nastyNumber, y: nastyNumber, width: nastyNumber, height: nastyNumber })),
  displaySize: fc.oneof(fc.constant(undefined), fc.record({ width: nastyNumber, height: nastyNumber })),
});
const bufferSize = fc.oneof(fc.constant(null), fc.integer({ min: 0, max: 2 ** 26 }), fc.constantFrom(0, 4096, U32, 2 ** 40));

/** A description a well-behaved guest could send, and a buffer it fits in. */
const goodPlane = fc
  .record({
    fmt: fc.constantFrom(...singlePlane),
    width: fc.integer({ min: 1, max: 2048 }),
    height: fc.integer({ min: 1, max: 2048 }),
    pad: fc.integer({ min: 0, max: 256 }),
    offset: fc.integer({ min: 0, max: 65536 }),
    slack: fc.integer({ min: 0, max: 8192 }),
    x: fc.integer({ min: -MAX_POSITION, max: MAX_POSITION }),
    y: fc.integer({ min: -MAX_POSITION, max: MAX_POSITION }),
    kind: fc.constantFrom('primary' as const, 'cursor' as const),
    claims: fc.boolean(),
  })
  .map(({ fmt, width, height, pad, offset, slack, x, y, kind, claims }) => {
    const stride = width * fmt.cpp[0] + pad;
    const span = offset + stride * (height - 1) + width * fmt.cpp[0];
    const plane: GuestPlaneInfo = {
      kind,
      bufferId: 7,
      transport: 'dmabuf',
      format: fmt.fourcc,
      modifier: 0n,
      width,
      height,
      stride,
      offset,
      size: claims ? span + slack : 0,
      x,
      y,
      hotX: -1,
      hotY: -1,
      generation: 1,
    };
    return { plane, size: span + slack };
  });

/** What the kernel would accept for a linear single-plane FB, in BigInt. */
function kernelAccepts(p: GuestPlaneInfo, size: number): boolean {
  const info = drm.formatInfo(p.format);
  if (!info || info.planes !== 1 || !Number.isInteger(p.format) || p.format < 0 || p.format >= U32) return false;
  const ints = [p.width, p.height, p.stride, p.offset];
  if (!ints.every((n) => Number.isSafeInteger(n) && n >= 0 && n < U32)) return false;
  if (p.width === 0 || p.height === 0) return false;
  const w = BigInt(p.width);
  const cpp = BigInt(info.cpp[0]);
  if (BigInt(p.stride) < w * cpp) return false;
  return BigInt(p.offset) + BigInt(p.stride) * (BigInt(p.height) - 1n) + w * cpp <= BigInt(size);
}

// Which words an error about a field must contain, so a user (or a log reader) can tell
// which of the guest's numbers was wrong.
const FIELD_WORDS: Record<ValidationCause | 'modifier-range', RegExp> = {
  'format-unknown': /format/,
  'format-multiplanar': /format .* planes/,
  'size-range': /size \S+x\S+/,
  'stride-range': /stride/,
  'stride-too-small': /stride .* width/,
  'offset-range': /offset/,
  'buffer-too-small': /spans .*buffer has only/,
  'claimed-size': /claim/,
  'position-range': /position/,
  'hotspot-range': /hotspot/,
  'modifier-range': /modifier/,
  transform: /transform/,
  'crop-range': /crop|display size/,
};

describe('validatePlane under arbitrary guest input', () => {
  it('never throws; a refusal names the plane, the buffer and the field', () => {
    fc.assert(
      fc.property(arbitraryPlane, bufferSize, (p, size) => {
        const v = validatePlane(p, size);
        if (v.ok) return;
        expect(Object.keys(FIELD_WORDS)).toContain(v.cause);
        expect(v.message).toMatch(new RegExp(`^guest ${p.kind} plane \\(buffer ${p.bufferId}\\): `));
        expect(v.message).toMatch(FIELD_WORDS[v.cause]);
      }),
      { numRuns: RUNS },
    );
  });

  it('accepts nothing the kernel would refuse or that reaches past the buffer (BigInt oracle)', () => {
    fc.assert(
      fc.property(arbitraryPlane, fc.integer({ min: 0, max: 2 ** 30 }), (p, size) => {
        const v = validatePlane(p, size);
        if (!v.ok) return;
        expect(kernelAccepts(p, size)).toBe(true);
        const info = drm.formatInfo(p.format)!;
        expect(v.span).toBe(p.offset + p.stride * (p.height - 1) + p.width * info.cpp[0]);
        expect(p.width).toBeLessThanOrEqual(MAX_DIMENSION);
        expect(p.height).toBeLessThanOrEqual(MAX_DIMENSION);
        expect(p.stride).toBeLessThanOrEqual(MAX_STRIDE);
        if (p.size !== 0) expect(p.size).toBeGreaterThanOrEqual(v.span);
        for (const n of [p.x, p.y]) expect(Number.isInteger(n) && Math.abs(n) <= MAX_POSITION).toBe(true);
        // The modifier goes to the kernel as a u64: anything else would wrap into another modifier.
        expect(p.modifier >= 0n && p.modifier < U64).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });

  it('accepts every well-formed description that fits its buffer', () => {
    fc.assert(
      fc.property(goodPlane, ({ plane, size }) => {
        const v = validatePlane(plane, size);
        expect(v.ok ? 'ok' : v.message).toBe('ok');
        expect(validatePlane(plane, null).ok).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });

  // One field at a time made wrong: the refusal must be about that field.
  const mutations: Array<[string, ValidationCause | 'modifier-range', (p: GuestPlaneInfo, size: number) => fc.Arbitrary<Partial<GuestPlaneInfo>>]> = [
    ['format', 'format-unknown', () => fc.constantFrom(0, 0x20202020, drm.fourcc('XR24') + 1).map((format) => ({ format }))],
    ['multi-planar format', 'format-multiplanar', () => fc.constantFrom(...knownFormats.filter((f) => f.planes > 1)).map((f) => ({ format: f.fourcc }))],
    ['width', 'size-range', () => fc.constantFrom(0, -1, MAX_DIMENSION + 1, 1.5, NaN).map((width) => ({ width }))],
    ['height', 'size-range', () => fc.constantFrom(0, -1, MAX_DIMENSION + 1, 2.5, Infinity).map((height) => ({ height }))],
    ['stride range', 'stride-range', () => fc.constantFrom(-4, MAX_STRIDE + 4, 3.5, NaN).map((stride) => ({ stride }))],
    ['stride too small', 'stride-too-small', (p) => fc.integer({ min: 0, max: p.width * drm.formatInfo(p.format)!.cpp[0] - 1 }).map((stride) => ({ stride }))],
    ['offset', 'offset-range', () => fc.constantFrom(-1, 0.25, NaN, 2 ** 53).map((offset) => ({ offset }))],
    ['offset past the end', 'buffer-too-small', (_p, size) => fc.integer({ min: size, max: size + 2 ** 20 }).map((offset) => ({ offset, size: 0 }))],
    ['claimed size', 'claimed-size', () => fc.constantFrom(1, -5, 0.5, NaN).map((size) => ({ size }))],
    ['position', 'position-range', () => fc.constantFrom(MAX_POSITION + 1, -MAX_POSITION - 1, 0.5, NaN).map((x) => ({ x }))],
    ['hotspot', 'hotspot-range', (p) => fc.constantFrom(p.width, -2, 0.5, NaN).map((hotX) => ({ hotX }))],
    ['modifier', 'modifier-range', () => fc.constantFrom(-1n, U64, 1n << 70n).map((modifier) => ({ modifier }))],
  ];
  it.each(mutations)('a wrong %s is refused with cause %s', (_name, cause, mutate) => {
    fc.assert(
      fc.property(
        goodPlane.chain(({ plane, size }) => mutate(plane, size).map((m) => ({ plane: { ...plane, ...m }, size }))),
        ({ plane, size }) => {
          const v = validatePlane(plane, size);
          expect(v.ok).toBe(false);
          if (v.ok) return;
          expect(v.cause).toBe(cause);
          expect(v.message).toMatch(FIELD_WORDS[cause]);
        },
      ),
      { numRuns: Math.ceil(RUNS / 10) },
    );
  });
});

describe('validatePlane: multi-plane formats (NV12…) in one dma-buf', () => {
  const multi = knownFormats.filter((f) => f.planes > 1);
  // Well-formed: every plane its minimum pitch (plus slack) at its own offset, one after another.
  const goodMulti = fc
    .record({ f: fc.constantFrom(...multi), w: fc.integer({ min: 1, max: 4096 }), h: fc.integer({ min: 1, max: 2160 }), pad: fc.integer({ min: 0, max: 256 }), gap: fc.integer({ min: 0, max: 4096 }) })
    .map(({ f, w, h, pad, gap }) => {
      let at = 0;
      const planes = Array.from({ length: f.planes }, (_, i) => {
        const stride = drm.minPitch(f, i, w) + pad;
        const q = { offset: at, stride };
        at += drm.minPlaneSize(f, i, w, h, stride) + gap;
        return q;
      });
      const plane: GuestPlaneInfo = { kind: 'primary', bufferId: 1, transport: 'dmabuf', format: f.fourcc, modifier: 0n, width: w, height: h, stride: planes[0]!.stride, offset: 0, size: 0, x: 0, y: 0, hotX: -1, hotY: -1, generation: 1, planes: planes.slice(1) };
      return { plane, size: at };
    });

  it('accepts each plane that fits, refuses a plane past the buffer, a short stride, a missing plane, a region', () => {
    fc.assert(
      fc.property(goodMulti, ({ plane, size }) => {
        expect(validatePlane(plane, size)).toMatchObject({ ok: true });
        const last = plane.planes!.length - 1;
        const moved = plane.planes!.map((q, i) => (i === last ? { ...q, offset: q.offset + size } : q));
        expect(validatePlane({ ...plane, planes: moved }, size)).toMatchObject({ ok: false, cause: 'buffer-too-small', message: expect.stringMatching(new RegExp(`plane ${last + 1} spans`)) });
        const min = drm.minPitch(drm.formatInfo(plane.format)!, 1, plane.width);
        const short = plane.planes!.map((q, i) => (i === 0 ? { ...q, stride: min - 1 } : q));
        expect(validatePlane({ ...plane, planes: short }, size)).toMatchObject({ ok: false, cause: 'stride-too-small' });
        expect(validatePlane({ ...plane, planes: plane.planes!.slice(1) }, size)).toMatchObject({ ok: false, cause: 'format-multiplanar' });
        expect(validatePlane({ ...plane, transport: 'region' }, size)).toMatchObject({ ok: false, cause: 'format-multiplanar' });
      }),
      { numRuns: Math.ceil(RUNS / 10) },
    );
  });
});

/** A Uint8Array whose views refuse to reach outside it (subarray clamps silently otherwise). */
class Fenced extends Uint8Array {
  override subarray(begin = 0, end = this.length): Uint8Array<ArrayBuffer> {
    if (begin < 0 || end > this.length || begin > end) throw new RangeError(`read of bytes ${begin}..${end} outside a ${this.length}-byte guest buffer`);
    return super.subarray(begin, end);
  }
}

describe('CPU copy of whatever validatePlane accepts', () => {
  // The copy path runs on the real buffer size (the mapping's length): every source byte
  // it reads must lie inside, whatever the guest's stride/offset and the fit mode.
  const copyCase = fc
    .record({
      fmt: fc.constantFrom(...rgb32),
      width: fc.integer({ min: 1, max: 96 }),
      height: fc.integer({ min: 1, max: 64 }),
      pad: fc.integer({ min: 0, max: 9 }),
      offset: fc.integer({ min: 0, max: 13 }),
      slack: fc.integer({ min: 0, max: 9 }),
      fit: fc.constantFrom<FitMode>('native', 'fit', 'fill'),
      screenW: fc.integer({ min: 1, max: 120 }),
      screenH: fc.integer({ min: 1, max: 90 }),
    })
    .map((c) => {
      const stride = c.width * 4 + c.pad;
      return { ...c, stride, size: c.offset + stride * (c.height - 1) + c.width * 4 + c.slack };
    });
  it('reads only inside the buffer, writes every destination pixel, never throws', () => {
    fc.assert(
      fc.property(copyCase, (c) => {
        const plane: GuestPlaneInfo = {
          kind: 'primary', bufferId: 1, transport: 'dmabuf', format: c.fmt.fourcc, modifier: 0n,
          width: c.width, height: c.height, stride: c.stride, offset: c.offset, size: 0,
          x: 0, y: 0, hotX: -1, hotY: -1, generation: 1,
        };
        const v = validatePlane(plane, c.size);
        fc.pre(v.ok);
        const src = new Fenced(c.size).fill(0xab);
        const dst = new Uint8Array(c.screenW * 4 * c.screenH);
        const place = placement(c.fit, c.width, c.height, c.screenW, c.screenH);
        const n = blit({ bytes: src, offset: c.offset, stride: c.stride, width: c.width, height: c.height }, place.src, { bytes: dst, offset: 0, stride: c.screenW * 4, width: c.screenW, height: c.screenH }, place.dst);
        expect(n).toBe(place.dst.width * place.dst.height * 4);
        let unwritten = 0;
        for (let y = place.dst.y; y < place.dst.y + place.dst.height; y++) {
          for (let i = (y * c.screenW + place.dst.x) * 4; i < (y * c.screenW + place.dst.x + place.dst.width) * 4; i++) if (dst[i] !== 0xab) unwritten++;
        }
        expect(unwritten).toBe(0);
      }),
      { numRuns: Math.ceil(RUNS / 3) },
    );
  });
});
