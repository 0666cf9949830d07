// One dma-buf as a wl_buffer of the desktop compositor, by the asynchronous
// zwp_linux_buffer_params_v1.create: a refused import is a `failed` event the caller can
// fall back from, where create_immed may cost the whole connection a protocol error.
// Shared by the guest-buffer cache (buffers.ts) and the GLES blit targets (gles-blit.ts).
//
// Ownership: `fd` stays the caller's (libwayland marshals a duplicate with each `add`, so
// the caller closes its own at once); the params object is destroyed here when `created`
// or `failed` arrives; the wl_buffer handed to `created` is the caller's from then on.
import type { ZwpLinuxDmabufV1 } from '../../protocols/generated/client/linux_dmabuf_unstable_v1.js';
import type { WlBuffer } from '../../protocols/generated/client/wayland.js';

export interface DmabufLayout {
  width: number;
  height: number;
  /** DRM fourcc. */
  format: number;
  modifier: bigint;
  /** Offset and stride of each plane, all in the one dma-buf `fd`. */
  planes: readonly { offset: number; stride: number }[];
}

export interface ImportEvents {
  /** The desktop took it: the buffer is the caller's now. */
  created(buffer: WlBuffer): void;
  failed(): void;
}

export function importDmabuf(dmabuf: ZwpLinuxDmabufV1, fd: number, layout: DmabufLayout, on: ImportEvents): void {
  const params = dmabuf.createParams();
  const hi = Number(layout.modifier >> 32n) >>> 0;
  const lo = Number(layout.modifier & 0xffffffffn) >>> 0;
  try {
    for (const [i, p] of layout.planes.entries()) params.add(fd, i, p.offset, p.stride, hi, lo);
  } catch (e) {
    params.destroy();
    throw e;
  }
  params.on({
    created: (buffer) => {
      params.destroy();
      on.created(buffer);
    },
    failed: () => {
      params.destroy();
      on.failed();
    },
  });
  params.create(layout.width, layout.height, layout.format, 0);
}
