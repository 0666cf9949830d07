// zwp_relative_pointer_manager_v1, zwp_pointer_constraints_v1 and
// zwp_keyboard_shortcuts_inhibit_manager_v1 for the seat (issue 28 item 8: what a VM viewer
// such as `guestplane window` needs to capture the pointer; every client gets them).
//
// Relative motion: each motion of a relative device (InputEvent 'motion': accelerated and
// raw counts) goes to the zwp_relative_pointer_v1 objects of the client whose surface has
// the pointer focus, whether or not the pointer moves.
//
// Pointer lock: a zwp_locked_pointer_v1 is active while its surface has the pointer focus;
// then `locked` is sent and the pointer stays where it is (motion only as relative events,
// absolute devices ignored). Focus leaving it (the surface unmapped, destroyed, another
// toplevel shown) sends `unlocked`; a oneshot lock is then spent, a persistent one waits for
// the focus to come back. The lock's region is not looked at: the lock starts wherever the
// pointer is on the surface (the protocol leaves activation to the compositor).
//
// Confinement: a zwp_confined_pointer_v1 is active while its surface has the pointer focus
// and the pointer is in its region (the surface ∩ its input region ∩ the confine region,
// none: infinite), so it starts where the pointer enters that region; then `confined` is
// sent and every move of the pointer is kept in the region (SeatInput asks confine(): the
// move goes as far along its way as stays inside, else slides along the edge on one axis).
// set_region applies with the surface's next commit; a pointer the new region leaves
// outside is unconfined (a persistent confinement comes back where the pointer re-enters).
// Focus leaving the surface sends `unconfined`; a oneshot confinement is then spent. One
// lock or confinement per surface (already_constrained).
//
// Shortcuts inhibit: an inhibitor is active while its surface has the keyboard focus (sent
// `active`/`inactive`); the compositor then passes its own chords (Ctrl+Alt+Fn) to the
// client. The user can always get out: the client's lock ends when the focus goes.
//
// Ownership: the three globals are the display's; the per-object state here; the objects die with their
// resources (the client's destroy, or the client going).
import type { Client, Display, Global } from '../../protocols/runtime.js';
import { ProtocolViolation } from '../../protocols/runtime.js';
import { ZwpRelativePointerManagerV1, type ZwpRelativePointerV1 } from '../../protocols/generated/relative_pointer_unstable_v1.js';
import { ZwpPointerConstraintsV1, ZwpPointerConstraintsV1Error, ZwpPointerConstraintsV1Lifetime, type ZwpConfinedPointerV1, type ZwpLockedPointerV1 } from '../../protocols/generated/pointer_constraints_unstable_v1.js';
import type { WlSurface } from '../../protocols/generated/wayland.js';
import { Region, type RegionShape } from './region.js';
import type { Point } from './input-map.js';
import { ZwpKeyboardShortcutsInhibitManagerV1, ZwpKeyboardShortcutsInhibitManagerV1Error, type ZwpKeyboardShortcutsInhibitorV1 } from '../../protocols/generated/keyboard_shortcuts_inhibit_unstable_v1.js';
import { Surface } from './surface.js';
import type { Seat } from './seat.js';

interface Constraint {
  kind: 'lock' | 'confine';
  resource: ZwpLockedPointerV1 | ZwpConfinedPointerV1;
  surface: Surface;
  oneshot: boolean;
  active: boolean;
  spent: boolean;
  /** The confine region (null: infinite); set_region's waits for the surface's commit (undefined: none pending). */
  region: RegionShape | null;
  pending: RegionShape | null | undefined;
}

/** An active confinement: whether a point of its surface (its coordinates) is in the region. */
export interface Confinement {
  surface: Surface;
  contains(p: Point): boolean;
}

interface Inhibitor {
  resource: ZwpKeyboardShortcutsInhibitorV1;
  surface: Surface;
  active: boolean;
}

export class PointerConstraints {
  readonly #relative = new Set<ZwpRelativePointerV1>();
  readonly #constraints = new Map<Surface, Constraint>();
  readonly #inhibitors = new Map<Surface, Inhibitor>();

  constructor(
    display: Display,
    private readonly seat: Seat,
  ) {
    // The globals live as long as the display.
    this.#relativeGlobal(display);
    this.#constraintsGlobal(display);
    this.#inhibitGlobal(display);
  }

  #relativeGlobal(display: Display): Global<ZwpRelativePointerManagerV1> {
    return ZwpRelativePointerManagerV1.global(display, 1, (id) => {
      id.create({
        destroy() {},
        getRelativePointer: (_r, rid) => {
          const rel = rid.create({ destroy() {} });
          this.#relative.add(rel);
          rel.onDestroy(() => this.#relative.delete(rel));
        },
      });
    });
  }

  #constraintsGlobal(display: Display): Global<ZwpPointerConstraintsV1> {
    return ZwpPointerConstraintsV1.global(display, 1, (id) => {
      id.create({
        destroy() {},
        lockPointer: (r, lid, surfaceRes, _pointer, _region, lifetime) => {
          const surface = this.#free(r, surfaceRes);
          const resource = lid.create({ destroy() {}, setCursorPositionHint() {}, setRegion() {} });
          this.#add('lock', resource, surface, lifetime, null);
        },
        confinePointer: (r, cid, surfaceRes, _pointer, region, lifetime) => {
          const surface = this.#free(r, surfaceRes);
          let c: Constraint | null = null;
          const resource = cid.create({
            destroy() {},
            // Double-buffered: applied with the surface's next commit (#add's 'applied').
            setRegion: (_res, next) => void (c!.pending = next ? Region.of(next).snapshot() : null),
          });
          c = this.#add('confine', resource, surface, lifetime, region ? Region.of(region).snapshot() : null);
        },
      });
    });
  }

  /** The surface of a new constraint, which must have none yet on this seat. */
  #free(r: ZwpPointerConstraintsV1, surfaceRes: WlSurface): Surface {
    const surface = Surface.of(surfaceRes);
    if (this.#constraints.has(surface)) throw new ProtocolViolation(r, ZwpPointerConstraintsV1Error.ALREADY_CONSTRAINED, `${surfaceRes} already has a pointer lock or confinement on this seat`);
    return surface;
  }

  #add(kind: Constraint['kind'], resource: Constraint['resource'], surface: Surface, lifetime: number, region: RegionShape | null): Constraint {
    const c: Constraint = { kind, resource, surface, oneshot: lifetime !== ZwpPointerConstraintsV1Lifetime.PERSISTENT, active: false, spent: false, region, pending: undefined };
    this.#constraints.set(surface, c);
    const applied = () => {
      if (c.pending === undefined) return;
      c.region = c.pending;
      c.pending = undefined;
      this.update();
    };
    surface.on('applied', applied);
    resource.onDestroy(() => {
      surface.off('applied', applied);
      if (this.#constraints.get(surface) === c) this.#constraints.delete(surface);
    });
    this.update();
    return c;
  }

  #inhibitGlobal(display: Display): Global<ZwpKeyboardShortcutsInhibitManagerV1> {
    return ZwpKeyboardShortcutsInhibitManagerV1.global(display, 1, (id) => {
      id.create({
        destroy() {},
        inhibitShortcuts: (r, iid, surfaceRes) => {
          const surface = Surface.of(surfaceRes);
          if (this.#inhibitors.has(surface)) throw new ProtocolViolation(r, ZwpKeyboardShortcutsInhibitManagerV1Error.ALREADY_INHIBITED, `${surfaceRes} already inhibits shortcuts on this seat`);
          const resource = iid.create({ destroy() {} });
          const inh: Inhibitor = { resource, surface, active: false };
          this.#inhibitors.set(surface, inh);
          resource.onDestroy(() => {
            if (this.#inhibitors.get(surface) === inh) this.#inhibitors.delete(surface);
          });
          this.update();
        },
      });
    });
  }

  /** The pointer's lock, when one is active (the pointer then does not move). */
  get locked(): boolean {
    for (const c of this.#constraints.values()) if (c.kind === 'lock' && c.active) return true;
    return false;
  }

  /** The active confinement, if any: the pointer must stay in its region. */
  get confinement(): Confinement | null {
    for (const c of this.#constraints.values()) if (c.kind === 'confine' && c.active) return { surface: c.surface, contains: (p) => this.#inRegion(c, p) };
    return null;
  }

  /** A point of the constraint's surface in the surface ∩ its input region ∩ its confine region. */
  #inRegion(c: Constraint, p: Point): boolean {
    const size = c.surface.size;
    return !!size && p.x >= 0 && p.y >= 0 && p.x < size.w && p.y < size.h && c.surface.acceptsInput(p) && (c.region?.contains(p) ?? true);
  }

  /** Whether the surface with the keyboard focus inhibits the compositor's shortcuts. */
  get shortcutsInhibited(): boolean {
    for (const i of this.#inhibitors.values()) if (i.active) return true;
    return false;
  }

  /** A relative device moved: to the relative pointers of the client with the pointer focus. */
  motion(dx: number, dy: number, dxRaw: number, dyRaw: number): void {
    const client = this.seat.pointer.focus?.surface.resource.client ?? null;
    if (!client) return;
    const us = process.hrtime.bigint() / 1000n;
    const hi = Number(us >> 32n) >>> 0;
    const lo = Number(us & 0xffffffffn) >>> 0;
    for (const r of this.#of(client)) r.sendRelativeMotion(hi, lo, dx, dy, dxRaw, dyRaw);
  }

  #send(c: Constraint, on: boolean): void {
    const r = c.resource;
    if (c.kind === 'lock') {
      if (on) (r as ZwpLockedPointerV1).sendLocked();
      else (r as ZwpLockedPointerV1).sendUnlocked();
    } else if (on) (r as ZwpConfinedPointerV1).sendConfined();
    else (r as ZwpConfinedPointerV1).sendUnconfined();
  }

  #of(client: Client): ZwpRelativePointerV1[] {
    return [...this.#relative].filter((r) => r.client === client && !r.destroyed);
  }

  /** The focus may have moved: locks and inhibitors follow it. */
  update(): void {
    const focus = this.seat.pointer.focus;
    for (const c of this.#constraints.values()) {
      if (c.resource.destroyed) continue;
      const onSurface = !c.spent && focus?.surface === c.surface && !c.surface.resource.destroyed;
      // A confinement holds while the pointer is in its region (it starts where it enters it).
      const on = onSurface && (c.kind === 'lock' || this.#inRegion(c, focus!));
      if (on === c.active) continue;
      c.active = on;
      this.#send(c, on);
      if (!on) c.spent = c.oneshot;
    }
    const keyboardOn = this.seat.keyboard?.focus ?? null;
    for (const i of this.#inhibitors.values()) {
      const on = i.surface === keyboardOn && !i.surface.resource.destroyed;
      if (on === i.active || i.resource.destroyed) continue;
      i.active = on;
      if (on) i.resource.sendActive();
      else i.resource.sendInactive();
    }
  }
}
