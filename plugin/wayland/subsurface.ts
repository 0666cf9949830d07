// wl_subcompositor / wl_subsurface: a surface tree under one toplevel (video in one
// surface, the toolkit's UI in another). Semantics as the protocol text and Weston:
//  - position and stacking (set_position, place_above/below) are pending state of the
//    parent, applied when the parent's state is applied, whatever the mode;
//  - a synchronized sub-surface (the default, or any whose ancestor is) caches its
//    commits and applies them when its parent's state is applied; set_desync applies
//    the cache at once when the sub-surface is then effectively desynchronized;
//  - a sub-surface is mapped when it has a buffer and its parent is mapped;
//  - destroying the wl_subsurface, the surface or the parent takes effect at once.
import type { Display, Global } from '../../protocols/runtime.js';
import { ProtocolViolation } from '../../protocols/runtime.js';
import { WlSubcompositor, WlSubcompositorError, WlSubsurfaceError, type WlSubsurface, type WlSurface } from '../../protocols/generated/wayland.js';
import { Surface } from './surface.js';

/** One entry of a parent's stacking order: a child, or the parent itself. */
type StackEntry = Subsurface | 'parent';

/**
 * A parent's children in stacking order (bottom first), current and pending, and the
 * children themselves: one 'applied' and one 'destroy' listener on the parent serve them
 * all (one per child made Node warn past ten sub-surfaces, and cost a listener each).
 */
class Family {
  current: StackEntry[] = ['parent'];
  pending: StackEntry[] = ['parent'];
  readonly children = new Set<Subsurface>();
}

const families = new WeakMap<Surface, Family>();
function familyOf(s: Surface): Family {
  let f = families.get(s);
  if (!f) {
    const fam = new Family();
    f = fam;
    families.set(s, fam);
    s.on('applied', () => {
      for (const c of [...fam.children]) c.parentApplied();
    });
    s.once('destroy', () => {
      for (const c of [...fam.children]) c.parentGone();
    });
  }
  return f;
}

/** Sub-surfaces nested deeper than this are refused (bad_parent): every walk up or down a tree is bounded by it. */
export const MAX_DEPTH = 64;

/** How many sub-surface parents are above `s` (stops counting past MAX_DEPTH). */
function depthOf(s: Surface): number {
  let d = 0;
  for (let cur = s.subsurface?.parent ?? null; cur && d <= MAX_DEPTH; cur = cur.subsurface?.parent ?? null) d++;
  return d;
}

export class Subsurface {
  readonly surface: Surface;
  /** Null once the parent is gone (the sub-surface is unmapped for good). */
  parent: Surface | null;
  readonly resource: WlSubsurface;
  x = 0;
  y = 0;
  #pendingPos: { x: number; y: number } | null = null;
  #sync = true;
  #onSurfaceDestroyed = () => this.#detach();

  constructor(surface: Surface, parent: Surface, resource: WlSubsurface) {
    this.surface = surface;
    this.parent = parent;
    this.resource = resource;
    surface.role = 'wl_subsurface';
    surface.subsurface = this;
    // Added on top of the parent's pending stack: visible once the parent's state is
    // applied. (Stacks are replaced, never changed in place: current may be pending.)
    const fam = familyOf(parent);
    fam.pending = [...fam.pending, this];
    fam.children.add(this);
    surface.once('destroy', this.#onSurfaceDestroyed);
  }

  /** Synchronized itself, or through any ancestor sub-surface (a walk up, at most MAX_DEPTH long). */
  synchronized(): boolean {
    let s: Subsurface | null = this;
    for (let i = 0; s && i <= MAX_DEPTH; i++) {
      if (s.#sync) return true;
      const up: unknown = s.parent?.subsurface;
      s = up instanceof Subsurface ? up : null;
    }
    return false;
  }

  setPosition(x: number, y: number): void {
    this.#pendingPos = { x, y };
  }

  setSync(sync: boolean): void {
    this.#sync = sync;
    // Now effectively desynchronized: what was cached is applied at once (with its own
    // synchronized children's caches, through its 'applied').
    if (!sync && !this.synchronized()) this.surface.applyCached();
  }

  /** place_above (above = true) or place_below `sibling` (a sibling or the parent). */
  place(siblingRes: WlSurface, above: boolean): void {
    const parent = this.parent;
    if (!parent) return; // inert: its surface or parent is gone
    const sibling = Surface.of(siblingRes);
    const fam = familyOf(parent);
    const ref: StackEntry | undefined = sibling === parent ? 'parent' : fam.pending.find((e) => e !== 'parent' && e.surface === sibling);
    if (!ref || ref === this) {
      throw new ProtocolViolation(this.resource, WlSubsurfaceError.BAD_SURFACE, `${siblingRes} is neither a sibling nor the parent of ${this.surface.resource}`);
    }
    const list = fam.pending.filter((e) => e !== this);
    list.splice(list.indexOf(ref) + (above ? 1 : 0), 0, this);
    fam.pending = list;
  }

  /** @internal The parent's state was applied (its Family's one listener). */
  parentApplied(): void {
    const parent = this.parent;
    if (!parent) return;
    const fam = familyOf(parent);
    // The parent's stacking order is applied once per parent apply; the first child to
    // hear of it does it for all.
    if (fam.current !== fam.pending) fam.current = fam.pending;
    if (this.#pendingPos) {
      this.x = this.#pendingPos.x;
      this.y = this.#pendingPos.y;
      this.#pendingPos = null;
    }
    if (this.synchronized()) this.surface.applyCached();
  }

  /** @internal The parent surface was destroyed. */
  parentGone(): void {
    this.#detach();
  }

  /** The role ends (wl_subsurface destroyed) or the surface or the parent went: unmapped now. */
  #detach(): void {
    const parent = this.parent;
    if (parent) {
      const fam = familyOf(parent);
      fam.current = fam.current.filter((e) => e !== this);
      fam.pending = fam.pending.filter((e) => e !== this);
      fam.children.delete(this);
      this.parent = null;
    }
    this.surface.off('destroy', this.#onSurfaceDestroyed);
    // Orphaned by its parent, the sub-surface stays a sub-surface (inert) and
    // desynchronized in effect: its commits must not wait for a parent that is gone.
    this.#sync = false;
    this.surface.applyCached();
    this.onUnmapped?.();
  }

  /** The wl_subsurface was destroyed: the surface loses the role and may get another. */
  destroyRole(): void {
    this.#detach();
    this.surface.dropCached();
    this.surface.subsurface = null;
    this.surface.role = null;
  }

  /** Set by the compositor: the tree it belongs to changed shape. */
  onUnmapped: (() => void) | null = null;
}

/** A mapped surface of a tree at its position relative to the tree's root (surface coordinates), bottom first. */
export interface TreeEntry {
  surface: Surface;
  x: number;
  y: number;
}

/**
 * The mapped surfaces of the tree under `root` in stacking order (bottom first): a
 * surface with a buffer whose parent chain is mapped, at its accumulated position.
 */
export function flattenTree(root: Surface): TreeEntry[] {
  const out: TreeEntry[] = [];
  const walk = (s: Surface, x: number, y: number, depth: number) => {
    if (!s.size || depth > MAX_DEPTH) return;
    const fam = families.get(s);
    for (const e of fam?.current ?? ['parent']) {
      if (e === 'parent') out.push({ surface: s, x, y });
      else walk(e.surface, x + e.x, y + e.y, depth + 1);
    }
  };
  walk(root, 0, 0, 0);
  return out;
}

/** The root of the tree `s` is in (itself when it is no sub-surface). */
export function rootOf(s: Surface): Surface {
  let cur = s;
  for (let i = 0; i <= MAX_DEPTH; i++) {
    const parent = cur.subsurface?.parent;
    if (!parent) return cur;
    cur = parent;
  }
  return cur;
}

export interface SubcompositorOptions {
  /** A sub-surface was made (its tree's shape will change when its parent applies). */
  onSubsurface?: (sub: Subsurface) => void;
}

export function createSubcompositorGlobal(display: Display, opts: SubcompositorOptions = {}): Global<WlSubcompositor> {
  return WlSubcompositor.global(display, 1, (id) => {
    id.create({
      destroy() {},
      getSubsurface(res, sid, surfaceRes, parentRes) {
        const surface = Surface.of(surfaceRes);
        const parent = Surface.of(parentRes);
        if (surface.role !== null) throw new ProtocolViolation(res, WlSubcompositorError.BAD_SURFACE, `${surfaceRes} already has the role ${surface.role}`);
        if (surface === parent) throw new ProtocolViolation(res, WlSubcompositorError.BAD_PARENT, `${surfaceRes} cannot be its own parent`);
        // The parent must not be the surface's descendant: no cycles in the tree.
        if (depthOf(parent) >= MAX_DEPTH) {
          throw new ProtocolViolation(res, WlSubcompositorError.BAD_PARENT, `${parentRes} is already ${MAX_DEPTH} sub-surfaces deep; deeper trees are refused`);
        }
        // Exact: every tree is at most MAX_DEPTH deep, and rootOf walks that far.
        if (rootOf(parent) === surface) {
          throw new ProtocolViolation(res, WlSubcompositorError.BAD_PARENT, `${parentRes} is a sub-surface under ${surfaceRes}; a surface cannot be its own ancestor`);
        }
        let sub: Subsurface | null = null;
        const r = sid.create({
          destroy() {
            sub?.destroyRole();
            sub = null;
          },
          setPosition(_r, x, y) {
            sub?.setPosition(x, y);
          },
          placeAbove(_r, sibling) {
            sub?.place(sibling, true);
          },
          placeBelow(_r, sibling) {
            sub?.place(sibling, false);
          },
          setSync() {
            sub?.setSync(true);
          },
          setDesync() {
            sub?.setSync(false);
          },
        });
        sub = new Subsurface(surface, parent, r);
        opts.onSubsurface?.(sub);
      },
    });
  });
}
