// A mediated GPU's display (Intel GVT-g, the mbochs/mdpy samples, any VFIO device that
// answers VFIO_DEVICE_QUERY_GFX_PLANE) as a guest source.
//
// Ownership: VfioDevice owns the container, group and device fds it opened (an adopted
// device fd is owned by the caller unless `takeOwnership`); VfioSource owns its region
// mappings. Dma-buf fds from exportDmabuf() belong to the caller. Nothing here is keyed
// by fd: VFIO_DEVICE_GET_GFX_DMABUF returns a new fd on every call.
import { EventEmitter } from 'node:events';
import { existsSync, readlinkSync, realpathSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import * as libc from '../../ffi/libc.js';
import * as vfio from '../../ffi/vfio.js';
import type { CpuView, GuestPlaneInfo, GuestPlaneKind, GuestSource, GuestSourceEvents, PlaneQuery } from './source.js';

const MDEV_DEVICES = '/sys/bus/mdev/devices';
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Resolves a mediated device given as a UUID or a sysfs path to its sysfs directory. */
export function resolveMdev(spec: string): string {
  const path = UUID_RE.test(spec) ? join(MDEV_DEVICES, spec.toLowerCase()) : spec;
  if (!existsSync(path)) {
    throw new Error(
      `VFIO device ${spec}: ${path} does not exist; create the mdev first (echo <uuid> > /sys/class/mdev_bus/<parent>/mdev_supported_types/<type>/create) or pass its sysfs path`,
    );
  }
  if (!existsSync(join(path, 'iommu_group'))) {
    throw new Error(`VFIO device ${spec}: ${path} has no iommu_group; is it a VFIO (mediated) device?`);
  }
  return realpathSync(path);
}

/** An open VFIO device: container → group → device, the legacy (non-iommufd) interface. */
export class VfioDevice {
  private constructor(
    readonly name: string,
    readonly deviceFd: number,
    private readonly groupFd: number,
    private readonly containerFd: number,
    private readonly ownsDeviceFd: boolean,
  ) {}

  static open(spec: string): VfioDevice {
    const sysfs = resolveMdev(spec);
    const name = basename(sysfs);
    const group = basename(readlinkSync(join(sysfs, 'iommu_group')));
    const groupPath = `/dev/vfio/${group}`;
    let container = -1;
    let groupFd = -1;
    try {
      container = libc.open('/dev/vfio/vfio', libc.O_RDWR);
      const api = vfio.getApiVersion(container, '/dev/vfio/vfio');
      if (api !== vfio.VFIO_API_VERSION) throw new Error(`VFIO API version ${api}, expected ${vfio.VFIO_API_VERSION}`);
      try {
        groupFd = libc.open(groupPath, libc.O_RDWR);
      } catch (e) {
        if (e instanceof libc.SysError && e.code === 'EBUSY') {
          throw new Error(`VFIO device ${name}: ${groupPath} is busy: another process (a VMM?) has the group open; adopt its device fd instead`);
        }
        throw e;
      }
      const status = vfio.groupGetStatus(groupFd, groupPath);
      if (!(status.flags & vfio.VFIO_GROUP_FLAGS_VIABLE)) {
        throw new Error(`VFIO device ${name}: group ${group} is not viable (all its devices must be bound to VFIO drivers)`);
      }
      vfio.groupSetContainer(groupFd, container, groupPath);
      const iommu = vfio.checkExtension(container, vfio.VFIO_TYPE1v2_IOMMU) ? vfio.VFIO_TYPE1v2_IOMMU : vfio.VFIO_TYPE1_IOMMU;
      vfio.setIommu(container, iommu, '/dev/vfio/vfio');
      const deviceFd = vfio.groupGetDeviceFd(groupFd, name, groupPath);
      return new VfioDevice(name, deviceFd, groupFd, container, true);
    } catch (e) {
      if (groupFd >= 0) libc.close(groupFd, groupPath);
      if (container >= 0) libc.close(container, '/dev/vfio/vfio');
      throw e;
    }
  }

  /** Uses a device fd a VMM handed over. It stays the caller's unless takeOwnership. */
  static adopt(deviceFd: number, name = `vfio fd ${deviceFd}`, takeOwnership = false): VfioDevice {
    vfio.deviceGetInfo(deviceFd, name); // fails clearly if this is not a VFIO device fd
    return new VfioDevice(name, deviceFd, -1, -1, takeOwnership);
  }

  regionInfo(index: number): vfio.VfioRegionInfo {
    return vfio.deviceGetRegionInfo(this.deviceFd, index, this.name);
  }

  /** Index of the region with the given VFIO region type/subtype (e.g. the GFX EDID region), or -1. */
  findRegion(type: number, subtype: number): number {
    const info = vfio.deviceGetInfo(this.deviceFd, this.name);
    for (let i = 0; i < info.numRegions; i++) {
      let r: vfio.VfioRegionInfo;
      try {
        r = this.regionInfo(i);
      } catch {
        continue;
      }
      if (r.caps.some((c) => c.kind === 'type' && c.type === type && c.subtype === subtype)) return i;
    }
    return -1;
  }

  close(): void {
    if (this.ownsDeviceFd) libc.close(this.deviceFd, this.name);
    if (this.groupFd >= 0) libc.close(this.groupFd, `vfio group of ${this.name}`);
    if (this.containerFd >= 0) libc.close(this.containerFd, '/dev/vfio/vfio');
  }
}

export type GfxTransport = 'dmabuf' | 'region';

/** Asks the device which plane transport it supports (VFIO_GFX_PLANE_TYPE_PROBE). */
export function probeGfx(dev: VfioDevice): GfxTransport | null {
  const P = vfio.VFIO_GFX_PLANE_TYPE_PROBE;
  if (vfio.queryGfxPlaneTry(dev.deviceFd, P | vfio.VFIO_GFX_PLANE_TYPE_DMABUF).ok) return 'dmabuf';
  if (vfio.queryGfxPlaneTry(dev.deviceFd, P | vfio.VFIO_GFX_PLANE_TYPE_REGION).ok) return 'region';
  return null;
}

/** Reads the pixels of a dma-buf plane some other way (see CpuView). */
export type DmabufCpuReader = (plane: GuestPlaneInfo) => CpuView | null;

export interface VfioSourceOptions {
  /** Copy-path reader for dma-buf planes that cannot be mapped (e.g. bochsVramReader). */
  cpuReader?: DmabufCpuReader;
  /** Things the source owns and closes with itself (the device, a BochsDispi). */
  owned?: { close(): void }[];
}

interface ShapeKey {
  format: number;
  width: number;
  height: number;
  stride: number;
}

export class VfioSource extends EventEmitter<GuestSourceEvents> implements GuestSource {
  readonly name: string;
  readonly changeEvents = false;
  readonly transport: GfxTransport;
  private readonly queryBuf = Buffer.alloc(vfio.GFX_PLANE_INFO_SIZE);
  private readonly shapes: Record<GuestPlaneKind, ShapeKey | null> = { primary: null, cursor: null };
  private readonly generations: Record<GuestPlaneKind, number> = { primary: 0, cursor: 0 };
  private readonly seenIds: Record<GuestPlaneKind, number> = { primary: -1, cursor: -1 };
  private readonly firstSeen: Record<GuestPlaneKind, bigint> = { primary: 0n, cursor: 0n };
  private regionMaps = new Map<number, libc.Mapping>();
  private lostError: Error | null = null;
  private closed = false;

  constructor(readonly device: VfioDevice, private readonly opts: VfioSourceOptions = {}) {
    super();
    this.name = `vfio ${device.name}`;
    const t = probeGfx(device);
    if (!t) {
      throw new Error(`${this.name}: the device answers neither DMABUF nor REGION to VFIO_DEVICE_QUERY_GFX_PLANE probes; it has no display`);
    }
    this.transport = t;
  }

  query(kind: GuestPlaneKind): PlaneQuery {
    if (this.closed) return { state: 'lost', error: new Error(`${this.name} is closed`) };
    if (this.lostError) return { state: 'lost', error: this.lostError };
    // Region devices have one plane: mdpy answers every plane type with its framebuffer
    // (a "cursor" the size of the screen), and QEMU asks them for the primary only.
    if (kind === 'cursor' && this.transport === 'region') return { state: 'disabled' };
    const type = kind === 'primary' ? vfio.DRM_PLANE_TYPE_PRIMARY : vfio.DRM_PLANE_TYPE_CURSOR;
    const flags = this.transport === 'dmabuf' ? vfio.VFIO_GFX_PLANE_TYPE_DMABUF : vfio.VFIO_GFX_PLANE_TYPE_REGION;
    const r = vfio.queryGfxPlaneTry(this.device.deviceFd, flags, type, this.queryBuf);
    if (!r.ok) {
      switch (r.code) {
        case 'ENOMEM':
          // mbochs answers the first query after a mode change (or a new scanout offset)
          // with ENOMEM and has the buffer on the next one.
          return { state: 'not-ready', reason: `${this.name}: the device has no buffer for the new mode yet (ENOMEM)` };
        case 'EINVAL':
        case 'EAGAIN':
          return { state: 'not-ready', reason: `${this.name}: plane query answered ${r.code}` };
        case 'ENODEV':
        case 'EBADF':
        case 'EIO':
        default: {
          this.lostError = new Error(`${this.name}: the device stopped answering plane queries (${r.code}); it was probably removed`);
          this.emit('lost', this.lostError);
          return { state: 'lost', error: this.lostError };
        }
      }
    }
    const p = r.plane;
    // Disabled plane: success with zeros (also GVT-g's "not ready", which fills nothing).
    if (p.drmFormat === 0 || p.width === 0 || p.height === 0) {
      this.shapes[kind] = null;
      return { state: 'disabled' };
    }
    const shape = this.shapes[kind];
    if (!shape || shape.format !== p.drmFormat || shape.width !== p.width || shape.height !== p.height || shape.stride !== p.stride) {
      this.shapes[kind] = { format: p.drmFormat, width: p.width, height: p.height, stride: p.stride };
      this.generations[kind]++;
    }
    const id = this.transport === 'dmabuf' ? p.dmabufId : p.regionIndex;
    if (id !== this.seenIds[kind]) {
      // VFIO does not say when the guest flipped; the first time we see the new buffer is
      // the best bound we have (it makes our latency figures include the guest's side).
      this.seenIds[kind] = id;
      this.firstSeen[kind] = process.hrtime.bigint();
    }
    const none = 0xffffffff;
    return {
      state: 'ok',
      plane: {
        kind,
        bufferId: id,
        transport: this.transport,
        format: p.drmFormat,
        modifier: p.drmFormatMod,
        width: p.width,
        height: p.height,
        stride: p.stride,
        offset: 0,
        size: p.size,
        x: kind === 'cursor' ? p.xPos : 0,
        y: kind === 'cursor' ? p.yPos : 0,
        hotX: p.xHot === none ? -1 : p.xHot,
        hotY: p.yHot === none ? -1 : p.yHot,
        generation: this.generations[kind],
        flipTimeNs: this.firstSeen[kind],
      },
    };
  }

  exportDmabuf(plane: GuestPlaneInfo): number {
    if (plane.transport !== 'dmabuf') throw new Error(`${this.name}: ${plane.kind} plane is a region, not a dma-buf`);
    return vfio.getGfxDmabuf(this.device.deviceFd, plane.bufferId, this.name);
  }

  cpuView(plane: GuestPlaneInfo): CpuView | null {
    if (plane.transport === 'dmabuf') return this.opts.cpuReader?.(plane) ?? null;
    let m = this.regionMaps.get(plane.bufferId);
    if (!m) {
      const info = this.device.regionInfo(plane.bufferId);
      if (!(info.flags & vfio.VFIO_REGION_INFO_FLAG_MMAP)) return null;
      m = libc.mmap(this.device.deviceFd, Number(info.size), libc.PROT_READ, info.offset, `${this.name} region ${plane.bufferId}`);
      this.regionMaps.set(plane.bufferId, m);
    }
    if (plane.stride * plane.height > m.length) return null;
    return { bytes: m.bytes, offset: 0 };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const m of this.regionMaps.values()) m.unmap();
    this.regionMaps.clear();
    for (const o of this.opts.owned ?? []) o.close();
  }
}

/** Lists mediated devices of a parent (e.g. "mbochs"), for tests and the CLI. */
export function listMdevs(): string[] {
  return existsSync(MDEV_DEVICES) ? readdirSync(MDEV_DEVICES) : [];
}
