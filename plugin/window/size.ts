// The window's size in device pixels, for the guest (issue 28 item 5): the toplevel's
// logical size (xdg_toplevel.configure) times the scale of the outputs it is on
// (wl_surface.enter/leave + wl_output.scale, the largest where it spans several, as
// toolkits do; wp_fractional_scale_v1's preferred scale instead where the compositor offers
// it), sent to the source with setUISize (QemuGuest: the console's SetUIInfo),
// so the guest renders at the size the window shows on the monitor and its buffer lands
// 1:1 — what a plane needs. Debounced: a window dragged to a new size sends one
// SetUIInfo when it settles, not one per configure (QEMU forwards each to the guest
// driver, which re-creates its framebuffers each time). Until the guest follows, the
// window letterboxes or scales with the viewporter (window-output.ts).
//
// Without fractional scale (Weston 10) a fractional desktop gives the rounded-up integer
// scale, and the viewport scales the guest down a little.
//
// Ownership: its own wl_registry (a second one is legal; Desktop keeps no registry), the
// wl_output proxies, the fractional-scale manager and the surface's fractional-scale
// object bound through it, all released in close() (wl_output.release from v3).
import { WlDisplay, WlOutput, type WlRegistry, type WlSurface } from '../../protocols/generated/client/wayland.js';
import { WpFractionalScaleManagerV1, type WpFractionalScaleV1 } from '../../protocols/generated/client/fractional_scale_v1.js';
import type { Connection } from '../../protocols/client-runtime.js';

/** Quiet time after the last configure before the guest is told, ms. */
export const UI_SIZE_DEBOUNCE_MS = 150;

export interface DeviceSizeOptions {
  /** Gets the window's size in device pixels, after the debounce. */
  send: (width: number, height: number) => void;
  debounceMs?: number;
}

export class DeviceSize {
  readonly #connection: Connection;
  readonly #registry: WlRegistry;
  #fractional: { manager: WpFractionalScaleManagerV1; object: WpFractionalScaleV1; scale: number | null } | null = null;
  readonly #outputs = new Map<number, { proxy: WlOutput; scale: number }>();
  readonly #entered = new Set<WlOutput>();
  readonly #send: (width: number, height: number) => void;
  readonly #debounceMs: number;
  #logical = { width: 0, height: 0 };
  #sent = '';
  #timer: NodeJS.Timeout | null = null;
  #closed = false;

  /** `surface`: the toplevel's surface, whose enter/leave say which outputs the window is on. */
  constructor(connection: Connection, surface: WlSurface, opts: DeviceSizeOptions) {
    this.#connection = connection;
    this.#send = opts.send;
    this.#debounceMs = opts.debounceMs ?? UI_SIZE_DEBOUNCE_MS;
    this.#registry = connection.display(WlDisplay).getRegistry();
    this.#registry.on({
      global: (name, iface, version) => {
        if (iface === 'wp_fractional_scale_manager_v1' && !this.#fractional) return this.#bindFractional(name, surface);
        if (iface !== 'wl_output' || version < 2) return; // scale came with version 2
        const proxy = this.#registry.bind(name, WlOutput, Math.min(version, 3));
        const o = { proxy, scale: 1 };
        proxy.on({ scale: (f) => (o.scale = f > 0 ? f : 1), done: () => this.#changed() });
        this.#outputs.set(name, o);
      },
      globalRemove: (name) => {
        const o = this.#outputs.get(name);
        if (!o) return;
        this.#outputs.delete(name);
        this.#entered.delete(o.proxy);
        if (o.proxy.version >= 3) o.proxy.release();
        else o.proxy.destroyProxy();
        this.#changed();
      },
    });
    surface.on({
      enter: (out) => {
        if (out) this.#entered.add(out);
        this.#changed();
      },
      leave: (out) => {
        if (out) this.#entered.delete(out);
        this.#changed();
      },
    });
  }

  #bindFractional(name: number, surface: WlSurface): void {
    const manager = this.#registry.bind(name, WpFractionalScaleManagerV1, 1);
    const f = { manager, object: manager.getFractionalScale(surface), scale: null as number | null };
    f.object.on({
      preferredScale: (s120) => {
        f.scale = s120 > 0 ? s120 / 120 : null;
        this.#changed();
      },
    });
    this.#fractional = f;
  }

  /** The scale the window is shown at: the compositor's preferred fractional scale, else the largest buffer scale of the outputs it is on (1 before it is on any). */
  get scale(): number {
    if (this.#fractional?.scale) return this.#fractional.scale;
    let s = 0;
    for (const o of this.#outputs.values()) if (this.#entered.has(o.proxy)) s = Math.max(s, o.scale);
    return s || 1;
  }

  /** The window's size in device pixels (0x0 before the first configure). */
  get device(): { width: number; height: number } {
    const s = this.scale;
    // Rounded half away from zero, as wp_fractional_scale_v1 says the buffer size is.
    return { width: Math.round(this.#logical.width * s), height: Math.round(this.#logical.height * s) };
  }

  /** The window's logical size (what xdg_toplevel.configure and the viewport use). */
  logical(width: number, height: number): void {
    this.#logical = { width, height };
    this.#changed();
  }

  /** Sends the current size again (a new source was attached: it has not heard it). */
  resend(): void {
    this.#sent = '';
    this.#changed();
  }

  #changed(): void {
    if (this.#closed || this.#logical.width <= 0 || this.#logical.height <= 0) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      const d = this.device;
      const k = `${d.width}x${d.height}`;
      if (k === this.#sent) return;
      this.#sent = k;
      this.#send(d.width, d.height);
    }, this.#debounceMs);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#connection.closed) return; // the connection took its proxies
    this.#fractional?.object.destroy();
    this.#fractional?.manager.destroy();
    this.#fractional = null;
    for (const o of this.#outputs.values()) {
      if (o.proxy.version >= 3) o.proxy.release();
      else o.proxy.destroyProxy();
    }
    this.#outputs.clear();
    this.#registry.destroyProxy();
  }
}
