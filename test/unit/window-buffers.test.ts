// The window's wl_buffer cache (plugin/window/buffers.ts) across 1,000 guest mode changes
// (issue 28 item 7), against our own compositor's zwp_linux_dmabuf_v1
// (plugin/wayland/linux-dmabuf.ts) in the same process, real libwayland on both ends: each
// mode is a new guest buffer of a new size and generation, imported once; a buffer of an
// older generation is dropped (wl_buffer destroyed, so the compositor lets go of its fd) as
// soon as a newer one is asked for. Stand-in: the "dma-bufs" are memfds, since this host has
// no udmabuf or DRM device and the server without an import check only takes the fd (the
// rig runs the same with real udmabufs and a real QEMU peer: window-compositor.test.ts).
import { describe, it, expect, afterEach } from 'vitest';
import { readdirSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import { useRuntimeDir } from '../integration/helpers/wayland-client.js';
import { Display } from '../../protocols/runtime.js';
import { LinuxDmabuf } from '../../plugin/wayland/linux-dmabuf.js';
import { Connection } from '../../protocols/client-runtime.js';
import { bindGlobals, roundtrip } from '../../protocols/client.js';
import { ZwpLinuxDmabufV1 } from '../../protocols/generated/client/linux_dmabuf_unstable_v1.js';
import { WindowBuffers } from '../../plugin/window/buffers.js';
import * as libc from '../../ffi/libc.js';
import type { GuestPlaneInfo, GuestSource, GuestSourceEvents, PlaneQuery } from '../../plugin/sources/source.js';

useRuntimeDir('gp-winbuf-');
const XR24 = 0x34325258;
const DEV = 0xe201n;
const fds = () => readdirSync('/proc/self/fd').length;

/** A guest whose buffers are memfds (the compositor in this test only takes the fd). */
class MemfdGuest extends EventEmitter<GuestSourceEvents> implements GuestSource {
  readonly name = 'memfd test guest';
  readonly changeEvents = true;
  exported = 0;
  query(): PlaneQuery {
    return { state: 'disabled' };
  }
  exportDmabuf(p: GuestPlaneInfo): number {
    const fd = libc.memfdCreate('gp-winbuf', 1);
    libc.ftruncate(fd, p.stride * p.height);
    this.exported++;
    return fd;
  }
  close(): void {}
}

const plane = (i: number): GuestPlaneInfo => {
  const width = 32 + (i % 97);
  const height = 24 + (i % 53);
  return { kind: 'primary', bufferId: i, transport: 'dmabuf', format: XR24, modifier: 0n, width, height, stride: width * 4, offset: 0, size: 0, x: -1, y: -1, hotX: -1, hotY: -1, generation: i };
};

let display: Display | null = null;
let dmabuf: LinuxDmabuf | null = null;
afterEach(async () => {
  dmabuf?.close();
  dmabuf = null;
  if (display) {
    await display.stop();
    display.destroy();
    display = null;
  }
});

describe('window wl_buffer cache', () => {
  it('1,000 guest mode changes: one import each, the replaced buffers destroyed, fds and live wl_buffers flat', async () => {
    display = Display.create();
    display.addSocket('gp-winbuf');
    dmabuf = new LinuxDmabuf(display, { mainDevice: DEV, version: 3, defaultTranches: () => [{ device: DEV, flags: 0, formats: [{ format: XR24, modifier: 0n }] }] });
    display.start({ onError: () => {} });
    const conn = Connection.connect('gp-winbuf');
    try {
      const g = await bindGlobals(conn, { zwp_linux_dmabuf_v1: [ZwpLinuxDmabufV1, 3] } as const);
      let ready = 0;
      const cache = new WindowBuffers(g.zwp_linux_dmabuf_v1!, () => ready++);
      const guest = new MemfdGuest();
      /** Shows mode `i` as the window does: ask, wait for the import, ask again, attach. */
      const show = async (i: number) => {
        const p = plane(i);
        const n = ready;
        expect(cache.get(guest, 1, p, 0n).kind).toBe('pending');
        while (ready === n) await roundtrip(conn);
        const got = cache.get(guest, 1, p, 0n);
        expect(got.kind, `mode ${i}`).toBe('ready');
        if (got.kind === 'ready') cache.attached(got.buffer); // held by the compositor: no release comes in this test
      };
      for (let i = 1; i <= 10; i++) await show(i);
      await roundtrip(conn);
      const before = { fds: fds(), wlBuffers: conn.liveProxies('wl_buffer'), cached: cache.size };
      for (let i = 11; i <= 1010; i++) await show(i);
      await roundtrip(conn); // the compositor has handled the last destroys
      const after = { fds: fds(), wlBuffers: conn.liveProxies('wl_buffer'), cached: cache.size };
      console.log(`window wl_buffer cache, 1,000 mode changes: before ${JSON.stringify(before)}, after ${JSON.stringify(after)}, imports ${cache.imports}`);
      expect(cache.imports).toBe(1010);
      expect(guest.exported).toBe(1010);
      // Only the current mode's buffer is alive, in our cache and in the compositor.
      expect(after).toEqual({ fds: before.fds, wlBuffers: 1, cached: 1 });
      expect(before.wlBuffers).toBe(1);
      cache.close();
      await roundtrip(conn);
      expect(conn.liveProxies('wl_buffer')).toBe(0);
      expect(fds()).toBe(before.fds - 1); // the compositor's fd of the last buffer
    } finally {
      conn.close();
    }
  }, 120_000);
});
