// The pointer image a client gave with wl_pointer.set_cursor, as pixels for the output's
// cursor plane. A cursor surface's wl_shm buffer is copied out at each commit and released
// at once (as Weston does with wl_shm): the plane shows our copy, moved with the pointer,
// and the client may redraw its buffer. Frame callbacks are done at commit (nothing
// presents a cursor on its own). dma-buf cursors are not shown (the copy path would need a
// mapping; cursor themes draw into wl_shm): the pointer then shows no image.
//
// Ownership: the copy is ours; the surface and its buffers stay the client's.
import { beginBufferUse, endBufferUse, type ClientBuffer } from './buffer.js';
import { finishUnshown, type Surface, type SurfaceCommit } from './surface.js';

export interface CursorPicture {
  bytes: Uint8Array;
  width: number;
  height: number;
  stride: number;
  /** DRM fourcc of the copy (the client's wl_shm format). */
  format: number;
  /** Grows with every new image (the output's copy is keyed by it). */
  generation: number;
}

let generations = 0;

/** A copy of a client buffer's pixels, or null (and why) when it cannot be a cursor. */
export function copyCursorPixels(b: ClientBuffer | null): CursorPicture | { why: string } | null {
  if (!b || b.resource.destroyed) return null;
  if (b.kind === 'dmabuf') return { why: 'a dma-buf cursor image (only wl_shm cursors are shown)' };
  if (b.kind === 'solid') {
    return { bytes: Uint8Array.from(b.pixel), width: 1, height: 1, stride: 4, format: b.format, generation: ++generations };
  }
  const rowBytes = b.width * 4;
  const span = b.stride * (b.height - 1) + rowBytes;
  const bytes = b.pool.copy(b.offset, span, { buf: Buffer.alloc(0) });
  if (!bytes) return { why: 'its wl_shm pool is shorter than the buffer' };
  return { bytes: Uint8Array.from(bytes), width: b.width, height: b.height, stride: b.stride, format: b.format, generation: ++generations };
}

export class CursorImage {
  picture: CursorPicture | null = null;
  readonly #onCommit = (c: SurfaceCommit) => this.#take(c);
  readonly #onDestroy = () => this.#gone();
  #closed = false;

  constructor(
    readonly surface: Surface,
    /** The hotspot (set_cursor again on the same surface moves it). */
    public hotX: number,
    public hotY: number,
    private readonly onChange: () => void,
    private readonly log: (m: string) => void,
  ) {
    surface.on('commit', this.#onCommit);
    surface.once('destroy', this.#onDestroy);
    // A buffer committed before set_cursor is the image already (nobody released it yet).
    this.#set(surface.buffer);
  }

  #take(c: SurfaceCommit): void {
    // A damage-only commit keeps the image we copied (the buffer was released: the client's again).
    if (c.attached || !c.buffer) this.#set(c.buffer);
    finishUnshown(c);
    this.onChange();
  }

  #set(b: ClientBuffer | null): void {
    if (b) beginBufferUse(b);
    const copy = copyCursorPixels(b);
    if (copy && 'why' in copy) this.log(`cursor of ${this.surface.resource}: not shown: ${copy.why}`);
    this.picture = copy && !('why' in copy) ? copy : null;
    // A dma-buf is not read (not shown), so it is released at once too.
    if (b) endBufferUse(b);
  }

  #gone(): void {
    this.picture = null;
    this.close();
    this.onChange();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.surface.off('commit', this.#onCommit);
    this.surface.off('destroy', this.#onDestroy);
  }
}

/** The image with its top-left at (x, y) in the shown surface's coordinates. */
export interface PlacedCursor {
  picture: CursorPicture;
  x: number;
  y: number;
  hotX: number;
  hotY: number;
}

/** What shows a pointer image (the toplevel's SurfaceSource, on its output's cursor plane). */
export interface CursorTarget {
  setCursor(c: PlacedCursor | null): void;
}

/** Where the pointer is: the source of the toplevel under it and the tip in its surface coordinates. */
export interface PointerPlace {
  source: CursorTarget;
  tip: { x: number; y: number };
}

/**
 * The client's pointer image on the output: the image of the latest set_cursor the seat
 * accepted, shown by the source under the pointer (its cursor plane), hidden when the
 * pointer is over no surface (the kiosk draws no cursor of its own) or the client hid it.
 */
export class PointerCursor {
  #image: CursorImage | null = null;
  #shownOn: PointerPlace['source'] | null = null;

  constructor(
    private readonly where: () => PointerPlace | null,
    private readonly log: (m: string) => void,
  ) {}

  /** set_cursor was accepted (null: the focus left the client, whose image goes with it). */
  set(c: { surface: Surface | null; hotX: number; hotY: number } | null): void {
    if (c?.surface && this.#image?.surface === c.surface) {
      this.#image.hotX = c.hotX;
      this.#image.hotY = c.hotY;
    } else {
      this.#image?.close();
      this.#image = c?.surface ? new CursorImage(c.surface, c.hotX, c.hotY, () => this.update(), this.log) : null;
    }
    this.update();
  }

  /** The pointer moved or the scene changed. */
  update(): void {
    const w = this.where();
    const img = this.#image;
    const pic = img?.picture ?? null;
    const target = w && pic ? w.source : null;
    if (this.#shownOn && this.#shownOn !== target) this.#shownOn.setCursor(null);
    this.#shownOn = target;
    if (!target || !w || !pic || !img) return;
    // Integer positions: the hotspot lands within half a surface pixel of the pointer.
    target.setCursor({ picture: pic, x: Math.round(w.tip.x) - img.hotX, y: Math.round(w.tip.y) - img.hotY, hotX: img.hotX, hotY: img.hotY });
  }

  close(): void {
    this.#image?.close();
    this.#image = null;
    this.#shownOn = null;
  }
}
