// Captured frames to PNG files (for a person to look at a failing test's screen) and a
// pixel comparison that says how many pixels differ and where the first one is.
//
// 32-bit formats only: XR24/AR24 (bytes B,G,R,X/A, DRM_FORMAT_XRGB8888 / ARGB8888) and
// XB24/AB24 (bytes R,G,B,X/A). X formats are written opaque; the comparison looks at
// R, G and B only.
import { mkdirSync, writeFileSync, existsSync, accessSync, constants as fsConstants } from 'node:fs';
import { dirname, join } from 'node:path';
import { tmpdir } from 'node:os';
import { PNG } from 'pngjs';
import { fourcc } from '../../../ffi/drm.js';

export { toRgba, encodePng, type Image } from '../../../plugin/png.js';
import { encodePng, layout, check, type Image } from '../../../plugin/png.js';

/** Writes an image to `path` as PNG (creating the directory). Returns the path. */
export function writePng(path: string, img: Image): string {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, encodePng(img));
  return path;
}

/** Decodes PNG bytes into an AB24 image (bytes R,G,B,A), for comparisons with files. */
export function readPng(bytes: Buffer): Image {
  const png = PNG.sync.read(bytes);
  return { width: png.width, height: png.height, stride: png.width * 4, format: fourcc('AB24'), pixels: new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.byteLength) };
}

/**
 * Where rig tests put files for a person: the rig's results share (/mnt/rig, copied back
 * to the host) when writable, else the temp dir. `sub` is a sub-directory.
 */
export function resultsDir(sub = ''): string {
  let base = tmpdir();
  if (existsSync('/mnt/rig')) {
    try {
      accessSync('/mnt/rig', fsConstants.W_OK);
      base = '/mnt/rig';
    } catch {
      /* read-only: use tmp */
    }
  }
  const d = join(base, sub);
  mkdirSync(d, { recursive: true });
  return d;
}

export interface PixelMismatch {
  x: number;
  y: number;
  /** 0xRRGGBB */
  expected: number;
  actual: number;
}

export interface CompareResult {
  /** Pixels compared (the region's area). */
  total: number;
  /** Pixels whose R, G or B differ by more than the tolerance. */
  mismatches: number;
  /** The first mismatch in row order, or null. */
  first: PixelMismatch | null;
  /** Largest per-channel difference seen. */
  maxDelta: number;
}

export interface CompareOptions {
  /** Region to compare (default: the whole of the smaller image). */
  x?: number;
  y?: number;
  width?: number;
  height?: number;
  /** Per-channel difference allowed (default 0: exact). */
  tolerance?: number;
  /** Offset of `actual`'s region relative to `expected`'s (e.g. a plane at CRTC_X/Y). */
  dx?: number;
  dy?: number;
}

const hex = (v: number) => `#${v.toString(16).padStart(6, '0')}`;

/** Compares the RGB of two images (alpha/X ignored). */
export function comparePixels(expected: Image, actual: Image, opts: CompareOptions = {}): CompareResult {
  check(expected, 'comparePixels(expected)');
  check(actual, 'comparePixels(actual)');
  const le = layout(expected.format);
  const la = layout(actual.format);
  const dx = opts.dx ?? 0;
  const dy = opts.dy ?? 0;
  const x0 = opts.x ?? 0;
  const y0 = opts.y ?? 0;
  const w = opts.width ?? Math.min(expected.width - x0, actual.width - x0 - dx);
  const h = opts.height ?? Math.min(expected.height - y0, actual.height - y0 - dy);
  if (x0 < 0 || y0 < 0 || x0 + w > expected.width || y0 + h > expected.height || x0 + dx < 0 || y0 + dy < 0 || x0 + dx + w > actual.width || y0 + dy + h > actual.height) {
    throw new RangeError(`comparePixels: region ${w}x${h}+${x0}+${y0} (offset ${dx},${dy}) is outside the images`);
  }
  const tol = opts.tolerance ?? 0;
  const eo = expected.offset ?? 0;
  const ao = actual.offset ?? 0;
  const E = expected.pixels;
  const A = actual.pixels;
  let mismatches = 0;
  let maxDelta = 0;
  let first: PixelMismatch | null = null;
  for (let y = y0; y < y0 + h; y++) {
    let e = eo + y * expected.stride + x0 * 4;
    let a = ao + (y + dy) * actual.stride + (x0 + dx) * 4;
    for (let x = x0; x < x0 + w; x++, e += 4, a += 4) {
      const dr = Math.abs(E[e + le.r] - A[a + la.r]);
      const dg = Math.abs(E[e + le.g] - A[a + la.g]);
      const db = Math.abs(E[e + le.b] - A[a + la.b]);
      const d = Math.max(dr, dg, db);
      if (d > maxDelta) maxDelta = d;
      if (d > tol) {
        mismatches++;
        if (!first) {
          first = {
            x,
            y,
            expected: (E[e + le.r] << 16) | (E[e + le.g] << 8) | E[e + le.b],
            actual: (A[a + la.r] << 16) | (A[a + la.g] << 8) | A[a + la.b],
          };
        }
      }
    }
  }
  return { total: w * h, mismatches, first, maxDelta };
}

/** Counts pixels that are not `rgb` (0xRRGGBB) in an image or region. */
export function countNotColour(img: Image, rgb: number, opts: Omit<CompareOptions, 'dx' | 'dy'> = {}): CompareResult {
  const solid = new Uint8Array(img.width * 4 * img.height);
  const px = new Uint32Array(solid.buffer);
  px.fill((0xff000000 | rgb) >>> 0); // XR24 bytes B,G,R,X little-endian
  return comparePixels({ width: img.width, height: img.height, stride: img.width * 4, format: fourcc('XR24'), pixels: solid }, img, opts);
}

/** One line for an assertion message: "12 of 307200 pixels differ, first at (3,4): expected #ff0000, got #00ff00". */
export function describeCompare(r: CompareResult): string {
  if (r.mismatches === 0) return `all ${r.total} pixels match`;
  const f = r.first!;
  return `${r.mismatches} of ${r.total} pixels differ (max channel delta ${r.maxDelta}), first at (${f.x},${f.y}): expected ${hex(f.expected)}, got ${hex(f.actual)}`;
}
