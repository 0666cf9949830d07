// What a QEMU console shows now, as QEMU last described it: a dma-buf (ScanoutDMABUF, or
// ScanoutDMABUF2 of QEMU 10.1+ with a sub-rectangle of a larger buffer) or a pixel surface
// (Scanout/Update in the message, or ScanoutMap/UpdateMap through a memfd). The console
// source (qemu-dbus.ts) decides when a call is a frame and paces QEMU; this file keeps the
// buffers and turns them into the GuestPlaneInfo the output asks for.
//
// ScanoutDMABUF2's rectangle is the part of the buffer QEMU shows (a guest scanout smaller
// than its framebuffer, or at an offset in it): the plane is the whole backing buffer and
// the rectangle its crop, so KMS reads only that part (the plane's source rectangle).
// Multi-plane formats (NV12 and the like) are taken when every plane is in one dma-buf (QEMU
// sends an fd per plane; for a udmabuf or a GPU allocation they are the same file): the FB
// cache imports one buffer per guest plane. Planes in separate buffers are refused by name.
//
// Ownership: one fd per known dma-buf inode (qemu-dmabufs.ts), the memfd of a shared map
// (qemu-map.ts) and the shadow pixels, until replaced or close(). exportDmabuf() returns
// dups the caller closes.
import type { DbusFd } from '../dbus/connection.js';
import type { Rect } from '../geometry.js';
import * as drm from '../../ffi/drm.js';
import { dmabufExporter } from '../../ffi/dmabuf.js';
import { NORMAL, withYInvert } from '../transform.js';
import { MappedSurface } from './qemu-map.js';
import { KnownDmabufs, dmabufInode, type KnownBuffer } from './qemu-dmabufs.js';
import { ListenerError, type ListenerCall } from './qemu-dbus-protocol.js';
import type { CpuView, GuestPlaneInfo } from './source.js';

/** Counters a console source draws its buffer ids, generations and frame numbers from. */
export interface QemuIdSpace {
  bufferId: number;
  generation: number;
  frame: number;
}

type Scanout =
  | ({ kind: 'dmabuf'; buffer: KnownBuffer; inode: string; generation: number } & DmabufLayout)
  | { kind: 'surface'; bufferId: number; width: number; height: number; stride: number; fourcc: number; pixels: Buffer; generation: number };

type DmabufLayout = { width: number; height: number; stride: number; offset: number; fourcc: number; modifier: bigint; y0Top: boolean; crop: Rect | null; planes: readonly { offset: number; stride: number }[] };
type DmabufCall = Extract<ListenerCall, { member: 'ScanoutDMABUF' }>;
type Dmabuf2Call = Extract<ListenerCall, { member: 'ScanoutDMABUF2' }>;

export class QemuScanout {
  readonly #buffers = new KnownDmabufs();
  #scanout: Scanout | null = null;
  /** The surface's memfd while QEMU shares it (Unix.Map); the shadow is read from it. */
  #map: MappedSurface | null = null;

  constructor(private readonly ids: QemuIdSpace) {}

  get kind(): 'dmabuf' | 'surface' | null {
    return this.#scanout?.kind ?? null;
  }

  get buffersKnown(): number {
    return this.#buffers.size;
  }

  /** Open fds held (tests: flat over many scanouts). */
  get heldFds(): number {
    return this.#buffers.size + (this.#map ? 1 : 0);
  }

  /** A (new or known) dma-buf is the scanout now; the same layout keeps the generation. `known`: its inode was seen before. */
  dmabuf(c: DmabufCall, fd: number): { known: boolean } {
    return this.#setDmabuf(fd, { width: c.width, height: c.height, stride: c.stride, offset: 0, fourcc: c.fourcc, modifier: c.modifier, y0Top: c.y0Top, crop: null, planes: [] }, 'ScanoutDMABUF');
  }

  /**
   * ScanoutDMABUF2 (QEMU 10.1+): one plane → the backing buffer with the rectangle as its
   * crop. `takeFd` is called only once the call is known to be shown: refused calls leave
   * their fds to the connection, which closes them.
   */
  dmabuf2(c: Dmabuf2Call, takeFd: (v: DbusFd) => number): { known: boolean } {
    if (c.planes.length > 1) samePlaneBuffer(c);
    const p = c.planes[0]!;
    const whole = c.x === 0 && c.y === 0 && c.width === c.backingWidth && c.height === c.backingHeight;
    // QEMU's rectangle is in buffer rows (its egl_fb_blit reads rows y..y+h of the texture,
    // flipped or not); the crop is in picture pixels: with GL's bottom-up rows (y0_top) the
    // picture's row r is the buffer's row backingHeight-1-r, so the rectangle is reflected.
    const y = c.y0Top ? c.backingHeight - c.y - c.height : c.y;
    const crop = whole ? null : { x: c.x, y, width: c.width, height: c.height };
    return this.#setDmabuf(takeFd(c.fds[0]!), { width: c.backingWidth, height: c.backingHeight, stride: p.stride, offset: p.offset, fourcc: c.fourcc, modifier: c.modifier, y0Top: c.y0Top, crop, planes: c.planes.slice(1) }, 'ScanoutDMABUF2');
  }

  #setDmabuf(fd: number, d: DmabufLayout, member: string): { known: boolean } {
    // QEMU 10.1+ sends its udmabufs (guest memory: virtio-gpu blob scanouts) with modifier
    // DRM_FORMAT_MOD_INVALID, "no modifier said". A udmabuf has no layout but the bytes as
    // they are: linear. Said so, a desktop compositor whose linux-dmabuf v4 lists only
    // explicit modifiers (KMS-backed ones list LINEAR, not INVALID) takes it as it is.
    if (d.modifier === drm.DRM_FORMAT_MOD_INVALID && dmabufExporter(fd) === 'udmabuf') d = { ...d, modifier: drm.DRM_FORMAT_MOD_LINEAR };
    const current = this.#scanout?.kind === 'dmabuf' ? this.#scanout.inode : null;
    const { buffer, inode, known } = this.#buffers.adopt(fd, d, current, () => ++this.ids.bufferId, member);
    this.#dropMap();
    const s = this.#scanout;
    const same = s?.kind === 'dmabuf' && s.width === d.width && s.height === d.height && s.stride === d.stride && s.offset === d.offset && s.fourcc === d.fourcc && s.modifier === d.modifier && samePlanes(s.planes, d.planes);
    this.#scanout = { kind: 'dmabuf', buffer, inode, ...d, generation: same ? s.generation : ++this.ids.generation };
    return { known };
  }

  /**
   * A pixel surface (gl=off): the shadow the copy path reads. 'unchanged': the pixels are
   * those already shown (QEMU 7.2 resends the whole surface every refresh); not a frame.
   */
  pixels(c: Extract<ListenerCall, { member: 'Scanout' }>, shown: boolean): 'new' | 'unchanged' {
    // A surface in the message replaces a shared map.
    this.#dropMap();
    const s = this.#scanout;
    const reuse = s?.kind === 'surface' && s.width === c.width && s.height === c.height && s.fourcc === c.fourcc;
    const stride = c.width * 4;
    let pixels: Buffer;
    if (c.stride === stride) {
      // The message's bytes are already our copy: they become the shadow as they are.
      pixels = c.data.subarray(0, stride * c.height);
      if (reuse && shown && pixels.equals(s.pixels)) return 'unchanged';
    } else {
      pixels = reuse ? s.pixels : Buffer.alloc(stride * c.height);
      for (let y = 0; y < c.height; y++) c.data.copy(pixels, y * stride, y * c.stride, y * c.stride + stride);
    }
    this.#scanout = { kind: 'surface', bufferId: reuse ? s.bufferId : ++this.ids.bufferId, width: c.width, height: c.height, stride, fourcc: c.fourcc, pixels, generation: reuse ? s.generation : ++this.ids.generation };
    return 'new';
  }

  /** QEMU's surface as a memfd (Unix.Map): read once now, then per UpdateMap only the damage. Takes `fd`. */
  map(c: Extract<ListenerCall, { member: 'ScanoutMap' }>, fd: number): void {
    const surface = new MappedSurface(fd, c.offset, c.width, c.height, c.stride);
    const s = this.#scanout;
    const reuse = s?.kind === 'surface' && s.width === c.width && s.height === c.height && s.fourcc === c.fourcc;
    const pixels = reuse ? s.pixels : Buffer.alloc(c.width * 4 * c.height);
    try {
      surface.read(pixels, 0, 0, c.width, c.height);
    } catch (e) {
      surface.close();
      throw e;
    }
    this.#dropMap();
    this.#map = surface;
    this.#scanout = { kind: 'surface', bufferId: reuse ? s.bufferId : ++this.ids.bufferId, width: c.width, height: c.height, stride: c.width * 4, fourcc: c.fourcc, pixels, generation: reuse ? s.generation : ++this.ids.generation };
  }

  /** The damaged rectangle into the shadow, from the message (Update) or the memfd (UpdateMap); false when there is no surface to update. */
  update(c: Extract<ListenerCall, { member: 'Update' | 'UpdateMap' }>): boolean {
    const s = this.#scanout;
    if (s?.kind !== 'surface' || (c.member === 'UpdateMap' && !this.#map)) return false;
    if (c.member === 'UpdateMap') {
      this.#map!.read(s.pixels, c.x, c.y, c.w, c.h);
      return true;
    }
    if (c.fourcc !== s.fourcc) throw new ListenerError('Update', `format changed without a Scanout`);
    // Only the part inside the surface: QEMU clips, a lying peer is cut to size.
    const w = Math.min(c.w, s.width - c.x);
    const h = Math.min(c.h, s.height - c.y);
    if (w <= 0 || h <= 0) return false;
    for (let y = 0; y < h; y++) c.data.copy(s.pixels, (c.y + y) * s.stride + c.x * 4, y * c.stride, y * c.stride + w * 4);
    return true;
  }

  #dropMap(): void {
    this.#map?.close();
    this.#map = null;
  }

  /**
   * The primary plane as the output takes it, or null with nothing to show. Asked once a
   * frame: each kind is written out as one literal. With a shared part spread into each,
   * this had the largest self time of the source's code in the rig's V8 profile (112-136 ms
   * in 8 s of frames, JIT-cold).
   */
  primary(frame: number, flipTimeNs: bigint): GuestPlaneInfo | null {
    const s = this.#scanout;
    if (!s) return null;
    if (s.kind === 'surface') {
      return { kind: 'primary', x: -1, y: -1, hotX: -1, hotY: -1, frame, flipTimeNs, generation: s.generation, width: s.width, height: s.height, stride: s.stride, format: s.fourcc, bufferId: s.bufferId, transport: 'region', offset: 0, modifier: 0n, size: s.pixels.length };
    }
    return {
      kind: 'primary',
      x: -1,
      y: -1,
      hotX: -1,
      hotY: -1,
      frame,
      flipTimeNs,
      generation: s.generation,
      width: s.width,
      height: s.height,
      stride: s.stride,
      format: s.fourcc,
      bufferId: s.buffer.bufferId,
      transport: 'dmabuf',
      offset: s.offset,
      modifier: s.modifier,
      size: s.buffer.size,
      transform: s.y0Top ? Y_INVERTED : undefined,
      crop: s.crop ? { ...s.crop } : undefined,
      planes: s.planes.length ? s.planes.map((q) => ({ ...q })) : undefined,
    };
  }

  exportDmabuf(bufferId: number, what: string): number | null {
    return this.#buffers.dup(bufferId, what);
  }

  cpuView(bufferId: number): CpuView | null {
    const s = this.#scanout;
    return s?.kind === 'surface' && s.bufferId === bufferId ? { bytes: s.pixels, offset: 0 } : null;
  }

  close(): void {
    this.#buffers.close();
    this.#dropMap();
    this.#scanout = null;
  }
}

/** The transform of a buffer QEMU marks y0_top: composed once (compose() probes all eight), not per frame. */
const Y_INVERTED = withYInvert(NORMAL, true);

function samePlanes(a: DmabufLayout['planes'], b: DmabufLayout['planes']): boolean {
  return a.length === b.length && a.every((p, i) => p.offset === b[i]!.offset && p.stride === b[i]!.stride);
}

/**
 * A multi-plane ScanoutDMABUF2 is taken when QEMU's plane count is the format's and every
 * fd is the first plane's buffer (one import per guest buffer; fds past the first are the
 * connection's to close). A format we do not know, or planes in separate buffers, is refused.
 */
function samePlaneBuffer(c: Dmabuf2Call): void {
  const info = drm.formatInfo(c.fourcc);
  const name = drm.fourccName(c.fourcc);
  if (!info || info.planes !== c.planes.length) throw new ListenerError('ScanoutDMABUF2', `${name} has ${info ? info.planes : 'an unknown number of'} plane(s), but QEMU described ${c.planes.length}`);
  const first = dmabufInode(c.fds[0]!.fd);
  const apart = c.fds.filter((f) => dmabufInode(f.fd) !== first).length;
  if (apart) throw new ListenerError('ScanoutDMABUF2', `${name}'s ${c.planes.length} planes are in ${apart + 1} separate buffers: guestplane takes a multi-plane format only from one dma-buf (as a udmabuf or one GPU allocation gives)`);
}
