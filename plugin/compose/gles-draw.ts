// Programs and drawing: the composition shader (a textured quad with plane alpha and an
// "ignore alpha" switch, premultiplied "over"), the geometry of a layer's quad (with the
// buffer transform undone in the texture coordinates), the draw of a frame's layers into
// a target's framebuffer, and the read-back of a target (tests, screenshots).
import * as drm from '../../ffi/drm.js';
import * as egl from '../../ffi/egl.js';
import type { Rect } from '../geometry.js';
import { pictureSize, toBuffer, type Transform } from '../transform.js';
import type { ComposeOptions, GlesImage, GlesLayer, GlesTarget, ImageState, TargetState } from './gles-types.js';

// ---------------------------------------------------------------------------------------
// Shaders
// ---------------------------------------------------------------------------------------

const VERTEX_SHADER = `
attribute vec2 a_pos;
attribute vec2 a_uv;
varying vec2 v_uv;
void main() {
  v_uv = a_uv;
  gl_Position = vec4(a_pos, 0.0, 1.0);
}
`;

// highp where the GPU has it: mediump texture coordinates lose texels past ~2048 px.
const FRAGMENT_SHADER = `
#ifdef GL_FRAGMENT_PRECISION_HIGH
precision highp float;
#else
precision mediump float;
#endif
uniform sampler2D u_tex;
uniform float u_alpha;
uniform float u_opaque;
varying vec2 v_uv;
void main() {
  vec4 c = texture2D(u_tex, v_uv);
  c.a = mix(c.a, 1.0, u_opaque);
  gl_FragColor = c * u_alpha;
}
`;

const ATTR_POS = 0;
const ATTR_UV = 1;
const VERTEX_BYTES = 16 * 4;

function finite(...v: number[]): boolean {
  return v.every((x) => Number.isFinite(x));
}

/** Checks a layer's rectangles; returns the source rect to use. Throws RangeError. */
export function checkLayerRects(src: Rect | undefined, dst: Rect, imageW: number, imageH: number): Rect {
  const s = src ?? { x: 0, y: 0, width: imageW, height: imageH };
  if (!finite(s.x, s.y, s.width, s.height) || s.width <= 0 || s.height <= 0 || s.x < 0 || s.y < 0 || s.x + s.width > imageW || s.y + s.height > imageH) {
    throw new RangeError(`layer source ${s.width}x${s.height}+${s.x}+${s.y} is not inside the ${imageW}x${imageH} buffer`);
  }
  if (!finite(dst.x, dst.y, dst.width, dst.height) || dst.width <= 0 || dst.height <= 0) {
    throw new RangeError(`layer destination ${dst.width}x${dst.height}+${dst.x}+${dst.y} is empty`);
  }
  return s;
}

/** Whether a layer is an unscaled copy on whole pixels (any filter gives the same result). */
export function isPixelCopy(src: Rect, dst: Rect): boolean {
  return src.width === dst.width && src.height === dst.height && [src.x, src.y, src.width, src.height, dst.x, dst.y].every(Number.isInteger);
}

/**
 * Interleaved [x, y, u, v] for a TRIANGLE_STRIP quad drawing `src` (buffer pixels of an
 * imageW×imageH image) onto `dst` (pixels of a targetW×targetH target). Neither axis is
 * flipped: GL's row 0 of a framebuffer or texture made from a dma-buf is the buffer's
 * first row in memory, which KMS shows at the top; so y grows downward in both spaces.
 * `transform` is how the buffer holds the picture: each corner of `dst` samples the
 * buffer point that holds that corner of the picture.
 */
export function quadVertices(src: Rect, dst: Rect, imageW: number, imageH: number, targetW: number, targetH: number, transform: Transform = 0): Float32Array {
  const x0 = (2 * dst.x) / targetW - 1;
  const x1 = (2 * (dst.x + dst.width)) / targetW - 1;
  const y0 = (2 * dst.y) / targetH - 1;
  const y1 = (2 * (dst.y + dst.height)) / targetH - 1;
  const tex = (u: number, v: number): [number, number] => {
    const [a, b] = toBuffer(transform, u, v);
    return [(src.x + a * src.width) / imageW, (src.y + b * src.height) / imageH];
  };
  return Float32Array.of(x0, y0, ...tex(0, 0), x1, y0, ...tex(1, 0), x0, y1, ...tex(0, 1), x1, y1, ...tex(1, 1));
}

/** The GL objects a draw uses (the compositor's core holds them). */
export interface Program {
  program: number;
  vbo: number;
}

/** Compiles and links the composition program and makes its vertex buffer, into `into`. */
export function buildProgram(into: Program): void {
  const vs = egl.compileShader(egl.GL_VERTEX_SHADER, VERTEX_SHADER);
  let fs = 0;
  try {
    fs = egl.compileShader(egl.GL_FRAGMENT_SHADER, FRAGMENT_SHADER);
    into.program = egl.linkProgram(vs, fs, { a_pos: ATTR_POS, a_uv: ATTR_UV }, 'composition program');
  } finally {
    egl.glDeleteShader(vs);
    if (fs) egl.glDeleteShader(fs);
  }
  into.vbo = egl.glGenBuffer();
  egl.glBindBuffer(egl.GL_ARRAY_BUFFER, into.vbo);
  egl.glBufferData(egl.GL_ARRAY_BUFFER, null, VERTEX_BYTES, egl.GL_STREAM_DRAW);
}

/** The program's uniform locations. */
export function uniforms(p: Program): { tex: number; alpha: number; opaque: number } {
  return {
    tex: egl.glGetUniformLocation(p.program, 'u_tex'),
    alpha: egl.glGetUniformLocation(p.program, 'u_alpha'),
    opaque: egl.glGetUniformLocation(p.program, 'u_opaque'),
  };
}

/** One checked layer of a draw. */
export interface DrawLayer {
  l: GlesLayer;
  s: ImageState;
  alpha: number;
  src: Rect;
}

/** Binds the target's framebuffer, clears it and sets up the program and vertex layout. */
function begin(p: Program, uLoc: { tex: number }, target: GlesTarget, ts: TargetState, opts: ComposeOptions): void {
  egl.glBindFramebuffer(egl.GL_FRAMEBUFFER, ts.framebuffer);
  egl.glViewport(0, 0, target.width, target.height);
  egl.glDisable(egl.GL_SCISSOR_TEST);
  egl.glDisable(egl.GL_DEPTH_TEST);
  egl.glDisable(egl.GL_CULL_FACE);
  egl.glDisable(egl.GL_DITHER);
  const [r, g, b, a] = opts.clear ?? [0, 0, 0, 1];
  egl.glClearColor(r, g, b, a);
  egl.glClear(egl.GL_COLOR_BUFFER_BIT);

  egl.glUseProgram(p.program);
  egl.glUniform1i(uLoc.tex, 0);
  egl.glActiveTexture(egl.GL_TEXTURE0);
  egl.glBindBuffer(egl.GL_ARRAY_BUFFER, p.vbo);
  egl.glVertexAttribPointer(ATTR_POS, 2, egl.GL_FLOAT, false, 16, 0);
  egl.glVertexAttribPointer(ATTR_UV, 2, egl.GL_FLOAT, false, 16, 8);
  egl.glEnableVertexAttribArray(ATTR_POS);
  egl.glEnableVertexAttribArray(ATTR_UV);
  // Premultiplied "over"; skipped for opaque layers at full alpha (exact copies).
  egl.glBlendFunc(egl.GL_ONE, egl.GL_ONE_MINUS_SRC_ALPHA);
}

/**
 * Draws the layers (first = bottom) over the clear colour into the target and waits for
 * the GPU (glFinish). `upload` copies an upload-path image's pixels in first. Returns the
 * layers drawn and the bytes uploaded.
 */
export function drawLayers(
  p: Program,
  uLoc: { tex: number; alpha: number; opaque: number },
  target: GlesTarget,
  ts: TargetState,
  plan: readonly DrawLayer[],
  opts: ComposeOptions,
  upload: (img: GlesImage, s: ImageState) => number,
): { drawn: number; uploaded: number } {
  const filter = (opts.filter ?? 'linear') === 'nearest' ? egl.GL_NEAREST : egl.GL_LINEAR;
  let uploaded = 0;
  begin(p, uLoc, target, ts, opts);
  let drawn = 0;
  for (const { l, s, alpha, src } of plan) {
    if (alpha === 0) continue;
    if (s.map) uploaded += upload(l.image, s);
    egl.glBindTexture(egl.GL_TEXTURE_2D, s.texture);
    // An unscaled, pixel-aligned layer samples texel centres exactly: nearest gives the
    // same pixels as linear, and is cheaper (much, on software rasterisers).
    const shown = { ...src, ...pictureSize(l.transform ?? 0, src.width, src.height) };
    const f = isPixelCopy(shown, l.dst) ? egl.GL_NEAREST : filter;
    if (s.filter !== f) {
      egl.glTexParameteri(egl.GL_TEXTURE_2D, egl.GL_TEXTURE_MIN_FILTER, f);
      egl.glTexParameteri(egl.GL_TEXTURE_2D, egl.GL_TEXTURE_MAG_FILTER, f);
      s.filter = f;
    }
    const hasAlpha = drm.formatInfo(l.image.format)?.hasAlpha ?? true;
    const opaque = s.opaque || !hasAlpha;
    if (alpha < 1 || !opaque) egl.glEnable(egl.GL_BLEND);
    else egl.glDisable(egl.GL_BLEND);
    egl.glUniform1f(uLoc.alpha, alpha);
    egl.glUniform1f(uLoc.opaque, opaque ? 1 : 0);
    egl.glBufferSubData(egl.GL_ARRAY_BUFFER, 0, quadVertices(src, l.dst, l.image.width, l.image.height, target.width, target.height, l.transform ?? 0));
    egl.glDrawArrays(egl.GL_TRIANGLE_STRIP, 0, 4);
    drawn++;
  }
  egl.glDisableVertexAttribArray(ATTR_POS);
  egl.glDisableVertexAttribArray(ATTR_UV);
  egl.glDisable(egl.GL_BLEND);
  egl.checkGl('compose', `${plan.length} layer(s) into ${target.width}x${target.height}`);
  // The caller commits right after: the pixels must be in memory by then.
  egl.glFinish();
  egl.glBindFramebuffer(egl.GL_FRAMEBUFFER, 0);
  return { drawn, uploaded };
}

/** A target's pixels as read by GL, top row first, one 0xAARRGGBB word per pixel. */
export function readPixels(target: GlesTarget, ts: TargetState): Uint32Array {
  const w = target.width;
  const h = target.height;
  const rgba = Buffer.alloc(w * h * 4);
  egl.glBindFramebuffer(egl.GL_FRAMEBUFFER, ts.framebuffer);
  egl.glPixelStorei(egl.GL_PACK_ALIGNMENT, 4);
  try {
    egl.glReadPixels(0, 0, w, h, egl.GL_RGBA, egl.GL_UNSIGNED_BYTE, rgba);
  } finally {
    egl.glBindFramebuffer(egl.GL_FRAMEBUFFER, 0);
  }
  const out = new Uint32Array(w * h);
  for (let i = 0; i < w * h; i++) {
    out[i] = ((rgba[4 * i + 3] << 24) | (rgba[4 * i] << 16) | (rgba[4 * i + 1] << 8) | rgba[4 * i + 2]) >>> 0;
  }
  return out;
}
