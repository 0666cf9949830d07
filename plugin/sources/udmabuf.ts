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
import { FLIPPED_180 } from '../transform.js';

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
  /**
   * The guest's scanout is stored bottom-up, as GL renders it (QEMU's D-Bus display says
   * so with y0_top = true; its virtio-gpu blob scanouts of plain dumb buffers are top-down,
   * measured with a real guest): planes show it flipped (reflect-y), and
   * render() draws its pattern bottom-up so that it appears upright.
   */
  yInverted?: boolean;
}

interface Slot {
  offset: number;
  dmabufFd: number;
}

export interface UdmabufCursorOptions {
  width: number;
  height: number;
  /** Pointer position within the image; default 0,0. */
  hotX?: number;
  hotY?: number;
  /** Default AR24 (premultiplied ARGB, as cursors are). */
  format?: number;
}

/** The guest's hardware cursor: its own buffer, moved without touching the primary. */
interface Cursor {
  memfd: number;
  map: libc.Mapping;
  dmabufFd: number;
  width: number;
  height: number;
  stride: number;
  size: number;
  format: number;
  hotX: number;
  hotY: number;
  x: number;
  y: number;
  visible: boolean;
  /** Bumped by cursorUpdated(): the image changed in place. */
  serial: number;
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
  private readonly yInverted: boolean;
  private closed = false;
  private cursor: Cursor | null = null;
  private cursorGeneration = 0;
  width = 0;
  height = 0;
  stride = 0;
  readonly format: number;
  readonly bufferCount: number;

  constructor(opts: UdmabufSourceOptions) {
    super();
    this.format = opts.format ?? fourcc('XR24');
    this.yInverted = opts.yInverted === true;
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
    const px = this.pixels(i);
    drawPattern({ bytes: px, offset: 0, width: this.width, height: this.height, stride: this.stride }, frame);
    if (this.yInverted) {
      // Stored bottom-up: swap rows top for bottom.
      const row = new Uint8Array(this.stride);
      for (let a = 0, b = this.height - 1; a < b; a++, b--) {
        row.set(px.subarray(a * this.stride, (a + 1) * this.stride));
        px.copyWithin(a * this.stride, b * this.stride, (b + 1) * this.stride);
        px.set(row, b * this.stride);
      }
    }
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

  /** Gives the guest a hardware cursor image (hidden until moveCursor). Replaces any earlier one. */
  setCursor(opts: UdmabufCursorOptions): void {
    const { width, height } = opts;
    if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0 && width <= 512 && height <= 512)) {
      throw new RangeError(`udmabuf source: cursor size ${width}x${height} out of range 1..512`);
    }
    this.releaseCursor();
    const stride = width * 4;
    const size = alignUp(stride * height, PAGE);
    const memfd = libc.memfdCreate('guestplane-guest-cursor', libc.MFD_ALLOW_SEALING);
    let map: libc.Mapping | null = null;
    try {
      libc.ftruncate(memfd, size, 'guest cursor memfd');
      libc.fcntl(memfd, libc.F_ADD_SEALS, libc.F_SEAL_SHRINK, 'guest cursor memfd');
      map = libc.mmap(memfd, size, libc.PROT_READ | libc.PROT_WRITE, 0, 'guest cursor memfd');
      const dmabufFd = udmabufCreate(this.devFd, memfd, 0, size);
      this.cursorGeneration++;
      this.cursor = { memfd, map, dmabufFd, width, height, stride, size, format: opts.format ?? fourcc('AR24'), hotX: opts.hotX ?? 0, hotY: opts.hotY ?? 0, x: 0, y: 0, visible: false, serial: 0 };
    } catch (e) {
      map?.unmap();
      libc.close(memfd, 'guest cursor memfd');
      throw e;
    }
  }

  /** The cursor image's bytes (stride width*4), for the guest to draw into; then cursorUpdated(). */
  cursorPixels(): Uint8Array {
    if (!this.cursor) throw new Error('udmabuf source: no cursor; call setCursor first');
    return this.cursor.map.bytes.subarray(0, this.cursor.stride * this.cursor.height);
  }

  get cursorStride(): number {
    return this.cursor?.stride ?? 0;
  }

  /** The guest redrew its cursor image in place. */
  cursorUpdated(): void {
    if (!this.cursor) return;
    this.cursor.serial++;
    this.emit('changed');
  }

  /** The guest moves its cursor: (x, y) is the image's top-left on the guest screen. */
  moveCursor(x: number, y: number): void {
    if (!this.cursor) throw new Error('udmabuf source: no cursor; call setCursor first');
    this.cursor.x = x;
    this.cursor.y = y;
    this.cursor.visible = true;
    this.emit('changed');
  }

  hideCursor(): void {
    if (!this.cursor) return;
    this.cursor.visible = false;
    this.emit('changed');
  }

  private releaseCursor(): void {
    const c = this.cursor;
    if (!c) return;
    this.cursor = null;
    libc.close(c.dmabufFd, 'udmabuf cursor dma-buf');
    c.map.unmap();
    libc.close(c.memfd, 'guest cursor memfd');
  }

  private queryCursor(): PlaneQuery {
    const c = this.cursor;
    if (!c || !c.visible) return { state: 'disabled' };
    return {
      state: 'ok',
      plane: {
        kind: 'cursor',
        bufferId: 0,
        transport: 'dmabuf',
        format: c.format,
        modifier: 0n,
        width: c.width,
        height: c.height,
        stride: c.stride,
        offset: 0,
        size: c.size,
        x: c.x,
        y: c.y,
        hotX: c.hotX,
        hotY: c.hotY,
        generation: this.cursorGeneration,
        frame: c.serial,
      },
    };
  }

  query(kind: GuestPlaneKind): PlaneQuery {
    if (this.closed) return { state: 'lost', error: new Error(`${this.name} is closed`) };
    if (kind === 'cursor') return this.queryCursor();
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
        ...(this.yInverted ? { transform: FLIPPED_180 } : {}),
      },
    };
  }

  exportDmabuf(plane: GuestPlaneInfo): number {
    if (plane.kind === 'cursor') {
      if (!this.cursor || plane.generation !== this.cursorGeneration) throw new Error(`${this.name}: cursor buffer of generation ${plane.generation} no longer exists`);
      return libc.dup(this.cursor.dmabufFd, 'udmabuf cursor dma-buf');
    }
    const slot = this.slots[plane.bufferId];
    if (!slot || plane.generation !== this.generation) {
      throw new Error(`${this.name}: buffer ${plane.bufferId} of generation ${plane.generation} no longer exists`);
    }
    return libc.dup(slot.dmabufFd, 'udmabuf dma-buf');
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.releaseCursor();
    this.releaseBuffers();
    if (this.devFd >= 0) libc.close(this.devFd, '/dev/udmabuf');
    this.devFd = -1;
  }
}
