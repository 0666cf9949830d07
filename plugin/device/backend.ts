// The Backend: one KMS device, its outputs and hotplug (the public entry is index.ts,
// which re-exports it: `import { Backend } from 'guestplane'`).
//
// Ownership, in one place:
// - Backend owns the DRM fd it opened (not one it was handed, unless takeOwnership), the
//   event reader on it, and every Output it enabled; Backend.close() closes those outputs
//   (restoring what was on screen before) and then the fd.
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
import { readdirSync } from 'node:fs';
import { KmsDevice, findCardByDriver, type KmsConnector } from '../kms/device.js';
import { Output, pickMode, type ModeRequest } from '../output/output.js';
import type { FitMode } from '../geometry.js';
import type { GuestSource } from '../sources/source.js';
import { openVfioSource } from '../sources/open.js';
import { UdmabufSource, type UdmabufSourceOptions } from '../sources/udmabuf.js';
import * as drm from '../../ffi/drm.js';
import { HotplugMonitor, type HotplugOptions } from './hotplug.js';
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

/** /dev/dri/card* in number order. */
export function cardNodes(): string[] {
  let names: string[] = [];
  try {
    names = readdirSync('/dev/dri').filter((n) => /^card\d+$/.test(n));
  } catch {
    /* no /dev/dri */
  }
  return names.sort((a, b) => Number(a.slice(4)) - Number(b.slice(4))).map((n) => `/dev/dri/${n}`);
}

function firstAtomicCard(master: boolean): KmsDevice {
  const tried: string[] = [];
  for (let i = 0; i < 64; i++) {
    const path = `/dev/dri/card${i}`;
    try {
      return KmsDevice.open(path, { master });
    } catch (e) {
      if ((e as { reason?: string }).reason !== 'not-found') tried.push(`${path}: ${(e as Error).message}`);
    }
  }
  const vkms = findCardByDriver('vkms');
  if (vkms) return KmsDevice.open(vkms, { master });
  throw new Error(`no KMS device with atomic modesetting could be opened${tried.length ? `:\n  ${tried.join('\n  ')}` : ' (no /dev/dri/card* nodes)'}; pass { device: "/dev/dri/cardN" }`);
}

export class Backend extends EventEmitter<BackendEvents> {
  private readonly outputs = new Map<string, Output>();
  private known = new Map<string, OutputDescription>();
  private closed = false;
  private hotplug: HotplugMonitor | null = null;

  private constructor(readonly device: KmsDevice, hotplug: boolean | HotplugOptions) {
    super();
    for (const c of this.displayConnectors()) this.known.set(c.name, describe(c, false));
    if (hotplug) {
      this.hotplug = new HotplugMonitor(device.path, hotplug === true ? {} : hotplug).start();
      this.hotplug.on('hotplug', () => {
        if (this.closed) return;
        try {
          this.rescan();
        } catch {
          // The device itself went away: its outputs report device-lost themselves.
        }
      });
    }
  }

  static open(opts: BackendOptions = {}): Backend {
    if (opts.session) return Backend.onSeat(opts.session, opts);
    if (opts.fd !== undefined) {
      return new Backend(KmsDevice.adopt(opts.fd, { takeOwnership: opts.takeOwnership, master: false }), opts.hotplug ?? false);
    }
    const master = opts.master ?? true;
    return new Backend(opts.device ? KmsDevice.open(opts.device, { master }) : firstAtomicCard(master), opts.hotplug ?? true);
  }

  /** The card (opts.device, else the first with KMS) opened through the seat, which makes us master. */
  private static onSeat(session: SeatSession, opts: BackendOptions): Backend {
    const paths = opts.device ? [opts.device] : cardNodes();
    const tried: string[] = [];
    for (const path of paths) {
      let fd = -1;
      try {
        fd = session.openDevice(path);
        const b = new Backend(KmsDevice.adopt(fd, { name: path, master: false }), opts.hotplug ?? true);
        b.useSession(session, fd);
        return b;
      } catch (e) {
        if (fd >= 0) session.closeDevice(fd);
        tried.push((e as Error).message);
      }
    }
    throw new Error(`no KMS device could be opened through seat ${session.name}${tried.length ? `:\n  ${tried.join('\n  ')}` : ' (no /dev/dri/card* nodes)'}; pass the card node (device)`);
  }

  private session: { session: SeatSession; fd: number; off: () => void } | null = null;
  private suspended = false;

  private useSession(session: SeatSession, fd: number): void {
    const disable = () => this.suspend();
    const enable = () => this.resume();
    session.on('disable', disable);
    session.on('enable', enable);
    this.session = { session, fd, off: () => (session.off('disable', disable), session.off('enable', enable)) };
  }

  /**
   * The session lost the seat (another VT, another session): every output stops
   * committing. Called by the seat session; a compositor with its own session calls it.
   */
  suspend(): void {
    this.suspended = true;
    for (const o of this.outputs.values()) o.suspend();
  }

  /** The session has the seat again: every output is lit with its current frame. */
  resume(): void {
    this.suspended = false;
    for (const o of this.outputs.values()) o.resume();
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
   * output whose connector went away is closed (its guest source is left running).
   */
  rescan(): void {
    this.device.probe();
    const now = new Map<string, OutputDescription>();
    for (const c of this.displayConnectors()) now.set(c.name, describe(c, this.outputs.has(c.name)));
    for (const [name, d] of now) {
      const was = this.known.get(name);
      if (d.connected && !was?.connected) this.emit('output-added', d);
    }
    for (const [name, was] of this.known) {
      const d = now.get(name);
      if (was.connected && !d?.connected) {
        const out = this.outputs.get(name);
        if (out) {
          this.outputs.delete(name);
          void out.close(false);
        }
        this.emit('output-removed', { ...was, connected: false, enabled: false });
      }
    }
    this.known = now;
  }

  /** Lights a connector (with the "no signal" frame until something is attached). */
  enableOutput(name: string, opts: { mode?: ModeRequest; crtcId?: number } = {}): Output {
    if (this.closed) throw new Error('backend is closed');
    if (this.outputs.has(name)) throw new Error(`output ${name} is already enabled; use the Output you got, or close it first`);
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

  /** Closes every output (restoring what was on screen unless restore=false), then the device. */
  async close(restore = true): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.hotplug?.close();
    this.hotplug = null;
    const outs = [...this.outputs.values()];
    this.outputs.clear();
    for (const o of outs) await o.close(restore);
    await this.device.close();
    if (this.session) {
      this.session.off();
      this.session.session.closeDevice(this.session.fd);
      this.session = null;
    }
  }
}

/** Mode lookup without enabling anything (for UIs listing what an output can do). */
export function preferredMode(backend: Backend, name: string, want?: ModeRequest): OutputMode {
  const m = pickMode(backend.device.connectorByName(name), want);
  return { width: m.hdisplay, height: m.vdisplay, refresh: m.vrefresh, preferred: (m.type & drm.DRM_MODE_TYPE_PREFERRED) !== 0 };
}
