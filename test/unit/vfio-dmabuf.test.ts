// Device-free checks of ffi/vfio.ts and ffi/dmabuf.ts: buffer encoding/decoding and error
// naming, using a memfd where an fd is needed (its ioctls fail with ENOTTY).
import { describe, it, expect, afterEach } from 'vitest';
import * as libc from '../../ffi/libc.js';
import * as vfio from '../../ffi/vfio.js';
import * as dmabuf from '../../ffi/dmabuf.js';

const fds: number[] = [];
function memfd(size = 0): number {
  const fd = libc.memfdCreate('guestplane-test', libc.MFD_ALLOW_SEALING);
  fds.push(fd);
  if (size) libc.ftruncate(fd, size);
  return fd;
}
afterEach(() => {
  while (fds.length) libc.close(fds.pop()!);
});

describe('vfio region capability chain', () => {
  it('decodes a type cap followed by a sparse-mmap cap', () => {
    const buf = Buffer.alloc(32 + 16 + 16 + 2 * 16);
    // cap 1 at 32: vfio_region_info_cap_type { header {id 2, version 1, next 48}, type 1, subtype 1 }
    buf.writeUInt16LE(vfio.VFIO_REGION_INFO_CAP_TYPE, 32);
    buf.writeUInt16LE(1, 34);
    buf.writeUInt32LE(48, 36);
    buf.writeUInt32LE(vfio.VFIO_REGION_TYPE_GFX, 40);
    buf.writeUInt32LE(vfio.VFIO_REGION_SUBTYPE_GFX_EDID, 44);
    // cap 2 at 48: sparse mmap { header {id 1, version 1, next 0}, nr_areas 2, reserved, areas[2] }
    buf.writeUInt16LE(vfio.VFIO_REGION_INFO_CAP_SPARSE_MMAP, 48);
    buf.writeUInt16LE(1, 50);
    buf.writeUInt32LE(0, 52);
    buf.writeUInt32LE(2, 56);
    buf.writeBigUInt64LE(0n, 64);
    buf.writeBigUInt64LE(0x1000n, 72);
    buf.writeBigUInt64LE(0x3000n, 80);
    buf.writeBigUInt64LE(0x2000n, 88);
    expect(vfio.parseRegionCaps(buf, 32)).toEqual([
      { kind: 'type', id: 2, version: 1, type: 1, subtype: 1 },
      {
        kind: 'sparse-mmap',
        id: 1,
        version: 1,
        areas: [
          { offset: 0n, size: 0x1000n },
          { offset: 0x3000n, size: 0x2000n },
        ],
      },
    ]);
  });

  it('stops on a chain that loops back or runs past the buffer', () => {
    const buf = Buffer.alloc(48);
    buf.writeUInt16LE(7, 32);
    buf.writeUInt32LE(32, 36); // next -> itself
    expect(vfio.parseRegionCaps(buf, 32)).toEqual([{ kind: 'other', id: 7, version: 0 }]);
    expect(vfio.parseRegionCaps(buf, 44)).toEqual([]); // header would overrun
    expect(vfio.parseRegionCaps(buf, 0)).toEqual([]);
  });
});

describe('vfio gfx plane query', () => {
  it('zeroes the caller buffer and sets argsz/flags/plane type before every call', () => {
    const fd = memfd();
    const buf = Buffer.alloc(vfio.GFX_PLANE_INFO_SIZE, 0xa5);
    const r = vfio.queryGfxPlaneTry(fd, vfio.VFIO_GFX_PLANE_TYPE_DMABUF, vfio.DRM_PLANE_TYPE_CURSOR, buf);
    expect(r).toEqual({ ok: false, errno: libc.errno.ENOTTY, code: 'ENOTTY' });
    expect(vfio.GFX_PLANE_INFO_SIZE).toBe(64);
    expect(buf.readUInt32LE(0)).toBe(64);
    expect(buf.readUInt32LE(4)).toBe(vfio.VFIO_GFX_PLANE_TYPE_DMABUF);
    expect(buf.readUInt32LE(8)).toBe(vfio.DRM_PLANE_TYPE_CURSOR);
    expect(buf.subarray(12).every((b) => b === 0)).toBe(true);
  });

  it('queryGfxPlane throws a SysError naming the ioctl', () => {
    const fd = memfd();
    expect(() => vfio.queryGfxPlane(fd, vfio.VFIO_GFX_PLANE_TYPE_PROBE | vfio.VFIO_GFX_PLANE_TYPE_DMABUF)).toThrow(
      /ioctl VFIO_DEVICE_QUERY_GFX_PLANE\(vfio device fd \d+\) failed: ENOTTY/,
    );
  });

  it('rejects a reusable buffer that is too small', () => {
    expect(() => vfio.queryGfxPlaneTry(0, 0, 0, Buffer.alloc(60))).toThrow(RangeError);
  });

  it('decodes every field from the C offsets', () => {
    const b = Buffer.alloc(64);
    const u32 = [64, 2, 1, 0x34325258 /* XR24 */];
    u32.forEach((v, i) => b.writeUInt32LE(v, 4 * i));
    b.writeBigUInt64LE(0x0100000000000001n, 16);
    [1024, 768, 4096, 3145728, 10, 20, 0xffffffff, 0xffffffff, 42].forEach((v, i) => b.writeUInt32LE(v, 24 + 4 * i));
    expect(vfio.decodeGfxPlane(b)).toEqual({
      flags: 2,
      drmPlaneType: 1,
      drmFormat: 0x34325258,
      drmFormatMod: 0x0100000000000001n,
      width: 1024,
      height: 768,
      stride: 4096,
      size: 3145728,
      xPos: 10,
      yPos: 20,
      xHot: 0xffffffff,
      yHot: 0xffffffff,
      regionIndex: 42,
      dmabufId: 42,
    });
  });
});

describe('dma-buf helpers', () => {
  it('dmabufSize seeks to the end and rewinds', () => {
    const fd = memfd(3 * 4096);
    libc.lseek(fd, 100, libc.SEEK_SET);
    expect(dmabuf.dmabufSize(fd)).toBe(3 * 4096);
    expect(libc.lseek(fd, 0, 1 /* SEEK_CUR */)).toBe(0n);
  });

  it('ioctl failures name the call and the fd', () => {
    const fd = memfd(4096);
    expect(() => dmabuf.dmabufSync(fd, dmabuf.DMA_BUF_SYNC_START | dmabuf.DMA_BUF_SYNC_READ)).toThrow(
      /ioctl DMA_BUF_IOCTL_SYNC\(dma-buf fd \d+\) failed: ENOTTY/,
    );
    expect(() => dmabuf.udmabufCreate(fd, fd, 0, 4096)).toThrow(/ioctl UDMABUF_CREATE\(\/dev\/udmabuf fd \d+ memfd \d+\) failed: ENOTTY/);
    expect(() => dmabuf.udmabufCreateList(fd, [{ memfd: fd, offset: 0, size: 4096 }])).toThrow(/UDMABUF_CREATE_LIST.*ENOTTY/);
    expect(() => dmabuf.dmaHeapAlloc(fd, 4096)).toThrow(/ioctl DMA_HEAP_IOCTL_ALLOC.*ENOTTY/);
  });
});

describe('dmabufExporter', () => {
  // The host has no dma-buf exporter (no /dev/udmabuf, no dma-heap): a udmabuf's "udmabuf"
  // is read in the rig (qemu-dbus-peer.test.ts, the MOD_INVALID case).
  it('is null for an fd that is no dma-buf (a memfd: fdinfo has no exp_name) and for a closed fd', () => {
    const fd = memfd(4096);
    expect(dmabuf.dmabufExporter(fd)).toBeNull();
    expect(dmabuf.dmabufExporter(1 << 20)).toBeNull();
  });
});
