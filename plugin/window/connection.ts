// The desktop compositor as window mode sees it: one Wayland client connection, the
// globals bound at versions we speak, and what the compositor takes (dma-buf formats and
// modifiers, wl_shm formats). wlroots' backend/wayland.c is the model.
//
// Required: wl_compositor, xdg_wm_base, wl_shm. Everything else is optional; a missing one
// is said once in one line (`log`) and the window degrades: no linux-dmabuf → every frame
// is copied through wl_shm; no wp_presentation → pacing by wl_surface.frame callbacks; no
// wl_subcompositor or wp_viewporter → the guest's buffer is the window itself, unscaled,
// with no letterbox; no single-pixel buffers → a 1×1 wl_shm buffer for the black parent.
//
// linux-dmabuf is bound at version 4 where offered: what the compositor imports is then its
// default feedback (dmabuf-feedback.ts: every tranche's pairs; the scanout tranches say
// which go on a plane), read during connect(); from version 3 compositors (Weston 10) the
// format/modifier events. A surface's own feedback: surfaceFeedback().
//
// Ownership: the Desktop owns the Connection (and so every proxy made through it) and
// closes it in close(). xdg_wm_base pings are answered here.
import { EventEmitter } from 'node:events';
import { Connection, type CloseReason } from '../../protocols/client-runtime.js';
import { bindGlobals, roundtrip, type AdvertisedGlobal } from '../../protocols/client.js';
import { WlCompositor, WlSubcompositor, WlShm, WlSeat } from '../../protocols/generated/client/wayland.js';
import { XdgWmBase } from '../../protocols/generated/client/xdg_shell.js';
import { ZwpLinuxDmabufV1 } from '../../protocols/generated/client/linux_dmabuf_unstable_v1.js';
import { WpPresentation } from '../../protocols/generated/client/presentation_time.js';
import { WpViewporter } from '../../protocols/generated/client/viewporter.js';
import { WpSinglePixelBufferManagerV1 } from '../../protocols/generated/client/single_pixel_buffer_v1.js';
import { ZxdgDecorationManagerV1 } from '../../protocols/generated/client/xdg_decoration_unstable_v1.js';
import { ZwpRelativePointerManagerV1 } from '../../protocols/generated/client/relative_pointer_unstable_v1.js';
import { ZwpPointerConstraintsV1 } from '../../protocols/generated/client/pointer_constraints_unstable_v1.js';
import { ZwpKeyboardShortcutsInhibitManagerV1 } from '../../protocols/generated/client/keyboard_shortcuts_inhibit_unstable_v1.js';
import type { WlSurface } from '../../protocols/generated/client/wayland.js';
import type { ZwpLinuxDmabufFeedbackV1 } from '../../protocols/generated/client/linux_dmabuf_unstable_v1.js';
import { FeedbackReader, offers, type DmabufFeedback } from './dmabuf-feedback.js';

/** Interface → [class, the highest version this code speaks]. */
const WANTS = {
  wl_compositor: [WlCompositor, 4],
  wl_subcompositor: [WlSubcompositor, 1],
  wl_shm: [WlShm, 1],
  xdg_wm_base: [XdgWmBase, 3],
  zwp_linux_dmabuf_v1: [ZwpLinuxDmabufV1, 4],
  wp_presentation: [WpPresentation, 1],
  wp_viewporter: [WpViewporter, 1],
  wp_single_pixel_buffer_manager_v1: [WpSinglePixelBufferManagerV1, 1],
  zxdg_decoration_manager_v1: [ZxdgDecorationManagerV1, 1],
  wl_seat: [WlSeat, 8],
  zwp_relative_pointer_manager_v1: [ZwpRelativePointerManagerV1, 1],
  zwp_pointer_constraints_v1: [ZwpPointerConstraintsV1, 1],
  zwp_keyboard_shortcuts_inhibit_manager_v1: [ZwpKeyboardShortcutsInhibitManagerV1, 1],
} as const;

const OPTIONAL: Record<string, string> = {
  zwp_linux_dmabuf_v1: 'no linux-dmabuf: every guest frame is copied into wl_shm buffers',
  wp_presentation: 'no wp_presentation: frames are paced by frame callbacks, without presentation times',
  wl_subcompositor: 'no wl_subcompositor: the guest is the window itself (no letterbox)',
  wp_viewporter: 'no wp_viewporter: the guest is shown unscaled (no letterbox)',
  wp_single_pixel_buffer_manager_v1: 'no single-pixel buffers: the black background is a 1x1 wl_shm buffer',
  zxdg_decoration_manager_v1: 'no xdg-decoration: the compositor decides about decorations',
  wl_seat: 'no wl_seat: no keyboard or pointer input reaches the guest',
  zwp_relative_pointer_manager_v1: 'no relative pointer: a guest whose mouse is not absolute gets the pointer\'s moves over the window, uncaptured',
  zwp_pointer_constraints_v1: 'no pointer constraints: the pointer cannot be captured for a guest whose mouse is not absolute',
  zwp_keyboard_shortcuts_inhibit_manager_v1: 'no keyboard shortcuts inhibit: the desktop keeps its shortcuts while the pointer is captured',
};

export interface DesktopGlobals {
  compositor: WlCompositor;
  shm: WlShm;
  wmBase: XdgWmBase;
  subcompositor: WlSubcompositor | null;
  dmabuf: ZwpLinuxDmabufV1 | null;
  presentation: WpPresentation | null;
  viewporter: WpViewporter | null;
  singlePixel: WpSinglePixelBufferManagerV1 | null;
  decoration: ZxdgDecorationManagerV1 | null;
  /** The first seat (input: window/input.ts). */
  seat: WlSeat | null;
  /** Pointer capture for guests whose mouse is relative (window/capture.ts). */
  relativePointer: ZwpRelativePointerManagerV1 | null;
  pointerConstraints: ZwpPointerConstraintsV1 | null;
  shortcutsInhibit: ZwpKeyboardShortcutsInhibitManagerV1 | null;
}

export interface DesktopOptions {
  /** Socket name or path; null: $WAYLAND_DISPLAY. */
  display?: string | null;
  log: (line: string) => void;
}

interface DesktopEvents {
  /** The connection ended (compositor gone, protocol error, or close()). */
  closed: [CloseReason];
}

const key = (format: number, modifier: bigint): string => `${format >>> 0}/${modifier}`;
export const DRM_FORMAT_MOD_INVALID = 0x00ffffffffffffffn;

/** A connected desktop compositor with its globals. */
export class Desktop extends EventEmitter<DesktopEvents> {
  readonly connection: Connection;
  readonly globals: DesktopGlobals;
  readonly advertised: readonly AdvertisedGlobal[];
  /** presentation clock (wp_presentation.clock_id), CLOCK_MONOTONIC (1) until told. */
  clockId = 1;
  /** wl_seat.capabilities as last sent (it comes during connect(), before window/input.ts listens). */
  seatCapabilities = 0;
  readonly #dmabufFormats = new Set<string>();
  readonly #shmFormats = new Set<number>();
  readonly #log: (line: string) => void;
  /** linux-dmabuf v4: the default feedback (null: a v3 compositor, or none came yet). */
  #defaultFeedback: FeedbackReader | null = null;

  private constructor(connection: Connection, globals: DesktopGlobals, advertised: AdvertisedGlobal[], log: (line: string) => void) {
    super();
    this.#log = log;
    this.connection = connection;
    this.globals = globals;
    this.advertised = advertised;
    connection.on('closed', (r) => this.emit('closed', r));
  }

  /** Connects, binds, and waits one more roundtrip for the format lists. Throws with the socket and the fix when it cannot connect. */
  static async connect(opts: DesktopOptions): Promise<Desktop> {
    const conn = Connection.connect(opts.display ?? null);
    try {
      const b = await bindGlobals(conn, WANTS);
      for (const required of ['wl_compositor', 'xdg_wm_base', 'wl_shm'] as const) {
        if (!b[required]) throw new Error(`the desktop compositor offers no ${required}; window mode needs it (is this a desktop compositor?)`);
      }
      for (const [iface, message] of Object.entries(OPTIONAL)) {
        if (!(iface in b) || !(b as Record<string, unknown>)[iface]) opts.log(`guestplane window: ${message}`);
      }
      const d = new Desktop(conn, {
        compositor: b.wl_compositor!, shm: b.wl_shm!, wmBase: b.xdg_wm_base!,
        subcompositor: b.wl_subcompositor ?? null, dmabuf: b.zwp_linux_dmabuf_v1 ?? null,
        presentation: b.wp_presentation ?? null, viewporter: b.wp_viewporter ?? null,
        singlePixel: b.wp_single_pixel_buffer_manager_v1 ?? null, decoration: b.zxdg_decoration_manager_v1 ?? null,
        seat: b.wl_seat ?? null,
        relativePointer: b.zwp_relative_pointer_manager_v1 ?? null, pointerConstraints: b.zwp_pointer_constraints_v1 ?? null,
        shortcutsInhibit: b.zwp_keyboard_shortcuts_inhibit_manager_v1 ?? null,
      }, b.advertised, opts.log);
      d.#listen();
      await roundtrip(conn);
      return d;
    } catch (e) {
      conn.close();
      throw e;
    }
  }

  #listen(): void {
    const g = this.globals;
    g.wmBase.on({ ping: (serial) => g.wmBase.pong(serial) });
    g.shm.on({ format: (f) => this.#shmFormats.add(f >>> 0) });
    g.presentation?.on({ clockId: (id) => (this.clockId = id) });
    g.seat?.on({ capabilities: (caps) => (this.seatCapabilities = caps) });
    g.dmabuf?.on({
      format: (f) => this.#dmabufFormats.add(key(f, DRM_FORMAT_MOD_INVALID)), // v1/v2: implicit modifier only
      modifier: (f, hi, lo) => this.#dmabufFormats.add(key(f, (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0))),
    });
    // v4: the events above are not sent; the default feedback says it all (its proxy lives as long as the connection).
    if (g.dmabuf && g.dmabuf.version >= 4) this.#defaultFeedback = new FeedbackReader(g.dmabuf.getDefaultFeedback(), () => {}, this.#log);
  }

  /** linux-dmabuf v4's default feedback (null before v4 or before its first `done`). */
  get defaultFeedback(): DmabufFeedback | null {
    return this.#defaultFeedback?.current ?? null;
  }

  /**
   * A surface's own dma-buf feedback (v4; null before): `onDone` with each complete one.
   * The proxy is the caller's to destroy (with the surface).
   */
  surfaceFeedback(surface: WlSurface, onDone: (f: DmabufFeedback) => void): { proxy: ZwpLinuxDmabufFeedbackV1; reader: FeedbackReader } | null {
    const d = this.globals.dmabuf;
    if (!d || d.version < 4) return null;
    const proxy = d.getSurfaceFeedback(surface);
    return { proxy, reader: new FeedbackReader(proxy, onDone, this.#log) };
  }

  /**
   * The modifier to hand a buffer of `format`/`modifier` over with, or null when the
   * compositor does not import it. A compositor that lists only DRM_FORMAT_MOD_INVALID for
   * a format imports it with the implicit modifier (Weston 10's GL renderer on Mesa's
   * software drivers does so for every format, measured in the rig); a LINEAR buffer is
   * what an implicit import of an untiled buffer (udmabuf, dumb) reads, so it goes over
   * as MOD_INVALID there.
   */
  modifierFor(format: number, modifier: bigint, feedback: DmabufFeedback | null = this.defaultFeedback): bigint | null {
    const has = feedback ? (f: number, m: bigint) => offers(feedback, f, m).importable : (f: number, m: bigint) => this.#dmabufFormats.has(key(f, m));
    if (has(format, modifier)) return modifier;
    if (modifier === 0n && has(format, DRM_FORMAT_MOD_INVALID)) return DRM_FORMAT_MOD_INVALID;
    return null;
  }
  /** The dma-buf format/modifier pairs offered, as `format/modifier` strings (for messages). */
  get dmabufFormats(): readonly string[] {
    const f = this.defaultFeedback;
    return f ? [...new Set(f.tranches.flatMap((t) => [...t.pairs]))] : [...this.#dmabufFormats];
  }
  takesShm(wlShmFormat: number): boolean {
    return this.#shmFormats.has(wlShmFormat >>> 0);
  }

  close(): void {
    this.connection.close('window mode closed the connection');
  }
}
