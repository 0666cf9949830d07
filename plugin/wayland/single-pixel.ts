// wp_single_pixel_buffer_manager_v1: a wl_buffer of one colour (mpv's background behind
// its video sub-surface, toolkits' solid fills), shown at its wp_viewport destination
// size. It is a 1x1 premultiplied ARGB picture on the copy path: the composer stretches
// it (nearest-neighbour, exact for one pixel).
import { fourcc } from '../../ffi/drm.js';
import type { Display, Global } from '../../protocols/runtime.js';
import { WpSinglePixelBufferManagerV1 } from '../../protocols/generated/single_pixel_buffer_v1.js';
import { bindBuffer, newBufferId, type SolidBuffer } from './buffer.js';

/** A u32 channel (0..0xffffffff = 0..100 %) as an 8-bit value. */
function channel(v: number): number {
  return Math.round(((v >>> 0) / 0xffffffff) * 255);
}

export function createSinglePixelBufferGlobal(display: Display): Global<WpSinglePixelBufferManagerV1> {
  return WpSinglePixelBufferManagerV1.global(display, 1, (id) => {
    id.create({
      destroy() {},
      createU32RgbaBuffer(_res, bid, r, g, b, a) {
        const resource = bid.create({});
        const alpha = channel(a);
        const buffer: SolidBuffer = {
          kind: 'solid',
          id: newBufferId(),
          resource,
          width: 1,
          height: 1,
          // Opaque pixels as XR24, so the output knows nothing shows through.
          format: fourcc(alpha === 255 ? 'XR24' : 'AR24'),
          pixel: Uint8Array.of(channel(b), channel(g), channel(r), alpha),
        };
        bindBuffer(buffer);
      },
    });
  });
}
