// CPU access to guest buffers for the copy path: mmap of the dma-buf where the exporter
// allows it (udmabuf does), otherwise the source's own CPU view (mbochs exports
// read-only dma-bufs without mmap, but its VRAM BAR maps; region planes always map).
// Ownership: each mapping keeps its dma-buf fd open (for DMA_BUF_IOCTL_SYNC) and is
// released on eviction, invalidation or close().
import * as libc from '../../ffi/libc.js';
import { dmabufSync, DMA_BUF_SYNC_START, DMA_BUF_SYNC_END, DMA_BUF_SYNC_READ } from '../../ffi/dmabuf.js';
import type { CpuView, GuestPlaneInfo, GuestSource } from '../sources/source.js';

interface Mapped {
  fd: number;
  map: libc.Mapping;
  generation: number;
  lastUsed: number;
}

export interface CpuAccess {
  view: CpuView;
  /** Bracket the reads: DMA_BUF_IOCTL_SYNC for dma-buf mappings, nothing otherwise. */
  begin(): void;
  end(): void;
}

export class DmabufMaps {
  private readonly maps = new Map<string, Mapped>();
  /** (source, buffer) whose dma-buf refused mmap: use the source's view, don't retry. */
  private readonly unmappable = new Set<string>();
  private clock = 0;

  constructor(private readonly limit = 8) {}

  access(source: GuestSource, sourceId: number, plane: GuestPlaneInfo): CpuAccess | { error: string } {
    this.clock++;
    if (plane.transport === 'region') {
      const v = source.cpuView?.(plane) ?? null;
      return v ? { view: v, begin() {}, end() {} } : { error: `${source.name} cannot map its region plane` };
    }
    const key = `${sourceId}/${plane.kind}/${plane.bufferId}`;
    let m = this.maps.get(key);
    if (m && m.generation !== plane.generation) {
      this.drop(key);
      m = undefined;
    }
    if (!m && !this.unmappable.has(`${key}/${plane.generation}`)) {
      let fd = -1;
      try {
        fd = source.exportDmabuf(plane);
        const size = Number(libc.lseek(fd, 0, libc.SEEK_END));
        const map = libc.mmap(fd, size, libc.PROT_READ, 0, `${source.name} buffer ${plane.bufferId}`);
        m = { fd, map, generation: plane.generation, lastUsed: this.clock };
        this.maps.set(key, m);
        this.evict();
      } catch {
        if (fd >= 0) libc.close(fd);
        this.unmappable.add(`${key}/${plane.generation}`);
        // Guest-chosen buffer ids: remember the newest few, not every id ever seen.
        if (this.unmappable.size > 256) this.unmappable.delete(this.unmappable.values().next().value as string);
      }
    }
    if (m) {
      m.lastUsed = this.clock;
      const fd = m.fd;
      return {
        view: { bytes: m.map.bytes, offset: plane.offset },
        begin: () => dmabufSync(fd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ),
        end: () => dmabufSync(fd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ),
      };
    }
    const v = source.cpuView?.(plane) ?? null;
    if (!v) return { error: `${source.name}: its dma-buf cannot be mapped and the source offers no other CPU access` };
    return { view: v, begin() {}, end() {} };
  }

  private evict(): void {
    if (this.maps.size <= this.limit) return;
    const oldest = [...this.maps.entries()].sort((a, b) => a[1].lastUsed - b[1].lastUsed)[0];
    this.drop(oldest[0]);
  }

  private drop(key: string): void {
    const m = this.maps.get(key);
    if (!m) return;
    this.maps.delete(key);
    m.map.unmap();
    libc.close(m.fd, 'mapped dma-buf');
  }

  /** Drops the mappings of one buffer gone for good (its keys are source/kind/buffer). */
  forgetBuffer(sourceId: number, bufferId: number): void {
    const ofBuffer = (k: string) => {
      const [s, , b] = k.split('/');
      return s === String(sourceId) && b === String(bufferId);
    };
    for (const k of [...this.maps.keys()]) if (ofBuffer(k)) this.drop(k);
    for (const k of [...this.unmappable]) if (ofBuffer(k)) this.unmappable.delete(k);
  }

  invalidateSource(sourceId: number): void {
    for (const k of [...this.maps.keys()]) if (k.startsWith(`${sourceId}/`)) this.drop(k);
    for (const k of [...this.unmappable]) if (k.startsWith(`${sourceId}/`)) this.unmappable.delete(k);
  }

  close(): void {
    for (const k of [...this.maps.keys()]) this.drop(k);
    this.unmappable.clear();
  }
}
