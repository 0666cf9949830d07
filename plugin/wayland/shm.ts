// wl_shm: client pixels in shared memory, shown through the output's copy path. Only the
// formats that path copies as they are (32-bit XRGB/ARGB) are offered; checks and error
// codes follow libwayland's own wl_shm (wayland-shm.c).
import { fourcc } from '../../ffi/drm.js';
import * as libc from '../../ffi/libc.js';
import type { Display, Global } from '../../protocols/runtime.js';
import { ProtocolViolation } from '../../protocols/runtime.js';
import { WlShm, WlShmError, WlShmFormat } from '../../protocols/generated/wayland.js';
import { ShmPool, ShortPoolError, bindBuffer, newBufferId, type ShmBuffer } from './buffer.js';

/** wl_shm format code → DRM fourcc (wl_shm's 0 and 1 are the two historic exceptions). */
export function shmToDrm(format: number): number {
  if (format === WlShmFormat.ARGB8888) return fourcc('AR24');
  if (format === WlShmFormat.XRGB8888) return fourcc('XR24');
  return format >>> 0;
}

export const SHM_FORMATS: readonly WlShmFormat[] = [WlShmFormat.ARGB8888, WlShmFormat.XRGB8888];
const MAX_POOL = 1 << 30;

export function createShmGlobal(display: Display): Global<WlShm> {
  return WlShm.global(display, 1, (id) => {
    const shm = id.create({
      createPool(res, poolId, fd, size) {
        if (size <= 0 || size > MAX_POOL) {
          closeQuietly(fd);
          throw new ProtocolViolation(res, WlShmError.INVALID_STRIDE, `invalid pool size ${size} (1..${MAX_POOL})`);
        }
        let pool: ShmPool;
        try {
          pool = new ShmPool(fd, size); // owns fd from here, closes it if it throws
        } catch (e) {
          const why = e instanceof ShortPoolError ? `${e.message}: grow the file (ftruncate) before wl_shm.create_pool` : `cannot use the pool fd: ${(e as Error).message}`;
          throw new ProtocolViolation(res, WlShmError.INVALID_FD, why);
        }
        const poolRes = poolId.create({
          createBuffer(p, bufferId, offset, width, height, stride, format) {
            if (!SHM_FORMATS.includes(format)) {
              throw new ProtocolViolation(p, WlShmError.INVALID_FORMAT, `format 0x${(format >>> 0).toString(16)} was not advertised`);
            }
            if (offset < 0 || width <= 0 || height <= 0 || stride < width * 4 || pool.size - offset < stride * height) {
              throw new ProtocolViolation(
                p,
                WlShmError.INVALID_STRIDE,
                `invalid width, height or stride (${width}x${height}, stride ${stride}, offset ${offset}) for a pool of ${pool.size} bytes`,
              );
            }
            const resource = bufferId.create({});
            pool.ref();
            const buffer: ShmBuffer = {
              kind: 'shm',
              id: newBufferId(),
              resource,
              width,
              height,
              format: shmToDrm(format),
              offset,
              stride,
              pool: pool,
            };
            bindBuffer(buffer);
          },
          resize(p, newSize) {
            if (newSize < pool.size || newSize > MAX_POOL) {
              throw new ProtocolViolation(p, WlShmError.INVALID_STRIDE, `pool size ${newSize} is smaller than ${pool.size} or too large`);
            }
            try {
              pool.resize(newSize);
            } catch (e) {
              const why = e instanceof ShortPoolError ? `${e.message}: grow the file before wl_shm_pool.resize` : `cannot resize the pool to ${newSize} bytes: ${(e as Error).message}`;
              throw new ProtocolViolation(p, WlShmError.INVALID_FD, why);
            }
          },
        });
        poolRes.onDestroy(() => pool.unref());
      },
    });
    for (const f of SHM_FORMATS) shm.sendFormat(f);
  });
}

/** The fd of a refused request is ours (runtime rule): close it before the error goes out. */
function closeQuietly(fd: number): void {
  try {
    libc.close(fd, 'refused wl_shm pool fd');
  } catch {
    /* nothing more to do */
  }
}
