// A CPU-mapped dumb buffer with a KMS framebuffer: the copy path's targets, the "no
// signal" frame, cursor buffers and writeback capture targets.
// Ownership: owns its GEM handle, mapping and FB; close() releases all three.
import * as libc from '../../ffi/libc.js';
import * as drm from '../../ffi/drm.js';

export class DumbFramebuffer {
  readonly handle: number;
  readonly pitch: number;
  readonly size: number;
  readonly fbId: number;
  private map: libc.Mapping | null = null;
  private closed = false;

  constructor(
    private readonly fd: number,
    readonly width: number,
    readonly height: number,
    readonly format: number = drm.fourcc('XR24'),
  ) {
    const info = drm.formatInfo(format);
    if (!info || info.planes !== 1) throw new Error(`dumb buffer: format ${drm.fourccName(format)} is not a single-plane format`);
    const bpp = info.cpp[0] * 8;
    const d = drm.createDumb(fd, width, height, bpp);
    this.handle = d.handle;
    this.pitch = d.pitch;
    this.size = Number(d.size);
    let map: libc.Mapping | null = null;
    try {
      const offset = drm.mapDumb(fd, d.handle);
      map = libc.mmap(fd, this.size, libc.PROT_READ | libc.PROT_WRITE, offset, `dumb buffer ${d.handle}`);
      this.fbId = drm.addFB2WithModifiers(fd, width, height, format, [d.handle], [d.pitch], [0], null);
    } catch (e) {
      map?.unmap();
      drm.destroyDumb(fd, d.handle);
      throw e;
    }
    this.map = map;
  }

  get bytes(): Uint8Array {
    if (!this.map) throw new Error('dumb buffer is closed');
    return this.map.bytes;
  }

  /** Frees FB, mapping and buffer. `keepOnScreen` uses CLOSEFB so a plane showing it stays lit. */
  close(keepOnScreen = false): void {
    if (this.closed) return;
    this.closed = true;
    if (keepOnScreen) {
      try {
        drm.closeFB(this.fd, this.fbId);
      } catch {
        drm.rmFB(this.fd, this.fbId);
      }
    } else {
      drm.rmFB(this.fd, this.fbId);
    }
    this.map?.unmap();
    this.map = null;
    drm.destroyDumb(this.fd, this.handle);
  }
}
