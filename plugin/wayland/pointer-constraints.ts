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
// Confinement (confine_pointer) is accepted but never activated (no `confined` is sent:
// the protocol allows it; nothing here needs it yet).
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
import { ZwpPointerConstraintsV1, ZwpPointerConstraintsV1Error, ZwpPointerConstraintsV1Lifetime, type ZwpLockedPointerV1 } from '../../protocols/generated/pointer_constraints_unstable_v1.js';
import { ZwpKeyboardShortcutsInhibitManagerV1, ZwpKeyboardShortcutsInhibitManagerV1Error, type ZwpKeyboardShortcutsInhibitorV1 } from '../../protocols/generated/keyboard_shortcuts_inhibit_unstable_v1.js';
import { Surface } from './surface.js';
import type { Seat } from './seat.js';

interface Lock {
  resource: ZwpLockedPointerV1;
  surface: Surface;
  oneshot: boolean;
  active: boolean;
  spent: boolean;
}

interface Inhibitor {
  resource: ZwpKeyboardShortcutsInhibitorV1;
  surface: Surface;
  active: boolean;
}

export class PointerConstraints {
  readonly #relative = new Set<ZwpRelativePointerV1>();
  readonly #locks = new Map<Surface, Lock>();
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
          const surface = Surface.of(surfaceRes);
          if (this.#locks.has(surface)) throw new ProtocolViolation(r, ZwpPointerConstraintsV1Error.ALREADY_CONSTRAINED, `${surfaceRes} already has a pointer lock on this seat`);
          const resource = lid.create({ destroy() {}, setCursorPositionHint() {}, setRegion() {} });
          const lock: Lock = { resource, surface, oneshot: lifetime !== ZwpPointerConstraintsV1Lifetime.PERSISTENT, active: false, spent: false };
          this.#locks.set(surface, lock);
          resource.onDestroy(() => {
            if (this.#locks.get(surface) === lock) this.#locks.delete(surface);
          });
          this.update();
        },
        // Accepted, never activated (file comment).
        confinePointer: (_r, cid) => void cid.create({ destroy() {}, setRegion() {} }),
      });
    });
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
    for (const l of this.#locks.values()) if (l.active) return true;
    return false;
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

  #of(client: Client): ZwpRelativePointerV1[] {
    return [...this.#relative].filter((r) => r.client === client && !r.destroyed);
  }

  /** The focus may have moved: locks and inhibitors follow it. */
  update(): void {
    const pointerOn = this.seat.pointer.focus?.surface ?? null;
    for (const l of this.#locks.values()) {
      const on = !l.spent && l.surface === pointerOn && !l.surface.resource.destroyed;
      if (on === l.active || l.resource.destroyed) continue;
      l.active = on;
      if (on) l.resource.sendLocked();
      else {
        l.resource.sendUnlocked();
        l.spent = l.oneshot;
      }
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
