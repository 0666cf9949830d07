// Several guests on one screen, each in its own rectangle, composed by the CPU into one
// screen-sized guest-memory buffer (udmabuf) that the output then scans out as if it were
// one guest. This is the path for region heads until Output can put each guest on its own
// KMS plane: it costs one copy of each changed guest frame, and the composed buffer
// itself is scanned out zero-copy.
//
// A region redraws only when its guest showed something new (or on a buffer switch: with
// N buffers each one is N frames behind, so every region is redrawn into the buffer being
// filled, which keeps the code simple and the result exact).
//
// Ownership: the composer owns its udmabuf buffers and CPU mappings of the guests'
// buffers; the guests belong to the caller.
import { EventEmitter } from 'node:events';
import { UdmabufSource } from '../sources/udmabuf.js';
import type { CpuView, GuestPlaneInfo, GuestPlaneKind, GuestSource, GuestSourceEvents, PlaneQuery } from '../sources/source.js';
import { DmabufMaps } from './dmabuf-map.js';
import { blit, fill, placement, type FitMode, type Rect } from './cpu.js';
import { validatePlane } from '../buffers/validate.js';

export interface RegionSpec {
  source: GuestSource;
  /** Where on the screen, screen pixels. */
  region: Rect;
  fit: FitMode;
}

export interface RegionComposerStats {
  composed: number;
  bytesCopied: number;
  /** Per region: why the last frame of it was not drawn (null = drawn). */
  problems: (string | null)[];
}

/** Colour of a region whose guest shows nothing (XRGB8888), like the output's no-signal frame. */
export const REGION_NO_SIGNAL = 0xff182030;

export class RegionComposer extends EventEmitter<GuestSourceEvents> implements GuestSource {
  readonly name: string;
  readonly changeEvents = true;
  private readonly target: UdmabufSource;
  private readonly maps = new DmabufMaps();
  private readonly keys: (string | null)[];
  private next = 0;
  private frame = 0;
  private queued = false;
  private closed = false;
  private poll: NodeJS.Timeout | null = null;
  readonly stats: RegionComposerStats;
  private readonly onChanged = () => this.schedule();
  /** A region's guest took its buffers with it (QEMU went away): unmap them now. */
  private readonly onGone: (() => void)[];

  constructor(
    readonly width: number,
    readonly height: number,
    private readonly regions: RegionSpec[],
    /** Period to poll guests that cannot say when they flipped (VFIO), ms. */
    pollMs = 16,
  ) {
    super();
    for (const [i, r] of regions.entries()) {
      const g = r.region;
      if (g.x < 0 || g.y < 0 || g.width <= 0 || g.height <= 0 || g.x + g.width > width || g.y + g.height > height) {
        throw new RangeError(`region ${i} (${g.width}x${g.height}+${g.x}+${g.y}) is outside the ${width}x${height} screen; make it fit the mode`);
      }
    }
    this.name = `regions ${width}x${height} (${regions.map((r) => r.source.name).join(', ')})`;
    this.target = new UdmabufSource({ width, height, buffers: 3 });
    this.keys = regions.map(() => null);
    this.stats = { composed: 0, bytesCopied: 0, problems: regions.map(() => null) };
    this.onGone = regions.map((_, i) => () => this.maps.invalidateSource(i));
    regions.forEach((r, i) => {
      r.source.on('changed', this.onChanged);
      r.source.on('buffers-gone', this.onGone[i]!);
    });
    if (regions.some((r) => !r.source.changeEvents)) {
      this.poll = setInterval(() => this.schedule(), pollMs);
      this.poll.unref?.();
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.queued || this.closed) return;
    this.queued = true;
    setImmediate(() => {
      this.queued = false;
      if (!this.closed) this.compose(false);
    });
  }

  /** Composes a new frame if any region changed (or always, with force). Returns whether it flipped. */
  compose(force: boolean): boolean {
    const plans = this.regions.map((r, i) => {
      const q = r.source.query('primary');
      if (q.state === 'ok') {
        const p = q.plane;
        return { q, key: `${p.bufferId}/${p.generation}/${p.frame ?? ''}/${p.transport === 'region' ? this.frame : ''}`, i };
      }
      return { q, key: q.state, i };
    });
    if (!force && plans.every((p) => p.key === this.keys[p.i])) return false;
    const buf = this.next;
    const dst = { bytes: this.target.pixels(buf), offset: 0, stride: this.target.stride, width: this.width, height: this.height };
    for (const { q, key, i } of plans) {
      const spec = this.regions[i];
      const g = spec.region;
      this.keys[i] = key;
      if (q.state !== 'ok') {
        fill(dst, g, REGION_NO_SIGNAL);
        this.stats.problems[i] = q.state === 'not-ready' ? q.reason : q.state === 'lost' ? q.error.message : 'the guest display is off';
        continue;
      }
      const problem = this.drawRegion(dst, spec, i, q.plane);
      this.stats.problems[i] = problem;
      if (problem) fill(dst, g, REGION_NO_SIGNAL);
    }
    this.frame++;
    this.stats.composed++;
    this.target.flip(buf, this.frame);
    this.next = (buf + 1) % this.target.bufferCount;
    this.emit('changed');
    return true;
  }

  private drawRegion(dst: { bytes: Uint8Array; offset: number; stride: number; width: number; height: number }, spec: RegionSpec, i: number, p: GuestPlaneInfo): string | null {
    const acc = this.maps.access(spec.source, i, p);
    if ('error' in acc) return acc.error;
    const v = validatePlane(p, acc.view.bytes.byteLength - acc.view.offset + p.offset);
    if (!v.ok) return v.message;
    if (v.format.cpp[0] !== 4 || v.format.planes !== 1) return `regions take 32-bit single-plane formats, not ${v.format.code}`;
    const g = spec.region;
    const place = placement(spec.fit, p.width, p.height, g.width, g.height);
    const to = { x: g.x + place.dst.x, y: g.y + place.dst.y, width: place.dst.width, height: place.dst.height };
    // Letterbox bars in black, as a monitor shows outside the picture.
    fill(dst, { x: g.x, y: g.y, width: g.width, height: to.y - g.y }, 0xff000000);
    fill(dst, { x: g.x, y: to.y + to.height, width: g.width, height: g.y + g.height - to.y - to.height }, 0xff000000);
    fill(dst, { x: g.x, y: to.y, width: to.x - g.x, height: to.height }, 0xff000000);
    fill(dst, { x: to.x + to.width, y: to.y, width: g.x + g.width - to.x - to.width, height: to.height }, 0xff000000);
    acc.begin();
    try {
      this.stats.bytesCopied += blit({ bytes: acc.view.bytes, offset: acc.view.offset, stride: p.stride, width: p.width, height: p.height }, place.src, dst, to);
    } finally {
      acc.end();
    }
    return null;
  }

  query(kind: GuestPlaneKind): PlaneQuery {
    if (this.closed) return { state: 'lost', error: new Error(`${this.name} is closed`) };
    return this.target.query(kind);
  }

  exportDmabuf(plane: GuestPlaneInfo): number {
    return this.target.exportDmabuf(plane);
  }

  cpuView(plane: GuestPlaneInfo): CpuView | null {
    return { bytes: this.target.pixels(plane.bufferId), offset: plane.offset };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.poll) clearInterval(this.poll);
    this.regions.forEach((r, i) => {
      r.source.off('changed', this.onChanged);
      r.source.off('buffers-gone', this.onGone[i]!);
    });
    this.maps.close();
    this.target.close();
  }
}
