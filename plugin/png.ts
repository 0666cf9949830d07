// Frames to PNG (kiosk and demo captures from the writeback connector). 32-bit formats:
// XR24/AR24 (bytes B,G,R,X/A) and XB24/AB24 (bytes R,G,B,X/A); X formats are written opaque.
import { PNG } from 'pngjs';
import { fourcc, fourccName } from '../ffi/drm.js';

/** Pixels in memory: what WritebackCapture.wait() returns, or a dumb buffer / guest buffer. */
export interface Image {
  width: number;
  height: number;
  /** Bytes per row. */
  stride: number;
  /** DRM fourcc; default XR24. */
  format?: number;
  pixels: Uint8Array;
  /** Offset of the first pixel in `pixels` (default 0). */
  offset?: number;
}

interface Layout {
  r: number;
  g: number;
  b: number;
  a: number | null;
}

export function layout(format: number | undefined): Layout {
  const f = format ?? fourcc('XR24');
  if (f === fourcc('XR24')) return { r: 2, g: 1, b: 0, a: null };
  if (f === fourcc('AR24')) return { r: 2, g: 1, b: 0, a: 3 };
  if (f === fourcc('XB24')) return { r: 0, g: 1, b: 2, a: null };
  if (f === fourcc('AB24')) return { r: 0, g: 1, b: 2, a: 3 };
  throw new Error(`png: format ${fourccName(f)} is not supported (XR24, AR24, XB24, AB24 only)`);
}

export function check(img: Image, what: string): void {
  const need = (img.offset ?? 0) + (img.height - 1) * img.stride + img.width * 4;
  if (img.width <= 0 || img.height <= 0) throw new RangeError(`${what}: size ${img.width}x${img.height}`);
  if (img.stride < img.width * 4) throw new RangeError(`${what}: stride ${img.stride} < width*4 (${img.width * 4})`);
  if (img.pixels.byteLength < need) throw new RangeError(`${what}: ${img.pixels.byteLength} bytes, ${img.width}x${img.height} stride ${img.stride} needs ${need}`);
}

/** RGBA bytes (what PNG wants) of an image. */
export function toRgba(img: Image): Buffer {
  check(img, 'png');
  const L = layout(img.format);
  const out = Buffer.alloc(img.width * img.height * 4);
  const off = img.offset ?? 0;
  const src = img.pixels;
  for (let y = 0; y < img.height; y++) {
    let s = off + y * img.stride;
    let d = y * img.width * 4;
    for (let x = 0; x < img.width; x++, s += 4, d += 4) {
      out[d] = src[s + L.r];
      out[d + 1] = src[s + L.g];
      out[d + 2] = src[s + L.b];
      out[d + 3] = L.a === null ? 255 : src[s + L.a];
    }
  }
  return out;
}

/** Encodes an image as PNG bytes. */
export function encodePng(img: Image): Buffer {
  const png = new PNG({ width: img.width, height: img.height, colorType: 6, inputColorType: 6, inputHasAlpha: true });
  toRgba(img).copy(png.data);
  return PNG.sync.write(png);
}

