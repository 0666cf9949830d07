// wp_viewporter: a client crops its buffer (set_source, surface coordinates, fractional)
// and gives its surface a size (set_destination); both double-buffered, applied on
// wl_surface.commit (Surface checks them against the buffer then: bad_size,
// out_of_buffer). The kiosk shows the crop at that size: a plane scales it where the
// kernel lets it, else it is composed (the report says 'scaling').
import type { Display, Global } from '../../protocols/runtime.js';
import { ProtocolViolation } from '../../protocols/runtime.js';
import { WpViewporter, WpViewporterError, WpViewportError, type WpViewport } from '../../protocols/generated/viewporter.js';
import { Surface, type ViewportOwner } from './surface.js';

export function createViewporterGlobal(display: Display): Global<WpViewporter> {
  return WpViewporter.global(display, 1, (id) => {
    id.create({
      destroy() {},
      getViewport(res, vid, surfaceRes) {
        const surface = Surface.of(surfaceRes);
        if (surface.viewport && !surface.viewport.detached) throw new ProtocolViolation(res, WpViewporterError.VIEWPORT_EXISTS, `${surfaceRes} already has a wp_viewport`);
        let owner: ViewportOwner | null = null;
        // Requests on a viewport whose surface is gone are errors (no_surface), but destroy.
        const live = (r: WpViewport): ViewportOwner => {
          if (surfaceRes.destroyed || !owner) throw new ProtocolViolation(r, WpViewportError.NO_SURFACE, 'the wl_surface of this wp_viewport was destroyed');
          return owner;
        };
        const viewport = vid.create({
          destroy() {
            // The crop and scale go away with the next commit, like any pending state.
            if (owner) {
              owner.pending = { src: null, dst: null };
              owner.detached = true;
            }
            owner = null;
          },
          setSource(r, x, y, w, h) {
            const o = live(r);
            if (x === -1 && y === -1 && w === -1 && h === -1) {
              o.pending.src = null;
              return;
            }
            if (!(x >= 0 && y >= 0 && w > 0 && h > 0)) {
              throw new ProtocolViolation(r, WpViewportError.BAD_VALUE, `source ${w}x${h}+${x}+${y}: x and y must be >= 0, width and height > 0 (or all -1 to unset)`);
            }
            o.pending.src = { x, y, width: w, height: h };
          },
          setDestination(r, w, h) {
            const o = live(r);
            if (w === -1 && h === -1) {
              o.pending.dst = null;
              return;
            }
            if (!(w > 0 && h > 0)) throw new ProtocolViolation(r, WpViewportError.BAD_VALUE, `destination ${w}x${h}: width and height must be > 0 (or both -1 to unset)`);
            o.pending.dst = { w, h };
          },
        });
        // A viewport destroyed but not yet committed away hands its current state on.
        owner = { resource: viewport, pending: surface.viewport ? { src: null, dst: null } : {}, current: surface.viewport?.current ?? { src: null, dst: null } };
        surface.viewport = owner;
      },
    });
  });
}
