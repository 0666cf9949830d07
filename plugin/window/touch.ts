// The desktop's wl_touch into the guest shown in the window (issue 28 item 4), through the
// kiosk's touch path (input/touch.ts: GuestTouch): each touch point that goes down on the
// guest's picture is mapped through the window's fit into guest pixels (guest-point.ts)
// and becomes its own slot of QEMU's MultiTouch (`--touch multitouch`; QEMU 8.1+, the guest
// needs a touch device, e.g. -device virtio-multitouch-pci), or, by default, one finger is
// the guest's pointer and its left button, which every guest takes. Where QEMU refuses
// MultiTouch (7.2 has none) touch falls back to the pointer, said once.
//
// A point that goes down in the letterbox around the picture is not the guest's (it would
// land on the picture's edge, where guests keep their edge gestures); one that slides off
// the picture stays on its edge. Motion comes in the coordinates of the surface the point
// went down on (wl_touch), so that surface is kept per point. wl_touch.cancel, the seat
// losing its touch capability and close() end every point down in the guest.
//
// Ownership: the wl_touch proxy is this object's (released in close()); the Desktop, the
// window, the GuestPort and Held (shared with the pointer, so a relative guest's position
// and the left button stay one) are the caller's.
import type { WlSurface, WlTouch } from '../../protocols/generated/client/wayland.js';
import { GuestTouch } from '../input/touch.js';
import type { GuestPort, Held, InputTarget, Point } from '../input/guest-port.js';
import { windowToGuest, type WindowGeometry } from './guest-point.js';

export type TouchMode = 'pointer' | 'multitouch';

export interface WindowTouchOptions {
  mode: TouchMode;
  /** Whether QEMU offers MultiTouch on the console (for the hint when touch is the pointer). */
  offersMultiTouch?: () => boolean;
  log: (line: string) => void;
}

export class WindowTouch {
  readonly #touch: WlTouch;
  readonly #guest: GuestTouch<Point>;
  /** Points down on our surfaces: the surface each went down on. */
  readonly #points = new Map<number, WlSurface>();
  #hinted = false;
  #closed = false;
  /** Counts for stats and tests. */
  readonly counts = { downs: 0, motions: 0, ups: 0, cancels: 0 };

  constructor(
    touch: WlTouch,
    private readonly view: WindowGeometry,
    target: InputTarget,
    port: GuestPort,
    held: Held,
    private readonly opts: WindowTouchOptions,
  ) {
    this.#touch = touch;
    this.#guest = new GuestTouch<Point>(
      {
        toGuest: (g) => g,
        pointerTo: (g) => port.moveTo(g),
        press: (b, down) => held.button(down ? port : null, b, down),
        ...(target.touch ? { send: target.touch.bind(target) } : {}),
        error: (e) => opts.log(`guestplane window: touch: ${e.message}`),
      },
      opts.mode === 'multitouch',
    );
    touch.on({
      down: (_serial, _time, surface, id, x, y) => this.#down(surface, id, x, y),
      motion: (_time, id, x, y) => this.#motion(id, x, y),
      up: (_serial, _time, id) => this.#up(id),
      cancel: () => this.#cancel(),
      // QEMU takes each MultiTouch event with its own sync: a frame adds nothing.
      frame: () => {},
    });
  }

  /** Whether touch goes to QEMU's MultiTouch (false: the pointer, asked or after a refusal). */
  get multiTouch(): boolean {
    return this.#guest.multiTouch;
  }

  #down(surface: WlSurface | null, id: number, x: number, y: number): void {
    if (!surface || (surface !== this.view.parent && surface !== this.view.guestSurface)) return;
    const g = windowToGuest(this.view, surface, x, y);
    if (!g?.inside) return;
    this.#hint();
    this.#points.set(id, surface);
    this.counts.downs++;
    this.#guest.start(id, g.at);
  }

  #motion(id: number, x: number, y: number): void {
    const surface = this.#points.get(id);
    const g = surface && windowToGuest(this.view, surface, x, y);
    if (!g) return;
    this.counts.motions++;
    this.#guest.move(id, g.at);
  }

  #up(id: number): void {
    if (!this.#points.delete(id)) return;
    this.counts.ups++;
    this.#guest.end(id);
  }

  #cancel(): void {
    if (this.#points.size > 0) this.counts.cancels++;
    this.#points.clear();
    this.#guest.cancel();
  }

  /** Touch as the pointer where the guest could have had every finger: said once, at the first touch. */
  #hint(): void {
    if (this.#hinted || this.opts.mode !== 'pointer' || !this.opts.offersMultiTouch?.()) return;
    this.#hinted = true;
    this.opts.log('guestplane window: touch goes to the guest as its pointer; if the guest has a touch device (e.g. QEMU -device virtio-multitouch-pci), --touch multitouch gives it every finger');
  }

  /** Ends the points down in the guest and lets go of the wl_touch (`live`: the desktop connection is still up). */
  close(live: boolean): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#cancel();
    if (!live) return;
    if (this.#touch.version >= 3) this.#touch.release();
    else this.#touch.destroyProxy();
  }
}
