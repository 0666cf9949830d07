// wp_fractional_scale_v1: tells a client the scale its surface is shown at, in 120ths, so
// it can render at the size the screen has (a Wayland client of ours, `guestplane window`,
// asks its guest to render at that size: window/size.ts). This compositor shows every
// surface on one output at scale 1, so the answer is `scale()` (default 120, i.e. 1.0),
// sent once when the object is made. One object per surface (fractional_scale_exists);
// the surface's association ends when the object is destroyed.
import type { Display, Global } from '../../protocols/runtime.js';
import { ProtocolViolation } from '../../protocols/runtime.js';
import { WpFractionalScaleManagerV1, WpFractionalScaleManagerV1Error } from '../../protocols/generated/fractional_scale_v1.js';
import type { WlSurface } from '../../protocols/generated/wayland.js';

export function createFractionalScaleGlobal(display: Display, scale: () => number = () => 120): Global<WpFractionalScaleManagerV1> {
  const taken = new WeakSet<WlSurface>();
  return WpFractionalScaleManagerV1.global(display, 1, (id) => {
    id.create({
      destroy() {},
      getFractionalScale(res, fid, surface) {
        if (taken.has(surface) && !surface.destroyed) throw new ProtocolViolation(res, WpFractionalScaleManagerV1Error.FRACTIONAL_SCALE_EXISTS, `${surface} already has a wp_fractional_scale_v1`);
        taken.add(surface);
        const obj = fid.create({ destroy: () => taken.delete(surface) });
        obj.sendPreferredScale(scale());
      },
    });
  });
}
