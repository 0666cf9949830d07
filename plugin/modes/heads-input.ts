// Host input for the multi-head kiosk: libinput's devices (input/devices.ts) routed by
// input/heads-router.ts over the layout of the screens that are up (input/layout.ts),
// into the QEMU D-Bus guests of the heads (HeadManager, heads.ts).
//
// The layout is rebuilt whenever a screen comes or goes (hotplug) from the sizes the
// screens really have, and the config's positions. Devices named in a head's
// "input.devices" are bound to that head when libinput adds them (by libinput name, event
// node name, or a /dev/input path: by-id and by-path links are resolved then). Heads whose
// guest is not a QEMU D-Bus guest take no input, said once per guest.
//
// On a seat: when the session goes, every guest lets go of what the host held down in it
// and libinput lets go of the devices (the seat revokes them); when it is back they are
// opened again through the seat. Ctrl+Alt+F1…F12 switch VTs.
//
// Ownership: HeadsInput owns its InputStack (libinput, udev, the device fds through the
// seat's open/close) and its ports; close() closes the stack. The manager and the
// session stay the caller's.
import { realpathSync } from 'node:fs';
import { InputStack, type InputDevice, type InputStackOptions } from '../input/devices.js';
import { HeadsRouter, type RoutedHead } from '../input/heads-router.js';
import { GuestPort } from '../input/guest-port.js';
import { placeScreens, type ScreenSpec } from '../input/layout.js';
import { QemuGuest } from '../sources/qemu-guest.js';
import { headInputOf, type HeadConfig } from './heads-config.js';
import type { HeadManager } from './heads.js';
import type { SeatSession } from '../device/session.js';

export interface HeadsInputOptions {
  /** libinput on a udev seat (default seat0) or on named nodes. */
  devices?: InputStackOptions;
  /** Open the devices through this seat and follow it (stays the caller's). */
  session?: SeatSession;
  /** Ctrl+Alt+Q. */
  quit(): void;
  log(line: string): void;
}

export class HeadsInput {
  readonly router: HeadsRouter;
  readonly stack: InputStack;
  readonly #ports = new Map<string, GuestPort | null>();
  /** Device sysname → the head it belongs to; absent: shared. */
  readonly #bound = new Map<string, number>();
  readonly #offs: (() => void)[] = [];
  #closed = false;

  /** Starts libinput and the routing; throws (with the reason) when libinput cannot start. */
  constructor(
    private readonly mgr: HeadManager,
    private readonly opts: HeadsInputOptions,
  ) {
    const session = opts.session;
    const log = opts.log;
    this.router = new HeadsRouter({
      quit: opts.quit,
      grab: (g) => log(g ? 'keyboard and pointer go to the guests again' : 'keyboard and pointer released to the host (Ctrl+Alt+G takes them back)'),
      switchSession: session ? (vt) => this.#switch(session, vt) : undefined,
      focus: (h) => log(h ? `keyboard focus: heads[${h.index}] (${mgr.config.heads[h.index].guest}) on ${h.screen}${h.port ? '' : ', which takes no input'}` : 'keyboard focus: none'),
    });
    this.#openPorts();
    this.stack = new InputStack(session ? { ...opts.devices, open: (path) => session.openDevice(path), close: (fd) => session.closeDevice(fd) } : (opts.devices ?? {}));
    this.stack.on('input', (e, d) => this.router.handle(e, this.#bound.get(d.sysname) ?? null));
    this.stack.on('device-added', (d) => this.#added(d));
    this.stack.on('device-removed', (d) => {
      this.#bound.delete(d.sysname);
      log(`input device ${d.sysname} (${d.name}) removed`);
    });
    this.stack.on('warning', (m) => log(m));
    const relayout = () => this.relayout();
    mgr.on('screen-up', relayout);
    mgr.on('screen-down', relayout);
    this.#offs.push(() => (mgr.off('screen-up', relayout), mgr.off('screen-down', relayout)));
    if (session) this.#followSession(session);
    this.relayout();
  }

  /** One port per QEMU D-Bus guest with a head taking input; the others said once. */
  #openPorts(): void {
    const { config } = this.mgr;
    for (const name of Object.keys(config.guests)) {
      const heads = config.heads.flatMap((h, i) => (h.guest === name && headInputOf(h).enabled ? [i] : []));
      if (!heads.length) continue;
      const g = this.mgr.guest(name);
      if (g instanceof QemuGuest) {
        this.#ports.set(name, new GuestPort(g, (e) => this.opts.log(`input to guests.${name}: ${e.message}`)));
      } else {
        this.#ports.set(name, null);
        this.opts.log(`guests.${name} is not a QEMU D-Bus guest: ${heads.map((i) => `heads[${i}]`).join(', ')} take no input`);
      }
    }
  }

  /** The layout of the screens up now and their heads, handed to the router. */
  relayout(): void {
    if (this.#closed) return;
    const { config } = this.mgr;
    const connectors = [...new Set(config.heads.map((h) => h.connector))];
    const specs: ScreenSpec[] = [];
    for (const c of connectors) {
      const out = this.mgr.output(c);
      if (out) specs.push({ name: c, width: out.width, height: out.height, position: config.heads.find((h) => h.connector === c && h.position)?.position });
    }
    const screens = placeScreens(specs);
    const heads: RoutedHead[] = [];
    config.heads.forEach((h, index) => {
      const s = screens.find((x) => x.name === h.connector);
      if (s) heads.push(this.#routed(h, index, s.rect));
    });
    const absolute = config.heads.find((h) => headInputOf(h).absolute)?.connector;
    this.router.setLayout(screens, heads, absolute);
    this.opts.log(`input layout: ${screens.map((s) => `${s.name} ${s.rect.width}x${s.rect.height}+${s.rect.x}+${s.rect.y}`).join(', ') || 'no screen up'}`);
  }

  #routed(h: HeadConfig, index: number, screen: { x: number; y: number; width: number; height: number }): RoutedHead {
    const r = h.region;
    const guest = this.mgr.guest(h.guest);
    return {
      index,
      screen: h.connector,
      area: r ? { x: screen.x + r.x, y: screen.y + r.y, width: r.width, height: r.height } : screen,
      fit: h.scale,
      picture: () => {
        if (h.view) return { width: h.view.width, height: h.view.height };
        const q = guest?.query('primary');
        return q?.state === 'ok' ? { width: q.plane.width, height: q.plane.height } : null;
      },
      offset: h.view ? { x: h.view.x, y: h.view.y } : { x: 0, y: 0 },
      port: headInputOf(h).enabled ? (this.#ports.get(h.guest) ?? null) : null,
    };
  }

  #added(d: InputDevice): void {
    const owner = this.mgr.config.heads.findIndex((h) => headInputOf(h).devices.some((want) => names(want, d)));
    if (owner >= 0) this.#bound.set(d.sysname, owner);
    this.opts.log(`input device ${d.sysname} (${d.name})${owner >= 0 ? ` belongs to heads[${owner}]` : ''}`);
  }

  #followSession(session: SeatSession): void {
    const disable = () => {
      this.router.releaseAll();
      this.stack.suspend();
    };
    const enable = () => this.stack.resume();
    session.on('disable', disable);
    session.on('enable', enable);
    this.#offs.push(() => (session.off('disable', disable), session.off('enable', enable)));
  }

  #switch(session: SeatSession, vt: number): void {
    try {
      session.switchSession(vt);
    } catch (e) {
      this.opts.log((e as Error).message);
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const off of this.#offs.splice(0)) off();
    this.stack.close();
  }
}

/** Whether a config's device name `want` names device `d`: its libinput name, its node's name, or a path to its node. */
function names(want: string, d: InputDevice): boolean {
  if (want === d.name || want === d.sysname) return true;
  if (!want.startsWith('/')) return false;
  try {
    return realpathSync(want) === `/dev/input/${d.sysname}`;
  } catch {
    return false; // a by-id link of a device that is not there
  }
}
