// dma-buf helpers: CPU-access bracketing and implicit-sync fences (linux/dma-buf.h),
// dma-bufs made from memfd pages (linux/udmabuf.h) and dma-heap allocation
// (linux/dma-heap.h). No policy; errors are SysErrors naming the ioctl and the fd.
import { readFileSync } from 'node:fs';
import koffi from 'koffi';
import { offsetOf, type AbiManifest } from './abi.js';
import { IOW, IOWR, ioctl, lseek, O_CLOEXEC, O_RDWR, SEEK_END, SEEK_SET } from './libc.js';

// ---- linux/dma-buf.h ----------------------------------------------------------------------

export const DMA_BUF_SYNC_READ = 1 << 0;
export const DMA_BUF_SYNC_WRITE = 2 << 0;
export const DMA_BUF_SYNC_RW = DMA_BUF_SYNC_READ | DMA_BUF_SYNC_WRITE;
export const DMA_BUF_SYNC_START = 0 << 2;
export const DMA_BUF_SYNC_END = 1 << 2;
export const DMA_BUF_SYNC_VALID_FLAGS_MASK = DMA_BUF_SYNC_RW | DMA_BUF_SYNC_END;

export const dma_buf_sync = koffi.struct('dma_buf_sync', {
  flags: 'uint64_t',
});
export const dma_buf_export_sync_file = koffi.struct('dma_buf_export_sync_file', {
  flags: 'uint32_t',
  fd: 'int32_t',
});
export const dma_buf_import_sync_file = koffi.struct('dma_buf_import_sync_file', {
  flags: 'uint32_t',
  fd: 'int32_t',
});

const DMA_BUF_BASE = 'b'.charCodeAt(0);
export const DMA_BUF_IOCTL_SYNC = IOW(DMA_BUF_BASE, 0, koffi.sizeof(dma_buf_sync));
export const DMA_BUF_IOCTL_EXPORT_SYNC_FILE = IOWR(DMA_BUF_BASE, 2, koffi.sizeof(dma_buf_export_sync_file));
export const DMA_BUF_IOCTL_IMPORT_SYNC_FILE = IOW(DMA_BUF_BASE, 3, koffi.sizeof(dma_buf_import_sync_file));

// ---- linux/udmabuf.h ----------------------------------------------------------------------

export const UDMABUF_FLAGS_CLOEXEC = 0x01;

export const udmabuf_create = koffi.struct('udmabuf_create', {
  memfd: 'uint32_t',
  flags: 'uint32_t',
  offset: 'uint64_t',
  size: 'uint64_t',
});
export const udmabuf_create_item = koffi.struct('udmabuf_create_item', {
  memfd: 'uint32_t',
  __pad: 'uint32_t',
  offset: 'uint64_t',
  size: 'uint64_t',
});
/**
 * Followed by the flexible array `struct udmabuf_create_item list[count]`, whose 8-byte
 * alignment makes the C struct 8-aligned although its fixed part is two __u32: `flags`
 * carries that alignment here so koffi's alignof matches C's.
 */
export const udmabuf_create_list = koffi.struct('udmabuf_create_list', {
  flags: [koffi.alignof(udmabuf_create_item), 'uint32_t'],
  count: 'uint32_t',
});

const UDMABUF_BASE = 'u'.charCodeAt(0);
export const UDMABUF_CREATE = IOW(UDMABUF_BASE, 0x42, koffi.sizeof(udmabuf_create));
export const UDMABUF_CREATE_LIST = IOW(UDMABUF_BASE, 0x43, koffi.sizeof(udmabuf_create_list));

// ---- linux/dma-heap.h ---------------------------------------------------------------------

const O_ACCMODE = 0o3;
/** fd_flags accepted by DMA_HEAP_IOCTL_ALLOC: O_CLOEXEC | O_ACCMODE. */
export const DMA_HEAP_VALID_FD_FLAGS = O_CLOEXEC | O_ACCMODE;
/** heap_flags accepted by DMA_HEAP_IOCTL_ALLOC: none are defined. */
export const DMA_HEAP_VALID_HEAP_FLAGS = 0;

export const dma_heap_allocation_data = koffi.struct('dma_heap_allocation_data', {
  len: 'uint64_t',
  fd: 'uint32_t',
  fd_flags: 'uint32_t',
  heap_flags: 'uint64_t',
});

const DMA_HEAP_IOC_MAGIC = 'H'.charCodeAt(0);
export const DMA_HEAP_IOCTL_ALLOC = IOWR(DMA_HEAP_IOC_MAGIC, 0x0, koffi.sizeof(dma_heap_allocation_data));

export const ABI: AbiManifest = {
  // fcntl.h first: DMA_HEAP_VALID_FD_FLAGS expands to O_CLOEXEC | O_ACCMODE.
  headers: ['fcntl.h', 'linux/dma-buf.h', 'linux/udmabuf.h', 'linux/dma-heap.h'],
  structs: {
    'struct dma_buf_sync': { type: dma_buf_sync },
    'struct dma_buf_export_sync_file': { type: dma_buf_export_sync_file },
    'struct dma_buf_import_sync_file': { type: dma_buf_import_sync_file },
    'struct udmabuf_create': { type: udmabuf_create },
    'struct udmabuf_create_item': { type: udmabuf_create_item },
    'struct udmabuf_create_list': {
      type: udmabuf_create_list,
      flexible: { member: 'list', offset: koffi.sizeof(udmabuf_create_list), element: udmabuf_create_item },
    },
    'struct dma_heap_allocation_data': { type: dma_heap_allocation_data },
  },
  constants: {
    DMA_BUF_SYNC_READ,
    DMA_BUF_SYNC_WRITE,
    DMA_BUF_SYNC_RW,
    DMA_BUF_SYNC_START,
    DMA_BUF_SYNC_END,
    DMA_BUF_SYNC_VALID_FLAGS_MASK,
    DMA_BUF_IOCTL_SYNC,
    DMA_BUF_IOCTL_EXPORT_SYNC_FILE,
    DMA_BUF_IOCTL_IMPORT_SYNC_FILE,
    UDMABUF_FLAGS_CLOEXEC,
    UDMABUF_CREATE,
    UDMABUF_CREATE_LIST,
    DMA_HEAP_VALID_FD_FLAGS,
    DMA_HEAP_VALID_HEAP_FLAGS,
    DMA_HEAP_IOCTL_ALLOC,
  },
};

// ---- field offsets, from the checked koffi layouts ----------------------------------------

const SYNC_SIZE = koffi.sizeof(dma_buf_sync);
const SYNC_FLAGS = offsetOf(dma_buf_sync, 'flags');

const XS = {
  size: koffi.sizeof(dma_buf_export_sync_file),
  flags: offsetOf(dma_buf_export_sync_file, 'flags'),
  fd: offsetOf(dma_buf_export_sync_file, 'fd'),
};
const IS = {
  size: koffi.sizeof(dma_buf_import_sync_file),
  flags: offsetOf(dma_buf_import_sync_file, 'flags'),
  fd: offsetOf(dma_buf_import_sync_file, 'fd'),
};

const UC = {
  size: koffi.sizeof(udmabuf_create),
  memfd: offsetOf(udmabuf_create, 'memfd'),
  flags: offsetOf(udmabuf_create, 'flags'),
  offset: offsetOf(udmabuf_create, 'offset'),
  length: offsetOf(udmabuf_create, 'size'),
};
const UL = {
  size: koffi.sizeof(udmabuf_create_list),
  flags: offsetOf(udmabuf_create_list, 'flags'),
  count: offsetOf(udmabuf_create_list, 'count'),
  list: koffi.sizeof(udmabuf_create_list),
};
const UI = {
  size: koffi.sizeof(udmabuf_create_item),
  memfd: offsetOf(udmabuf_create_item, 'memfd'),
  offset: offsetOf(udmabuf_create_item, 'offset'),
  length: offsetOf(udmabuf_create_item, 'size'),
};

const HA = {
  size: koffi.sizeof(dma_heap_allocation_data),
  len: offsetOf(dma_heap_allocation_data, 'len'),
  fd: offsetOf(dma_heap_allocation_data, 'fd'),
  fd_flags: offsetOf(dma_heap_allocation_data, 'fd_flags'),
  heap_flags: offsetOf(dma_heap_allocation_data, 'heap_flags'),
};

// ---- functions ------------------------------------------------------------------------------

/**
 * DMA_BUF_IOCTL_SYNC: bracket CPU access to a mapped dma-buf, e.g.
 * `DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ` before reading, `DMA_BUF_SYNC_END | ...READ`
 * after. EINTR/EAGAIN are retried by libc.ioctl.
 */
export function dmabufSync(fd: number, flags: number, what = `dma-buf fd ${fd}`): void {
  const buf = Buffer.alloc(SYNC_SIZE);
  buf.writeBigUInt64LE(BigInt(flags), SYNC_FLAGS);
  ioctl(fd, DMA_BUF_IOCTL_SYNC, buf, 'DMA_BUF_IOCTL_SYNC', what);
}

/**
 * DMA_BUF_IOCTL_EXPORT_SYNC_FILE (Linux 6.0+): a sync_file fd that signals when the
 * dma-buf's current fences (writers for READ, all users for WRITE) have signalled.
 */
export function dmabufExportSyncFile(fd: number, flags: number, what = `dma-buf fd ${fd}`): number {
  const buf = Buffer.alloc(XS.size);
  buf.writeUInt32LE(flags, XS.flags);
  buf.writeInt32LE(-1, XS.fd);
  ioctl(fd, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, buf, 'DMA_BUF_IOCTL_EXPORT_SYNC_FILE', what);
  return buf.readInt32LE(XS.fd);
}

/** DMA_BUF_IOCTL_IMPORT_SYNC_FILE (Linux 6.0+): attach a sync_file's fence to the dma-buf. */
export function dmabufImportSyncFile(fd: number, flags: number, syncFileFd: number, what = `dma-buf fd ${fd}`): void {
  const buf = Buffer.alloc(IS.size);
  buf.writeUInt32LE(flags, IS.flags);
  buf.writeInt32LE(syncFileFd, IS.fd);
  ioctl(fd, DMA_BUF_IOCTL_IMPORT_SYNC_FILE, buf, 'DMA_BUF_IOCTL_IMPORT_SYNC_FILE', what);
}

/**
 * UDMABUF_CREATE on /dev/udmabuf: a dma-buf over [offset, offset+size) of a memfd. The
 * kernel wants the memfd sealed with F_SEAL_SHRINK (and not F_SEAL_WRITE) and offset/size
 * page aligned. The new fd is always close-on-exec (UDMABUF_FLAGS_CLOEXEC).
 */
export function udmabufCreate(
  udmabufDevFd: number,
  memfd: number,
  offset: number | bigint,
  size: number | bigint,
  what = `/dev/udmabuf fd ${udmabufDevFd}`,
): number {
  const buf = Buffer.alloc(UC.size);
  buf.writeUInt32LE(memfd, UC.memfd);
  buf.writeUInt32LE(UDMABUF_FLAGS_CLOEXEC, UC.flags);
  buf.writeBigUInt64LE(BigInt(offset), UC.offset);
  buf.writeBigUInt64LE(BigInt(size), UC.length);
  return ioctl(udmabufDevFd, UDMABUF_CREATE, buf, 'UDMABUF_CREATE', `${what} memfd ${memfd}`);
}

export interface UdmabufItem {
  memfd: number;
  offset: number | bigint;
  size: number | bigint;
}

/**
 * UDMABUF_CREATE_LIST: one dma-buf concatenating several memfd ranges, in order (the
 * kernel caps the count with the udmabuf.list_limit module parameter, 1024 by default).
 * Always close-on-exec.
 */
export function udmabufCreateList(udmabufDevFd: number, items: readonly UdmabufItem[], what = `/dev/udmabuf fd ${udmabufDevFd}`): number {
  const buf = Buffer.alloc(UL.list + items.length * UI.size);
  buf.writeUInt32LE(UDMABUF_FLAGS_CLOEXEC, UL.flags);
  buf.writeUInt32LE(items.length, UL.count);
  items.forEach((item, i) => {
    const base = UL.list + i * UI.size;
    buf.writeUInt32LE(item.memfd, base + UI.memfd);
    buf.writeBigUInt64LE(BigInt(item.offset), base + UI.offset);
    buf.writeBigUInt64LE(BigInt(item.size), base + UI.length);
  });
  return ioctl(udmabufDevFd, UDMABUF_CREATE_LIST, buf, 'UDMABUF_CREATE_LIST', `${what} (${items.length} items)`);
}

/**
 * DMA_HEAP_IOCTL_ALLOC on a /dev/dma_heap/<name> fd: a new dma-buf of `len` bytes.
 * `fdFlags` is O_RDWR / O_RDONLY / O_WRONLY; O_CLOEXEC is always added, as libc.open does.
 */
export function dmaHeapAlloc(heapFd: number, len: number | bigint, fdFlags: number = O_RDWR, what = `dma-heap fd ${heapFd}`): number {
  const buf = Buffer.alloc(HA.size);
  buf.writeBigUInt64LE(BigInt(len), HA.len);
  buf.writeUInt32LE((fdFlags | O_CLOEXEC) >>> 0, HA.fd_flags);
  buf.writeBigUInt64LE(0n, HA.heap_flags);
  ioctl(heapFd, DMA_HEAP_IOCTL_ALLOC, buf, 'DMA_HEAP_IOCTL_ALLOC', `${what} len ${len}`);
  return buf.readUInt32LE(HA.fd);
}

/** Size of a dma-buf in bytes: lseek(SEEK_END), then back to 0. */
export function dmabufSize(fd: number, what = `dma-buf fd ${fd}`): number {
  const end = lseek(fd, 0, SEEK_END, what);
  lseek(fd, 0, SEEK_SET, what);
  return Number(end);
}

/**
 * The exporter of a dma-buf (the `exp_name:` line of /proc/self/fdinfo/FD: "udmabuf",
 * "i915", "vkms", …), or null when fdinfo says none (not a dma-buf, or unreadable).
 */
export function dmabufExporter(fd: number): string | null {
  let info: string;
  try {
    info = readFileSync(`/proc/self/fdinfo/${fd}`, 'latin1');
  } catch {
    return null;
  }
  const m = /^exp_name:\s*(\S+)/m.exec(info);
  return m ? m[1]! : null;
}
