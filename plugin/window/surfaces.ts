// The window's surfaces on the desktop: an xdg_toplevel whose surface is an opaque black
// background (a single-pixel buffer scaled by wp_viewporter, else a 1×1 wl_shm buffer),
// and the guest on a desynchronised subsurface above it, placed and scaled with its own
// viewport: the letterbox. With no subcompositor or viewporter the guest's buffer is the
// toplevel's own content, unscaled (Desktop said so in one line).
//
// Ownership: every proxy here (surfaces, roles, viewports, the solid-colour buffers and
// the shm pool memfd of the fallback, closed right after the pool request is sent) is this
// object's and goes in destroy(); the guest's wl_buffers are WindowBuffers'.
import * as libc from '../../ffi/libc.js';
import type { WlBuffer, WlSurface, WlSubsurface } from '../../protocols/generated/client/wayland.js';
import { WlShmFormat } from '../../protocols/generated/client/wayland.js';
import type { XdgSurface, XdgToplevel } from '../../protocols/generated/client/xdg_shell.js';
import type { WpViewport } from '../../protocols/generated/client/viewporter.js';
import type { ZxdgToplevelDecorationV1 } from '../../protocols/generated/client/xdg_decoration_unstable_v1.js';
import type { Desktop } from './connection.js';
import type { Rect } from '../geometry.js';

const MFD_CLOEXEC = 1;
const DECORATION_SERVER_SIDE = 2;

export interface SurfaceEvents {
  /** The compositor asked for this size (0: our choice) and the configure was acked. */
  configured(width: number, height: number): void;
  /** The user closed the window. */
  closeRequested(): void;
}

/** A solid XRGB colour as a buffer the compositor scales: single-pixel, else 1×1 wl_shm. */
function solidBuffer(desktop: Desktop, pixel: number): WlBuffer {
  const g = desktop.globals;
  const ch = (shift: number) => Math.round((((pixel >>> shift) & 0xff) / 255) * 0xffffffff) >>> 0;
  if (g.singlePixel) return g.singlePixel.createU32RgbaBuffer(ch(16), ch(8), ch(0), 0xffffffff);
  const fd = libc.memfdCreate('guestplane-solid', MFD_CLOEXEC);
  try {
    libc.ftruncate(fd, 4);
    const px = Buffer.alloc(4);
    px.writeUInt32LE((pixel | 0xff000000) >>> 0, 0);
    libc.pwrite(fd, px, 0);
    const pool = g.shm.createPool(fd, 4);
    const buffer = pool.createBuffer(0, 1, 1, 4, WlShmFormat.XRGB8888);
    pool.destroy();
    return buffer;
  } finally {
    libc.close(fd, 'solid-colour memfd');
  }
}

export class WindowSurfaces {
  readonly parent: WlSurface;
  /** Where guest frames go: the subsurface, or the toplevel itself without one. */
  readonly guest: WlSurface;
  readonly letterbox: boolean;
  readonly #desktop: Desktop;
  readonly #xdg: XdgSurface;
  readonly #toplevel: XdgToplevel;
  readonly #decoration: ZxdgToplevelDecorationV1 | null;
  readonly #sub: WlSubsurface | null;
  readonly #parentViewport: WpViewport | null;
  readonly #guestViewport: WpViewport | null;
  readonly #solids = new Map<number, WlBuffer>();
  #pending = { width: 0, height: 0 };
  #position = { x: -1, y: -1 };
  #configured = false;
  /**
   * The guest surface's double-buffered state as last requested. It persists across commits,
   * so a guest flip that changes none of it sends only attach, damage and commit (and the
   * desktop recomputes nothing else).
   */
  #guestSent = { transform: -1, opaque: '', viewport: '' };

  constructor(desktop: Desktop, title: string, events: SurfaceEvents, fullscreen = false) {
    this.#desktop = desktop;
    const g = desktop.globals;
    this.parent = g.compositor.createSurface();
    this.letterbox = !!(g.subcompositor && g.viewporter);
    if (this.letterbox) {
      this.guest = g.compositor.createSurface();
      this.#sub = g.subcompositor!.getSubsurface(this.guest, this.parent);
      this.#sub.setDesync(); // guest frames apply on the guest surface's own commit
      this.#parentViewport = g.viewporter!.getViewport(this.parent);
      this.#guestViewport = g.viewporter!.getViewport(this.guest);
    } else {
      this.guest = this.parent;
      this.#sub = null;
      this.#parentViewport = null;
      this.#guestViewport = null;
    }
    this.#xdg = g.wmBase.getXdgSurface(this.parent);
    this.#toplevel = this.#xdg.getToplevel();
    this.#toplevel.setTitle(title);
    this.#toplevel.setAppId('guestplane');
    if (fullscreen) this.#toplevel.setFullscreen(null); // the compositor picks the output
    this.#decoration = g.decoration ? g.decoration.getToplevelDecoration(this.#toplevel) : null;
    this.#decoration?.setMode(DECORATION_SERVER_SIDE);
    this.#toplevel.on({
      configure: (w, h) => (this.#pending = { width: w, height: h }),
      close: () => events.closeRequested(),
    });
    this.#xdg.on({
      configure: (serial) => {
        this.#xdg.ackConfigure(serial);
        this.#configured = true;
        events.configured(this.#pending.width, this.#pending.height);
      },
    });
    this.parent.commit(); // no buffer: asks for the first configure
  }

  get configured(): boolean {
    return this.#configured;
  }

  setTitle(title: string): void {
    this.#toplevel.setTitle(title);
  }

  /** A buffer of one colour, made once per colour. */
  solid(pixel: number): WlBuffer {
    let b = this.#solids.get(pixel);
    if (!b) {
      b = solidBuffer(this.#desktop, pixel);
      this.#solids.set(pixel, b);
    }
    return b;
  }

  /** The black background at the window's size (letterbox only; otherwise the guest is the window). */
  layoutBackground(width: number, height: number): void {
    if (!this.letterbox) return;
    this.parent.attach(this.solid(0x000000), 0, 0);
    this.parent.damage(0, 0, width, height);
    this.#parentViewport!.setDestination(width, height);
    this.#opaque(this.parent, width, height);
    this.parent.commit();
  }

  /**
   * Places the guest surface: `src` in the attached buffer's (transformed) picture,
   * `dst` in the window. Position is parent state and applies with a parent commit.
   */
  placeGuest(src: Rect, dst: Rect): void {
    if (!this.letterbox) return;
    const viewport = `${src.x},${src.y},${src.width}x${src.height}>${dst.width}x${dst.height}`;
    if (viewport !== this.#guestSent.viewport) {
      this.#guestSent.viewport = viewport;
      this.#guestViewport!.setSource(src.x, src.y, src.width, src.height);
      this.#guestViewport!.setDestination(dst.width, dst.height);
    }
    if (dst.x !== this.#position.x || dst.y !== this.#position.y) {
      this.#position = { x: dst.x, y: dst.y };
      this.#sub!.setPosition(dst.x, dst.y);
      this.parent.commit();
    }
  }

  /** The guest buffer's orientation (wl_output transform), sent when it changes. */
  setGuestTransform(transform: number): void {
    if (transform === this.#guestSent.transform) return;
    this.#guestSent.transform = transform;
    this.guest.setBufferTransform(transform);
  }

  /** The guest surface is opaque over `w`×`h` (surface coordinates): lets the compositor use a plane. */
  setGuestOpaque(opaque: boolean, w: number, h: number): void {
    const key = opaque ? `${w}x${h}` : 'none';
    if (key === this.#guestSent.opaque) return;
    this.#guestSent.opaque = key;
    if (opaque) this.#opaque(this.guest, w, h);
    else this.guest.setOpaqueRegion(null);
  }

  #opaque(surface: WlSurface, w: number, h: number): void {
    const region = this.#desktop.globals.compositor.createRegion();
    region.add(0, 0, w, h);
    surface.setOpaqueRegion(region);
    region.destroy();
  }

  destroy(): void {
    const conn = this.#desktop.connection;
    if (conn.closed) return; // the connection took every proxy with it
    this.#guestViewport?.destroy();
    this.#parentViewport?.destroy();
    this.#sub?.destroy();
    if (this.guest !== this.parent) this.guest.destroy();
    this.#decoration?.destroy();
    this.#toplevel.destroy();
    this.#xdg.destroy();
    this.parent.destroy();
    for (const b of this.#solids.values()) b.destroy();
    this.#solids.clear();
  }
}
