// xdg_wm_base for a kiosk: every toplevel is told to be fullscreen at the output's size
// and activated; popups are dismissed at once (a kiosk has nowhere to put them). The
// configure/ack handshake and the role rules are enforced with xdg-shell's error codes.
import type { Display, Global } from '../../protocols/runtime.js';
import { ProtocolViolation } from '../../protocols/runtime.js';
import {
  XdgWmBase,
  XdgWmBaseError,
  XdgSurfaceError,
  XdgToplevelState,
  type XdgSurface,
  type XdgToplevel,
} from '../../protocols/generated/xdg_shell.js';
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
        let configured = false;
        let sentSerials: number[] = [];
        let roleObject: XdgToplevel | null = null;
        let toplevel: Toplevel | null = null;
        let initialCommitSeen = false;
        const xdg: XdgSurface = xid.create({
          getToplevel(res, tid) {
            if (surface.role !== null) throw new ProtocolViolation(res, XdgSurfaceError.ALREADY_CONSTRUCTED, `${wlSurface} already has the role ${surface.role}`);
            surface.role = 'xdg_toplevel';
            const t = tid.create({
              setParent() {},
              setTitle(_r, title) {
                if (toplevel) toplevel.title = title;
              },
              setAppId(_r, appId) {
                if (toplevel) toplevel.appId = appId;
              },
              showWindowMenu() {},
              move() {},
              resize() {},
              setMaxSize() {},
              setMinSize() {},
              setMaximized: () => configure(),
              unsetMaximized: () => configure(),
              setFullscreen: () => configure(),
              unsetFullscreen: () => configure(),
              setMinimized() {},
            });
            roleObject = t;
            toplevel = { surface, resource: t, title: '', appId: '', reconfigure: () => initialCommitSeen && configure(), decorated: false };
            const tl = toplevel;
            t.data = tl;
            t.onDestroy(() => {
              roleObject = null;
              opts.onToplevelDestroyed(tl);
            });
            opts.onToplevel(tl);
          },
          getPopup(res, pid) {
            if (surface.role !== null) throw new ProtocolViolation(res, XdgSurfaceError.ALREADY_CONSTRUCTED, `${wlSurface} already has the role ${surface.role}`);
            surface.role = 'xdg_popup';
            const p = pid.create({ grab() {}, reposition() {} });
            p.sendPopupDone();
          },
          setWindowGeometry(res, _x, _y, w, h) {
            if (w <= 0 || h <= 0) throw new ProtocolViolation(res, XdgSurfaceError.INVALID_SIZE, `window geometry ${w}x${h} is not positive`);
          },
          ackConfigure(res, serial) {
            const i = sentSerials.indexOf(serial);
            if (i < 0) throw new ProtocolViolation(res, XdgSurfaceError.INVALID_SERIAL, `serial ${serial} was not sent in a configure (or was already acked)`);
            sentSerials = sentSerials.slice(i + 1);
            configured = true;
          },
        });
        xdg.onDestroy(() => {
          if (roleObject && !roleObject.destroyed && !wlSurface.destroyed) {
            wlSurface.client.postImplementationError('xdg_surface destroyed before its role object');
          }
          surface.beforeCommit = null;
        });
        const configure = (): void => {
          if (!roleObject || roleObject.destroyed || xdg.destroyed) return;
          const { width, height } = opts.size();
          roleObject.sendConfigure(width, height, states(XdgToplevelState.FULLSCREEN, XdgToplevelState.ACTIVATED));
          const serial = display.nextSerial();
          sentSerials.push(serial);
          xdg.sendConfigure(serial);
        };
        surface.beforeCommit = (pendingBuffer) => {
          if (!roleObject && surface.role === null) {
            throw new ProtocolViolation(xdg, XdgSurfaceError.NOT_CONSTRUCTED, `${wlSurface} committed before xdg_surface got a role`);
          }
          if (surface.role !== 'xdg_toplevel') return;
          if (!initialCommitSeen) {
            initialCommitSeen = true;
            if (pendingBuffer) throw new ProtocolViolation(xdg, XdgSurfaceError.UNCONFIGURED_BUFFER, 'the initial commit of an xdg_toplevel must not attach a buffer');
            configure();
            return;
          }
          if (pendingBuffer && !configured) {
            throw new ProtocolViolation(xdg, XdgSurfaceError.UNCONFIGURED_BUFFER, 'buffer attached before the configure was acked');
          }
        };
      },
    });
  });
}
