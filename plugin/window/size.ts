// The window's size in device pixels, for the guest (issue 28 item 5): the toplevel's
// logical size (xdg_toplevel.configure) times the scale of the outputs it is on
// (wl_surface.enter/leave + wl_output.scale, the largest where it spans several, as
// toolkits do), sent to the source with setUISize (QemuGuest: the console's SetUIInfo),
// so the guest renders at the size the window shows on the monitor and its buffer lands
// 1:1 — what a plane needs. Debounced: a window dragged to a new size sends one
// SetUIInfo when it settles, not one per configure (QEMU forwards each to the guest
// driver, which re-creates its framebuffers each time). Until the guest follows, the
// window letterboxes or scales with the viewporter (window-output.ts).
//
// wp_fractional_scale_v1 is not used yet: neither compositor in the rig offers it (Weston
// 10, ours); a fractional desktop then gets the rounded-up integer scale, and the
// viewport scales the guest down a little.
//
// Ownership: its own wl_registry (a second one is legal; Desktop keeps no registry) and
// the wl_output proxies bound through it, released in close() (wl_output.release from v3).
import { WlDisplay, WlOutput, type WlRegistry, type WlSurface } from '../../protocols/generated/client/wayland.js';
import type { Desktop } from './connection.js';

/** Quiet time after the last configure before the guest is told, ms. */
export const UI_SIZE_DEBOUNCE_MS = 150;

export interface DeviceSizeOptions {
  /** Gets the window's size in device pixels, after the debounce. */
  send: (width: number, height: number) => void;
  debounceMs?: number;
}

export class DeviceSize {
  readonly #desktop: Desktop;
  readonly #registry: WlRegistry;
  readonly #outputs = new Map<number, { proxy: WlOutput; scale: number }>();
  readonly #entered = new Set<WlOutput>();
  readonly #send: (width: number, height: number) => void;
  readonly #debounceMs: number;
  #logical = { width: 0, height: 0 };
  #sent = '';
  #timer: NodeJS.Timeout | null = null;
  #closed = false;

  /** `surface`: the toplevel's surface, whose enter/leave say which outputs the window is on. */
  constructor(desktop: Desktop, surface: WlSurface, opts: DeviceSizeOptions) {
    this.#desktop = desktop;
    this.#send = opts.send;
    this.#debounceMs = opts.debounceMs ?? UI_SIZE_DEBOUNCE_MS;
    this.#registry = desktop.connection.display(WlDisplay).getRegistry();
    this.#registry.on({
      global: (name, iface, version) => {
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

  /** The buffer scale of the outputs the window is on (1 before it is on any). */
  get scale(): number {
    let s = 0;
    for (const o of this.#outputs.values()) if (this.#entered.has(o.proxy)) s = Math.max(s, o.scale);
    return s || 1;
  }

  /** The window's size in device pixels (0x0 before the first configure). */
  get device(): { width: number; height: number } {
    const s = this.scale;
    return { width: this.#logical.width * s, height: this.#logical.height * s };
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
    if (this.#desktop.connection.closed) return; // the connection took its proxies
    for (const o of this.#outputs.values()) {
      if (o.proxy.version >= 3) o.proxy.release();
      else o.proxy.destroyProxy();
    }
    this.#outputs.clear();
    this.#registry.destroyProxy();
  }
}
