// Writeback capture: the CRTC's composed output written into a dumb buffer by the
// kernel (vkms has a writeback connector). Tests and the demo check pixels this way.
//
// A capture job rides on a commit: attach() adds the writeback connector's properties to
// a request; after the commit, wait() waits for the out-fence (off the main thread) and
// copies the pixels. The fence fd is ours and closed by wait().
import koffi from 'koffi';
import * as libc from '../../ffi/libc.js';
import * as drm from '../../ffi/drm.js';
import type { KmsConnector, KmsCrtc, KmsDevice } from './device.js';
import type { AtomicRequest } from './atomic.js';
import { DumbFramebuffer } from './dumb.js';
import { whenReadable } from '../../ffi/uv.js';

/**
 * How a capture waits for its out-fence: 'uv' (default) watches the fence fd in the event
 * loop (ffi/uv.ts); 'worker' is a koffi async poll() on a libuv worker thread, the old way,
 * kept for the A/B benchmark (issue 15). GUESTPLANE_WRITEBACK_WAIT=worker selects it.
 */
export type FenceWait = 'uv' | 'worker';
let fenceWait: FenceWait = process.env['GUESTPLANE_WRITEBACK_WAIT'] === 'worker' ? 'worker' : 'uv';
export function setFenceWait(w: FenceWait): void {
  fenceWait = w;
}

async function fenceSignalled(fence: number, timeoutMs: number): Promise<boolean> {
  if (fenceWait === 'uv') return whenReadable(fence, timeoutMs);
  const [rev] = await libc.pollAsync([{ fd: fence, events: libc.POLLIN }], timeoutMs);
  return (rev & libc.POLLIN) !== 0;
}

export interface Capture {
  width: number;
  height: number;
  stride: number;
  format: number;
  /** A copy of the written pixels. */
  pixels: Uint8Array;
}

export class WritebackCapture {
  readonly connector: KmsConnector;
  private fb: DumbFramebuffer | null = null;
  private readonly fencePtr: unknown;
  private readonly fenceAddr: bigint;
  private armed = false;

  /** Uses the writeback connector that can serve `crtc` (any, if not given). */
  constructor(private readonly dev: KmsDevice, crtc?: KmsCrtc) {
    const c = dev.connectors.find((x) => x.writeback && (!crtc || (x.possibleCrtcs & (1 << crtc.index)) !== 0));
    if (!c) {
      throw new Error(
        `${dev.path}: no writeback connector${dev.caps.writebackConnectors ? '' : ' (the kernel refused DRM_CLIENT_CAP_WRITEBACK_CONNECTORS)'}; for vkms boot with vkms.enable_writeback=1`,
      );
    }
    this.connector = c;
    this.fencePtr = koffi.alloc('int32_t', 1);
    this.fenceAddr = koffi.address(this.fencePtr);
  }

  /** Adds a capture of `crtc` (whose mode is width×height) to the request. */
  attach(req: AtomicRequest, crtc: KmsCrtc, width: number, height: number, format = drm.fourcc('XR24')): void {
    if (this.armed) throw new Error('writeback capture already armed; wait() for it first');
    if (!this.fb || this.fb.width !== width || this.fb.height !== height || this.fb.format !== format) {
      this.fb?.close();
      this.fb = new DumbFramebuffer(this.dev.fd, width, height, format);
    }
    koffi.encode(this.fencePtr, 'int32_t', -1);
    req.set(this.connector, 'CRTC_ID', crtc.id);
    req.set(this.connector, 'WRITEBACK_FB_ID', this.fb.fbId);
    req.set(this.connector, 'WRITEBACK_OUT_FENCE_PTR', this.fenceAddr);
    this.armed = true;
  }

  /** Call if the commit carrying the job failed. */
  disarm(): void {
    this.armed = false;
  }

  /** Waits for the job's fence (without blocking the event loop) and copies the frame. */
  async wait(timeoutMs = 2000): Promise<Capture> {
    if (!this.armed || !this.fb) throw new Error('no writeback capture armed');
    this.armed = false;
    const fence = koffi.decode(this.fencePtr, 'int32_t') as number;
    if (fence < 0) throw new Error(`writeback on ${this.connector.name}: the kernel returned no out-fence`);
    try {
      if (!(await fenceSignalled(fence, timeoutMs))) {
        throw new Error(`writeback on ${this.connector.name}: the frame did not complete within ${timeoutMs} ms`);
      }
    } finally {
      libc.close(fence, 'writeback fence');
    }
    const fb = this.fb;
    return { width: fb.width, height: fb.height, stride: fb.pitch, format: fb.format, pixels: fb.bytes.slice(0, fb.pitch * fb.height) };
  }

  get isArmed(): boolean {
    return this.armed;
  }

  /** Frees the capture buffer and the fence slot. */
  close(): void {
    this.fb?.close();
    this.fb = null;
    koffi.free(this.fencePtr);
  }
}
