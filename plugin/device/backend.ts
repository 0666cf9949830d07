// The Backend: one KMS card, its outputs, connector hotplug and the seat session (the
// public entry is index.ts, which re-exports it: `import { Backend } from 'guestplane'`).
// Every mode (kiosk, heads, compositor) gets its card here (card.ts opens it), learns of
// hotplug and of the seat going and coming back from the Backend's events, and lights
// connectors with enableOutput: no mode opens a card or follows the seat itself.
//
// Ownership, in one place:
// - Backend owns the Card it opened (card.ts: the DRM fd, or the seat's fd; not one it was
//   handed, unless takeOwnership), the event reader on it, the hotplug monitor and every
//   Output it enabled; Backend.close() closes those outputs (restoring what was on screen
//   before) and then the card.
// - An Output owns its framebuffer cache (FBs, GEM handles), copy and no-signal buffers,
//   mode blob and writeback capture. Output.close() releases them; closing twice is a no-op.
// - Sources (openVfio, createUdmabufGuest, your own GuestSource) belong to the caller:
//   detach or close the output first, then source.close().
// - Host layers (Output.present): the dma-buf fds stay the caller's (the output imports
//   dups and closes them). Keep each fd open and its pixels unchanged from present() until
//   the output emits 'release' for its bufferId; after that, draw into it or close it.
//   Output.close() lets go of every buffer at once (no 'release' events after it).
// - On a seat (BackendOptions.session): the card fd is the session's; Backend.close()
//   gives it back (session.closeDevice). The session itself stays the caller's.
import { EventEmitter } from 'node:events';
import type { KmsDevice, KmsConnector } from '../kms/device.js';
import { Card, type CardWanted } from './card.js';
import { Output, pickMode, type ModeRequest } from '../output/output.js';
import type { FitMode } from '../geometry.js';
import type { GuestSource } from '../sources/source.js';
import { openVfioSource } from '../sources/open.js';
import { UdmabufSource, type UdmabufSourceOptions } from '../sources/udmabuf.js';
import * as drm from '../../ffi/drm.js';
import { HotplugMonitor, type HotplugEvent, type HotplugOptions } from './hotplug.js';
import type { SeatSession } from './session.js';

export interface BackendOptions {
  /** DRM card node; default: the first /dev/dri/card* with atomic KMS. */
  device?: string;
  /**
   * A DRM fd to drive instead of opening a node: a lease fd from wp_drm_lease_device_v1 or
   * the host compositor's own device fd. It stays the caller's unless takeOwnership.
   */
  fd?: number;
  takeOwnership?: boolean;
  /**
   * Open the card through this seat session (seatd, logind: no root needed) instead of
   * opening the node directly. The backend then follows the session: its outputs stop
   * committing while another session has the seat and light up again when it is back.
   */
  session?: SeatSession;
  /** An open device to drive (stays the caller's; its owner knows about hotplug). */
  kms?: KmsDevice;
  /** Which card to take when searching (no `device`), and what that means for the message if none is. */
  want?: { test: CardWanted; what: string };
  /** Take DRM master when opening a node (default true; a lease fd is already master of its objects). */
  master?: boolean;
  /**
   * Watch for connectors coming and going (kernel uevents, else polling) and call rescan()
   * by itself. Default true for a node we opened; false for an fd we were handed (its
   * owner knows about hotplug and should call rescan()).
   */
  hotplug?: boolean | HotplugOptions;
}

export interface OutputMode {
  width: number;
  height: number;
  refresh: number;
  preferred: boolean;
}

/** A connector as a compositor sees it. */
export interface OutputDescription {
  name: string;
  connected: boolean;
  modes: OutputMode[];
  physicalMm: { width: number; height: number };
  /** Enabled by this backend. */
  enabled: boolean;
}

export interface BackendEvents {
  'output-added': [OutputDescription];
  'output-removed': [OutputDescription];
  /** The connectors may have changed (after the backend's own rescan): a mode re-reads what it shows. */
  hotplug: [HotplugEvent];
  /** Another session has the seat: outputs stopped committing; a mode lets its input go. */
  suspend: [];
  /** The seat is back: outputs lit again, connectors rescanned; `enabledAt` is when the session said so (performance.now()). */
  resume: [{ enabledAt: number }];
  /** Said once: why hotplug is degraded (then polling is used). */
  'hotplug-degraded': [string];
}

function describe(c: KmsConnector, enabled: boolean): OutputDescription {
  return {
    name: c.name,
    connected: c.connection === 'connected',
    modes: c.modes.map((m) => ({
      width: m.hdisplay,
      height: m.vdisplay,
      refresh: m.vrefresh,
      preferred: (m.type & drm.DRM_MODE_TYPE_PREFERRED) !== 0,
    })),
    physicalMm: { width: c.mmWidth, height: c.mmHeight },
    enabled,
  };
}

export class Backend extends EventEmitter<BackendEvents> {
  private readonly outputs = new Map<string, Output>();
  private known = new Map<string, OutputDescription>();
  /**
   * Outputs of connectors that went, still restoring their CRTC: until that is done they
   * hold the CRTC and primary plane, so the connector's output-removed (and a replug's
   * output-added) is emitted only after it, and enableOutput of that connector can succeed
   * from either event.
   */
  private readonly leaving = new Map<string, Promise<void>>();
  private readonly announcing = new Set<string>();
  private closed = false;
  private hotplug: HotplugMonitor | null = null;
  private suspended = false;
  private sessionOff: (() => void) | null = null;
  readonly device: KmsDevice;

  private constructor(
    private readonly card: Card,
    hotplug: boolean | HotplugOptions,
  ) {
    super();
    this.device = card.dev;
    for (const c of this.displayConnectors()) this.known.set(c.name, describe(c, false));
    if (hotplug) this.watchHotplug(hotplug === true ? {} : hotplug);
    if (card.session) this.followSession(card.session);
  }

  /**
   * Opens a card: `fd` or `kms` (the caller's), else `device` or the first card `want` takes
   * (default: any with atomic KMS), through `session` when given (no root needed).
   */
  static open(opts: BackendOptions = {}): Backend {
    if (opts.kms) return new Backend(Card.adopt(opts.kms), opts.hotplug ?? false);
    if (opts.fd !== undefined) return new Backend(Card.adopt({ fd: opts.fd, takeOwnership: opts.takeOwnership }), opts.hotplug ?? false);
    return new Backend(Card.open({ path: opts.device, session: opts.session, master: opts.master, want: opts.want }), opts.hotplug ?? true);
  }

  private watchHotplug(opts: HotplugOptions): void {
    this.hotplug = new HotplugMonitor(this.device.path, opts);
    this.hotplug.on('degraded', (why) => this.emit('hotplug-degraded', why));
    this.hotplug.on('hotplug', (ev) => {
      if (this.closed) return;
      // While another session has the seat nothing may be committed: resume() rescans.
      if (this.suspended) return;
      try {
        this.rescan();
      } catch {
        // The device itself went away: its outputs report device-lost themselves.
      }
      this.emit('hotplug', ev);
    });
    this.hotplug.start();
  }

  /** Stops every output while another session has the seat, and lights them again when it is back. */
  private followSession(session: SeatSession): void {
    const disable = () => this.suspend();
    const enable = () => this.resume(session.enabledAt);
    session.on('disable', disable);
    session.on('enable', enable);
    this.sessionOff = () => (session.off('disable', disable), session.off('enable', enable));
  }

  /**
   * The session lost the seat (another VT, another session): every output stops
   * committing. Called by the seat session; a compositor with its own session calls it.
   */
  suspend(): void {
    if (this.suspended) return;
    this.suspended = true;
    for (const o of this.outputs.values()) o.suspend();
    this.emit('suspend');
  }

  /** The session has the seat again: every output is lit with its current frame; connectors that came or went meanwhile are noticed. */
  resume(enabledAt = performance.now()): void {
    if (!this.suspended) return;
    this.suspended = false;
    for (const o of this.outputs.values()) o.resume();
    try {
      this.rescan();
    } catch {
      // As on hotplug: a lost device is reported by its outputs.
    }
    this.emit('resume', { enabledAt });
  }

  /** The hotplug monitor (null: hotplug not followed). */
  get hotplugMonitor(): HotplugMonitor | null {
    return this.hotplug;
  }

  get isSuspended(): boolean {
    return this.suspended;
  }

  private displayConnectors(): KmsConnector[] {
    return this.device.connectors.filter((c) => !c.writeback);
  }

  /** Every display connector (writeback connectors are the backend's own business). */
  listOutputs(): OutputDescription[] {
    return this.displayConnectors().map((c) => describe(c, this.outputs.has(c.name)));
  }

  /**
   * Re-reads the connectors (done by itself on hotplug uevents unless hotplug: false) and emits output-added /
   * output-removed for connectors that became connected / disconnected. An enabled
   * output whose connector went away is closed (its guest source is left running); its
   * output-removed comes once that close has given the CRTC back, so a replug's
   * output-added always comes after it and can enable the connector at once.
   */
  rescan(): void {
    this.device.probe();
    const now = new Map<string, OutputDescription>();
    for (const c of this.displayConnectors()) now.set(c.name, describe(c, this.outputs.has(c.name)));
    for (const [name, was] of this.known) {
      const d = now.get(name);
      if (!was.connected || d?.connected) continue;
      const out = this.outputs.get(name);
      const removed = { ...was, connected: false, enabled: false };
      if (!out) {
        this.emit('output-removed', removed);
        continue;
      }
      this.outputs.delete(name);
      // As wlroots' DRM backend: the CRTC of a connector that went is turned off (the
      // state from before the output is put back), not left scanning out our buffers.
      const gone = out
        .close(true)
        .catch(() => undefined)
        .then(() => {
          this.leaving.delete(name);
          if (!this.closed) this.emit('output-removed', removed);
        });
      this.leaving.set(name, gone);
    }
    for (const [name, d] of now) {
      const was = this.known.get(name);
      if (!d.connected || was?.connected) continue;
      const leaving = this.leaving.get(name);
      if (!leaving) {
        this.emit('output-added', d);
        continue;
      }
      // Replugged while its old output still restores: announced once that is done, and
      // only if it is still there by then (a later rescan has the last word otherwise).
      if (this.announcing.has(name)) continue;
      this.announcing.add(name);
      void leaving.then(() => {
        this.announcing.delete(name);
        if (!this.closed && this.known.get(name)?.connected && !this.outputs.has(name)) this.emit('output-added', describe(this.device.connectorByName(name), false));
      });
    }
    this.known = now;
  }

  /** Lights a connector (with the "no signal" frame until something is attached). */
  enableOutput(name: string, opts: { mode?: ModeRequest; crtcId?: number } = {}): Output {
    if (this.closed) throw new Error('backend is closed');
    if (this.outputs.has(name)) throw new Error(`output ${name} is already enabled; use the Output you got, or close it first`);
    if (this.leaving.has(name)) throw new Error(`output ${name} is still being turned off after its connector went; enable it on its output-added event`);
    if (this.suspended) throw new Error(`cannot enable ${name}: the seat session is not active (another session has the screen); enable it after the session comes back`);
    const out = new Output(this.device, { connector: name, mode: opts.mode, crtcId: opts.crtcId });
    try {
      out.enable();
    } catch (e) {
      void out.close(false);
      throw e;
    }
    this.outputs.set(name, out);
    // Closed directly or through us: forgotten here either way.
    out.once('closed', () => this.outputs.delete(name));
    return out;
  }

  output(name: string): Output | undefined {
    return this.outputs.get(name);
  }

  /** Shows a guest on an output: zero-copy where the planes take its buffers. */
  attach(output: Output, source: GuestSource, fit: FitMode = 'fit'): void {
    output.attach(source, fit);
  }

  /**
   * Opens a mediated device's display (UUID or sysfs path, or a VFIO device fd a VMM
   * handed over, which stays the VMM's). The source is the caller's to close.
   */
  openVfio(spec: string | { fd: number; name?: string }): GuestSource {
    return openVfioSource(spec);
  }

  /** Guest memory as dma-bufs (/dev/udmabuf), as QEMU does for virtio-gpu blob scanouts. */
  createUdmabufGuest(opts: UdmabufSourceOptions): UdmabufSource {
    return new UdmabufSource(opts);
  }

  /** Closes every output (restoring what was on screen unless restore=false), then the card. */
  async close(restore = true): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.hotplug?.close();
    this.hotplug = null;
    this.sessionOff?.();
    this.sessionOff = null;
    const outs = [...this.outputs.values()];
    this.outputs.clear();
    for (const o of outs) await o.close(restore);
    await Promise.all(this.leaving.values());
    await this.card.close();
  }
}

/** Mode lookup without enabling anything (for UIs listing what an output can do). */
export function preferredMode(backend: Backend, name: string, want?: ModeRequest): OutputMode {
  const m = pickMode(backend.device.connectorByName(name), want);
  return { width: m.hdisplay, height: m.vdisplay, refresh: m.vrefresh, preferred: (m.type & drm.DRM_MODE_TYPE_PREFERRED) !== 0 };
}
