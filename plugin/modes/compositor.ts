// The kiosk compositor (`guestplane compositor`): cage-like, one fullscreen toplevel on
// one output, shown through the plugin's Output like a VM display: a client's dma-buf
// straight on the primary plane when the kernel takes it, wl_shm through the copy path.
// Clients learn what scans out (linux-dmabuf feedback), when frames hit the screen
// (presentation-time, from the page-flip events) and can lease the connectors the kiosk
// does not use (drm-lease). The seat has the host's input devices (libinput, seat-input.ts):
// the shown toplevel has the keyboard focus, and the pointer is mapped into it through the
// same fit placement the output shows it with.
//
// The Wayland display runs inside the Node event loop (protocols/runtime.ts: its
// epoll fd is watched by the Node loop's own epoll (uv_poll), requests are dispatched on the main thread).
import { fstatSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import * as drm from '../../ffi/drm.js';
import { Display, type Global } from '../../protocols/runtime.js';
import { WlOutput, WlOutputMode, WlOutputSubpixel, WlOutputTransform } from '../../protocols/generated/wayland.js';
import type { KmsDevice } from '../kms/device.js';
import { Output, type ModeRequest, type PresentEvent } from '../output/output.js';
import type { FitMode } from '../geometry.js';
import { callbackTime, createCompositorGlobal, type Surface, type SurfaceCommit } from '../wayland/surface.js';
import { createShmGlobal } from '../wayland/shm.js';
import { createXdgShellGlobal, type Toplevel } from '../wayland/xdg-shell.js';
import { createPresentationGlobal } from '../wayland/presentation.js';
import { createViewporterGlobal } from '../wayland/viewporter.js';
import { createFractionalScaleGlobal } from '../wayland/fractional-scale.js';
import { LinuxDmabuf } from '../wayland/linux-dmabuf.js';
import { COPY_FORMATS, TRANCHE_FLAG_SCANOUT, scanoutFormats, unionFormats, type TrancheSpec } from '../wayland/dmabuf-feedback.js';
import { DrmLeaseDevice } from '../wayland/drm-lease.js';
import { SurfaceSource } from '../wayland/surface-source.js';
import { createSubcompositorGlobal, rootOf, type Subsurface } from '../wayland/subsurface.js';
import { sceneLayers, sceneTree } from '../wayland/scene.js';
import { Popups } from '../wayland/xdg-popup.js';
import { createDecorationGlobal } from '../wayland/decoration.js';
import { createSinglePixelBufferGlobal } from '../wayland/single-pixel.js';
import { DataDevices } from '../wayland/data-device.js';
import { Seat } from '../wayland/seat.js';
import { SeatInput } from '../wayland/seat-input.js';
import { PointerConstraints } from '../wayland/pointer-constraints.js';
import { PointerCursor } from '../wayland/cursor-image.js';
import { outputToSurface } from '../wayland/input-map.js';
import { outputInView, outputToView, windowView } from '../wayland/window-view.js';
import { InputStack, type InputStackOptions } from '../input/devices.js';
import type { RuleNames } from '../input/keymap.js';
import type { HostLayer } from '../planes/host-layers.js';
import type { SeatSession } from '../device/session.js';
import { Backend } from '../device/backend.js';
import { hasConnectedDisplay } from '../device/card.js';
import { Chords, passKey, type ChordName } from '../input/chords.js';

export interface CompositorOptions {
  /** KMS card node; default: the first /dev/dri/card* with a connected display. */
  device?: string;
  /** Connector to show the toplevel on; default: the first connected one. */
  connector?: string;
  /** Socket name in $XDG_RUNTIME_DIR (or absolute path); default: the first free wayland-N. */
  socket?: string;
  mode?: ModeRequest;
  /** How a buffer that is not the output's size is placed; default 'native' (1:1, centred). */
  fit?: FitMode;
  /** Offer unused connectors through wp_drm_lease_device_v1 (default true). */
  leasing?: boolean;
  /**
   * The host's keyboards, pointers and touchscreens for the seat (libinput): udev's seat0 by
   * default, or the path backend on named nodes; false: a seat with no devices. A stack
   * that cannot start is logged and the compositor runs without input.
   */
  input?: InputStackOptions | false;
  /**
   * Open the card and the input devices through this seat session (seatd/logind: no root).
   * The compositor then draws nothing while another session has the seat, is lit again
   * when it is back, and Ctrl+Alt+F1…F12 switch VTs. The session stays the caller's.
   */
  session?: SeatSession;
  /** Keymap names (RMLVO); XKB_DEFAULT_* in the environment fill the rest. */
  keymap?: RuleNames;
  /**
   * The chords turned on (default all). Only 'vt' (Ctrl+Alt+F1…F12, on a seat) is the
   * compositor's; without it those keys go to the client. Ctrl+Alt+Q and G are always the client's.
   */
  chords?: readonly ChordName[];
  /** Diagnostics (default: stderr). */
  log?: (message: string) => void;
}

export interface CompositorEvents {
  /** A frame of the shown toplevel reached the screen (or was superseded). */
  present: [PresentEvent];
  toplevel: [Toplevel];
}

export class KioskCompositor extends EventEmitter<CompositorEvents> {
  readonly display: Display;
  /** The card, its seat session and the output (hotplug is not followed: one output for the compositor's life). */
  readonly backend: Backend;
  readonly dev: KmsDevice;
  readonly output: Output;
  readonly socket: string;
  readonly dmabuf: LinuxDmabuf;
  readonly leases: DrmLeaseDevice | null;
  /** The clipboard; the shown toplevel's client has the focus. */
  readonly dataDevices: DataDevices;
  readonly mainDevice: bigint;
  /** wl_seat: capabilities from the host's devices, focus on the shown toplevel. */
  readonly seat: Seat;
  readonly seatInput: SeatInput;
  /** The host's input devices (null: none asked for, or libinput could not start). */
  readonly input: InputStack | null;
  /** The client's pointer image on the cursor plane. */
  readonly cursor: PointerCursor;
  /** xdg_popup placement and grabs (plugin/wayland/xdg-popup.ts). */
  readonly popups: Popups;
  readonly #log: (m: string) => void;
  readonly #toplevels: { t: Toplevel; source: SurfaceSource; onCommit: (c: SurfaceCommit) => void }[] = [];
  readonly #idle = new SurfaceSource('no client');
  #shown: SurfaceSource;
  readonly #wlOutputs = new Set<WlOutput>();
  /** A source per sub-surface (its layer on the output while its tree is shown). */
  readonly #subs = new Map<Surface, { source: SurfaceSource; layerId: string }>();
  #nextLayer = 1;
  /** The sub-surface layers last given to Output.present() (a key, to skip repeats); null: never. */
  #sceneKey: string | null = null;
  #relayoutQueued = false;
  #closed = false;

  private constructor(opts: CompositorOptions) {
    super();
    this.#log = opts.log ?? ((m) => process.stderr.write(`guestplane compositor: ${m}\n`));
    this.#session = opts.session ?? null;
    this.#chords = new Chords(true, false, opts.chords);
    this.backend = Backend.open({ device: opts.device, session: opts.session, want: hasConnectedDisplay, hotplug: false });
    this.dev = this.backend.device;
    const devicePath = this.dev.path;
    const fit = opts.fit ?? 'native';
    let display: Display | null = null;
    let output: Output | null = null;
    let seat: Seat | null = null;
    try {
      const connector = opts.connector ?? this.dev.connectors.find((c) => !c.writeback && c.connection === 'connected')?.name;
      if (!connector) throw new Error(`${devicePath}: no connected connector; pass --connector (connectors: ${this.dev.connectors.map((c) => `${c.name} ${c.connection}`).join(', ')})`);
      output = this.backend.enableOutput(connector, { mode: opts.mode });
      this.output = output;
      this.mainDevice = BigInt(fstatSync(this.dev.fd).rdev);
      display = Display.create();
      this.display = display;

      this.dmabuf = this.#linuxDmabuf(display, devicePath);
      this.popups = new Popups({
        area: (root) => outputInView(this.#fit, this.#view(root), { w: this.output.width, h: this.output.height }),
        validSerial: (client, serial) => this.seat.inputSerial(client, serial),
        changed: () => this.#queueRelayout(),
        onPopup: (surface) => this.#addLayerSurface(surface, 'popup', () => this.#toplevels.some((x) => x.source === this.#shown && x.t.popups().some((p) => p.surface === surface))),
      });
      this.#globals(display);
      this.seat = seat = new Seat(display, { keymap: opts.input === false ? false : (opts.keymap ?? {}), log: (m) => this.#log(m) });
      this.seatInput = new SeatInput(this.seat, {
        output: () => ({ w: this.output.width, h: this.output.height }),
        fit: () => this.#fit,
        root: () => this.#mappedRoot(),
        tree: (root) => this.#tree(root),
        view: (root) => this.#view(root),
        focus: () => this.popups.grabFocus(),
        press: (target) => this.popups.press(target, rootOf),
        drag: () => this.dataDevices.dragging,
      });
      this.seatInput.constraints = new PointerConstraints(display, this.seat);
      this.cursor = new PointerCursor(() => this.#pointerPlace(), (m) => this.#log(m));
      this.seat.pointer.onCursor = (c) => this.cursor.set(c);
      this.dataDevices = new DataDevices(display, {
        validSerial: (client, serial) => this.seat.inputSerial(client, serial),
        pointerGrab: () => (this.seat.pointer.grabbed ? this.seat.pointer.focus!.surface : null),
        releasePointer: () => this.seat.pointer.moveTo(null),
        serial: () => display!.nextSerial(),
        time: () => callbackTime(),
        changed: () => this.#dragChanged(),
      });
      this.#outputGlobal(display);
      this.leases =
        opts.leasing === false
          ? null
          : new DrmLeaseDevice(display, this.dev, {
              inUse: () => new Set([this.output.connector.id, this.output.crtc.id, this.output.primary.id]),
              onLease: (l) => this.#log(`leased objects ${l.objects.join(',')} (lessee ${l.lesseeId})`),
              onRevoke: (l, why) => this.#log(`lease of lessee ${l.lesseeId} ended: ${why}`),
            });

      this.socket = opts.socket ?? display.addSocketAuto();
      if (opts.socket) display.addSocket(opts.socket);

      this.#shown = this.#idle;
      this.output.on('error', (e) => this.#log(`output: ${e.cause}: ${e.message}`));
      this.output.on('present', (ev) => this.#presented(ev));
      this.output.attach(this.#idle, fit);
      this.#fit = fit;
      display.start({ onError: (e) => this.#log(`client request failed: ${e instanceof Error ? e.message : String(e)}`) });
      this.input = opts.input === false ? null : this.#startInput(opts.input ?? {});
    } catch (e) {
      seat?.close();
      if (display && !display.destroyed) display.destroy();
      void this.backend.close();
      throw e;
    }
    this.#followSession();
  }
  #fit: FitMode = 'native';
  readonly #session: SeatSession | null;
  #sessionOff: (() => void) | null = null;
  // Only Ctrl+Alt+Fn: Ctrl+Alt+Q and G go to the client (they are the guest kiosks' chords).
  readonly #chords: Chords;

  /** While another session has the seat: no commits (the backend stops the output), input devices let go (libinput closes them). */
  #followSession(): void {
    if (!this.#session) return;
    const disable = () => {
      this.input?.suspend();
      this.#chords.clear();
      this.#log('the seat went to another session: not drawing until it is back');
    };
    const enable = ({ enabledAt }: { enabledAt: number }) => {
      this.input?.resume();
      this.#log(`the seat is back: ${this.output.connector.name} lit again (${(performance.now() - enabledAt).toFixed(1)} ms after the seat came back)`);
    };
    this.backend.on('suspend', disable);
    this.backend.on('resume', enable);
    this.#sessionOff = () => {
      this.backend.off('suspend', disable);
      this.backend.off('resume', enable);
    };
  }

  /** zwp_linux_dmabuf_v1 with feedback: the primary plane's formats as the scanout tranche. */
  #linuxDmabuf(display: Display, devicePath: string): LinuxDmabuf {
    const scanout = scanoutFormats([this.output.primary]);
    const main: TrancheSpec = { device: this.mainDevice, flags: 0, formats: unionFormats(scanout, COPY_FORMATS) };
    const scanoutTranche: TrancheSpec = { device: this.mainDevice, flags: TRANCHE_FLAG_SCANOUT, formats: scanout };
    return new LinuxDmabuf(display, {
      mainDevice: this.mainDevice,
      // One output, one fullscreen surface: the default feedback is the surface's.
      defaultTranches: () => [scanoutTranche, main],
      surfaceTranches: () => [scanoutTranche, main],
      log: (m) => this.#log(m),
      importCheck: (b) => {
        if (!this.dev.caps.prime.import) return `${devicePath} cannot import dma-bufs (no PRIME import)`;
        try {
          const handle = drm.primeFDToHandle(this.dev.fd, b.planes[0]!.fd);
          drm.gemClose(this.dev.fd, handle);
          return null;
        } catch (e) {
          return `${devicePath} cannot import the dma-buf: ${(e as Error).message}`;
        }
      },
    });
  }

  /** The globals with no state of their own here. */
  #globals(display: Display): void {
    createCompositorGlobal(display, (s) => this.#onSurface(s));
    createSubcompositorGlobal(display, { onSubsurface: (sub) => this.#addSubsurface(sub) });
    createShmGlobal(display);
    createXdgShellGlobal(display, {
      size: () => ({ width: this.output.width, height: this.output.height }),
      onToplevel: (t) => this.#addToplevel(t),
      onToplevelDestroyed: (t) => this.#removeToplevel(t),
      popups: this.popups,
    });
    createPresentationGlobal(display);
    createViewporterGlobal(display);
    createFractionalScaleGlobal(display);
    createDecorationGlobal(display);
    createSinglePixelBufferGlobal(display);
  }

  /** libinput on the host's devices into the seat; null (logged) when it cannot start. */
  #startInput(opts: InputStackOptions): InputStack | null {
    let stack: InputStack;
    const session = this.#session;
    try {
      stack = new InputStack(session ? { ...opts, ...session.deviceAccess } : opts);
    } catch (e) {
      this.#log(`no input devices: ${(e as Error).message}`);
      return null;
    }
    const what = (d: { capabilities?: { keyboard: boolean; pointer: boolean; touch: boolean } }) =>
      Object.entries(d.capabilities ?? {})
        .filter(([, v]) => v)
        .map(([k]) => k)
        .join('+') || 'nothing the seat uses';
    stack.on('device-added', (d) => {
      this.#log(`input device ${d.sysname} (${d.name}): ${what(d)}`);
      this.seatInput.deviceAdded(d);
    });
    stack.on('device-removed', (d) => {
      this.#log(`input device ${d.sysname} (${d.name}) removed`);
      this.seatInput.deviceRemoved(d);
    });
    stack.on('input', (e) => {
      // On a seat the kernel no longer switches VTs on Ctrl+Alt+Fn: the compositor asks the seat.
      // A client that inhibits shortcuts (a VM viewer holding the pointer) gets these keys too.
      if (e.kind === 'key' && session && !this.seatInput.constraints?.shortcutsInhibited && !passKey(this.#chords, e.code, e.pressed, { vt: (vt) => this.#switchVt(session, vt), quit: () => {}, grab: () => {} })) return;
      this.seatInput.handle(e);
      if (e.kind === 'motion' || e.kind === 'absolute' || e.kind === 'button') {
        this.cursor.update();
        // A drag icon follows the pointer.
        if (this.dataDevices.dragIcon) this.#queueRelayout();
      }
    });
    stack.on('warning', (m) => this.#log(m));
    return stack;
  }

  #switchVt(session: SeatSession, vt: number): void {
    try {
      session.switchSession(vt);
    } catch (e) {
      this.#log((e as Error).message);
    }
  }

  /** The shown toplevel under the pointer, and the pointer in its root surface's coordinates. */
  #pointerPlace(): { source: SurfaceSource; tip: { x: number; y: number } } | null {
    const root = this.#mappedRoot();
    if (!root?.size || !this.seat.pointer.focus) return null;
    // In the shown window's coordinates: the output places the window rectangle, and the cursor with it.
    const v = this.#view(root)!;
    return { source: this.#shown, tip: outputToSurface(this.#fit, { w: v.width, h: v.height }, { w: this.output.width, h: this.output.height }, this.seatInput.pointer) };
  }

  /** The shown toplevel's surface once it has a buffer (what has keyboard focus and is under the pointer). */
  #mappedRoot(): Surface | null {
    const root = this.#shownRoot();
    return root && !root.resource.destroyed && root.size ? root : null;
  }

  /** Presentation feedback for every surface the flip concerns, then the compositor's own event. */
  #presented(ev: PresentEvent): void {
    const p = { frame: ev.frame, timestampNs: ev.timestampNs, refreshNs: ev.refreshNs, sequence: ev.sequence, zeroCopy: ev.zeroCopy };
    this.#shown.presented(p);
    // Hidden toplevels learn when their last buffers left the screen.
    for (const x of this.#toplevels) if (x.source !== this.#shown) x.source.presented(p);
    // Each sub-surface's frame and zero-copy are its own layer's.
    for (const { source, layerId } of this.#subs.values()) {
      const l = ev.layers?.find((x) => x.id === layerId);
      source.presented({ ...p, frame: l?.frame, zeroCopy: l?.zeroCopy ?? false });
    }
    this.emit('present', ev);
  }

  static start(opts: CompositorOptions = {}): KioskCompositor {
    return new KioskCompositor(opts);
  }

  /** The source of the toplevel on screen (an empty one when there is none). */
  get shown(): SurfaceSource {
    return this.#shown;
  }
  get toplevels(): readonly Toplevel[] {
    return this.#toplevels.map((x) => x.t);
  }

  #onSurface(_s: Surface): void {
    // Surfaces get a role (and so a place on screen) through xdg_wm_base.
  }

  #addToplevel(t: Toplevel): void {
    const source = new SurfaceSource(`wayland client ${t.surface.resource.client.credentials().pid} ${t.surface.resource}`);
    source.outputs = () => [...this.#wlOutputs];
    source.view = () => this.#view(t.surface);
    const onCommit = (c: SurfaceCommit) => {
      source.commit(c);
      // The root's size places its sub-surfaces, and maps the pointer into it.
      this.#queueRelayout();
    };
    t.surface.on('commit', onCommit);
    this.#toplevels.push({ t, source, onCommit });
    this.#show(source);
    this.emit('toplevel', t);
  }

  #removeToplevel(t: Toplevel): void {
    const i = this.#toplevels.findIndex((x) => x.t === t);
    if (i < 0) return;
    const [x] = this.#toplevels.splice(i, 1);
    x!.t.surface.off('commit', x!.onCommit);
    if (this.#shown === x!.source) this.#show(this.#toplevels.at(-1)?.source ?? this.#idle);
    x!.source.close();
  }

  /** Kiosk policy: the newest toplevel is the one on screen. */
  #show(source: SurfaceSource): void {
    if (this.#shown === source || this.#closed) return;
    this.#shown.setShown(false);
    source.setShown(true);
    this.#shown = source;
    this.output.attach(source, this.#fit);
    this.dataDevices.focus(this.#shownRoot()?.resource.client ?? null);
    this.#queueRelayout();
  }

  #addSubsurface(sub: Subsurface): void {
    this.#addLayerSurface(sub.surface, 'sub-surface', () => rootOf(sub.surface) === this.#shownRoot());
    sub.onUnmapped = () => this.#queueRelayout();
  }

  /** A sub-surface or popup surface: its own source, a host layer while its toplevel is shown. */
  #addLayerSurface(surface: Surface, what: string, inShownTree: () => boolean): void {
    const source = new SurfaceSource(`wayland client ${surface.resource.client.credentials().pid} ${surface.resource} (${what})`);
    source.outputs = () => [...this.#wlOutputs];
    // Off screen until a relayout puts it in the shown tree.
    source.setShown(false);
    const entry = { source, layerId: `sub${this.#nextLayer++}` };
    this.#subs.set(surface, entry);
    surface.on('commit', (c) => {
      // Shown from its first buffer when its tree is on screen (the relayout that follows
      // places it); otherwise its frames would finish unshown.
      if (c.buffer && !source.shown && inShownTree()) source.setShown(true);
      source.commit(c);
      this.#queueRelayout();
    });
    surface.once('destroy', () => {
      this.#subs.delete(surface);
      source.close();
      this.#queueRelayout();
    });
    this.#queueRelayout();
  }

  /** A drag began or ended, or its icon changed: the icon gets a layer; the scene and focus follow. */
  #dragChanged(): void {
    const icon = this.dataDevices.dragIcon;
    if (icon && !this.#subs.has(icon)) this.#addLayerSurface(icon, 'drag icon', () => this.dataDevices.dragIcon === icon);
    this.#queueRelayout();
  }

  #queueRelayout(): void {
    if (this.#relayoutQueued || this.#closed) return;
    this.#relayoutQueued = true;
    // After the whole tree's state is applied (a parent's commit applies its children's).
    queueMicrotask(() => {
      this.#relayoutQueued = false;
      if (!this.#closed) this.#relayout();
    });
  }

  /** The shown toplevel's sub-surfaces and popups, bottom first, in its root's coordinates (what input can hit). */
  #tree(root: Surface): ReturnType<typeof sceneTree> {
    return sceneTree(root, this.#toplevels.find((x) => x.t.surface === root)?.t.popups() ?? []);
  }

  /** What is drawn: the tree, and a drag's icon on top at the pointer (its surface offset from the hotspot). */
  #drawnTree(root: Surface): ReturnType<typeof sceneTree> {
    const tree = this.#tree(root);
    const icon = this.dataDevices.dragIcon;
    const view = this.#view(root);
    if (!icon?.size || !view) return tree;
    const at = outputToView(this.#fit, view, { w: this.output.width, h: this.output.height }, this.seatInput.pointer);
    return [...tree, { surface: icon, x: Math.round(at.x) + icon.offset.x, y: Math.round(at.y) + icon.offset.y }];
  }

  /**
   * A toplevel's window rectangle (window geometry within its surface); in native fit at
   * most the output's size from its top-left (a larger window is cropped right and bottom).
   */
  #view(root: Surface): ReturnType<typeof windowView> {
    const bound = this.#fit === 'native' ? { w: this.output.width, h: this.output.height } : undefined;
    return windowView(root.size, this.#toplevels.find((x) => x.t.surface === root)?.t.geometry() ?? null, bound);
  }

  #shownRoot(): Surface | null {
    return this.#toplevels.find((x) => x.source === this.#shown)?.t.surface ?? null;
  }

  /** Puts the shown toplevel's sub-surfaces on the output as host layers around it. */
  #relayout(): void {
    // Focus, pointer and its image follow what is on screen now.
    this.seatInput.refresh();
    this.cursor.update();
    const root = this.#shownRoot();
    const scene = root ? sceneLayers(this.#drawnTree(root), root, this.#fit, this.output.width, this.output.height, this.#view(root)) : [];
    const shown = new Set(scene.map((l) => l.surface));
    for (const [surface, { source }] of this.#subs) source.setShown(shown.has(surface));
    const layers: HostLayer[] = scene.map((l) => {
      const { source, layerId } = this.#subs.get(l.surface)!;
      return { id: layerId, buffer: { source }, dst: l.dst, ...(l.src ? { src: l.src } : {}), zIndex: l.zIndex };
    });
    // A tree that never had sub-surfaces stays a plain attached source (the steady-state path).
    const key = layers.map((l) => `${l.id}@${l.zIndex}:${l.dst.x},${l.dst.y},${l.dst.width}x${l.dst.height}/${l.src ? `${l.src.x},${l.src.y},${l.src.width}x${l.src.height}` : '-'}`).join(';');
    if (key === (this.#sceneKey ?? '')) return;
    this.#sceneKey = key;
    this.output.present(layers);
  }

  #outputGlobal(display: Display): Global<WlOutput> {
    const o = this.output;
    return WlOutput.global(display, 4, (id) => {
      const r = id.create({});
      this.#wlOutputs.add(r);
      r.onDestroy(() => this.#wlOutputs.delete(r));
      const c = o.connector;
      r.sendGeometry(0, 0, c.mmWidth, c.mmHeight, WlOutputSubpixel.UNKNOWN, 'guestplane', c.name, WlOutputTransform.NORMAL);
      r.sendMode(WlOutputMode.CURRENT | WlOutputMode.PREFERRED, o.width, o.height, Math.round(1e12 / o.refreshNs));
      if (r.version >= 2) r.sendScale(1);
      if (r.version >= 4) {
        r.sendName(c.name);
        r.sendDescription(`${c.name} on ${this.dev.path} (${this.dev.driver.name})`);
      }
      if (r.version >= 2) r.sendDone();
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.input?.close();
    this.cursor.close();
    this.leases?.close();
    await this.display.stop();
    await this.output.close();
    this.display.destroy();
    for (const x of this.#toplevels.splice(0)) x.source.close();
    for (const x of this.#subs.values()) x.source.close();
    this.#subs.clear();
    this.#idle.close();
    this.dmabuf.close();
    this.seat.close();
    this.#sessionOff?.();
    await this.backend.close();
  }
}

/**
 * Runs the kiosk compositor until close(). The lead wires it as `guestplane compositor`;
 * WAYLAND_DISPLAY for clients is `socket`.
 */
export async function runCompositor(opts: CompositorOptions = {}): Promise<{ socket: string; compositor: KioskCompositor; close(): Promise<void> }> {
  const compositor = KioskCompositor.start(opts);
  return { socket: compositor.socket, compositor, close: () => compositor.close() };
}
