// Pointer capture for a guest whose mouse is not absolute (QEMU's Mouse.IsAbsolute false: a
// PS/2 or USB mouse), as Looking Glass does it: a click on the window captures the pointer
// (zwp_pointer_constraints_v1.lock_pointer on the surface it is over, persistent), the
// device's unaccelerated motion then comes as zwp_relative_pointer_v1 events and goes to
// the guest (which accelerates it itself), and the desktop's shortcuts are inhibited
// (zwp_keyboard_shortcuts_inhibit_v1) so keys like Super or Alt+Tab reach the guest.
// Ctrl+Alt+G releases it (the chord of the kiosk's grab; the window's title says so while
// captured); so does the desktop ending the lock (focus gone: `unlocked`).
//
// Ownership: the lock, relative pointer and inhibitor proxies are this object's while
// captured and are destroyed on release(); the managers and the wl_pointer are the caller's.
import type { WlPointer, WlSeat, WlSurface } from '../../protocols/generated/client/wayland.js';
import { ZwpPointerConstraintsV1Lifetime, type ZwpLockedPointerV1 } from '../../protocols/generated/client/pointer_constraints_unstable_v1.js';
import type { ZwpRelativePointerV1 } from '../../protocols/generated/client/relative_pointer_unstable_v1.js';
import type { ZwpKeyboardShortcutsInhibitorV1 } from '../../protocols/generated/client/keyboard_shortcuts_inhibit_unstable_v1.js';
import type { Desktop } from './connection.js';

export const RELEASE_CHORD = 'Ctrl+Alt+G';

export interface CaptureEvents {
  /** The lock is in force (true) or ended (false). */
  captured(on: boolean): void;
  /** Unaccelerated motion while captured. */
  motion(dx: number, dy: number): void;
}

export class PointerCapture {
  #lock: ZwpLockedPointerV1 | null = null;
  #relative: ZwpRelativePointerV1 | null = null;
  #inhibitor: ZwpKeyboardShortcutsInhibitorV1 | null = null;
  #captured = false;

  constructor(
    private readonly desktop: Desktop,
    private readonly events: CaptureEvents,
  ) {}

  /** Whether this desktop can capture at all (both relative pointer and pointer constraints). */
  get possible(): boolean {
    const g = this.desktop.globals;
    return !!(g.relativePointer && g.pointerConstraints);
  }

  /** A capture asked for or in force. */
  get pending(): boolean {
    return this.#lock !== null;
  }

  get captured(): boolean {
    return this.#captured;
  }

  /** Asks the desktop to lock `pointer` on `surface` (the one it is over) and to inhibit its shortcuts for `toplevel` (the keyboard's focus). */
  capture(pointer: WlPointer, surface: WlSurface, toplevel: WlSurface, seat: WlSeat | null): void {
    const g = this.desktop.globals;
    if (this.#lock || !g.relativePointer || !g.pointerConstraints) return;
    this.#relative = g.relativePointer.getRelativePointer(pointer);
    this.#relative.on({ relativeMotion: (_hi, _lo, _dx, _dy, dxRaw, dyRaw) => this.#captured && this.events.motion(dxRaw, dyRaw) });
    this.#lock = g.pointerConstraints.lockPointer(surface, pointer, null, ZwpPointerConstraintsV1Lifetime.PERSISTENT);
    this.#lock.on({
      locked: () => {
        this.#captured = true;
        this.events.captured(true);
      },
      // The desktop took it back (focus gone): a persistent lock would come back by itself
      // when the focus does, which a user who moved away did not ask for.
      unlocked: () => this.release(),
    });
    if (g.shortcutsInhibit && seat) this.#inhibitor = g.shortcutsInhibit.inhibitShortcuts(toplevel, seat);
  }

  release(): void {
    const was = this.#captured;
    this.#captured = false;
    const live = !this.desktop.connection.closed;
    if (live) {
      this.#inhibitor?.destroy();
      this.#lock?.destroy();
      this.#relative?.destroy();
    }
    this.#inhibitor = null;
    this.#lock = null;
    this.#relative = null;
    if (was) this.events.captured(false);
  }
}
