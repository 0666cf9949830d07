// The copy fallback of window mode: when the desktop compositor cannot take the guest's
// dma-buf (no linux-dmabuf, format/modifier not offered, import failed), the guest's
// pixels are copied by the CPU (the KMS copy path's mapping and blit: compose/dmabuf-map.ts,
// compose/cpu.ts) into wl_shm buffers of the same size and format. 32-bit formats only.
//
// Ownership: one memfd-backed wl_shm_pool per size holds RING buffers; the memfd stays
// open and mapped (we write into it) until the ring is replaced (size or format change) or
// close(); the pool proxy is destroyed right after its buffers are made (they keep the
// pool's memory alive in the compositor). A buffer is busy from attach until `release`.
// The dma-buf mappings are DmabufMaps' (released on invalidate or close()).
import * as libc from '../../ffi/libc.js';
import { WlShmFormat, type WlBuffer } from '../../protocols/generated/client/wayland.js';
import { DmabufMaps } from '../compose/dmabuf-map.js';
import { blit, CPU_BPP } from '../compose/cpu.js';
import type { GuestPlaneInfo, GuestSource } from '../sources/source.js';
import type { Desktop } from './connection.js';

const RING = 3;
const MFD_CLOEXEC = 1;
const PROT_READ_WRITE = 3;
const XR24 = 0x34325258;
const AR24 = 0x34325241;
/** These 32-bit DRM formats copy as-is; wl_shm codes equal DRM fourccs except the two classic ones. */
const COPYABLE = new Set(['XR24', 'AR24', 'XB24', 'AB24', 'RX24', 'BX24', 'RA24', 'BA24', 'XR30', 'AR30', 'XB30', 'AB30']);
const fourccName = (f: number): string => String.fromCharCode(f & 0xff, (f >> 8) & 0xff, (f >> 16) & 0xff, (f >>> 24) & 0xff);

interface Slot {
  buffer: WlBuffer;
  offset: number;
  busy: boolean;
}
interface Ring {
  key: string;
  fd: number;
  map: libc.Mapping;
  stride: number;
  slots: Slot[];
}

export type CopyResult = { kind: 'ok'; buffer: WlBuffer; bytes: number } | { kind: 'busy' } | { kind: 'refused'; cause: string; message: string };

export class ShmCopies {
  readonly #desktop: Desktop;
  readonly #maps = new DmabufMaps(4);
  #ring: Ring | null = null;

  constructor(desktop: Desktop) {
    this.#desktop = desktop;
  }

  /** Copies the plane into a free shm buffer; 'busy' when the compositor holds all of them (ask again on release). */
  copy(source: GuestSource, sourceId: number, p: GuestPlaneInfo): CopyResult {
    const name = fourccName(p.format);
    const shmFormat = p.format === XR24 ? WlShmFormat.XRGB8888 : p.format === AR24 ? WlShmFormat.ARGB8888 : p.format;
    if (!COPYABLE.has(name) || !this.#desktop.takesShm(shmFormat)) {
      return { kind: 'refused', cause: 'copy-format', message: `${source.name}: ${name} can neither be handed over as a dma-buf nor copied into a wl_shm buffer the desktop compositor takes` };
    }
    const access = this.#maps.access(source, sourceId, p);
    if ('error' in access) return { kind: 'refused', cause: 'copy-map', message: access.error };
    const ring = this.#ringFor(p.width, p.height, shmFormat);
    const slot = ring.slots.find((s) => !s.busy);
    if (!slot) return { kind: 'busy' };
    access.begin();
    let bytes: number;
    try {
      const all = { x: 0, y: 0, width: p.width, height: p.height };
      bytes = blit(
        { bytes: access.view.bytes, offset: access.view.offset, stride: p.stride, width: p.width, height: p.height }, all,
        { bytes: ring.map.bytes, offset: slot.offset, stride: ring.stride, width: p.width, height: p.height }, all,
      );
    } finally {
      access.end();
    }
    slot.busy = true;
    return { kind: 'ok', buffer: slot.buffer, bytes };
  }

  #ringFor(width: number, height: number, format: number): Ring {
    const key = `${width}x${height}/${format}`;
    if (this.#ring?.key === key) return this.#ring;
    this.#dropRing();
    const stride = width * CPU_BPP;
    const size = stride * height;
    const fd = libc.memfdCreate('guestplane-window-copy', MFD_CLOEXEC);
    try {
      libc.ftruncate(fd, size * RING);
      const map = libc.mmap(fd, size * RING, PROT_READ_WRITE, 0, 'window copy buffers');
      const pool = this.#desktop.globals.shm.createPool(fd, size * RING);
      const slots: Slot[] = [];
      for (let i = 0; i < RING; i++) {
        const slot: Slot = { buffer: pool.createBuffer(i * size, width, height, stride, format), offset: i * size, busy: false };
        slot.buffer.on({ release: () => (slot.busy = false) });
        slots.push(slot);
      }
      pool.destroy();
      this.#ring = { key, fd, map, stride, slots };
      return this.#ring;
    } catch (e) {
      libc.close(fd);
      throw e;
    }
  }

  #dropRing(): void {
    const r = this.#ring;
    if (!r) return;
    this.#ring = null;
    for (const s of r.slots) if (!s.buffer.destroyed) s.buffer.destroy();
    r.map.unmap();
    libc.close(r.fd, 'window copy memfd');
  }

  invalidate(sourceId: number): void {
    this.#maps.invalidateSource(sourceId);
  }

  close(): void {
    this.#dropRing();
    this.#maps.close();
  }
}
