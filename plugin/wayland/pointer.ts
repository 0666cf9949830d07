// wl_pointer of the kiosk's seat: the surface under the host pointer has the pointer focus
// (enter/leave), gets motion in its own coordinates, buttons, and wheel scrolling (v5+:
// axis_source and frames; v8: axis_value120 instead of axis_discrete). While a button is
// held the surface it went down on keeps the focus (the implicit grab every compositor
// has), and is told positions outside itself.
//
// set_cursor gives a surface the cursor role: the client whose pointer entered (the
// serial of its latest enter) says which image the pointer shows and its hotspot. What
// the seat keeps is the current cursor surface and hotspot; the compositor decides where
// it is drawn (`onCursor`).
import type { Client } from '../../protocols/runtime.js';
import { ProtocolViolation } from '../../protocols/runtime.js';
import { WlPointerAxis, WlPointerAxisSource, WlPointerButtonState, WlPointerError, type WlPointer, type WlSurface } from '../../protocols/generated/wayland.js';
import { Surface } from './surface.js';
import type { SeatClock } from './keyboard.js';

export const CURSOR_ROLE = 'wl_pointer-cursor';

/** wl_pointer.axis per wheel detent: 15, libinput's default click angle in degrees (weston and wlroots send libinput's value). */
export const AXIS_PER_DETENT = 15;

/** Where the pointer is: a surface and the point in its coordinates. */
export interface PointerTarget {
  surface: Surface;
  x: number;
  y: number;
}

export interface CursorImage {
  /** null: the client hid the pointer (set_cursor with no surface). */
  surface: Surface | null;
  hotX: number;
  hotY: number;
}

export class SeatPointer {
  readonly #resources = new Set<WlPointer>();
  #focus: PointerTarget | null = null;
  /** The serial of the latest enter each client got (set_cursor must quote it). */
  readonly #enterSerial = new WeakMap<Client, number>();
  readonly #buttons = new Set<number>();
  #cursor: CursorImage | null = null;
  /** The cursor image changed (a set_cursor the seat accepted, or the focus left its client). */
  onCursor: (c: CursorImage | null) => void = () => {};

  constructor(private readonly clock: SeatClock) {}

  get focus(): PointerTarget | null {
    return this.#focus;
  }
  /** Whether a button is held (the focus is grabbed). */
  get grabbed(): boolean {
    return this.#buttons.size > 0 && this.#focus !== null;
  }
  /** How many buttons are held (a drag ends when the last is released). */
  get buttonsHeld(): number {
    return this.#buttons.size;
  }
  get cursor(): CursorImage | null {
    return this.#cursor;
  }

  /** The handlers a wl_pointer resource is created with. */
  handlers(): { setCursor(r: WlPointer, serial: number, surface: WlSurface | null, hx: number, hy: number): void } {
    return { setCursor: (r, serial, surface, hx, hy) => this.#setCursor(r, serial, surface, hx, hy) };
  }

  add(r: WlPointer): void {
    this.#resources.add(r);
    r.onDestroy(() => this.#resources.delete(r));
    const f = this.#focus;
    if (f && !f.surface.resource.destroyed && f.surface.resource.client === r.client) this.#enter([r], f);
  }

  dropAll(): void {
    this.#resources.clear();
  }

  #of(client: Client): WlPointer[] {
    return [...this.#resources].filter((r) => r.client === client && !r.destroyed);
  }

  #setCursor(r: WlPointer, serial: number, wl: WlSurface | null, hotX: number, hotY: number): void {
    // Only the client the pointer is in, answering its latest enter; anything else is
    // ignored (the spec's rule), before the role is looked at (as Weston and wlroots do).
    const f = this.#focus;
    if (!f || f.surface.resource.destroyed || f.surface.resource.client !== r.client || this.#enterSerial.get(r.client) !== serial) return;
    const s = wl ? Surface.of(wl) : null;
    if (s && s.role !== null && s.role !== CURSOR_ROLE) throw new ProtocolViolation(r, WlPointerError.ROLE, `${wl} already has the role ${s.role}`);
    if (s) s.role = CURSOR_ROLE;
    this.#cursor = { surface: s, hotX, hotY };
    this.onCursor(this.#cursor);
  }

  /**
   * The pointer is now over `target` (null: over no surface). A held button keeps the focus
   * where it is: give `grabbed` the grabbing surface's coordinates then.
   */
  moveTo(target: PointerTarget | null): void {
    const f = this.#focus;
    if (f && target && f.surface === target.surface) {
      if (f.x === target.x && f.y === target.y) return;
      this.#focus = target;
      if (f.surface.resource.destroyed) return;
      const rs = this.#of(f.surface.resource.client);
      const time = this.clock.time();
      for (const r of rs) r.sendMotion(time, target.x, target.y);
      this.#frame(rs);
      return;
    }
    if (f && !f.surface.resource.destroyed) {
      const rs = this.#of(f.surface.resource.client);
      const serial = this.clock.serial();
      for (const r of rs) r.sendLeave(serial, f.surface.resource);
      this.#frame(rs);
    }
    this.#focus = target;
    if (f && (!target || target.surface.resource.client !== f.surface.resource.client)) {
      // The image was that client's: the next client sets its own.
      this.#cursor = null;
      this.onCursor(null);
    }
    if (target && !target.surface.resource.destroyed) this.#enter(this.#of(target.surface.resource.client), target);
  }

  #enter(rs: WlPointer[], t: PointerTarget): void {
    const serial = this.clock.serial();
    this.#enterSerial.set(t.surface.resource.client, serial);
    this.clock.given?.(t.surface.resource.client, serial);
    for (const r of rs) r.sendEnter(serial, t.surface.resource, t.x, t.y);
    this.#frame(rs);
  }

  #frame(rs: WlPointer[]): void {
    for (const r of rs) if (r.version >= 5) r.sendFrame();
  }

  /** A button (evdev code, BTN_LEFT = 0x110…) went down or up. */
  button(code: number, pressed: boolean): void {
    if (pressed ? this.#buttons.has(code) : !this.#buttons.has(code)) return;
    if (pressed) this.#buttons.add(code);
    else this.#buttons.delete(code);
    const f = this.#focus;
    if (!f || f.surface.resource.destroyed) return;
    const rs = this.#of(f.surface.resource.client);
    if (rs.length === 0) return;
    const serial = this.clock.serial();
    const time = this.clock.time();
    this.clock.given?.(f.surface.resource.client, serial);
    for (const r of rs) r.sendButton(serial, time, code, pressed ? WlPointerButtonState.PRESSED : WlPointerButtonState.RELEASED);
    this.#frame(rs);
  }

  /** Wheel scrolling, in 120ths of a detent (positive: down or right). */
  wheel(axis: 'vertical' | 'horizontal', v120: number): void {
    const f = this.#focus;
    if (!f || f.surface.resource.destroyed || v120 === 0) return;
    const a = axis === 'vertical' ? WlPointerAxis.VERTICAL_SCROLL : WlPointerAxis.HORIZONTAL_SCROLL;
    const rs = this.#of(f.surface.resource.client);
    const time = this.clock.time();
    for (const r of rs) {
      if (r.version >= 5) r.sendAxisSource(WlPointerAxisSource.WHEEL);
      if (r.version >= 8) r.sendAxisValue120(a, v120);
      else if (r.version >= 5 && v120 % 120 === 0) r.sendAxisDiscrete(a, v120 / 120);
      r.sendAxis(time, a, (v120 / 120) * AXIS_PER_DETENT);
    }
    this.#frame(rs);
  }

  /** Buttons are released when the surface goes (a destroyed focus takes its grab with it). */
  forget(s: Surface): void {
    if (this.#focus?.surface !== s) return;
    this.moveTo(null);
  }

  close(): void {
    this.#resources.clear();
  }
}
