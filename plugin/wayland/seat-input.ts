// The host's input (plugin/input/devices.ts events) into the kiosk's seat. The host pointer
// lives on the output (relative motion moves it, absolute devices and touchscreens give
// output positions; it never leaves the screen) and is mapped through the fit placement
// of the shown toplevel (input-map.ts) into the surface under it. Keyboard focus is the
// shown toplevel while it is mapped. Capabilities follow the devices present.
import type { DeviceCapabilities, InputDevice, InputEvent } from '../input/devices.js';
import type { FitMode } from '../geometry.js';
import { clampToOutput, outputToSurface, pick, type Point, type Size } from './input-map.js';
import { flattenTree, type TreeEntry } from './subsurface.js';
import type { Surface } from './surface.js';
import type { Seat } from './seat.js';
import type { Rect } from '../geometry.js';
import { outputToView } from './window-view.js';
import type { PointerTarget } from './pointer.js';
import type { Confinement, PointerConstraints } from './pointer-constraints.js';

export interface SeatScene {
  /** The output's size in pixels. */
  output(): Size;
  fit(): FitMode;
  /** The shown toplevel's root surface (null: none, or not mapped). */
  root(): Surface | null;
  /** The mapped surfaces over the root, bottom first, in its coordinates (default: its sub-surface tree). */
  tree?(root: Surface): TreeEntry[];
  /** The root's window rectangle (window geometry) the fit places (default: the whole surface). */
  view?(root: Surface): Rect | null;
  /** The keyboard focus when not the root (the topmost grabbing popup). */
  focus?(): Surface | null;
  /** A button went down on `target`: true when the press is taken (a popup grab ended), not delivered. */
  press?(target: Surface | null): boolean;
  /** A drag-and-drop in progress takes the pointer (drag.ts): where it is, and the release. */
  drag?(): { motion(t: PointerTarget | null): void; release(): void } | null;
}

export class SeatInput {
  #pointer: Point;
  readonly #devices = new Map<string, DeviceCapabilities>();
  /** Each touch point's surface offset from the root at down (kept if the surface unmaps meanwhile). */
  readonly #touchOffset = new Map<number, Point>();

  /** Relative pointers, pointer locks and shortcut inhibitors (pointer-constraints.ts), where served. */
  constraints: PointerConstraints | null = null;

  constructor(
    readonly seat: Seat,
    private readonly scene: SeatScene,
  ) {
    const o = scene.output();
    this.#pointer = { x: o.w / 2, y: o.h / 2 };
  }

  /** The host pointer on the output (pixels). */
  get pointer(): Point {
    return { ...this.#pointer };
  }

  deviceAdded(d: InputDevice): void {
    this.#devices.set(d.sysname, d.capabilities ?? { keyboard: false, pointer: false, touch: false });
    this.#updateCapabilities();
  }

  deviceRemoved(d: InputDevice): void {
    this.#devices.delete(d.sysname);
    this.#updateCapabilities();
  }

  #updateCapabilities(): void {
    const all = [...this.#devices.values()];
    this.seat.setCapabilities({ keyboard: all.some((c) => c.keyboard), pointer: all.some((c) => c.pointer), touch: all.some((c) => c.touch) });
    // A pointer that just came has a focus to announce.
    this.refresh();
  }

  handle(e: InputEvent): void {
    const o = this.scene.output();
    switch (e.kind) {
      case 'key':
        return this.seat.keyboard?.key(e.code, e.pressed);
      case 'motion':
        this.constraints?.motion(e.dx, e.dy, e.dxRaw, e.dyRaw);
        if (this.constraints?.locked) return; // a locked pointer stays; the client has the relative events
        return this.#moveTo({ x: this.#pointer.x + e.dx, y: this.#pointer.y + e.dy });
      case 'absolute':
        if (this.constraints?.locked) return;
        return this.#moveTo({ x: e.x * o.w, y: e.y * o.h });
      case 'button': {
        const drag = this.scene.drag?.();
        if (drag) {
          // The wl_pointer left at the drag's start: the button is only counted.
          this.seat.pointer.button(e.button, e.pressed);
          if (!e.pressed && this.seat.pointer.buttonsHeld === 0) drag.release();
          return this.refresh();
        }
        if (e.pressed && !this.seat.pointer.grabbed && this.scene.press?.(this.seat.pointer.focus?.surface ?? null)) {
          this.refresh();
          return;
        }
        this.seat.pointer.button(e.button, e.pressed);
        // Released off the surface: the grab ends, the focus goes where the pointer is.
        if (!e.pressed) this.refresh();
        return;
      }
      case 'scroll':
        return this.seat.pointer.wheel(e.axis, e.v120);
      case 'touch':
        return this.#touch(e, o);
      case 'touch-frame':
        return this.seat.touch.frame();
    }
  }

  #touch(e: Extract<InputEvent, { kind: 'touch' }>, o: Size): void {
    const t = this.seat.touch;
    const p = { x: e.x * o.w, y: e.y * o.h };
    if (e.phase === 'cancel') {
      this.#touchOffset.clear();
      return t.cancel();
    }
    if (e.phase === 'up') {
      this.#touchOffset.delete(e.slot);
      return t.up(e.slot);
    }
    if (e.phase === 'down') {
      const hit = this.#hit(p);
      if (this.scene.press?.(hit?.surface ?? null)) return this.refresh();
      if (!hit) return;
      const rootLocal = this.#rootLocal(p)!;
      this.#touchOffset.set(e.slot, { x: rootLocal.x - hit.x, y: rootLocal.y - hit.y });
      return t.down(e.slot, hit.surface, hit.x, hit.y);
    }
    const off = this.#touchOffset.get(e.slot);
    const rootLocal = this.#rootLocal(p);
    if (!off || !rootLocal) return;
    t.motion(e.slot, rootLocal.x - off.x, rootLocal.y - off.y);
  }

  #moveTo(p: Point): void {
    const next = clampToOutput(p, this.scene.output());
    const c = this.constraints?.confinement;
    this.#pointer = c ? this.#confine(this.#pointer, next, c) : next;
    this.refresh();
  }

  /**
   * A move from `from` to `to` (output points) kept in a confinement's region: as far along
   * its way as stays inside (halving the step, to 1/256 px), else sliding along the edge on
   * one axis, whichever goes farther. `from` is inside (the confinement is active there).
   */
  #confine(from: Point, to: Point, c: Confinement): Point {
    const root = this.scene.root();
    const entry = root ? this.#tree(root).find((e) => e.surface === c.surface) : undefined;
    if (!entry) return to; // not shown: the confinement ends with the focus (refresh)
    const inside = (q: Point) => {
      const local = this.#rootLocal(q);
      return !!local && c.contains({ x: local.x - entry.x, y: local.y - entry.y });
    };
    if (inside(to)) return to;
    const along = (target: Point): Point => {
      let lo = 0;
      let hi = 1;
      for (let i = 0; i < 16; i++) {
        const mid = (lo + hi) / 2;
        if (inside({ x: from.x + (target.x - from.x) * mid, y: from.y + (target.y - from.y) * mid })) lo = mid;
        else hi = mid;
      }
      return { x: from.x + (target.x - from.x) * lo, y: from.y + (target.y - from.y) * lo };
    };
    const tries = [along(to), along({ x: to.x, y: from.y }), along({ x: from.x, y: to.y })];
    const dist = (q: Point) => Math.hypot(q.x - from.x, q.y - from.y);
    return tries.reduce((best, q) => (dist(q) > dist(best) ? q : best));
  }

  /** The output point in the shown root's coordinates; null without a mapped toplevel. */
  #rootLocal(p: Point): Point | null {
    const root = this.scene.root();
    const size = root?.size;
    if (!root || !size) return null;
    const view = this.scene.view?.(root);
    return view ? outputToView(this.scene.fit(), view, this.scene.output(), p) : outputToSurface(this.scene.fit(), size, this.scene.output(), p);
  }

  #tree(root: Surface): TreeEntry[] {
    return this.scene.tree ? this.scene.tree(root) : flattenTree(root);
  }

  /** The surface of the shown tree under an output point, in its coordinates. */
  #hit(p: Point): PointerTarget | null {
    const root = this.scene.root();
    const local = this.#rootLocal(p);
    if (!root || !local) return null;
    // Each surface's input region counts: Firefox's content sub-surface takes none, so the
    // pointer must find the GTK window under it.
    const entries = this.#tree(root).map((e) => ({ surface: e.surface, x: e.x, y: e.y, size: e.surface.size!, accepts: (q: Point) => e.surface.acceptsInput(q) }));
    return pick(entries, local);
  }

  /**
   * The scene or the pointer changed: pointer focus and position, keyboard focus. While a
   * button is held the grabbing surface keeps the focus and follows the pointer off itself.
   */
  refresh(): void {
    this.#refresh();
    this.constraints?.update();
  }

  #refresh(): void {
    const root = this.scene.root();
    this.seat.keyboard?.setFocus((root && this.scene.focus?.()) ?? root);
    const drag = this.scene.drag?.();
    if (drag) return drag.motion(this.#hit(this.#pointer));
    const ptr = this.seat.pointer;
    const f = ptr.focus;
    if (ptr.grabbed && f && !f.surface.resource.destroyed) {
      const local = this.#rootLocal(this.#pointer);
      const entry = root ? this.#tree(root).find((e) => e.surface === f.surface) : undefined;
      if (local && entry) return ptr.moveTo({ surface: f.surface, x: local.x - entry.x, y: local.y - entry.y });
    }
    ptr.moveTo(this.#hit(this.#pointer));
  }
}
