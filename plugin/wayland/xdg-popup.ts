// xdg_popup: menus, combo boxes, context menus and tooltips. A popup is placed by its
// positioner (positioner.ts) relative to its parent's window geometry and kept on the
// output (the constraint area the compositor gives, in the root surface's coordinates);
// it is configured at its initial commit and again on reposition (v3: repositioned with
// the client's token first). Popups nest (a submenu's parent is a popup) and stack above
// their parent, in creation order.
//
// Grabs (xdg_popup.grab): only before the initial commit, quoting an input serial the seat
// gave this client (else invalid_grab), on a toplevel or on the topmost grabbing popup
// (a popup without a grab as parent: invalid_grab; a grabbing popup that is not the
// topmost: not_the_topmost_popup). While a chain of grabbing popups is open the keyboard
// goes to its topmost mapped popup, and a button press on no surface of the chain
// dismisses the whole chain from the top (popup_done each) and is not delivered.
// Destroying a popup that still has a child popup is not_the_topmost_popup; a toplevel
// that goes takes its popups with it (popup_done). A dismissed popup is never shown again.
//
// Ownership: no fds or buffers; resources are libwayland's. The surfaces' layers are the
// compositor's (onPopup hands it each popup's surface).
import type { Client, NewId } from '../../protocols/runtime.js';
import { ProtocolViolation } from '../../protocols/runtime.js';
import { XdgPopupError, XdgWmBaseError, type XdgPopup, type XdgPositioner, type XdgWmBase } from '../../protocols/generated/xdg_shell.js';
import type { Rect } from '../geometry.js';
import { placePopup, type PositionerRules } from './positioner.js';
import type { Surface } from './surface.js';

/** An xdg_surface as popups see it: a toplevel or popup, with its window geometry. */
export interface XdgNode {
  readonly surface: Surface;
  readonly wm: XdgWmBase;
  /** The window geometry (null: the surface's whole size from 0,0). */
  geometry(): Rect | null;
  /** The role object: a toplevel (popup null) or a popup; null before one is made. */
  role(): 'toplevel' | 'popup' | null;
  popup: Popup | null;
  /** Popups whose parent this is, oldest first (live ones). */
  readonly children: Popup[];
  /** Sends xdg_surface.configure with a new serial (after the role's own configure). */
  sendConfigure(): void;
}

/** A mapped popup's surface and its origin in its toplevel's root surface coordinates. */
export interface PopupPlace {
  surface: Surface;
  x: number;
  y: number;
  /** Its window geometry in its own surface coordinates (null: the whole surface). */
  geometry: Rect | null;
}

export interface PopupsOptions {
  /** The constraint area (the output) in the coordinates of a toplevel's root surface. */
  area(root: Surface): Rect;
  /** Whether the seat gave `client` this input serial (a grab must quote one). */
  validSerial(client: Client, serial: number): boolean;
  /** The popups' scene or the grab changed (relayout, focus). */
  changed(): void;
  /** A new popup surface: the compositor gives it a layer. */
  onPopup?(surface: Surface): void;
}

function offsetOf(n: XdgNode): { x: number; y: number } {
  const g = n.geometry();
  return g ? { x: g.x, y: g.y } : { x: 0, y: 0 };
}

export class Popup {
  /** Relative to the parent's window geometry: where the popup's window geometry goes. */
  rect: Rect = { x: 0, y: 0, width: 0, height: 0 };
  grabbing = false;
  dismissed = false;
  destroyed = false;
  initialCommitSeen = false;
  readonly resource: XdgPopup;

  constructor(
    readonly node: XdgNode,
    /** null: no parent given (an error at the initial commit: no other protocol can set one here). */
    readonly parent: XdgNode | null,
    public rules: PositionerRules,
    private readonly popups: Popups,
    pid: NewId<XdgPopup>,
  ) {
    this.resource = pid.create({
      destroy: () => popups.destroy(this),
      grab: (res, _seat, serial) => popups.grab(this, res, serial),
      reposition: (res, positioner, token) => {
        const rules = rulesOf(positioner);
        if (!rules.size || !rules.anchorRect) {
          throw new ProtocolViolation(node.wm, XdgWmBaseError.INVALID_POSITIONER, `${positioner} is incomplete: set_size and set_anchor_rect are required`);
        }
        this.rules = rules;
        if (!this.initialCommitSeen) return;
        if (res.version >= 3) res.sendRepositioned(token);
        this.configure();
      },
    });
  }

  get surface(): Surface {
    return this.node.surface;
  }

  /** The toplevel's root surface this popup is (transitively) over; null without a parent. */
  root(): Surface | null {
    let n: XdgNode | null = this.parent;
    for (let i = 0; n && i <= MAX_NESTING; i++) {
      if (n.role() === 'toplevel') return n.surface;
      n = n.popup?.parent ?? null;
    }
    return null;
  }

  /** The origin of this popup's surface in its root surface's coordinates. */
  origin(): { x: number; y: number } | null {
    const parent = this.parent;
    if (!parent) return null;
    const base = parent.popup ? parent.popup.origin() : { x: 0, y: 0 };
    if (!base) return null;
    const pg = offsetOf(parent);
    const own = offsetOf(this.node);
    return { x: base.x + pg.x + this.rect.x - own.x, y: base.y + pg.y + this.rect.y - own.y };
  }

  /** Placed by the rules inside the output, then configure (xdg_popup, then xdg_surface). */
  configure(): void {
    const root = this.root();
    const parent = this.parent;
    if (!root || !parent || this.destroyed || this.resource.destroyed) return;
    const pbase = parent.popup ? (parent.popup.origin() ?? { x: 0, y: 0 }) : { x: 0, y: 0 };
    const pg = offsetOf(parent);
    const area = this.popups.opts.area(root);
    // The area in the parent's window geometry coordinates, as the positioner's rules are.
    const local = { x: area.x - pbase.x - pg.x, y: area.y - pbase.y - pg.y, width: area.width, height: area.height };
    this.rect = placePopup(this.rules, local);
    this.resource.sendConfigure(this.rect.x, this.rect.y, this.rect.width, this.rect.height);
    this.node.sendConfigure();
    this.popups.opts.changed();
  }

  /** Shown: configured, with a buffer, not dismissed. */
  get mapped(): boolean {
    return !this.dismissed && !this.destroyed && this.initialCommitSeen && this.surface.size !== null;
  }
}

/** The rules of an xdg_positioner resource (a copy: later changes do not move the popup). */
export function rulesOf(res: XdgPositioner): PositionerRules {
  const r = res.data as PositionerRules | undefined;
  if (!r) throw new Error(`${res}: not a positioner of this compositor`);
  return { ...r, offset: { ...r.offset } };
}

/** Submenus of submenus: no real menu goes near this; it bounds every walk up a chain. */
const MAX_NESTING = 32;

export class Popups {
  /** The open grab chain, bottom first. */
  #chain: Popup[] = [];

  constructor(readonly opts: PopupsOptions) {}

  /** xdg_surface.get_popup: the checks of the protocol, then the popup. */
  create(node: XdgNode, parent: XdgNode | null, positioner: XdgPositioner, pid: NewId<XdgPopup>): Popup {
    const rules = rulesOf(positioner);
    if (!rules.size || !rules.anchorRect) {
      throw new ProtocolViolation(node.wm, XdgWmBaseError.INVALID_POSITIONER, `${positioner} is incomplete: set_size and set_anchor_rect are required`);
    }
    if (parent && parent.role() === null) {
      throw new ProtocolViolation(node.wm, XdgWmBaseError.INVALID_POPUP_PARENT, `${parent.surface.resource} has no xdg role yet and cannot be a popup's parent`);
    }
    let depth = 0;
    for (let n = parent?.popup ?? null; n; n = n.parent?.popup ?? null) depth++;
    if (depth >= MAX_NESTING) {
      throw new ProtocolViolation(node.wm, XdgWmBaseError.INVALID_POPUP_PARENT, `popups nested deeper than ${MAX_NESTING}`);
    }
    const p = new Popup(node, parent, rules, this, pid);
    parent?.children.push(p);
    this.opts.onPopup?.(node.surface);
    // A popup on a dismissed popup is dismissed at once.
    if (parent?.popup?.dismissed) this.#dismiss(p);
    return p;
  }

  /** The initial commit of a popup: it is placed and configured. */
  initialCommit(p: Popup): void {
    if (!p.parent) throw new ProtocolViolation(p.node.wm, XdgWmBaseError.INVALID_POPUP_PARENT, `${p.surface.resource} was committed as a popup without a parent`);
    p.initialCommitSeen = true;
    if (p.dismissed) return;
    p.configure();
  }

  grab(p: Popup, res: XdgPopup, serial: number): void {
    if (p.initialCommitSeen) throw new ProtocolViolation(res, XdgPopupError.INVALID_GRAB, 'grab after the initial commit');
    if (!this.opts.validSerial(res.client, serial)) throw new ProtocolViolation(res, XdgPopupError.INVALID_GRAB, `serial ${serial} is not an input event serial this client was given`);
    const parentPopup = p.parent?.popup ?? null;
    if (parentPopup && !parentPopup.grabbing) throw new ProtocolViolation(res, XdgPopupError.INVALID_GRAB, 'the parent popup has no grab');
    if (parentPopup && !parentPopup.dismissed && this.#chain.at(-1) !== parentPopup) {
      throw new ProtocolViolation(p.node.wm, XdgWmBaseError.NOT_THE_TOPMOST_POPUP, 'the parent popup is not the topmost grabbing popup');
    }
    p.grabbing = true;
    if (p.dismissed) return;
    // A new chain on a toplevel ends the open one (of this or another client).
    if (!parentPopup) this.dismissChain();
    this.#chain.push(p);
    this.opts.changed();
  }

  destroy(p: Popup): void {
    const live = p.node.children.find((c) => !c.destroyed);
    if (live) throw new ProtocolViolation(p.node.wm, XdgWmBaseError.NOT_THE_TOPMOST_POPUP, `${p.resource} destroyed before its child popup ${live.resource}`);
    this.#forget(p);
  }

  /** The popup's xdg_surface or wl_surface went (a destroyed xdg_popup comes here first). */
  #forget(p: Popup): void {
    if (p.destroyed) return;
    p.destroyed = true;
    const siblings = p.parent?.children;
    if (siblings) siblings.splice(siblings.indexOf(p) >>> 0, siblings.includes(p) ? 1 : 0);
    this.#chain = this.#chain.filter((x) => x !== p);
    this.opts.changed();
  }

  /** The node's surface or xdg_surface went: its popup is gone, its children are dismissed. */
  nodeGone(n: XdgNode): void {
    for (const c of [...n.children].reverse()) this.#dismiss(c);
    if (n.popup) this.#forget(n.popup);
  }

  /** popup_done for p and every popup above it, topmost first. */
  #dismiss(p: Popup): void {
    for (const c of [...p.node.children].reverse()) this.#dismiss(c);
    if (p.dismissed || p.destroyed) return;
    p.dismissed = true;
    this.#chain = this.#chain.filter((x) => x !== p);
    if (!p.resource.destroyed) p.resource.sendPopupDone();
    this.opts.changed();
  }

  /** Dismisses the open grab chain from the top. */
  dismissChain(): void {
    const bottom = this.#chain[0];
    if (bottom) this.#dismiss(bottom);
  }

  /** The topmost mapped popup of the grab chain (the keyboard focus); null without a grab. */
  grabFocus(): Surface | null {
    for (let i = this.#chain.length - 1; i >= 0; i--) if (this.#chain[i]!.mapped) return this.#chain[i]!.surface;
    return null;
  }

  /**
   * A button went down on `target` (null: no surface). Outside the grab chain's popups (and
   * their sub-surfaces, `rootOf`), the chain is dismissed: true, the press is not delivered.
   */
  press(target: Surface | null, rootOf: (s: Surface) => Surface): boolean {
    if (this.#chain.length === 0) return false;
    const r = target ? rootOf(target) : null;
    if (r && this.#chain.some((p) => p.surface === r || p.node.children.some((c) => c.surface === r))) return false;
    this.dismissChain();
    return true;
  }

  /** The mapped popups over a toplevel, parents before children (bottom first), placed. */
  placesOf(top: XdgNode): PopupPlace[] {
    const out: PopupPlace[] = [];
    const walk = (n: XdgNode, depth: number) => {
      if (depth > 64) return;
      for (const c of n.children) {
        if (!c.mapped) continue;
        const o = c.origin();
        if (o) out.push({ surface: c.surface, x: o.x, y: o.y, geometry: c.node.geometry() });
        walk(c.node, depth + 1);
      }
    };
    walk(top, 0);
    return out;
  }
}
