// Multi-head: several guests (or several heads of one guest) on several host connectors,
// or on regions of one connector, from a HeadsConfig (config.ts), kept right across
// connector hotplug.
//
// One "screen" per connector named in the config. A screen with one head is an Output
// showing that guest (through a ViewSource when the head shows part of the guest's
// screen); a screen with several region heads is an Output showing a RegionComposer that
// composes those guests into one buffer (CPU copy; see compose/regions.ts for why).
//
// Hotplug: a connector that goes away takes its screen down cleanly (the Output is
// closed, which turns the CRTC off and frees its FBs); its guests keep running, and other
// screens are not touched. When the connector comes back, the screen comes back with the
// configured mode, or the connector's preferred one.
//
// EDID: a VFIO guest shown whole by exactly one head gets an EDID for what it is shown
// on (edid.ts): the host monitor's own EDID when the guest has the whole screen at the
// monitor's preferred mode, else one built for the head's size and the mode's refresh.
//
// The card, hotplug and the seat are the Backend's (device/backend.ts): on a seat
// (opts.session: seatd, logind) it opens the card through the session; while another
// session has the seat every screen stops committing and hotplug changes wait, and when it
// is back every screen is lit again and the connectors are looked at anew.
//
// Ownership: the manager owns its Backend (which owns the card it opened, not a KmsDevice
// passed in), the guests it created from the config (not ones passed in opts.sources), its
// screens' composers and views and the test-guest animations; the Outputs are enabled
// through the Backend and closed by the manager. close() releases all of them.
import { EventEmitter } from 'node:events';
import type { KmsDevice, KmsConnector } from '../kms/device.js';
import { pickMode, type Output, type OutputErrorEvent } from '../output/output.js';
import { Backend } from '../device/backend.js';
import { hasConnector } from '../device/card.js';
import type { GuestSource } from '../sources/source.js';
import { UdmabufSource } from '../sources/udmabuf.js';
import { VfioSource } from '../sources/vfio.js';
import { QemuGuest } from '../sources/qemu-guest.js';
import { openVfioSource } from '../sources/open.js';
import { ViewSource } from '../sources/view.js';
import { animate, udmabufStep, type Animation } from '../sources/test-guest.js';
import { RegionComposer } from '../compose/regions.js';
import type { HotplugEvent, HotplugMonitor, HotplugOptions } from '../device/hotplug.js';
import { edidForHead, findGuestEdidRegion, readConnectorEdid, writeGuestEdid } from '../device/edid.js';
import { qemuGuestOptions, type HeadConfig, type HeadsConfig } from './heads-config.js';
import type { SeatSession } from '../device/session.js';

export interface HeadsOptions {
  /** An open KMS device to use (stays the caller's). Default: config.device or a search. */
  device?: KmsDevice;
  /** Guests the caller made, by config guest name (stay the caller's); the rest are built from the config. */
  sources?: Record<string, GuestSource>;
  /** Animate the built-in udmabuf test guests at their fps (default true). */
  animateTestGuests?: boolean;
  /** Hotplug handling (default: uevents, polling every 1 s if they are unavailable); false = none. */
  hotplug?: HotplugOptions | false;
  /** Open the card through this seat session and follow it (stays the caller's). */
  session?: SeatSession;
  log?: (line: string) => void;
}

export type ScreenState = 'up' | 'down' | 'failed';

export interface HeadStatus {
  index: number;
  guest: string;
  connector: string;
  state: ScreenState;
  /** Why the screen is not up, or a warning about this head (EDID not written...). */
  reason: string | null;
  mode: { width: number; height: number; refresh: number } | null;
  /** What the guest was told about its monitor, if anything. */
  edid: { origin: 'host' | 'built'; width: number; height: number; refresh: number } | null;
}

export interface ScreenEvent {
  connector: string;
  heads: number[];
  reason: string | null;
}

export interface HeadsEvents {
  'screen-up': [ScreenEvent];
  'screen-down': [ScreenEvent];
  /** An output of a screen reported an error (once per cause and output). */
  'output-error': [ScreenEvent & OutputErrorEvent];
  hotplug: [HotplugEvent];
}

interface Screen {
  connector: string;
  heads: number[];
  state: ScreenState;
  reason: string | null;
  output: Output | null;
  composer: RegionComposer | null;
  views: ViewSource[];
  edid: Map<number, HeadStatus['edid']>;
  warnings: Map<number, string>;
}

export class HeadManager extends EventEmitter<HeadsEvents> {
  private readonly screens: Screen[] = [];
  private readonly guests = new Map<string, GuestSource>();
  private readonly ownedGuests: GuestSource[] = [];
  private readonly animations: Animation[] = [];
  private chain: Promise<void> = Promise.resolve();
  private reconcileQueued = false;
  private closed = false;
  private readonly log: (line: string) => void;
  readonly dev: KmsDevice;

  private constructor(
    readonly config: HeadsConfig,
    readonly backend: Backend,
    private readonly opts: HeadsOptions,
  ) {
    super();
    this.dev = backend.device;
    this.log = opts.log ?? (() => {});
  }

  /** Opens the device and the guests, brings up every screen that can be, follows hotplug and the seat. */
  static async start(config: HeadsConfig, opts: HeadsOptions = {}): Promise<HeadManager> {
    const wanted = [...new Set(config.heads.map((h) => h.connector))];
    const backend = Backend.open({ kms: opts.device, device: config.device, session: opts.device ? undefined : opts.session, want: hasConnector(wanted), hotplug: opts.hotplug === false ? false : (opts.hotplug ?? true) });
    const m = new HeadManager(config, backend, opts);
    try {
      m.openGuests();
      for (const connector of wanted) {
        const heads = config.heads.flatMap((h, i) => (h.connector === connector ? [i] : []));
        m.screens.push({ connector, heads, state: 'down', reason: 'not started', output: null, composer: null, views: [], edid: new Map(), warnings: new Map() });
      }
      await m.serial(() => m.reconcile(false));
      backend.on('hotplug', (ev) => {
        m.emit('hotplug', ev);
        m.queueReconcile();
      });
      backend.on('hotplug-degraded', (why) => m.log(`hotplug: ${why}`));
      // Connectors may have come or gone while the seat was away: the backend rescanned.
      backend.on('resume', () => m.queueReconcile());
      return m;
    } catch (e) {
      await m.close();
      throw e;
    }
  }

  private openGuests(): void {
    for (const [name, g] of Object.entries(this.config.guests)) {
      const given = this.opts.sources?.[name];
      if (given) {
        this.guests.set(name, given);
        continue;
      }
      let src: GuestSource;
      if (g.type === 'vfio') {
        try {
          src = openVfioSource(g.device);
        } catch (e) {
          throw new Error(`guests.${name}: cannot open VFIO device ${g.device}: ${(e as Error).message}`);
        }
      } else if (g.type === 'qemu-dbus') {
        src = new QemuGuest(qemuGuestOptions(g, (l) => this.log(`guests.${name}: ${l}`)));
      } else {
        const u = new UdmabufSource({ width: g.width, height: g.height, buffers: g.buffers });
        src = u;
        if (this.opts.animateTestGuests !== false) {
          this.animations.push(animate(udmabufStep(u), g.fps, (e) => this.log(`guests.${name}: test guest stopped: ${e.message}`)));
        }
      }
      this.guests.set(name, src);
      this.ownedGuests.push(src);
    }
  }

  /** Runs `fn` after every earlier screen change finished: one change at a time. */
  private serial(fn: () => Promise<void>): Promise<void> {
    const run = this.chain.then(fn);
    this.chain = run.catch(() => {});
    return run;
  }

  private queueReconcile(): void {
    if (this.reconcileQueued || this.closed) return;
    this.reconcileQueued = true;
    // Coalesce a burst of uevents (one per connector, plus polls) into one probe.
    setImmediate(() => {
      this.reconcileQueued = false;
      void this.serial(() => this.reconcile(true)).catch((e) => this.log(`hotplug: ${(e as Error).message}`));
    });
  }

  /** Re-reads the connectors and brings each screen up or down to match. */
  private async reconcile(probe: boolean): Promise<void> {
    // Without the seat nothing may be committed: the session's return reconciles.
    if (this.closed || this.backend.isSuspended) return;
    if (probe) this.dev.probe();
    for (const s of this.screens) {
      const conn = this.dev.connectors.find((c) => c.name === s.connector && !c.writeback);
      const present = conn?.connection === 'connected';
      if (s.state === 'up' && !present) {
        await this.takeDown(s, conn ? `${s.connector} was disconnected` : `${s.connector} disappeared`);
      } else if (s.state !== 'up' && present && conn) {
        if (s.state === 'failed' && !probe) continue;
        this.bringUp(s, conn);
      } else if (!present && s.state !== 'up' && (s.reason === 'not started' || s.state === 'failed')) {
        // First look (or after a failure): say why it is not up. A screen taken down by a
        // hotplug keeps the reason it went down with.
        s.state = 'down';
        s.reason = conn
          ? `${s.connector} is ${conn.connection}; waiting for it to be connected`
          : `${this.dev.path} has no connector '${s.connector}' (it has: ${this.dev.connectors.filter((c) => !c.writeback).map((c) => c.name).join(', ')}); fix "connector" in the config`;
      }
    }
  }

  private bringUp(s: Screen, conn: KmsConnector): void {
    const heads = s.heads.map((i) => ({ i, h: this.config.heads[i] }));
    const modeReq = heads.find((x) => x.h.mode)?.h.mode;
    let out: Output | null = null;
    try {
      const mode = pickMode(conn, modeReq);
      for (const { i, h } of heads) {
        const r = h.region;
        if (r && (r.x + r.width > mode.hdisplay || r.y + r.height > mode.vdisplay)) {
          throw new Error(`heads[${i}].region ${r.width}x${r.height}+${r.x}+${r.y} does not fit ${s.connector}'s mode ${mode.hdisplay}x${mode.vdisplay}; shrink the region or pick a larger mode`);
        }
      }
      out = this.backend.enableOutput(s.connector, { mode: { width: mode.hdisplay, height: mode.vdisplay, refresh: modeReq?.refresh } });
      out.on('error', (e) => this.emit('output-error', { connector: s.connector, heads: s.heads, reason: null, ...e }));
      const sourceOf = (h: HeadConfig) => {
        const g = this.guests.get(h.guest)!;
        if (!h.view) return g;
        const v = new ViewSource(g, h.view);
        s.views.push(v);
        return v;
      };
      if (heads.length === 1 && !heads[0].h.region) {
        out.attach(sourceOf(heads[0].h), heads[0].h.scale);
      } else {
        s.composer = new RegionComposer(
          out.width,
          out.height,
          heads.map(({ h }) => ({ source: sourceOf(h), region: { x: h.region!.x, y: h.region!.y, width: h.region!.width, height: h.region!.height }, fit: h.scale })),
          Math.max(4, Math.round(out.refreshNs / 1e6)),
        );
        out.attach(s.composer, 'native');
      }
      s.output = out;
      s.state = 'up';
      s.reason = null;
      for (const { i, h } of heads) this.tellGuest(s, i, h, conn, out);
      const refresh = (out.mode.clock * 1000) / (out.mode.htotal * out.mode.vtotal);
      this.log(`${s.connector}: up at ${out.width}x${out.height}@${refresh.toFixed(2)} showing ${heads.map(({ i, h }) => `heads[${i}] (${h.guest})`).join(', ')}`);
      this.emit('screen-up', { connector: s.connector, heads: s.heads, reason: null });
    } catch (e) {
      const why = (e as Error).message;
      s.composer?.close();
      s.composer = null;
      for (const v of s.views.splice(0)) v.close();
      if (out) void out.close(true);
      s.output = null;
      s.state = 'failed';
      s.reason = why;
      this.log(`${s.connector}: cannot show ${heads.map(({ i }) => `heads[${i}]`).join(', ')}: ${why}`);
    }
  }

  /**
   * Tells the guest what this head shows it on: an EDID into a VFIO guest's EDID region; the
   * head's size to a QEMU console (SetUIInfo, as the kiosk does). QEMU's virtio-gpu keeps
   * every output but the first one off until a display sends SetUIInfo for its console, so
   * without this a head showing console 1 of a multi-output virtio-gpu shows no signal.
   */
  private tellGuest(s: Screen, i: number, h: HeadConfig, conn: KmsConnector, out: Output): void {
    s.edid.set(i, null);
    s.warnings.delete(i);
    const g = this.config.guests[h.guest];
    const src = this.guests.get(h.guest);
    const shownBy = this.config.heads.filter((x) => x.guest === h.guest).length;
    if (src instanceof QemuGuest) {
      if (h.view) s.warnings.set(i, `no size told to QEMU: heads[${i}] shows only a view of guest '${h.guest}'`);
      else if (shownBy > 1) s.warnings.set(i, `no size told to QEMU: guest '${h.guest}' is spread over ${shownBy} heads (each console of a QEMU is a guest entry of its own)`);
      else src.setUISize(h.region?.width ?? out.width, h.region?.height ?? out.height);
      return;
    }
    if (g.type !== 'vfio' || !g.edid || !(src instanceof VfioSource)) return;
    if (shownBy > 1 || h.view) {
      s.warnings.set(i, `no EDID written: guest '${h.guest}' is spread over ${shownBy} heads, and no single monitor describes it`);
      return;
    }
    try {
      const region = findGuestEdidRegion(src.device);
      if (!region) {
        s.warnings.set(i, `no EDID written: ${src.device.name} has no GFX EDID region`);
        return;
      }
      const area = h.region ? { width: h.region.width, height: h.region.height } : null;
      const mon = edidForHead(readConnectorEdid(this.dev.fd, conn), out.mode, area, region.edidMaxSize);
      writeGuestEdid(src.device, region, mon.edid);
      s.edid.set(i, { origin: mon.origin, width: mon.width, height: mon.height, refresh: mon.refresh });
    } catch (e) {
      s.warnings.set(i, `no EDID written: ${(e as Error).message}`);
    }
  }

  private async takeDown(s: Screen, reason: string): Promise<void> {
    const out = s.output;
    s.output = null;
    s.state = 'down';
    s.reason = reason;
    if (out) await out.close(true);
    s.composer?.close();
    s.composer = null;
    for (const v of s.views.splice(0)) v.close();
    this.log(`${s.connector}: down (${reason}); its guests keep running`);
    this.emit('screen-down', { connector: s.connector, heads: s.heads, reason });
  }

  /** Every head's state. */
  status(): HeadStatus[] {
    const out: HeadStatus[] = [];
    for (const s of this.screens) {
      for (const i of s.heads) {
        const o = s.output;
        out.push({
          index: i,
          guest: this.config.heads[i].guest,
          connector: s.connector,
          state: s.state,
          reason: s.reason ?? s.warnings.get(i) ?? s.composer?.stats.problems[s.heads.indexOf(i)] ?? null,
          mode: o ? { width: o.width, height: o.height, refresh: (o.mode.clock * 1000) / (o.mode.htotal * o.mode.vtotal) } : null,
          edid: s.edid.get(i) ?? null,
        });
      }
    }
    return out.sort((a, b) => a.index - b.index);
  }

  /** The Output showing a connector now (null while it is down). */
  output(connector: string): Output | null {
    return this.screens.find((s) => s.connector === connector)?.output ?? null;
  }

  /** The composer of a connector with region heads (null otherwise or while down). */
  composer(connector: string): RegionComposer | null {
    return this.screens.find((s) => s.connector === connector)?.composer ?? null;
  }

  guest(name: string): GuestSource | null {
    return this.guests.get(name) ?? null;
  }

  get hotplugMonitor(): HotplugMonitor | null {
    return this.backend.hotplugMonitor;
  }

  /** Waits until queued hotplug handling is done (tests, orderly shutdown). */
  async settle(): Promise<void> {
    while (this.reconcileQueued) await new Promise((r) => setImmediate(r));
    await this.chain;
  }

  /** Takes every screen down (restoring what was on the CRTCs), stops guests it made, closes what it opened. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.chain;
    for (const s of this.screens) if (s.output) await this.takeDown(s, 'closing');
    for (const a of this.animations.splice(0)) a.stop();
    for (const g of this.ownedGuests.splice(0)) g.close();
    this.guests.clear();
    await this.backend.close();
  }
}

/** Runs the heads of a config; the CLI's `guestplane heads --config heads.json` calls this. */
export function runHeads(config: HeadsConfig, opts: HeadsOptions = {}): Promise<HeadManager> {
  return HeadManager.start(config, opts);
}
