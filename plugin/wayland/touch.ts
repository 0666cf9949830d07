// wl_touch of the kiosk's seat. A touch point goes down on the surface under it and stays
// that surface's until it is lifted (its motion is in that surface's coordinates, even off
// it); a point that went down beside every surface is nobody's. The touch point id is
// libinput's seat slot. Events of one evdev frame are closed by one wl_touch.frame to each
// client that got some; cancel tells every client with points down that they are gone.
import type { Client } from '../../protocols/runtime.js';
import type { WlTouch } from '../../protocols/generated/wayland.js';
import type { Surface } from './surface.js';
import type { SeatClock } from './keyboard.js';

interface TouchPoint {
  surface: Surface;
}

export class SeatTouch {
  readonly #resources = new Set<WlTouch>();
  readonly #points = new Map<number, TouchPoint>();
  /** Clients that got events since the last frame. */
  readonly #inFrame = new Set<Client>();

  constructor(private readonly clock: SeatClock) {}

  add(r: WlTouch): void {
    this.#resources.add(r);
    r.onDestroy(() => this.#resources.delete(r));
  }

  dropAll(): void {
    this.#resources.clear();
  }

  #of(client: Client): WlTouch[] {
    return [...this.#resources].filter((r) => r.client === client && !r.destroyed);
  }

  /** The surface a point is down on (for the caller to map its motion into). */
  surfaceOf(id: number): Surface | null {
    return this.#points.get(id)?.surface ?? null;
  }

  get points(): number {
    return this.#points.size;
  }

  down(id: number, surface: Surface, x: number, y: number): void {
    if (surface.resource.destroyed) return;
    this.#points.set(id, { surface });
    const rs = this.#of(surface.resource.client);
    if (rs.length === 0) return;
    const serial = this.clock.serial();
    const time = this.clock.time();
    this.clock.given?.(surface.resource.client, serial);
    for (const r of rs) r.sendDown(serial, time, surface.resource, id, x, y);
    this.#inFrame.add(surface.resource.client);
  }

  motion(id: number, x: number, y: number): void {
    const p = this.#points.get(id);
    if (!p || p.surface.resource.destroyed) return;
    const rs = this.#of(p.surface.resource.client);
    if (rs.length === 0) return;
    const time = this.clock.time();
    for (const r of rs) r.sendMotion(time, id, x, y);
    this.#inFrame.add(p.surface.resource.client);
  }

  up(id: number): void {
    const p = this.#points.get(id);
    if (!p) return;
    this.#points.delete(id);
    if (p.surface.resource.destroyed) return;
    const rs = this.#of(p.surface.resource.client);
    if (rs.length === 0) return;
    const serial = this.clock.serial();
    const time = this.clock.time();
    for (const r of rs) r.sendUp(serial, time, id);
    this.#inFrame.add(p.surface.resource.client);
  }

  frame(): void {
    for (const c of this.#inFrame) for (const r of this.#of(c)) r.sendFrame();
    this.#inFrame.clear();
  }

  /** Every point is gone without an up (libinput's cancel, or the surface went away). */
  cancel(only?: Surface): void {
    const clients = new Set<Client>();
    for (const [id, p] of this.#points) {
      if (only && p.surface !== only) continue;
      this.#points.delete(id);
      if (!p.surface.resource.destroyed) clients.add(p.surface.resource.client);
    }
    for (const c of clients) for (const r of this.#of(c)) r.sendCancel();
    for (const c of clients) this.#inFrame.delete(c);
  }

  close(): void {
    this.#resources.clear();
    this.#points.clear();
    this.#inFrame.clear();
  }
}
