// Guest memory as dma-bufs: what QEMU does for virtio-gpu blob scanouts. One memfd plays
// the guest's RAM; each scanout buffer is a page-aligned range of it exported through
// /dev/udmabuf. The "guest" writes pixels into the memfd mapping and flips.
//
// Ownership: the source owns the memfd, its mapping, /dev/udmabuf and one dma-buf fd per
// buffer; exportDmabuf() hands out dups the caller must close. close() releases all.
import { EventEmitter } from 'node:events';
import * as libc from '../../ffi/libc.js';
import { udmabufCreate } from '../../ffi/dmabuf.js';
import { fourcc } from '../../ffi/drm.js';
import type { GuestPlaneInfo, GuestPlaneKind, GuestSource, GuestSourceEvents, PlaneQuery } from './source.js';
import { drawPattern } from './pattern.js';

const PAGE = 4096;
const alignUp = (n: number, a: number) => Math.ceil(n / a) * a;

export interface UdmabufSourceOptions {
  width: number;
  height: number;
  /** Number of scanout buffers (2 = double, 3 = triple buffering). */
  buffers?: number;
  /** 32-bit format; default XR24. */
  format?: number;
  /** Bytes per row; default width*4 rounded up to 64 (what most GPUs want). */
  stride?: number;
  devicePath?: string;
}

interface Slot {
  offset: number;
  dmabufFd: number;
}

export class UdmabufSource extends EventEmitter<GuestSourceEvents> implements GuestSource {
  readonly name: string;
  readonly changeEvents = true;
  private devFd: number;
  private memfd = -1;
  private map: libc.Mapping | null = null;
  private slots: Slot[] = [];
  private bufSize = 0;
  private front = -1;
  private flipTime = 0n;
  private frameNo = 0;
  private enabled = true;
  private generation = 0;
  private closed = false;
  width = 0;
  height = 0;
  stride = 0;
  readonly format: number;
  readonly bufferCount: number;

  constructor(opts: UdmabufSourceOptions) {
    super();
    this.format = opts.format ?? fourcc('XR24');
    this.bufferCount = opts.buffers ?? 3;
    if (!Number.isInteger(this.bufferCount) || this.bufferCount < 1 || this.bufferCount > 16) {
      throw new RangeError(`udmabuf source: buffers must be 1..16, got ${opts.buffers}`);
    }
    const path = opts.devicePath ?? '/dev/udmabuf';
    try {
      this.devFd = libc.open(path, libc.O_RDWR);
    } catch (e) {
      throw new Error(`udmabuf source: cannot open ${path}: ${(e as Error).message}; the kernel needs CONFIG_UDMABUF (and access to the device node)`);
    }
    this.name = `udmabuf ${opts.width}x${opts.height}`;
    try {
      this.allocate(opts.width, opts.height, opts.stride);
    } catch (e) {
      this.close();
      throw e;
    }
  }

  private allocate(width: number, height: number, stride?: number): void {
    if (!(width > 0 && height > 0 && width <= 16384 && height <= 16384)) {
      throw new RangeError(`udmabuf source: size ${width}x${height} out of range 1..16384`);
    }
    const s = stride ?? alignUp(width * 4, 64);
    if (s < width * 4) throw new RangeError(`udmabuf source: stride ${s} < width*4 (${width * 4})`);
    this.releaseBuffers();
    this.width = width;
    this.height = height;
    this.stride = s;
    this.bufSize = alignUp(s * height, PAGE);
    const total = this.bufSize * this.bufferCount;
    this.memfd = libc.memfdCreate(`guestplane-guest-ram`, libc.MFD_ALLOW_SEALING);
    libc.ftruncate(this.memfd, total, 'guest memfd');
    // udmabuf refuses memfds that can shrink under it.
    libc.fcntl(this.memfd, libc.F_ADD_SEALS, libc.F_SEAL_SHRINK, 'guest memfd');
    this.map = libc.mmap(this.memfd, total, libc.PROT_READ | libc.PROT_WRITE, 0, 'guest memfd');
    for (let i = 0; i < this.bufferCount; i++) {
      const offset = i * this.bufSize;
      const dmabufFd = udmabufCreate(this.devFd, this.memfd, offset, this.bufSize);
      this.slots.push({ offset, dmabufFd });
    }
    this.generation++;
    this.front = -1;
  }

  private releaseBuffers(): void {
    for (const s of this.slots) libc.close(s.dmabufFd, 'udmabuf dma-buf');
    this.slots = [];
    this.map?.unmap();
    this.map = null;
    if (this.memfd >= 0) libc.close(this.memfd, 'guest memfd');
    this.memfd = -1;
  }

  /** The guest's view of buffer i, for rendering. */
  pixels(i: number): Uint8Array {
    if (!this.map || i < 0 || i >= this.slots.length) throw new RangeError(`udmabuf source: no buffer ${i}`);
    return this.map.bytes.subarray(this.slots[i].offset, this.slots[i].offset + this.bufSize);
  }

  /** Renders frame `frame` of the test pattern into buffer i. */
  render(i: number, frame: number): void {
    drawPattern({ bytes: this.pixels(i), offset: 0, width: this.width, height: this.height, stride: this.stride }, frame);
  }

  /** The guest page-flips to buffer i (frame number for latency/pixel checks). */
  flip(i: number, frame?: number): void {
    if (i < 0 || i >= this.slots.length) throw new RangeError(`udmabuf source: no buffer ${i}`);
    this.front = i;
    this.flipTime = process.hrtime.bigint();
    this.frameNo = frame ?? this.frameNo + 1;
    this.enabled = true;
    this.emit('changed');
  }

  /** Guest mode change: all buffers are re-created (new dma-bufs, new generation). */
  setMode(width: number, height: number, stride?: number): void {
    this.allocate(width, height, stride);
    this.emit('changed');
  }

  /** The guest turns its display off. */
  disable(): void {
    this.enabled = false;
    this.emit('changed');
  }

  query(kind: GuestPlaneKind): PlaneQuery {
    if (this.closed) return { state: 'lost', error: new Error(`${this.name} is closed`) };
    if (kind !== 'primary' || !this.enabled) return { state: 'disabled' };
    if (this.front < 0) return { state: 'not-ready', reason: 'the guest has not flipped yet' };
    return {
      state: 'ok',
      plane: {
        kind,
        bufferId: this.front,
        transport: 'dmabuf',
        format: this.format,
        modifier: 0n,
        width: this.width,
        height: this.height,
        stride: this.stride,
        offset: 0,
        size: this.bufSize,
        x: 0,
        y: 0,
        hotX: -1,
        hotY: -1,
        generation: this.generation,
        flipTimeNs: this.flipTime,
        frame: this.frameNo,
      },
    };
  }

  exportDmabuf(plane: GuestPlaneInfo): number {
    const slot = this.slots[plane.bufferId];
    if (!slot || plane.generation !== this.generation) {
      throw new Error(`${this.name}: buffer ${plane.bufferId} of generation ${plane.generation} no longer exists`);
    }
    return libc.dup(slot.dmabufFd, 'udmabuf dma-buf');
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.releaseBuffers();
    if (this.devFd >= 0) libc.close(this.devFd, '/dev/udmabuf');
    this.devFd = -1;
  }
}
