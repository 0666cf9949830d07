// A rectangle of another guest source, itself a guest source: one head of a guest desktop
// that spans several monitors in one framebuffer. Zero-copy stays possible: the view is the
// same dma-buf with the first pixel moved (offset) and a smaller width/height, which KMS
// takes as an FB with an offset.
//
// Ownership: the view does not own the source it looks into; close() only unhooks it.
import { EventEmitter } from 'node:events';
import * as drm from '../../ffi/drm.js';
import type { CpuView, GuestPlaneInfo, GuestPlaneKind, GuestSource, GuestSourceEvents, PlaneQuery } from './source.js';

export interface ViewRect {
  x: number;
  y: number;
  width: number;
  height: number;
}

export class ViewSource extends EventEmitter<GuestSourceEvents> implements GuestSource {
  readonly name: string;
  readonly changeEvents: boolean;
  private readonly onChanged = () => this.emit('changed');
  private readonly onLost = (e: Error) => this.emit('lost', e);
  private readonly onGone = () => this.emit('buffers-gone');
  /** Offsets added per plane we handed out, to undo them for the inner source. */
  private readonly deltas = new WeakMap<GuestPlaneInfo, { plane: GuestPlaneInfo; delta: number }>();
  private closed = false;

  constructor(
    readonly inner: GuestSource,
    readonly rect: ViewRect,
  ) {
    super();
    this.name = `${inner.name} [${rect.width}x${rect.height}+${rect.x}+${rect.y}]`;
    this.changeEvents = inner.changeEvents;
    inner.on('changed', this.onChanged);
    inner.on('lost', this.onLost);
    inner.on('buffers-gone', this.onGone);
  }

  query(kind: GuestPlaneKind): PlaneQuery {
    if (this.closed) return { state: 'lost', error: new Error(`${this.name} is closed`) };
    const q = this.inner.query(kind);
    if (q.state !== 'ok' || kind !== 'primary') return q;
    const p = q.plane;
    const r = this.rect;
    if (r.x + r.width > p.width || r.y + r.height > p.height) {
      // The guest's screen is smaller than the view (a mode change in progress, or a wrong
      // config): say so instead of reading past its buffer.
      return { state: 'not-ready', reason: `${this.name}: the guest screen is ${p.width}x${p.height}, smaller than the view; set the guest to at least ${r.x + r.width}x${r.y + r.height}` };
    }
    const info = drm.formatInfo(p.format);
    if (!info || info.planes !== 1) return { state: 'not-ready', reason: `${this.name}: views of ${drm.fourccName(p.format)} (multi-planar or unknown) are not supported` };
    const delta = r.y * p.stride + r.x * info.cpp[0];
    const plane: GuestPlaneInfo = { ...p, offset: p.offset + delta, width: r.width, height: r.height };
    this.deltas.set(plane, { plane: p, delta });
    return { state: 'ok', plane };
  }

  private original(plane: GuestPlaneInfo): { plane: GuestPlaneInfo; delta: number } {
    return this.deltas.get(plane) ?? { plane: { ...plane, offset: plane.offset }, delta: 0 };
  }

  exportDmabuf(plane: GuestPlaneInfo): number {
    return this.inner.exportDmabuf(this.original(plane).plane);
  }

  cpuView(plane: GuestPlaneInfo): CpuView | null {
    if (!this.inner.cpuView) return null;
    const o = this.original(plane);
    const v = this.inner.cpuView(o.plane);
    return v ? { bytes: v.bytes, offset: v.offset + o.delta } : null;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.inner.off('changed', this.onChanged);
    this.inner.off('lost', this.onLost);
    this.inner.off('buffers-gone', this.onGone);
  }
}
