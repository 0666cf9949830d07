// Thin typed bindings of linux/vfio.h: the container/group/device ioctls and the
// mediated-device display ("gfx plane") queries. No policy: every call returns its
// decoded result or throws a SysError (except queryGfxPlaneTry, whose errno is an answer).
// Struct buffers are laid out with offsets taken from the koffi types below, which
// test/unit/abi.test.ts checks against the kernel header.
import koffi from 'koffi';
import { offsetOf, type AbiManifest } from './abi.js';
import { IO, ioctl, ioctlInt, ioctlTry, errnoName } from './libc.js';

// ---- constants --------------------------------------------------------------------

export const VFIO_API_VERSION = 0;
export const VFIO_TYPE1_IOMMU = 1;
export const VFIO_TYPE1v2_IOMMU = 3;

export const VFIO_GROUP_FLAGS_VIABLE = 1 << 0;
export const VFIO_GROUP_FLAGS_CONTAINER_SET = 1 << 1;

export const VFIO_DEVICE_FLAGS_RESET = 1 << 0;
export const VFIO_DEVICE_FLAGS_PCI = 1 << 1;
export const VFIO_DEVICE_FLAGS_PLATFORM = 1 << 2;
export const VFIO_DEVICE_FLAGS_AMBA = 1 << 3;
export const VFIO_DEVICE_FLAGS_CCW = 1 << 4;
export const VFIO_DEVICE_FLAGS_AP = 1 << 5;
export const VFIO_DEVICE_FLAGS_FSL_MC = 1 << 6;
export const VFIO_DEVICE_FLAGS_CAPS = 1 << 7;

export const VFIO_REGION_INFO_FLAG_READ = 1 << 0;
export const VFIO_REGION_INFO_FLAG_WRITE = 1 << 1;
export const VFIO_REGION_INFO_FLAG_MMAP = 1 << 2;
export const VFIO_REGION_INFO_FLAG_CAPS = 1 << 3;

/** Capability ids in the VFIO_DEVICE_GET_REGION_INFO chain. */
export const VFIO_REGION_INFO_CAP_SPARSE_MMAP = 1;
export const VFIO_REGION_INFO_CAP_TYPE = 2;
export const VFIO_REGION_INFO_CAP_MSIX_MAPPABLE = 3;

export const VFIO_REGION_TYPE_GFX = 1;
export const VFIO_REGION_SUBTYPE_GFX_EDID = 1;

export const VFIO_DEVICE_GFX_LINK_STATE_UP = 1;
export const VFIO_DEVICE_GFX_LINK_STATE_DOWN = 2;

export const VFIO_GFX_PLANE_TYPE_PROBE = 1 << 0;
export const VFIO_GFX_PLANE_TYPE_DMABUF = 1 << 1;
export const VFIO_GFX_PLANE_TYPE_REGION = 1 << 2;

/**
 * vfio_device_gfx_plane_info.drm_plane_type takes the kernel's enum drm_plane_type,
 * which libdrm mirrors as macros in xf86drmMode.h (the same values as the KMS "type"
 * plane property).
 */
export const DRM_PLANE_TYPE_OVERLAY = 0;
export const DRM_PLANE_TYPE_PRIMARY = 1;
export const DRM_PLANE_TYPE_CURSOR = 2;

// ---- ioctl numbers: all _IO(VFIO_TYPE, VFIO_BASE + n), argsz-versioned ---------------

const VFIO_TYPE = ';'.charCodeAt(0);
const VFIO_BASE = 100;

export const VFIO_GET_API_VERSION = IO(VFIO_TYPE, VFIO_BASE + 0);
export const VFIO_CHECK_EXTENSION = IO(VFIO_TYPE, VFIO_BASE + 1);
export const VFIO_SET_IOMMU = IO(VFIO_TYPE, VFIO_BASE + 2);
export const VFIO_GROUP_GET_STATUS = IO(VFIO_TYPE, VFIO_BASE + 3);
export const VFIO_GROUP_SET_CONTAINER = IO(VFIO_TYPE, VFIO_BASE + 4);
export const VFIO_GROUP_UNSET_CONTAINER = IO(VFIO_TYPE, VFIO_BASE + 5);
export const VFIO_GROUP_GET_DEVICE_FD = IO(VFIO_TYPE, VFIO_BASE + 6);
export const VFIO_DEVICE_GET_INFO = IO(VFIO_TYPE, VFIO_BASE + 7);
export const VFIO_DEVICE_GET_REGION_INFO = IO(VFIO_TYPE, VFIO_BASE + 8);
export const VFIO_DEVICE_RESET = IO(VFIO_TYPE, VFIO_BASE + 11);
export const VFIO_DEVICE_QUERY_GFX_PLANE = IO(VFIO_TYPE, VFIO_BASE + 14);
export const VFIO_DEVICE_GET_GFX_DMABUF = IO(VFIO_TYPE, VFIO_BASE + 15);

// ---- structs (member names = C member names) ------------------------------------------

export const vfio_info_cap_header = koffi.struct('vfio_info_cap_header', {
  id: 'uint16_t',
  version: 'uint16_t',
  next: 'uint32_t',
});

export const vfio_group_status = koffi.struct('vfio_group_status', {
  argsz: 'uint32_t',
  flags: 'uint32_t',
});

export const vfio_device_info = koffi.struct('vfio_device_info', {
  argsz: 'uint32_t',
  flags: 'uint32_t',
  num_regions: 'uint32_t',
  num_irqs: 'uint32_t',
  cap_offset: 'uint32_t',
});

export const vfio_region_info = koffi.struct('vfio_region_info', {
  argsz: 'uint32_t',
  flags: 'uint32_t',
  index: 'uint32_t',
  cap_offset: 'uint32_t',
  size: 'uint64_t',
  offset: 'uint64_t',
});

export const vfio_region_sparse_mmap_area = koffi.struct('vfio_region_sparse_mmap_area', {
  offset: 'uint64_t',
  size: 'uint64_t',
});

/** Followed by `struct vfio_region_sparse_mmap_area areas[nr_areas]`. */
export const vfio_region_info_cap_sparse_mmap = koffi.struct('vfio_region_info_cap_sparse_mmap', {
  // 8-aligned in C because of the flexible __u64 areas[] that follows.
  header: [koffi.alignof(vfio_region_sparse_mmap_area), vfio_info_cap_header],
  nr_areas: 'uint32_t',
  reserved: 'uint32_t',
});

export const vfio_region_info_cap_type = koffi.struct('vfio_region_info_cap_type', {
  header: vfio_info_cap_header,
  type: 'uint32_t',
  subtype: 'uint32_t',
});

export const vfio_region_gfx_edid = koffi.struct('vfio_region_gfx_edid', {
  edid_offset: 'uint32_t',
  edid_max_size: 'uint32_t',
  edid_size: 'uint32_t',
  max_xres: 'uint32_t',
  max_yres: 'uint32_t',
  link_state: 'uint32_t',
});

/**
 * The C struct ends in an anonymous `union { __u32 region_index; __u32 dmabuf_id; }`;
 * here it is the member `__anon_id` (see ANON_PREFIX in abi.ts). Because drm_format_mod
 * is a __u64 the struct is 8-aligned: 60 bytes of members, sizeof 64.
 */
export const vfio_device_gfx_plane_info = koffi.struct('vfio_device_gfx_plane_info', {
  argsz: 'uint32_t',
  flags: 'uint32_t',
  drm_plane_type: 'uint32_t',
  drm_format: 'uint32_t',
  drm_format_mod: 'uint64_t',
  width: 'uint32_t',
  height: 'uint32_t',
  stride: 'uint32_t',
  size: 'uint32_t',
  x_pos: 'uint32_t',
  y_pos: 'uint32_t',
  x_hot: 'uint32_t',
  y_hot: 'uint32_t',
  __anon_id: koffi.union('vfio_device_gfx_plane_info_id', {
    region_index: 'uint32_t',
    dmabuf_id: 'uint32_t',
  }),
});

export const ABI: AbiManifest = {
  headers: ['linux/vfio.h', 'xf86drmMode.h'],
  structs: {
    'struct vfio_info_cap_header': { type: vfio_info_cap_header },
    'struct vfio_group_status': { type: vfio_group_status },
    'struct vfio_device_info': { type: vfio_device_info },
    'struct vfio_region_info': { type: vfio_region_info },
    'struct vfio_region_sparse_mmap_area': { type: vfio_region_sparse_mmap_area },
    'struct vfio_region_info_cap_sparse_mmap': {
      type: vfio_region_info_cap_sparse_mmap,
      flexible: { member: 'areas', offset: koffi.sizeof(vfio_region_info_cap_sparse_mmap), element: vfio_region_sparse_mmap_area },
    },
    'struct vfio_region_info_cap_type': { type: vfio_region_info_cap_type },
    'struct vfio_region_gfx_edid': { type: vfio_region_gfx_edid },
    'struct vfio_device_gfx_plane_info': { type: vfio_device_gfx_plane_info },
  },
  constants: {
    VFIO_API_VERSION,
    VFIO_TYPE1_IOMMU,
    VFIO_TYPE1v2_IOMMU,
    VFIO_GROUP_FLAGS_VIABLE,
    VFIO_GROUP_FLAGS_CONTAINER_SET,
    VFIO_DEVICE_FLAGS_RESET,
    VFIO_DEVICE_FLAGS_PCI,
    VFIO_DEVICE_FLAGS_PLATFORM,
    VFIO_DEVICE_FLAGS_AMBA,
    VFIO_DEVICE_FLAGS_CCW,
    VFIO_DEVICE_FLAGS_AP,
    VFIO_DEVICE_FLAGS_FSL_MC,
    VFIO_DEVICE_FLAGS_CAPS,
    VFIO_REGION_INFO_FLAG_READ,
    VFIO_REGION_INFO_FLAG_WRITE,
    VFIO_REGION_INFO_FLAG_MMAP,
    VFIO_REGION_INFO_FLAG_CAPS,
    VFIO_REGION_INFO_CAP_SPARSE_MMAP,
    VFIO_REGION_INFO_CAP_TYPE,
    VFIO_REGION_INFO_CAP_MSIX_MAPPABLE,
    VFIO_REGION_TYPE_GFX,
    VFIO_REGION_SUBTYPE_GFX_EDID,
    VFIO_DEVICE_GFX_LINK_STATE_UP,
    VFIO_DEVICE_GFX_LINK_STATE_DOWN,
    VFIO_GFX_PLANE_TYPE_PROBE,
    VFIO_GFX_PLANE_TYPE_DMABUF,
    VFIO_GFX_PLANE_TYPE_REGION,
    DRM_PLANE_TYPE_OVERLAY,
    DRM_PLANE_TYPE_PRIMARY,
    DRM_PLANE_TYPE_CURSOR,
    VFIO_GET_API_VERSION,
    VFIO_CHECK_EXTENSION,
    VFIO_SET_IOMMU,
    VFIO_GROUP_GET_STATUS,
    VFIO_GROUP_SET_CONTAINER,
    VFIO_GROUP_UNSET_CONTAINER,
    VFIO_GROUP_GET_DEVICE_FD,
    VFIO_DEVICE_GET_INFO,
    VFIO_DEVICE_GET_REGION_INFO,
    VFIO_DEVICE_RESET,
    VFIO_DEVICE_QUERY_GFX_PLANE,
    VFIO_DEVICE_GET_GFX_DMABUF,
  },
};

// ---- field offsets, from the checked koffi layouts ------------------------------------

const GROUP_STATUS_SIZE = koffi.sizeof(vfio_group_status);
const G = { argsz: offsetOf(vfio_group_status, 'argsz'), flags: offsetOf(vfio_group_status, 'flags') };

const DEVICE_INFO_SIZE = koffi.sizeof(vfio_device_info);
const D = {
  argsz: offsetOf(vfio_device_info, 'argsz'),
  flags: offsetOf(vfio_device_info, 'flags'),
  num_regions: offsetOf(vfio_device_info, 'num_regions'),
  num_irqs: offsetOf(vfio_device_info, 'num_irqs'),
};

const REGION_INFO_SIZE = koffi.sizeof(vfio_region_info);
const R = {
  argsz: offsetOf(vfio_region_info, 'argsz'),
  flags: offsetOf(vfio_region_info, 'flags'),
  index: offsetOf(vfio_region_info, 'index'),
  cap_offset: offsetOf(vfio_region_info, 'cap_offset'),
  size: offsetOf(vfio_region_info, 'size'),
  offset: offsetOf(vfio_region_info, 'offset'),
};

const CAP_HEADER_SIZE = koffi.sizeof(vfio_info_cap_header);
const H = {
  id: offsetOf(vfio_info_cap_header, 'id'),
  version: offsetOf(vfio_info_cap_header, 'version'),
  next: offsetOf(vfio_info_cap_header, 'next'),
};
const CT = {
  size: koffi.sizeof(vfio_region_info_cap_type),
  type: offsetOf(vfio_region_info_cap_type, 'type'),
  subtype: offsetOf(vfio_region_info_cap_type, 'subtype'),
};
const SM = {
  size: koffi.sizeof(vfio_region_info_cap_sparse_mmap),
  nr_areas: offsetOf(vfio_region_info_cap_sparse_mmap, 'nr_areas'),
  areaSize: koffi.sizeof(vfio_region_sparse_mmap_area),
  areaOffset: offsetOf(vfio_region_sparse_mmap_area, 'offset'),
  areaLength: offsetOf(vfio_region_sparse_mmap_area, 'size'),
};

/** sizeof(struct vfio_device_gfx_plane_info): the argsz queryGfxPlane passes. */
export const GFX_PLANE_INFO_SIZE = koffi.sizeof(vfio_device_gfx_plane_info);
const P = {
  argsz: offsetOf(vfio_device_gfx_plane_info, 'argsz'),
  flags: offsetOf(vfio_device_gfx_plane_info, 'flags'),
  drm_plane_type: offsetOf(vfio_device_gfx_plane_info, 'drm_plane_type'),
  drm_format: offsetOf(vfio_device_gfx_plane_info, 'drm_format'),
  drm_format_mod: offsetOf(vfio_device_gfx_plane_info, 'drm_format_mod'),
  width: offsetOf(vfio_device_gfx_plane_info, 'width'),
  height: offsetOf(vfio_device_gfx_plane_info, 'height'),
  stride: offsetOf(vfio_device_gfx_plane_info, 'stride'),
  size: offsetOf(vfio_device_gfx_plane_info, 'size'),
  x_pos: offsetOf(vfio_device_gfx_plane_info, 'x_pos'),
  y_pos: offsetOf(vfio_device_gfx_plane_info, 'y_pos'),
  x_hot: offsetOf(vfio_device_gfx_plane_info, 'x_hot'),
  y_hot: offsetOf(vfio_device_gfx_plane_info, 'y_hot'),
  region_index: offsetOf(vfio_device_gfx_plane_info, 'region_index'),
  dmabuf_id: offsetOf(vfio_device_gfx_plane_info, 'dmabuf_id'),
};

// ---- container (/dev/vfio/vfio) ---------------------------------------------------------

/** VFIO_GET_API_VERSION: VFIO_API_VERSION (0) on every kernel that has VFIO. */
export function getApiVersion(containerFd: number, what = `vfio container fd ${containerFd}`): number {
  return ioctl(containerFd, VFIO_GET_API_VERSION, null, 'VFIO_GET_API_VERSION', what);
}

/** VFIO_CHECK_EXTENSION: whether the container supports an IOMMU type / extension. */
export function checkExtension(containerFd: number, ext: number, what = `vfio container fd ${containerFd}`): boolean {
  return ioctlInt(containerFd, VFIO_CHECK_EXTENSION, ext, 'VFIO_CHECK_EXTENSION', what) > 0;
}

/** VFIO_SET_IOMMU: needs at least one group attached to the container first. */
export function setIommu(containerFd: number, iommuType: number, what = `vfio container fd ${containerFd}`): void {
  ioctlInt(containerFd, VFIO_SET_IOMMU, iommuType, 'VFIO_SET_IOMMU', what);
}

// ---- group (/dev/vfio/N) ----------------------------------------------------------------

export interface VfioGroupStatus {
  /** VFIO_GROUP_FLAGS_* */
  flags: number;
}

export function groupGetStatus(groupFd: number, what = `vfio group fd ${groupFd}`): VfioGroupStatus {
  const buf = Buffer.alloc(GROUP_STATUS_SIZE);
  buf.writeUInt32LE(GROUP_STATUS_SIZE, G.argsz);
  ioctl(groupFd, VFIO_GROUP_GET_STATUS, buf, 'VFIO_GROUP_GET_STATUS', what);
  return { flags: buf.readUInt32LE(G.flags) };
}

/** VFIO_GROUP_SET_CONTAINER: the kernel reads the container fd through an `int *`. */
export function groupSetContainer(groupFd: number, containerFd: number, what = `vfio group fd ${groupFd}`): void {
  const buf = Buffer.alloc(4);
  buf.writeInt32LE(containerFd, 0);
  ioctl(groupFd, VFIO_GROUP_SET_CONTAINER, buf, 'VFIO_GROUP_SET_CONTAINER', what);
}

export function groupUnsetContainer(groupFd: number, what = `vfio group fd ${groupFd}`): void {
  ioctl(groupFd, VFIO_GROUP_UNSET_CONTAINER, null, 'VFIO_GROUP_UNSET_CONTAINER', what);
}

/**
 * VFIO_GROUP_GET_DEVICE_FD: `name` is the device as listed in the group's sysfs
 * devices directory (a PCI address, or an mdev UUID). Returns a new device fd (the
 * kernel opens it O_CLOEXEC).
 */
export function groupGetDeviceFd(groupFd: number, name: string, what = `vfio group fd ${groupFd}`): number {
  return ioctl(groupFd, VFIO_GROUP_GET_DEVICE_FD, Buffer.from(`${name}\0`, 'utf8'), 'VFIO_GROUP_GET_DEVICE_FD', `${what} device ${name}`);
}

// ---- device -----------------------------------------------------------------------------

export interface VfioDeviceInfo {
  /** VFIO_DEVICE_FLAGS_* */
  flags: number;
  numRegions: number;
  numIrqs: number;
}

export function deviceGetInfo(deviceFd: number, what = `vfio device fd ${deviceFd}`): VfioDeviceInfo {
  const buf = Buffer.alloc(DEVICE_INFO_SIZE);
  buf.writeUInt32LE(DEVICE_INFO_SIZE, D.argsz);
  ioctl(deviceFd, VFIO_DEVICE_GET_INFO, buf, 'VFIO_DEVICE_GET_INFO', what);
  return {
    flags: buf.readUInt32LE(D.flags),
    numRegions: buf.readUInt32LE(D.num_regions),
    numIrqs: buf.readUInt32LE(D.num_irqs),
  };
}

export function deviceReset(deviceFd: number, what = `vfio device fd ${deviceFd}`): void {
  ioctl(deviceFd, VFIO_DEVICE_RESET, null, 'VFIO_DEVICE_RESET', what);
}

export interface VfioSparseMmapArea {
  offset: bigint;
  size: bigint;
}

/** One entry of a region's capability chain. */
export type VfioRegionCap =
  | { kind: 'type'; id: typeof VFIO_REGION_INFO_CAP_TYPE; version: number; type: number; subtype: number }
  | { kind: 'sparse-mmap'; id: typeof VFIO_REGION_INFO_CAP_SPARSE_MMAP; version: number; areas: VfioSparseMmapArea[] }
  | { kind: 'other'; id: number; version: number };

export interface VfioRegionInfo {
  index: number;
  /** VFIO_REGION_INFO_FLAG_* */
  flags: number;
  size: bigint;
  /** Offset of the region in the device fd (for pread/pwrite/mmap). */
  offset: bigint;
  caps: VfioRegionCap[];
}

/**
 * VFIO_DEVICE_GET_REGION_INFO with the capability chain. The kernel protocol: ask with
 * argsz = sizeof(struct vfio_region_info); when the region has capabilities that do not
 * fit, it sets FLAG_CAPS, leaves cap_offset 0 and raises argsz to the size it needs, and
 * the caller asks again with a buffer that large.
 */
export function deviceGetRegionInfo(deviceFd: number, index: number, what = `vfio device fd ${deviceFd}`): VfioRegionInfo {
  let argsz = REGION_INFO_SIZE;
  let buf: Buffer;
  for (let attempt = 0; ; attempt++) {
    buf = Buffer.alloc(argsz);
    buf.writeUInt32LE(argsz, R.argsz);
    buf.writeUInt32LE(index, R.index);
    ioctl(deviceFd, VFIO_DEVICE_GET_REGION_INFO, buf, 'VFIO_DEVICE_GET_REGION_INFO', `${what} region ${index}`);
    const needed = buf.readUInt32LE(R.argsz);
    if (needed <= argsz || attempt >= 3) break;
    argsz = needed;
  }
  const flags = buf.readUInt32LE(R.flags);
  const capOffset = buf.readUInt32LE(R.cap_offset);
  return {
    index: buf.readUInt32LE(R.index),
    flags,
    size: buf.readBigUInt64LE(R.size),
    offset: buf.readBigUInt64LE(R.offset),
    caps: flags & VFIO_REGION_INFO_FLAG_CAPS ? parseRegionCaps(buf, capOffset) : [],
  };
}

/**
 * Walks a capability chain: offsets (cap_offset, then each header's `next`) are relative
 * to the start of the info buffer; 0 ends the chain. Exported for tests with synthetic
 * buffers. Stops at an offset that would not fit or that goes backwards (no loops).
 */
export function parseRegionCaps(buf: Buffer, firstOffset: number): VfioRegionCap[] {
  const caps: VfioRegionCap[] = [];
  let off = firstOffset;
  let prev = 0;
  while (off !== 0 && off > prev && off >= REGION_INFO_SIZE && off + CAP_HEADER_SIZE <= buf.length) {
    const id = buf.readUInt16LE(off + H.id);
    const version = buf.readUInt16LE(off + H.version);
    if (id === VFIO_REGION_INFO_CAP_TYPE && off + CT.size <= buf.length) {
      caps.push({
        kind: 'type',
        id,
        version,
        type: buf.readUInt32LE(off + CT.type),
        subtype: buf.readUInt32LE(off + CT.subtype),
      });
    } else if (id === VFIO_REGION_INFO_CAP_SPARSE_MMAP && off + SM.size <= buf.length) {
      const n = buf.readUInt32LE(off + SM.nr_areas);
      const areas: VfioSparseMmapArea[] = [];
      for (let i = 0; i < n; i++) {
        const a = off + SM.size + i * SM.areaSize;
        if (a + SM.areaSize > buf.length) break;
        areas.push({ offset: buf.readBigUInt64LE(a + SM.areaOffset), size: buf.readBigUInt64LE(a + SM.areaLength) });
      }
      caps.push({ kind: 'sparse-mmap', id, version, areas });
    } else {
      caps.push({ kind: 'other', id, version });
    }
    prev = off;
    off = buf.readUInt32LE(off + H.next);
  }
  return caps;
}

// ---- mediated display: gfx planes ---------------------------------------------------------

export interface VfioGfxPlaneInfo {
  /** VFIO_GFX_PLANE_TYPE_* as returned by the kernel. */
  flags: number;
  /** DRM_PLANE_TYPE_* */
  drmPlaneType: number;
  /** DRM fourcc; 0 when the guest has disabled the plane. */
  drmFormat: number;
  drmFormatMod: bigint;
  width: number;
  height: number;
  stride: number;
  /** Size in bytes, page aligned. */
  size: number;
  xPos: number;
  yPos: number;
  /** 0xffffffff when the kernel has no hotspot. */
  xHot: number;
  yHot: number;
  /** The anonymous union read both ways: valid per the TYPE_REGION / TYPE_DMABUF flag. */
  regionIndex: number;
  dmabufId: number;
}

export type GfxPlaneQueryResult =
  | { ok: true; plane: VfioGfxPlaneInfo }
  | { ok: false; errno: number; code: string };

function prepareGfxPlane(flags: number, drmPlaneType: number, buf?: Buffer): Buffer {
  if (buf && buf.length < GFX_PLANE_INFO_SIZE) {
    throw new RangeError(`queryGfxPlane: buffer of ${buf.length} bytes, struct vfio_device_gfx_plane_info needs ${GFX_PLANE_INFO_SIZE}`);
  }
  const b = buf ?? Buffer.alloc(GFX_PLANE_INFO_SIZE);
  // Zeroed on every call: the kernel leaves fields it does not know about untouched, and
  // a disabled plane is reported as "success with zeros".
  b.fill(0, 0, GFX_PLANE_INFO_SIZE);
  b.writeUInt32LE(GFX_PLANE_INFO_SIZE, P.argsz);
  b.writeUInt32LE(flags, P.flags);
  b.writeUInt32LE(drmPlaneType, P.drm_plane_type);
  return b;
}

/** Decodes a struct vfio_device_gfx_plane_info (exported for tests). */
export function decodeGfxPlane(b: Buffer): VfioGfxPlaneInfo {
  return {
    flags: b.readUInt32LE(P.flags),
    drmPlaneType: b.readUInt32LE(P.drm_plane_type),
    drmFormat: b.readUInt32LE(P.drm_format),
    drmFormatMod: b.readBigUInt64LE(P.drm_format_mod),
    width: b.readUInt32LE(P.width),
    height: b.readUInt32LE(P.height),
    stride: b.readUInt32LE(P.stride),
    size: b.readUInt32LE(P.size),
    xPos: b.readUInt32LE(P.x_pos),
    yPos: b.readUInt32LE(P.y_pos),
    xHot: b.readUInt32LE(P.x_hot),
    yHot: b.readUInt32LE(P.y_hot),
    regionIndex: b.readUInt32LE(P.region_index),
    dmabufId: b.readUInt32LE(P.dmabuf_id),
  };
}

/**
 * VFIO_DEVICE_QUERY_GFX_PLANE. `flags` is PROBE|DMABUF / PROBE|REGION to ask what the
 * mdev supports, or DMABUF / REGION to query a plane; `drmPlaneType` selects the plane
 * (DRM_PLANE_TYPE_PRIMARY or _CURSOR; ignored for probes). `buf` (>= GFX_PLANE_INFO_SIZE
 * bytes) may be reused across calls to avoid allocating per frame; it is zeroed first.
 */
export function queryGfxPlane(
  deviceFd: number,
  flags: number,
  drmPlaneType: number = DRM_PLANE_TYPE_PRIMARY,
  buf?: Buffer,
  what = `vfio device fd ${deviceFd}`,
): VfioGfxPlaneInfo {
  const b = prepareGfxPlane(flags, drmPlaneType, buf);
  ioctl(deviceFd, VFIO_DEVICE_QUERY_GFX_PLANE, b, 'VFIO_DEVICE_QUERY_GFX_PLANE', what);
  return decodeGfxPlane(b);
}

/**
 * queryGfxPlane that returns the errno instead of throwing: EINVAL (probe: not
 * supported), ENODEV (no plane yet, e.g. guest driver not up) and ENOMEM are answers.
 */
export function queryGfxPlaneTry(
  deviceFd: number,
  flags: number,
  drmPlaneType: number = DRM_PLANE_TYPE_PRIMARY,
  buf?: Buffer,
): GfxPlaneQueryResult {
  const b = prepareGfxPlane(flags, drmPlaneType, buf);
  const e = ioctlTry(deviceFd, VFIO_DEVICE_QUERY_GFX_PLANE, b);
  if (e !== 0) return { ok: false, errno: e, code: errnoName(e) };
  return { ok: true, plane: decodeGfxPlane(b) };
}

/**
 * VFIO_DEVICE_GET_GFX_DMABUF: a new dma-buf fd for the plane's dmabuf_id (the kernel
 * reads the id through a `__u32 *` and opens the fd O_CLOEXEC|O_RDWR).
 */
export function getGfxDmabuf(deviceFd: number, dmabufId: number, what = `vfio device fd ${deviceFd}`): number {
  const buf = Buffer.alloc(4);
  buf.writeUInt32LE(dmabufId, 0);
  return ioctl(deviceFd, VFIO_DEVICE_GET_GFX_DMABUF, buf, 'VFIO_DEVICE_GET_GFX_DMABUF', `${what} dmabuf_id ${dmabufId}`);
}
