// QEMU's console surface as a shared memfd (org.qemu.Display1.Listener.Unix.Map, QEMU 9.2
// and later): ScanoutMap hands the memfd once, UpdateMap names only the damaged
// rectangle, so a frame no longer travels as a D-Bus message. The pixels are read with
// pread, never through a mapping: QEMU (or what poses as it) may truncate the memfd at any
// time, and a mapping past the new end would SIGBUS the whole process; pread just comes
// back short, and the last good frame stays.
//
// Ownership: a MappedSurface owns the memfd it was given until close().
import { fstatSync, readlinkSync } from 'node:fs';
import * as libc from '../../ffi/libc.js';
import { ListenerError } from './qemu-dbus-protocol.js';

export class MappedSurface {
  #fd: number;
  readonly #offset: number;
  readonly width: number;
  readonly height: number;
  readonly #stride: number;
  #band: Buffer | null = null;

  /** Takes `fd`: closed here on refusal, else by close(). */
  constructor(fd: number, offset: number, width: number, height: number, stride: number) {
    try {
      let link = '';
      try {
        link = readlinkSync(`/proc/self/fd/${fd}`);
      } catch {
        /* reported below */
      }
      const st = fstatSync(fd);
      if (!st.isFile()) throw new ListenerError('ScanoutMap', `the fd is not a shared memory file (${link || 'unreadable'})`);
      const need = offset + stride * (height - 1) + width * 4;
      if (need > st.size) throw new ListenerError('ScanoutMap', `offset ${offset} + stride ${stride} × height ${height} needs ${need} bytes but the memfd has ${st.size}`);
    } catch (e) {
      libc.close(fd, 'refused ScanoutMap memfd');
      throw e;
    }
    this.#fd = fd;
    this.#offset = offset;
    this.width = width;
    this.height = height;
    this.#stride = stride;
  }

  /**
   * Copies the rectangle (clipped to the surface) into `pixels` (rows of width × 4 bytes)
   * with one pread of the rows it spans; a ListenerError when the memfd no longer holds them.
   */
  read(pixels: Buffer, x: number, y: number, w: number, h: number): void {
    w = Math.min(w, this.width - x);
    h = Math.min(h, this.height - y);
    if (w <= 0 || h <= 0) return;
    const len = this.#stride * (h - 1) + w * 4;
    if (!this.#band || this.#band.length < len) this.#band = Buffer.allocUnsafe(len);
    const band = this.#band.subarray(0, len);
    const got = libc.pread(this.#fd, band, this.#offset + y * this.#stride + x * 4, 'QEMU surface memfd');
    if (got < len) throw new ListenerError('UpdateMap', `the memfd is shorter than the surface QEMU described (read ${got} of ${len} bytes)`);
    const rowBytes = this.width * 4;
    if (this.#stride === rowBytes && x === 0 && w === this.width) band.copy(pixels, y * rowBytes);
    else for (let r = 0; r < h; r++) band.copy(pixels, (y + r) * rowBytes + x * 4, r * this.#stride, r * this.#stride + w * 4);
  }

  close(): void {
    if (this.#fd < 0) return;
    libc.close(this.#fd, 'QEMU surface memfd');
    this.#fd = -1;
    this.#band = null;
  }
}
