// xdg_wm_base for a kiosk: every toplevel is told to be fullscreen at the output's size
// and activated; popups are placed by their positioner over their parent (xdg-popup.ts).
// The configure/ack handshake and the role rules are enforced with xdg-shell's error
// codes. Window geometry (set_window_geometry) is double-buffered state applied at commit.
//
// Ownership: no fds or buffers; resources are libwayland's.
import type { Display, Global, NewId } from '../../protocols/runtime.js';
import { ProtocolViolation } from '../../protocols/runtime.js';
import {
  XdgWmBase,
  XdgWmBaseError,
  XdgSurfaceError,
  XdgToplevelState,
  XdgPositionerAnchor,
  XdgPositionerError,
  type XdgSurface,
  type XdgToplevel,
  type XdgPositioner,
} from '../../protocols/generated/xdg_shell.js';
import type { WlSurface } from '../../protocols/generated/wayland.js';
import type { Rect } from '../geometry.js';
import { Surface } from './surface.js';
import { emptyRules, type PositionerRules } from './positioner.js';
import { Popups, type Popup, type PopupPlace, type XdgNode } from './xdg-popup.js';
import { xdgToplevelEventVersion } from './client-quirks.js';

export interface Toplevel {
  readonly surface: Surface;
  readonly resource: XdgToplevel;
  title: string;
  appId: string;
  /** Sends a new configure (after the initial commit; before it the initial configure will come). */
  reconfigure(): void;
  /** It has a zxdg_toplevel_decoration_v1 (at most one: already_constructed). */
  decorated: boolean;
  /** Its mapped popups, parents first, placed in its surface's coordinates. */
  popups(): PopupPlace[];
  /** Its window geometry (null: the whole surface). */
  geometry(): Rect | null;
}

/** The Toplevel behind an xdg_toplevel resource of this compositor. */
export function toplevelOf(res: XdgToplevel): Toplevel {
  const t = res.data as Toplevel | undefined;
  if (!t?.surface) throw new Error(`${res}: not an xdg_toplevel of this compositor`);
  return t;
}

export interface XdgShellOptions {
  /** Size every toplevel is configured to (the output's mode). */
  size: () => { width: number; height: number };
  /** A toplevel was created (not yet mapped: its first buffer comes with a later commit). */
  onToplevel: (t: Toplevel) => void;
  onToplevelDestroyed: (t: Toplevel) => void;
  /** Popups' placement, grabs and layers (default: no seat serial is valid, a large area). */
  popups?: Popups;
}

function states(...s: XdgToplevelState[]): Uint8Array {
  return new Uint8Array(Uint32Array.from(s).buffer);
}

/** xdg_positioner: its rules on the resource's data, checked as the protocol says. */
function createPositioner(pid: NewId<XdgPositioner>): void {
  const r: PositionerRules = emptyRules();
  const bad = (res: XdgPositioner, why: string) => new ProtocolViolation(res, XdgPositionerError.INVALID_INPUT, why);
  const p = pid.create({
    setSize(res, w, h) {
      if (w <= 0 || h <= 0) throw bad(res, `size ${w}x${h} is not positive`);
      r.size = { w, h };
    },
    setAnchorRect(res, x, y, w, h) {
      if (w < 0 || h < 0) throw bad(res, `anchor rectangle ${w}x${h} is negative`);
      r.anchorRect = { x, y, width: w, height: h };
    },
    setAnchor(res, a) {
      if (a < XdgPositionerAnchor.NONE || a > XdgPositionerAnchor.BOTTOM_RIGHT) throw bad(res, `anchor ${a} is not an anchor`);
      r.anchor = a;
    },
    setGravity(res, g) {
      if (g < XdgPositionerAnchor.NONE || g > XdgPositionerAnchor.BOTTOM_RIGHT) throw bad(res, `gravity ${g} is not a gravity`);
      r.gravity = g;
    },
    setConstraintAdjustment(_res, c) {
      r.adjustment = c;
    },
    setOffset(_res, x, y) {
      r.offset = { x, y };
    },
    setReactive() {
      r.reactive = true;
    },
    setParentSize(_res, w, h) {
      r.parentSize = { w, h };
    },
    setParentConfigure(_res, serial) {
      r.parentConfigure = serial;
    },
  });
  p.data = r;
}

export function createXdgShellGlobal(display: Display, opts: XdgShellOptions): Global<XdgWmBase> {
  const popups = opts.popups ?? new Popups({ area: () => ({ x: -(1 << 20), y: -(1 << 20), width: 1 << 21, height: 1 << 21 }), validSerial: () => false, changed: () => {} });
  return XdgWmBase.global(display, 5, (id) => {
    id.create({
      createPositioner(_res, pid) {
        createPositioner(pid);
      },
      pong() {},
      getXdgSurface(wm, xid, wlSurface) {
        const surface = Surface.of(wlSurface);
        if (surface.role !== null) throw new ProtocolViolation(wm, XdgWmBaseError.ROLE, `${wlSurface} already has the role ${surface.role}`);
        if (surface.buffer) {
          throw new ProtocolViolation(wm, XdgWmBaseError.INVALID_SURFACE_STATE, `${wlSurface} already has a buffer committed; xdg_surface needs an unmapped surface`);
        }
        new KioskXdgSurface(display, opts, popups, wm, surface, wlSurface, xid);
      },
    });
  });
}

/** The xdg_surface behind a resource of this compositor. */
function nodeOf(res: XdgSurface): KioskXdgSurface {
  const n = res.data;
  if (!(n instanceof KioskXdgSurface)) throw new Error(`${res}: not an xdg_surface of this compositor`);
  return n;
}

/** One xdg_surface: its role (toplevel or popup), window geometry and the configure/ack handshake. */
class KioskXdgSurface implements XdgNode {
  private configured = false;
  private sentSerials: number[] = [];
  private roleObject: XdgToplevel | Popup | null = null;
  private toplevel: Toplevel | null = null;
  popup: Popup | null = null;
  readonly children: Popup[] = [];
  private initialCommitSeen = false;
  private capabilitiesSent = false;
  private readonly xdg: XdgSurface;
  #geometry: Rect | null = null;
  #pendingGeometry: Rect | null = null;

  constructor(
    private readonly display: Display,
    private readonly opts: XdgShellOptions,
    private readonly popups: Popups,
    readonly wm: XdgWmBase,
    readonly surface: Surface,
    private readonly wlSurface: WlSurface,
    xid: NewId<XdgSurface>,
  ) {
    this.xdg = xid.create({
      getToplevel: (res, tid) => this.getToplevel(res, tid),
      getPopup: (res, pid, parent, positioner) => {
        if (surface.role !== null) throw new ProtocolViolation(res, XdgSurfaceError.ALREADY_CONSTRUCTED, `${wlSurface} already has the role ${surface.role}`);
        const p = popups.create(this, parent ? nodeOf(parent) : null, positioner, pid);
        surface.role = 'xdg_popup';
        this.popup = p;
        this.roleObject = p;
      },
      setWindowGeometry: (res, x, y, w, h) => {
        if (w <= 0 || h <= 0) throw new ProtocolViolation(res, XdgSurfaceError.INVALID_SIZE, `window geometry ${w}x${h} is not positive`);
        this.#pendingGeometry = { x, y, width: w, height: h };
      },
      ackConfigure: (res, serial) => {
        const i = this.sentSerials.indexOf(serial);
        if (i < 0) throw new ProtocolViolation(res, XdgSurfaceError.INVALID_SERIAL, `serial ${serial} was not sent in a configure (or was already acked)`);
        this.sentSerials = this.sentSerials.slice(i + 1);
        this.configured = true;
      },
    });
    this.xdg.data = this;
    this.xdg.onDestroy(() => {
      const ro = this.roleObject;
      const live = ro !== null && !('resource' in ro ? ro.resource.destroyed : ro.destroyed);
      if (live && !wlSurface.destroyed) {
        wlSurface.client.postImplementationError('xdg_surface destroyed before its role object');
      }
      popups.nodeGone(this);
      surface.beforeCommit = null;
    });
    surface.once('destroy', () => popups.nodeGone(this));
    surface.beforeCommit = (pendingBuffer) => this.beforeCommit(pendingBuffer);
  }

  geometry(): Rect | null {
    return this.#geometry;
  }
  role(): 'toplevel' | 'popup' | null {
    return this.toplevel ? 'toplevel' : this.popup ? 'popup' : null;
  }

  sendConfigure(): void {
    if (this.xdg.destroyed) return;
    const serial = this.display.nextSerial();
    this.sentSerials.push(serial);
    this.xdg.sendConfigure(serial);
  }

  private getToplevel(res: XdgSurface, tid: NewId<XdgToplevel>): void {
    const { surface, wlSurface, opts } = this;
    if (surface.role !== null) throw new ProtocolViolation(res, XdgSurfaceError.ALREADY_CONSTRUCTED, `${wlSurface} already has the role ${surface.role}`);
    surface.role = 'xdg_toplevel';
    const configure = () => this.configure();
    const t = tid.create({
      setParent() {},
      setTitle: (_r, title) => {
        if (this.toplevel) this.toplevel.title = title;
      },
      setAppId: (_r, appId) => {
        if (this.toplevel) this.toplevel.appId = appId;
      },
      showWindowMenu() {},
      move() {},
      resize() {},
      setMaxSize() {},
      setMinSize() {},
      setMaximized: configure,
      unsetMaximized: configure,
      setFullscreen: configure,
      unsetFullscreen: configure,
      setMinimized() {},
    });
    this.roleObject = t;
    const tl: Toplevel = {
      surface,
      resource: t,
      title: '',
      appId: '',
      reconfigure: () => this.initialCommitSeen && this.configure(),
      decorated: false,
      popups: () => this.popups.placesOf(this),
      geometry: () => this.#geometry,
    };
    this.toplevel = tl;
    t.data = tl;
    t.onDestroy(() => {
      this.roleObject = null;
      // Its popups have nothing to stand on any more: popup_done, topmost first.
      this.popups.nodeGone(this);
      opts.onToplevelDestroyed(tl);
    });
    opts.onToplevel(tl);
  }

  /**
   * Fullscreen and activated at the output's size; the serial is remembered for the ack.
   * Before it, as the protocol orders: wm_capabilities (v5, once, before the first
   * configure: none, a kiosk has no window menu, maximize, minimize or fullscreen toggle)
   * and configure_bounds (v4: the output's usable size, all of it in a kiosk), unless the
   * client cannot take them (client-quirks.ts).
   */
  private configure(): void {
    const roleObject = this.roleObject;
    if (!roleObject || !('sendConfigure' in roleObject) || roleObject.destroyed || this.xdg.destroyed) return;
    const { width, height } = this.opts.size();
    const version = xdgToplevelEventVersion(roleObject.client, roleObject.version);
    if (version >= 5 && !this.capabilitiesSent) {
      roleObject.sendWmCapabilities(new Uint8Array(0));
      this.capabilitiesSent = true;
    }
    if (version >= 4) roleObject.sendConfigureBounds(width, height);
    roleObject.sendConfigure(width, height, states(XdgToplevelState.FULLSCREEN, XdgToplevelState.ACTIVATED));
    this.sendConfigure();
  }

  private beforeCommit(pendingBuffer: unknown): void {
    const { surface, wlSurface, xdg } = this;
    if (!this.roleObject && surface.role === null) {
      throw new ProtocolViolation(xdg, XdgSurfaceError.NOT_CONSTRUCTED, `${wlSurface} committed before xdg_surface got a role`);
    }
    if (this.#pendingGeometry) {
      this.#geometry = this.#pendingGeometry;
      this.#pendingGeometry = null;
    }
    if (!this.initialCommitSeen) {
      if (pendingBuffer) throw new ProtocolViolation(xdg, XdgSurfaceError.UNCONFIGURED_BUFFER, `the initial commit of an ${surface.role} must not attach a buffer`);
      this.initialCommitSeen = true;
      if (this.popup) this.popups.initialCommit(this.popup);
      else this.configure();
      return;
    }
    if (pendingBuffer && !this.configured) {
      throw new ProtocolViolation(xdg, XdgSurfaceError.UNCONFIGURED_BUFFER, 'buffer attached before the configure was acked');
    }
  }
}
