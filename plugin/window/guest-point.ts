// A point on one of the window's surfaces (the desktop's pointer or touch coordinates) in
// guest pixels, through the window's fit (the kiosk's toGuestPoint). The black parent's
// coordinates are the window's; the guest sub-surface's are its viewport's destination,
// offset by where the fit placed it (a desktop delivers input to the sub-surface it hits,
// ours and Weston both do); without a letterbox the guest's buffer is the window, 1:1.
import type { WlSurface } from '../../protocols/generated/client/wayland.js';
import { placement, type FitMode } from '../geometry.js';
import { toGuestPoint, type Point, type Size } from '../input/guest-port.js';

/** What the mapping needs of the window (WindowOutput). */
export interface WindowGeometry {
  readonly parent: WlSurface;
  readonly guestSurface: WlSurface;
  readonly letterbox: boolean;
  readonly width: number;
  readonly height: number;
  readonly fit: FitMode;
  /** The guest picture's size as shown (after its transform), null while there is none. */
  guestPicture(): Size | null;
}

export interface GuestPoint {
  /** In guest pixels, clamped onto the picture. */
  at: Point;
  /** Whether the point is on the picture (not in the letterbox around it). */
  inside: boolean;
}

/** `(x, y)` on `surface` (one of the window's) in guest pixels; null without a picture. */
export function windowToGuest(view: WindowGeometry, surface: WlSurface, x: number, y: number): GuestPoint | null {
  const pic = view.guestPicture();
  if (!pic) return null;
  if (!view.letterbox) return { at: toGuestPoint({ x, y }, pic, pic, view.fit), inside: x >= 0 && y >= 0 && x < pic.width && y < pic.height };
  const { dst } = placement(view.fit, pic.width, pic.height, view.width, view.height);
  const p = surface === view.guestSurface ? { x: dst.x + x, y: dst.y + y } : { x, y };
  const inside = p.x >= dst.x && p.y >= dst.y && p.x < dst.x + dst.width && p.y < dst.y + dst.height;
  return { at: toGuestPoint(p, { width: view.width, height: view.height }, pic, view.fit), inside };
}
