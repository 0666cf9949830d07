// Connector hotplug: tells when a DRM card's connectors may have changed.
//
// The kernel announces it as a uevent (ACTION=change, SUBSYSTEM=drm, HOTPLUG=1,
// DEVNAME=dri/cardN, and CONNECTOR=<id> when it knows which) on the netlink
// NETLINK_KOBJECT_UEVENT socket's group 1: what udev listens to, without udev. Where that
// socket cannot be had (no CONFIG_NET, a sandbox without netlink), or in addition to it,
// the monitor falls back to asking for a re-probe on a timer. Either way it only says
// "look again": the caller re-reads the connectors (KmsDevice.probe) and diffs.
//
// Ownership: the monitor owns its netlink socket and its timer; close() releases both.
import { EventEmitter } from 'node:events';
import { basename } from 'node:path';
import * as libc from '../../ffi/libc.js';
import { FdWatch, UV_READABLE } from '../../ffi/uv.js';

export interface HotplugEvent {
  /** 'uevent': the kernel said so; 'poll': the fallback timer fired. */
  source: 'uevent' | 'poll';
  /** Connector object id, when the kernel named one. */
  connectorId?: number;
}

export interface HotplugOptions {
  /** Listen to kernel uevents (default true). */
  uevents?: boolean;
  /**
   * Re-probe period when uevents are unavailable, ms (default 1000); 0 = never. With
   * `alwaysPoll` the timer runs even when uevents work (belt and braces).
   */
  pollMs?: number;
  alwaysPoll?: boolean;
}

export interface HotplugEvents {
  hotplug: [HotplugEvent];
  /** Said once: why uevents are not used (then polling is). */
  degraded: [string];
}

/** Uevent group the kernel broadcasts to (udevd re-broadcasts to group 2, with a header). */
const KERNEL_UEVENT_GROUP = 1;

/** Parses one kernel uevent datagram: "change@/devpath\0KEY=value\0...". */
export function parseUevent(buf: Buffer, length: number): { action: string; devpath: string; env: Record<string, string> } | null {
  const text = buf.toString('latin1', 0, length);
  const parts = text.split('\0').filter((s) => s.length > 0);
  const head = parts[0] ?? '';
  const at = head.indexOf('@');
  // udev's own re-broadcasts start with "libudev" and carry a binary header: not ours.
  if (at <= 0) return null;
  const env: Record<string, string> = {};
  for (const p of parts.slice(1)) {
    const eq = p.indexOf('=');
    if (eq > 0) env[p.slice(0, eq)] = p.slice(eq + 1);
  }
  return { action: head.slice(0, at), devpath: head.slice(at + 1), env };
}

export class HotplugMonitor extends EventEmitter<HotplugEvents> {
  private sock = -1;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private watch: FdWatch | null = null;
  private readonly buf = Buffer.alloc(8192);
  private readonly devname: string;
  /** Why uevents are not in use, or null when they are. */
  ueventUnavailable: string | null = null;
  readonly counts = { uevents: 0, polls: 0, ignored: 0 };

  constructor(
    /** The card whose connectors to watch: /dev/dri/card1. */
    readonly cardPath: string,
    private readonly opts: HotplugOptions = {},
  ) {
    super();
    this.devname = `dri/${basename(cardPath)}`;
  }

  start(): this {
    if (this.opts.uevents !== false) {
      try {
        this.sock = libc.socket(libc.AF_NETLINK, libc.SOCK_DGRAM | libc.SOCK_NONBLOCK, libc.NETLINK_KOBJECT_UEVENT, 'netlink uevent socket');
        libc.bindNetlink(this.sock, KERNEL_UEVENT_GROUP, 'netlink uevent socket');
        this.watch = new FdWatch(this.sock, UV_READABLE, {
          ready: (_events, error) => (error ? this.fallBack(`the uevent listener failed (${error.message})`) : this.readUevents()),
          error: (e) => this.fallBack(`the uevent listener failed (${(e as Error).message})`),
        });
      } catch (e) {
        if (this.sock >= 0) libc.close(this.sock, 'netlink uevent socket');
        this.sock = -1;
        this.ueventUnavailable = `kernel uevents unavailable (${(e as Error).message}); re-probing connectors every ${this.opts.pollMs ?? 1000} ms instead`;
      }
    } else {
      this.ueventUnavailable = 'uevents disabled by options';
    }
    if (this.ueventUnavailable) queueMicrotask(() => this.emit('degraded', this.ueventUnavailable!));
    const pollMs = this.opts.pollMs ?? 1000;
    if (pollMs > 0 && (this.sock < 0 || this.opts.alwaysPoll)) {
      this.timer = setInterval(() => {
        this.counts.polls++;
        this.emit('hotplug', { source: 'poll' });
      }, pollMs);
      this.timer.unref?.();
    }
    return this;
  }

  /** Switches to re-probing on a timer when the uevent socket stops working. */
  private fallBack(why: string): void {
    if (this.closed) return;
    void this.watch?.close();
    this.watch = null;
    this.ueventUnavailable = `${why}; re-probing connectors every ${this.opts.pollMs || 1000} ms instead`;
    this.emit('degraded', this.ueventUnavailable);
    if (!this.timer) {
      this.timer = setInterval(() => {
        this.counts.polls++;
        this.emit('hotplug', { source: 'poll' });
      }, this.opts.pollMs || 1000);
      this.timer.unref?.();
    }
  }

  get usingUevents(): boolean {
    return this.sock >= 0;
  }

  /** Reads every uevent the socket holds (it is readable now). */
  private readUevents(): void {
    if (this.closed) return;
    for (;;) {
      let n: number;
      try {
        n = libc.recv(this.sock, this.buf, libc.MSG_DONTWAIT, 'netlink uevent socket');
      } catch {
        n = -1; // ENOBUFS: the kernel dropped events; the next probe sees the truth anyway
        this.emit('hotplug', { source: 'uevent' });
      }
      if (n < 0) break;
      const ev = parseUevent(this.buf, n);
      if (!ev || ev.env.SUBSYSTEM !== 'drm' || ev.env.HOTPLUG !== '1' || ev.env.DEVNAME !== this.devname) {
        this.counts.ignored++;
        continue;
      }
      this.counts.uevents++;
      const id = ev.env.CONNECTOR !== undefined ? Number(ev.env.CONNECTOR) : undefined;
      this.emit('hotplug', { source: 'uevent', connectorId: Number.isFinite(id) ? id : undefined });
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    // The socket is closed only once libuv has let go of it.
    await this.watch?.close();
    this.watch = null;
    if (this.sock >= 0) libc.close(this.sock, 'netlink uevent socket');
    this.sock = -1;
  }
}
