// xdg_wm_base for a kiosk: every toplevel is told to be fullscreen at the output's size
// and activated; popups are dismissed at once (a kiosk has nowhere to put them). The
// configure/ack handshake and the role rules are enforced with xdg-shell's error codes.
import type { Display, Global, NewId } from '../../protocols/runtime.js';
import { ProtocolViolation } from '../../protocols/runtime.js';
import {
  XdgWmBase,
  XdgWmBaseError,
  XdgSurfaceError,
  XdgToplevelState,
  type XdgSurface,
  type XdgToplevel,
} from '../../protocols/generated/xdg_shell.js';
import type { WlSurface } from '../../protocols/generated/wayland.js';
import { Surface } from './surface.js';

export interface Toplevel {
  readonly surface: Surface;
  readonly resource: XdgToplevel;
  title: string;
  appId: string;
  /** Sends a new configure (after the initial commit; before it the initial configure will come). */
  reconfigure(): void;
  /** It has a zxdg_toplevel_decoration_v1 (at most one: already_constructed). */
  decorated: boolean;
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
}

function states(...s: XdgToplevelState[]): Uint8Array {
  return new Uint8Array(Uint32Array.from(s).buffer);
}

export function createXdgShellGlobal(display: Display, opts: XdgShellOptions): Global<XdgWmBase> {
  return XdgWmBase.global(display, 5, (id) => {
    id.create({
      createPositioner(_res, pid) {
        pid.create({
          setSize() {},
          setAnchorRect() {},
          setAnchor() {},
          setGravity() {},
          setConstraintAdjustment() {},
          setOffset() {},
          setReactive() {},
          setParentSize() {},
          setParentConfigure() {},
        });
      },
      pong() {},
      getXdgSurface(wm, xid, wlSurface) {
        const surface = Surface.of(wlSurface);
        if (surface.role !== null) throw new ProtocolViolation(wm, XdgWmBaseError.ROLE, `${wlSurface} already has the role ${surface.role}`);
        if (surface.buffer) {
          throw new ProtocolViolation(wm, XdgWmBaseError.INVALID_SURFACE_STATE, `${wlSurface} already has a buffer committed; xdg_surface needs an unmapped surface`);
        }
        new KioskXdgSurface(display, opts, surface, wlSurface, xid);
      },
    });
  });
}

/** One xdg_surface: its role (toplevel, or a popup dismissed at once) and the configure/ack handshake. */
class KioskXdgSurface {
  private configured = false;
  private sentSerials: number[] = [];
  private roleObject: XdgToplevel | null = null;
  private toplevel: Toplevel | null = null;
  private initialCommitSeen = false;
  private readonly xdg: XdgSurface;

  constructor(
    private readonly display: Display,
    private readonly opts: XdgShellOptions,
    private readonly surface: Surface,
    private readonly wlSurface: WlSurface,
    xid: NewId<XdgSurface>,
  ) {
    this.xdg = xid.create({
      getToplevel: (res, tid) => this.getToplevel(res, tid),
      getPopup: (res, pid) => {
        if (surface.role !== null) throw new ProtocolViolation(res, XdgSurfaceError.ALREADY_CONSTRUCTED, `${wlSurface} already has the role ${surface.role}`);
        surface.role = 'xdg_popup';
        const p = pid.create({ grab() {}, reposition() {} });
        p.sendPopupDone();
      },
      setWindowGeometry(res, _x, _y, w, h) {
        if (w <= 0 || h <= 0) throw new ProtocolViolation(res, XdgSurfaceError.INVALID_SIZE, `window geometry ${w}x${h} is not positive`);
      },
      ackConfigure: (res, serial) => {
        const i = this.sentSerials.indexOf(serial);
        if (i < 0) throw new ProtocolViolation(res, XdgSurfaceError.INVALID_SERIAL, `serial ${serial} was not sent in a configure (or was already acked)`);
        this.sentSerials = this.sentSerials.slice(i + 1);
        this.configured = true;
      },
    });
    this.xdg.onDestroy(() => {
      if (this.roleObject && !this.roleObject.destroyed && !wlSurface.destroyed) {
        wlSurface.client.postImplementationError('xdg_surface destroyed before its role object');
      }
      surface.beforeCommit = null;
    });
    surface.beforeCommit = (pendingBuffer) => this.beforeCommit(pendingBuffer);
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
    const tl: Toplevel = { surface, resource: t, title: '', appId: '', reconfigure: () => this.initialCommitSeen && this.configure(), decorated: false };
    this.toplevel = tl;
    t.data = tl;
    t.onDestroy(() => {
      this.roleObject = null;
      opts.onToplevelDestroyed(tl);
    });
    opts.onToplevel(tl);
  }

  /** Fullscreen and activated at the output's size; the serial is remembered for the ack. */
  private configure(): void {
    const roleObject = this.roleObject;
    if (!roleObject || roleObject.destroyed || this.xdg.destroyed) return;
    const { width, height } = this.opts.size();
    roleObject.sendConfigure(width, height, states(XdgToplevelState.FULLSCREEN, XdgToplevelState.ACTIVATED));
    const serial = this.display.nextSerial();
    this.sentSerials.push(serial);
    this.xdg.sendConfigure(serial);
  }

  private beforeCommit(pendingBuffer: unknown): void {
    const { surface, wlSurface, xdg } = this;
    if (!this.roleObject && surface.role === null) {
      throw new ProtocolViolation(xdg, XdgSurfaceError.NOT_CONSTRUCTED, `${wlSurface} committed before xdg_surface got a role`);
    }
    if (surface.role !== 'xdg_toplevel') return;
    if (!this.initialCommitSeen) {
      this.initialCommitSeen = true;
      if (pendingBuffer) throw new ProtocolViolation(xdg, XdgSurfaceError.UNCONFIGURED_BUFFER, 'the initial commit of an xdg_toplevel must not attach a buffer');
      this.configure();
      return;
    }
    if (pendingBuffer && !this.configured) {
      throw new ProtocolViolation(xdg, XdgSurfaceError.UNCONFIGURED_BUFFER, 'buffer attached before the configure was acked');
    }
  }
}
