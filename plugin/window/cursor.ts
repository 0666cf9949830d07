// The guest's pointer image, drawn by the desktop: QEMU's CursorDefine (the source's
// 'cursor' plane, premultiplied ARGB8888, which is wl_shm's ARGB8888) copied once per image
// into a wl_shm buffer on a cursor surface of our own, handed to wl_pointer.set_cursor with
// its hotspot. The desktop then draws it at its own pointer, so it never lags the guest
// (whose MouseSet position is ignored here: in the window the desktop's pointer is the
// guest's). Scaled as the window scales the guest picture (a viewport on the cursor
// surface), so it keeps its size relative to the guest. A guest with no cursor image (none
// defined yet, or MouseSet hid it) hides the desktop's pointer over the window: the guest
// draws its own pointer then, or none.
//
// Ownership: the cursor surface, its viewport and the current image's wl_buffer (its memfd
// is closed once the pool request is sent) are this object's and go in destroy(); a
// replaced image's buffer is destroyed when the next one has been committed.
import * as libc from '../../ffi/libc.js';
import { WlShmFormat, type WlBuffer, type WlPointer, type WlSurface } from '../../protocols/generated/client/wayland.js';
import type { WpViewport } from '../../protocols/generated/client/viewporter.js';
import type { GuestSource } from '../sources/source.js';
import type { Desktop } from './connection.js';

const MFD_CLOEXEC = 1;

interface Image {
  key: string;
  buffer: WlBuffer;
  width: number;
  height: number;
  hotX: number;
  hotY: number;
}

export class WindowCursor {
  readonly #desktop: Desktop;
  readonly #surface: WlSurface;
  readonly #viewport: WpViewport | null;
  #image: Image | null = null;
  /** The pointer and the serial of its latest enter on our window (set_cursor must quote it). */
  #pointer: { proxy: WlPointer; serial: number } | null = null;
  #scale = 1;
  /** What was last handed to set_cursor ('' = hidden), so an unchanged image is not sent again. */
  #sent: string | null = null;
  #destroyed = false;
  /** Images made (one per CursorDefine shown): tests and stats. */
  images = 0;

  constructor(desktop: Desktop) {
    this.#desktop = desktop;
    this.#surface = desktop.globals.compositor.createSurface();
    this.#viewport = desktop.globals.viewporter?.getViewport(this.#surface) ?? null;
  }

  /** The pointer entered the window (`serial` of its enter); null: it left. */
  entered(pointer: WlPointer | null, serial = 0): void {
    this.#pointer = pointer ? { proxy: pointer, serial } : null;
    this.#sent = null;
  }

  /**
   * Shows the guest's current cursor (when the pointer is over the window), `scale` the
   * window's scale of the guest picture. Cheap when nothing changed: call it on every
   * source change.
   */
  update(source: GuestSource | null, scale: number): void {
    if (this.#destroyed || this.#desktop.connection.closed) return;
    const q = source?.query('cursor');
    const plane = q?.state === 'ok' ? q.plane : null;
    const view = plane && source ? source.cpuView?.(plane) ?? null : null;
    if (plane && view) this.#take(`${plane.bufferId}/${plane.generation}`, plane.width, plane.height, plane.stride, plane.hotX, plane.hotY, view.bytes.subarray(view.offset));
    const shown = plane && view ? this.#image : null;
    const s = this.#viewport && Number.isFinite(scale) && scale > 0 ? scale : 1;
    if (shown && s !== this.#scale) {
      this.#scale = s;
      this.#viewport!.setDestination(Math.max(1, Math.round(shown.width * s)), Math.max(1, Math.round(shown.height * s)));
      this.#surface.commit();
      this.#sent = null;
    }
    this.#send(shown);
  }

  #send(img: Image | null): void {
    const p = this.#pointer;
    if (!p) return;
    const what = img ? `${img.key}@${this.#scale}` : '';
    if (what === this.#sent) return;
    this.#sent = what;
    if (!img) return p.proxy.setCursor(p.serial, null, 0, 0);
    p.proxy.setCursor(p.serial, this.#surface, Math.round(img.hotX * this.#scale), Math.round(img.hotY * this.#scale));
  }

  /** The image `key` as our buffer on the cursor surface (made once per image). */
  #take(key: string, width: number, height: number, stride: number, hotX: number, hotY: number, bytes: Uint8Array): void {
    if (this.#image?.key === key) return;
    if (width <= 0 || height <= 0 || stride < width * 4 || bytes.length < stride * (height - 1) + width * 4) return;
    const buffer = this.#shmBuffer(width, height, stride, bytes);
    this.#surface.attach(buffer, 0, 0);
    this.#surface.damageBuffer(0, 0, width, height);
    if (this.#viewport) this.#viewport.setDestination(Math.max(1, Math.round(width * this.#scale)), Math.max(1, Math.round(height * this.#scale)));
    this.#surface.commit();
    this.#image?.buffer.destroy();
    this.#image = { key, buffer, width, height, hotX: Math.max(0, hotX), hotY: Math.max(0, hotY) };
    this.images++;
  }

  #shmBuffer(width: number, height: number, stride: number, bytes: Uint8Array): WlBuffer {
    const size = width * 4 * height;
    const fd = libc.memfdCreate('guestplane-cursor', MFD_CLOEXEC);
    try {
      libc.ftruncate(fd, size);
      const rows = Buffer.alloc(size);
      for (let y = 0; y < height; y++) rows.set(bytes.subarray(y * stride, y * stride + width * 4), y * width * 4);
      libc.pwrite(fd, rows, 0);
      const pool = this.#desktop.globals.shm.createPool(fd, size);
      const buffer = pool.createBuffer(0, width, height, width * 4, WlShmFormat.ARGB8888);
      pool.destroy();
      return buffer;
    } finally {
      libc.close(fd, 'cursor memfd');
    }
  }

  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    if (this.#desktop.connection.closed) return; // the connection took every proxy with it
    this.#viewport?.destroy();
    this.#surface.destroy();
    this.#image?.buffer.destroy();
    this.#image = null;
  }
}
