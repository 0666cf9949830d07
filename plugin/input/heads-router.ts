// Multi-head input routing (issue 14 item 5), pure: which guest gets each host input event.
//
// One host pointer moves over the layout of screens (layout.ts); the head under it gets
// the pointer (mapped through that head's fit placement and view, guest-port.ts), and
// keyboard focus follows it: when the pointer enters a head showing another guest, that
// guest is focused and the guest losing focus gets every key and button it holds from
// the shared devices released. Over a gap between regions nothing changes.
//
// Devices may belong to a head (the config names them): a bound device's keys go to its
// head's guest wherever the pointer is, its pointer moves over its head only (a pointer
// of its own), its absolute positions map onto its head. Unbound ("shared") devices
// follow the layout; tablets and touchscreens among them map onto one screen (the
// config's, else the first). Heads without a port take no input. Chords are read from
// every keyboard, as in the single-guest kiosk.
import type { InputEvent } from './devices.js';
import type { FitMode } from '../geometry.js';
import { Chords, passKey, type ChordHandlers, type ChordName } from './chords.js';
import { BUTTONS, Held, toGuestPoint, wheel, type GuestPort, type Point, type Size } from './guest-port.js';
import { clampTo, closestPoint, contains, type LayoutRect, type PlacedScreen } from './layout.js';
import { GuestTouch } from './touch.js';

export interface RoutedHead {
  /** The head's index in the config. */
  index: number;
  /** The connector (screen) it is on. */
  screen: string;
  /** Its picture area in layout coordinates (its screen, or its region of it). */
  area: LayoutRect;
  fit: FitMode;
  /** The size of the picture shown (a view's, else the guest's screen), null while there is none. */
  picture(): Size | null;
  /** Added to a point of the picture to get guest pixels (a view's corner). */
  offset: Point;
  /** The guest's input channel; null: the head takes no input. Heads of one guest share it. */
  port: GuestPort | null;
}

export interface RouterActions {
  quit(): void;
  grab?(grabbed: boolean): void;
  switchSession?(vt: number): void;
  /** Keyboard focus moved to this head (null: the focused head went away). */
  focus?(head: RoutedHead | null): void;
}

/** One stream of input: the shared devices', or the devices bound to one head. */
interface Route {
  held: Held;
  pointer: Point | null;
  /** Touch points (normalised positions on the route's screen) as the pointer (touch.ts). */
  touch: GuestTouch<Point>;
  scroll: number;
}

export class HeadsRouter {
  #screens: PlacedScreen[] = [];
  #heads: RoutedHead[] = [];
  #absolute: string | null = null;
  #focus: RoutedHead | null = null;
  #grabbed = true;
  readonly #chords: Chords;
  readonly #shared = this.#newRoute(null);
  readonly #bound = new Map<number, Route>();

  /** chords: the chords turned on (default all). */
  constructor(
    private readonly actions: RouterActions,
    chords?: readonly ChordName[],
  ) {
    this.#chords = new Chords(!!actions.switchSession, true, chords);
  }

  /** The shared pointer in layout coordinates (null without screens). */
  get pointer(): Point | null {
    return this.#shared.pointer ? { ...this.#shared.pointer } : null;
  }

  /** The head with keyboard focus (its config index), or null. */
  get focus(): number | null {
    return this.#focus?.index ?? null;
  }

  get grabbed(): boolean {
    return this.#grabbed;
  }

  get screens(): readonly PlacedScreen[] {
    return this.#screens;
  }

  /**
   * The screens that are up and their heads (after a hotplug, a session's return...).
   * The pointer stays where it was if a screen still has it, else goes to the nearest
   * point; a focused head that went away loses focus (its guest's held keys released).
   * `absolute`: the screen shared tablets and touchscreens map onto (default the first).
   */
  setLayout(screens: readonly PlacedScreen[], heads: readonly RoutedHead[], absolute?: string): void {
    this.#screens = [...screens];
    this.#heads = [...heads];
    this.#absolute = absolute ?? null;
    const rects = screens.map((s) => s.rect);
    const p = this.#shared.pointer;
    const first = screens[0]?.rect;
    this.#shared.pointer = p ? closestPoint(rects, p) : first ? { x: first.x + first.width / 2, y: first.y + first.height / 2 } : null;
    for (const [i, r] of this.#bound) {
      const h = this.#head(i);
      r.pointer = h && r.pointer ? clampTo(h.area, r.pointer) : null;
    }
    const focused = this.#focus && this.#head(this.#focus.index);
    const under = this.#shared.pointer && this.#headAt(this.#shared.pointer);
    if (under) this.#setFocus(under);
    else if (this.#focus && !focused) this.#setFocus(null);
    else this.#focus = focused;
  }

  /** One event from a device bound to head `bound` (null: a shared device). */
  handle(e: InputEvent, bound: number | null = null): void {
    const head = bound === null ? null : this.#head(bound);
    if (bound !== null && !head) return; // its head's screen is down
    const route = head ? this.#route(head.index) : this.#shared;
    switch (e.kind) {
      case 'key':
        return this.#key(route, head, e.code, e.pressed);
      case 'motion':
        return this.#move(route, head, (p) => ({ x: p.x + e.dx, y: p.y + e.dy }), { dx: e.dxRaw, dy: e.dyRaw });
      case 'absolute':
        return this.#move(route, head, () => this.#absolutePoint(head, e.x, e.y));
      case 'button': {
        const b = BUTTONS[e.button];
        if (b && (this.#grabbed || !e.pressed)) route.held.button(this.#grabbed ? this.#portAt(route, head) : null, b, e.pressed);
        return;
      }
      case 'scroll':
        if (e.axis === 'vertical' && this.#grabbed) route.scroll = wheel(this.#portAt(route, head), route.scroll + e.v120);
        return;
      case 'touch':
        return this.#touch(route, e);
    }
  }

  /** The seat went away: every guest lets go of what the host held down in it. */
  releaseAll(): void {
    for (const r of [this.#shared, ...this.#bound.values()]) {
      r.touch.cancel();
      r.held.release();
    }
    this.#chords.clear();
  }

  readonly #chordHandlers: ChordHandlers = {
    quit: () => this.actions.quit(),
    vt: (vt) => this.actions.switchSession?.(vt),
    grab: () => {
      this.#grabbed = !this.#grabbed;
      if (!this.#grabbed) for (const r of [this.#shared, ...this.#bound.values()]) r.held.release();
      this.actions.grab?.(this.#grabbed);
    },
  };

  #key(route: Route, head: RoutedHead | null, code: number, pressed: boolean): void {
    if (!passKey(this.#chords, code, pressed, this.#chordHandlers)) return;
    const port = !this.#grabbed ? null : head ? head.port : (this.#focus?.port ?? null);
    route.held.key(port, code, pressed);
  }

  #touch(route: Route, e: Extract<InputEvent, { kind: 'touch' }>): void {
    if (e.phase === 'down') return route.touch.start(e.slot, e);
    if (e.phase === 'motion') return route.touch.move(e.slot, e);
    return e.phase === 'up' ? route.touch.end(e.slot) : route.touch.cancel();
  }

  /** Moves a route's pointer to `to(where it is)`: over the layout (shared) or its head (bound). */
  #move(route: Route, head: RoutedHead | null, to: (p: Point) => Point, rel?: { dx: number; dy: number }): void {
    const before = route.pointer ?? (head ? { x: head.area.x + head.area.width / 2, y: head.area.y + head.area.height / 2 } : null);
    if (!before) return;
    const target = to(before);
    const p = head ? clampTo(head.area, target) : closestPoint(this.#screens.map((s) => s.rect), target);
    if (!p) return;
    route.pointer = p;
    const under = head ?? this.#headAt(p);
    if (!head && under && under.index !== this.#focus?.index) this.#setFocus(under);
    if (!this.#grabbed || !under?.port) return;
    const g = this.#toGuest(under, p);
    if (!g) return;
    // Where the guest's pointer is taken to be if it was never moved: under the host's
    // before this move, when that was on a head of the same guest (views of one desktop).
    const was = head ?? this.#headAt(before);
    const hint = was?.port === under.port ? this.#toGuest(was, before) : null;
    under.port.moveTo(g, rel, hint);
  }

  #setFocus(h: RoutedHead | null): void {
    const old = this.#focus;
    if (old?.index === h?.index) return;
    // Another guest takes the keyboard: the one losing it must not keep keys down.
    if (old?.port && old.port !== h?.port) this.#shared.held.release(old.port);
    this.#focus = h;
    this.actions.focus?.(h);
  }

  #absolutePoint(head: RoutedHead | null, x: number, y: number): Point {
    const r = head?.area ?? (this.#screens.find((s) => s.name === this.#absolute) ?? this.#screens[0]).rect;
    return { x: r.x + x * r.width, y: r.y + y * r.height };
  }

  /** The port under a route's pointer (a bound route: its head's). */
  #portAt(route: Route, head: RoutedHead | null): GuestPort | null {
    if (head) return head.port;
    return route.pointer ? (this.#headAt(route.pointer)?.port ?? null) : null;
  }

  #toGuest(h: RoutedHead, p: Point): Point | null {
    const pic = h.picture();
    if (!pic) return null;
    const g = toGuestPoint({ x: p.x - h.area.x, y: p.y - h.area.y }, h.area, pic, h.fit);
    return { x: g.x + h.offset.x, y: g.y + h.offset.y };
  }

  #headAt(p: Point): RoutedHead | null {
    return this.#heads.find((h) => contains(h.area, p)) ?? null;
  }

  #head(index: number): RoutedHead | null {
    return this.#heads.find((h) => h.index === index) ?? null;
  }

  #route(index: number): Route {
    let r = this.#bound.get(index);
    if (!r) this.#bound.set(index, (r = this.#newRoute(index)));
    return r;
  }

  /** A stream of input: the shared devices' (null) or those bound to head `index`. */
  #newRoute(index: number | null): Route {
    const head = () => (index === null ? null : this.#head(index));
    const route: Route = {
      held: new Held(),
      pointer: null,
      scroll: 0,
      touch: new GuestTouch<Point>(
        {
          toGuest: () => null, // heads take touch as the pointer only
          pointerTo: (p) => this.#move(route, head(), () => this.#absolutePoint(head(), p.x, p.y)),
          press: (b, down) => route.held.button(down && this.#grabbed ? this.#portAt(route, head()) : null, b, down),
          error: () => {},
        },
        false,
      ),
    };
    return route;
  }
}
