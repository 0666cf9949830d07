// Thin koffi bindings to the libc calls guestplane needs. No policy here: every call
// either returns its result or throws a SysError that names the call, the object it
// was applied to and the errno symbol, so a caller never sees a bare -1.
import koffi from 'koffi';
import { constants as osConstants } from 'node:os';
import type { AbiManifest } from './abi.js';

export const libc = koffi.load('libc.so.6');

const errnoNames = new Map<number, string>();
for (const [name, value] of Object.entries(osConstants.errno)) {
  if (!errnoNames.has(value)) errnoNames.set(value, name);
}

/** Symbolic name of an errno value (`EINVAL`), or `errno N` when unknown. */
export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `errno ${errno}`;
}

/** A failed system call. `code` is the errno symbol, as Node's own errors carry it. */
export class SysError extends Error {
  readonly call: string;
  readonly object: string;
  readonly errno: number;
  readonly code: string;
  constructor(call: string, object: string, errno: number, hint?: string) {
    const code = errnoName(errno);
    super(`${call}(${object}) failed: ${code}${hint ? ` (${hint})` : ''}`);
    this.name = 'SysError';
    this.call = call;
    this.object = object;
    this.errno = errno;
    this.code = code;
  }
}

export const errno = {
  EPERM: osConstants.errno.EPERM,
  ENOENT: osConstants.errno.ENOENT,
  EINTR: osConstants.errno.EINTR,
  EIO: osConstants.errno.EIO,
  ENXIO: osConstants.errno.ENXIO,
  EBADF: osConstants.errno.EBADF,
  EAGAIN: osConstants.errno.EAGAIN,
  ENOMEM: osConstants.errno.ENOMEM,
  EACCES: osConstants.errno.EACCES,
  EFAULT: osConstants.errno.EFAULT,
  EBUSY: osConstants.errno.EBUSY,
  ENODEV: osConstants.errno.ENODEV,
  ENOTDIR: osConstants.errno.ENOTDIR,
  EINVAL: osConstants.errno.EINVAL,
  ENOTTY: osConstants.errno.ENOTTY,
  ENOSPC: osConstants.errno.ENOSPC,
  ERANGE: osConstants.errno.ERANGE,
  ENOSYS: osConstants.errno.ENOSYS,
  EOPNOTSUPP: osConstants.errno.EOPNOTSUPP,
  EINPROGRESS: osConstants.errno.EINPROGRESS,
} as const;

/** Reads the calling thread's errno (koffi saves it right after each native call). */
export function lastErrno(): number {
  return koffi.errno();
}

/** Throws a SysError when a libc-style call returned a negative value. */
export function check(ret: number, call: string, object: string): number {
  if (ret < 0) throw new SysError(call, object, koffi.errno());
  return ret;
}

/** Throws a SysError for libdrm-style calls that return -errno instead of setting errno. */
export function checkNeg(ret: number, call: string, object: string): number {
  if (ret < 0) throw new SysError(call, object, ret === -1 ? koffi.errno() : -ret);
  return ret;
}

// open(2) flags and friends (x86_64 / generic values; checked by test/unit/abi.test.ts).
export const O_RDONLY = 0o0;
export const O_WRONLY = 0o1;
export const O_RDWR = 0o2;
export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;
export const PROT_READ = 0x1;
export const PROT_WRITE = 0x2;
export const MAP_SHARED = 0x01;
export const MAP_FAILED = -1n;
export const SEEK_SET = 0;
export const SEEK_END = 2;
export const F_GETFL = 3;
export const F_SETFL = 4;
export const F_GETFD = 1;
export const F_DUPFD_CLOEXEC = 1030;
export const F_ADD_SEALS = 1033;
export const F_GET_SEALS = 1034;
export const F_SEAL_SEAL = 0x0001;
export const F_SEAL_SHRINK = 0x0002;
export const F_SEAL_GROW = 0x0004;
export const MFD_CLOEXEC = 0x0001;
export const MFD_ALLOW_SEALING = 0x0002;
export const POLLIN = 0x001;
export const POLLOUT = 0x004;
export const POLLERR = 0x008;
export const POLLHUP = 0x010;
export const POLLNVAL = 0x020;
export const EFD_CLOEXEC = 0o2000000;
export const EFD_NONBLOCK = 0o4000;
// Netlink sockets (for kernel uevents: connector hotplug).
export const AF_NETLINK = 16;
export const SOCK_DGRAM = 2;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const NETLINK_KOBJECT_UEVENT = 15;
export const MSG_DONTWAIT = 0x40;
export const sockaddr_nl = koffi.struct('sockaddr_nl', {
  nl_family: 'uint16_t',
  nl_pad: 'uint16_t',
  nl_pid: 'uint32_t',
  nl_groups: 'uint32_t',
});
export const SOCKADDR_NL_SIZE = koffi.sizeof(sockaddr_nl);

const c_open = libc.func('int open(const char *path, int flags, ...)');
const c_close = libc.func('int close(int fd)');
const c_ioctl = libc.func('int ioctl(int fd, unsigned long request, ...)');
const c_poll = libc.func('int poll(void *fds, unsigned long nfds, int timeout)');
const c_mmap = libc.func('void *mmap(void *addr, size_t len, int prot, int flags, int fd, int64_t off)');
const c_munmap = libc.func('int munmap(void *addr, size_t len)');
const c_lseek = libc.func('int64_t lseek(int fd, int64_t off, int whence)');
const c_fcntl = libc.func('int fcntl(int fd, int cmd, ...)');
const c_memfd_create = libc.func('int memfd_create(const char *name, unsigned int flags)');
const c_ftruncate = libc.func('int ftruncate(int fd, int64_t len)');
const c_read = libc.func('long read(int fd, _Out_ void *buf, size_t len)');
const c_write = libc.func('long write(int fd, const void *buf, size_t len)');
const c_pread = libc.func('long pread(int fd, _Out_ void *buf, size_t len, int64_t off)');
const c_pwrite = libc.func('long pwrite(int fd, const void *buf, size_t len, int64_t off)');
const c_eventfd = libc.func('int eventfd(unsigned int initval, int flags)');
const c_getpid = libc.func('int getpid(void)');
const c_socket = libc.func('int socket(int domain, int type, int protocol)');
const c_bind = libc.func('int bind(int fd, const void *addr, uint32_t len)');
const c_recv = libc.func('long recv(int fd, _Out_ void *buf, size_t len, int flags)');
const c_socketpair = libc.func('int socketpair(int domain, int type, int protocol, _Out_ int *sv)');
const c_connect = libc.func('int connect(int fd, const void *addr, uint32_t len)');
const c_getsockopt = libc.func('int getsockopt(int fd, int level, int name, _Out_ int *val, _Inout_ uint32_t *len)');
const c_geteuid = libc.func('uint32_t geteuid(void)');

/** struct iovec and struct msghdr (sys/socket.h): sendmsg/recvmsg with unix fds (SCM_RIGHTS). */
export const iovec = koffi.struct('iovec', { iov_base: 'void *', iov_len: 'size_t' });
export const msghdr = koffi.struct('msghdr', {
  msg_name: 'void *',
  msg_namelen: 'uint32_t',
  msg_iov: 'iovec *',
  msg_iovlen: 'size_t',
  msg_control: 'void *',
  msg_controllen: 'size_t',
  msg_flags: 'int',
});
/**
 * struct statx (linux/stat.h; the same on every architecture, unlike struct stat): the
 * members an fd's identity needs, the rest as padding. statx() fills it in place, with no
 * fs.Stats (and its four Date objects) made per call.
 */
export const statxStruct = koffi.struct('statx', {
  stx_mask: 'uint32_t',
  stx_blksize: 'uint32_t',
  stx_attributes: 'uint64_t',
  stx_nlink: 'uint32_t',
  stx_uid: 'uint32_t',
  stx_gid: 'uint32_t',
  stx_mode: 'uint16_t',
  __spare0: 'uint16_t',
  stx_ino: 'uint64_t',
  stx_size: 'uint64_t',
  __rest: koffi.array('uint8_t', 88),
  stx_dev_major: 'uint32_t',
  stx_dev_minor: 'uint32_t',
  __tail: koffi.array('uint8_t', 112),
});
export const AT_EMPTY_PATH = 0x1000;
export const STATX_INO = 0x100;
export const STATX_SIZE = 0x200;
const c_statx = libc.func('int statx(int dirfd, const char *path, int flags, unsigned int mask, void *buf)');
const OFF_STX_INO = koffi.offsetof(statxStruct, 'stx_ino');
const OFF_STX_SIZE = koffi.offsetof(statxStruct, 'stx_size');
const OFF_STX_DEV = koffi.offsetof(statxStruct, 'stx_dev_major');
const statxOut = Buffer.alloc(koffi.sizeof(statxStruct));

/**
 * The file behind `fd` as "major:minor:inode" (two fds of one file give the same key) and
 * its size in bytes: one statx(2) into a buffer kept for it.
 */
export function fileIdentity(fd: number, what = `fd ${fd}`): { key: string; size: number } {
  for (;;) {
    if ((c_statx(fd, '', AT_EMPTY_PATH, STATX_INO | STATX_SIZE, statxOut) as number) === 0) break;
    const e = koffi.errno();
    if (e !== errno.EINTR) throw new SysError('statx', what, e);
  }
  const ino = statxOut.readUInt32LE(OFF_STX_INO) + statxOut.readUInt32LE(OFF_STX_INO + 4) * 2 ** 32;
  const inoKey = Number.isSafeInteger(ino) ? String(ino) : String(statxOut.readBigUInt64LE(OFF_STX_INO));
  const size = statxOut.readUInt32LE(OFF_STX_SIZE) + statxOut.readUInt32LE(OFF_STX_SIZE + 4) * 2 ** 32;
  return { key: `${statxOut.readUInt32LE(OFF_STX_DEV)}:${statxOut.readUInt32LE(OFF_STX_DEV + 4)}:${inoKey}`, size };
}

/** struct cmsghdr's fixed part: cmsg_len (size_t), cmsg_level, cmsg_type; the data follows. */
export const cmsghdr = koffi.struct('cmsghdr', { cmsg_len: 'size_t', cmsg_level: 'int', cmsg_type: 'int' });
export const CMSG_HEADER = koffi.sizeof(cmsghdr);
export const SOL_SOCKET = 1;
export const SCM_RIGHTS = 1;
export const MSG_CTRUNC = 0x8;
export const MSG_NOSIGNAL = 0x4000;
export const MSG_CMSG_CLOEXEC = 0x40000000;
/** The kernel's limit on fds in one SCM_RIGHTS message (SCM_MAX_FD, not exported to user space). */
export const SCM_MAX_FD = 253;

export function open(path: string, flags: number): number {
  return check(c_open(path, flags | O_CLOEXEC), 'open', path);
}

export function close(fd: number, what = `fd ${fd}`): void {
  check(c_close(fd), 'close', what);
}

/**
 * ioctl(2) with a pointer argument. `arg` is the struct's bytes (in/out) or null.
 * `what` names the object for the error (e.g. "/dev/dri/card1").
 * EINTR is retried here: it only means a signal arrived. EAGAIN is not (libdrm's
 * drmIoctl retries it for DRM, where it means "busy, again"; for VFIO and others it
 * can be a real answer, and a retry loop on it could spin forever): drm.ts handles it.
 */
export function ioctl(fd: number, request: number, arg: Buffer | null, name: string, what = `fd ${fd}`): number {
  for (;;) {
    const ret = c_ioctl(fd, request, 'void *', arg) as number;
    if (ret >= 0) return ret;
    const e = koffi.errno();
    if (e === errno.EINTR) continue;
    throw new SysError(`ioctl ${name}`, what, e);
  }
}

/** ioctl(2) with an integer argument (e.g. VFIO_GROUP_SET_CONTAINER takes int *, not this). */
export function ioctlInt(fd: number, request: number, arg: number, name: string, what = `fd ${fd}`): number {
  for (;;) {
    const ret = c_ioctl(fd, request, 'unsigned long', arg) as number;
    if (ret >= 0) return ret;
    const e = koffi.errno();
    if (e === errno.EINTR) continue;
    throw new SysError(`ioctl ${name}`, what, e);
  }
}

/** ioctl returning errno instead of throwing: for probes where failure is an answer. */
export function ioctlTry(fd: number, request: number, arg: Buffer | null): number {
  for (;;) {
    const ret = c_ioctl(fd, request, 'void *', arg) as number;
    if (ret >= 0) return 0;
    const e = koffi.errno();
    if (e === errno.EINTR) continue;
    return e;
  }
}

export interface PollRequest {
  fd: number;
  events: number;
}

function pollBuffer(fds: PollRequest[]): Buffer {
  // struct pollfd { int fd; short events; short revents; } = 8 bytes
  const buf = Buffer.alloc(8 * fds.length);
  fds.forEach((p, i) => {
    buf.writeInt32LE(p.fd, 8 * i);
    buf.writeInt16LE(p.events, 8 * i + 4);
  });
  return buf;
}
function revents(buf: Buffer, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(buf.readUInt16LE(8 * i + 6));
  return out;
}

/** poll(2), synchronous. Returns revents per request. timeout in ms (-1 = forever). */
export function poll(fds: PollRequest[], timeoutMs: number): number[] {
  const buf = pollBuffer(fds);
  const ret = c_poll(buf, fds.length, timeoutMs) as number;
  if (ret < 0) {
    const e = koffi.errno();
    if (e === errno.EINTR) return fds.map(() => 0);
    throw new SysError('poll', fds.map((f) => f.fd).join(','), e);
  }
  return revents(buf, fds.length);
}

/**
 * poll(2) on a libuv worker thread (koffi's async call), so the Node event loop keeps
 * running while the kernel has nothing for us. Resolves with revents per request.
 */
export function pollAsync(fds: PollRequest[], timeoutMs: number): Promise<number[]> {
  const buf = pollBuffer(fds);
  return new Promise((resolve, reject) => {
    c_poll.async(buf, fds.length, timeoutMs, (err: unknown, ret: number) => {
      if (err) return reject(err instanceof Error ? err : new Error(String(err)));
      // errno is not carried across threads by koffi's async calls; EINTR is the only
      // failure poll() can have on valid fds, so a negative result means "nothing ready".
      if (ret < 0) return resolve(fds.map(() => 0));
      resolve(revents(buf, fds.length));
    });
  });
}

/** A mapping of a file's pages. `bytes` is only valid until unmap(). */
export interface Mapping {
  readonly address: bigint;
  readonly length: number;
  readonly bytes: Uint8Array;
  unmap(): void;
}

export function mmap(fd: number, length: number, prot: number, offset: bigint | number, what = `fd ${fd}`): Mapping {
  if (!Number.isSafeInteger(length) || length <= 0) {
    throw new RangeError(`mmap(${what}): length ${length} is not a positive size`);
  }
  const ptr = c_mmap(null, length, prot, MAP_SHARED, fd, BigInt(offset));
  const addr = ptr === null ? 0n : koffi.address(ptr);
  if (addr === 0n || addr === 0xffffffffffffffffn) throw new SysError('mmap', what, koffi.errno());
  const bytes = new Uint8Array(koffi.view(ptr, length));
  let mapped = true;
  return {
    address: addr,
    length,
    bytes,
    unmap() {
      if (!mapped) return;
      mapped = false;
      check(c_munmap(ptr, length), 'munmap', what);
    },
  };
}

export function lseek(fd: number, offset: number | bigint, whence: number, what = `fd ${fd}`): bigint {
  const ret = BigInt(c_lseek(fd, BigInt(offset), whence));
  if (ret < 0n) throw new SysError('lseek', what, koffi.errno());
  return ret;
}

export function fcntl(fd: number, cmd: number, arg = 0, what = `fd ${fd}`): number {
  return check(c_fcntl(fd, cmd, 'int', arg), 'fcntl', what);
}

export function dup(fd: number, what = `fd ${fd}`): number {
  // F_DUPFD_CLOEXEC rather than dup(): our fds must not leak into children (qemu, modetest).
  return check(c_fcntl(fd, F_DUPFD_CLOEXEC, 'int', 0), 'dup', what);
}

export function memfdCreate(name: string, flags: number): number {
  return check(c_memfd_create(name, flags | MFD_CLOEXEC), 'memfd_create', name);
}

export function ftruncate(fd: number, length: number, what = `fd ${fd}`): void {
  check(c_ftruncate(fd, BigInt(length)), 'ftruncate', what);
}

export function read(fd: number, buf: Buffer, what = `fd ${fd}`): number {
  for (;;) {
    const ret = Number(c_read(fd, buf, buf.length));
    if (ret >= 0) return ret;
    const e = koffi.errno();
    if (e === errno.EINTR) continue;
    throw new SysError('read', what, e);
  }
}

export function write(fd: number, buf: Buffer | Uint8Array, what = `fd ${fd}`): number {
  return check(Number(c_write(fd, buf, buf.length)), 'write', what);
}

export function pread(fd: number, buf: Buffer, offset: bigint | number, what = `fd ${fd}`): number {
  return check(Number(c_pread(fd, buf, buf.length, BigInt(offset))), 'pread', what);
}

export function pwrite(fd: number, buf: Buffer | Uint8Array, offset: bigint | number, what = `fd ${fd}`): number {
  return check(Number(c_pwrite(fd, buf, buf.length, BigInt(offset))), 'pwrite', what);
}

export function eventfd(initval: number, flags: number): number {
  return check(c_eventfd(initval, flags | EFD_CLOEXEC), 'eventfd', 'new eventfd');
}

export function getpid(): number {
  return c_getpid() as number;
}

export function socket(domain: number, type: number, protocol: number, what = `socket(${domain}, ${type}, ${protocol})`): number {
  return check(c_socket(domain, type | SOCK_CLOEXEC, protocol), 'socket', what);
}

export const AF_UNIX = 1;
export const SOCK_STREAM = 1;
export const SOCK_SEQPACKET = 5;
export const SO_TYPE = 3;
export const SO_DOMAIN = 39;

/** getsockopt(2) of an int option (SO_TYPE, SO_DOMAIN, …). */
export function getsockoptInt(fd: number, level: number, name: number, what = `fd ${fd}`): number {
  const val = [0];
  const len = [4];
  check(c_getsockopt(fd, level, name, val, len), 'getsockopt', what);
  return val[0]!;
}

/** socketpair(2), close-on-exec: two connected ends, both the caller's. */
export function socketpair(domain: number, type: number, what = 'socketpair'): [number, number] {
  const sv = [0, 0];
  check(c_socketpair(domain, type | SOCK_CLOEXEC, 0, sv), 'socketpair', what);
  return [sv[0]!, sv[1]!];
}

/** bind(2) of a netlink socket to multicast `groups` (pid 0: the kernel picks our port id). */
export function bindNetlink(fd: number, groups: number, what = `netlink fd ${fd}`): void {
  const addr = Buffer.alloc(SOCKADDR_NL_SIZE);
  addr.writeUInt16LE(AF_NETLINK, koffi.offsetof(sockaddr_nl, 'nl_family'));
  addr.writeUInt32LE(0, koffi.offsetof(sockaddr_nl, 'nl_pid'));
  addr.writeUInt32LE(groups >>> 0, koffi.offsetof(sockaddr_nl, 'nl_groups'));
  check(c_bind(fd, addr, SOCKADDR_NL_SIZE), 'bind', what);
}

/** recv(2); returns the byte count, or -1 with EAGAIN when nothing is queued (non-blocking). */
export function recv(fd: number, buf: Buffer, flags: number, what = `fd ${fd}`): number {
  for (;;) {
    const ret = Number(c_recv(fd, buf, buf.length, flags));
    if (ret >= 0) return ret;
    const e = koffi.errno();
    if (e === errno.EINTR) continue;
    if (e === errno.EAGAIN) return -1;
    throw new SysError('recv', what, e);
  }
}

export function geteuid(): number {
  return c_geteuid() as number;
}

/**
 * connect(2) of an AF_UNIX socket to a path, or to an abstract name (`abstract`: the name
 * without its leading NUL). Returns false when the connection is still being made
 * (EINPROGRESS/EAGAIN on a non-blocking socket: wait until it is writable).
 */
export function connectUnix(fd: number, name: string, abstract: boolean, what = name): boolean {
  const path = Buffer.from(name, 'utf8');
  if (path.length + 1 > 108) throw new SysError('connect', `${what} (a unix socket path is at most 107 bytes)`, errno.EINVAL);
  const addr = Buffer.alloc(2 + 108);
  addr.writeUInt16LE(AF_UNIX, 0);
  path.copy(addr, abstract ? 3 : 2);
  const len = 2 + (abstract ? 1 + path.length : path.length + 1);
  for (;;) {
    if ((c_connect(fd, addr, len) as number) === 0) return true;
    const e = koffi.errno();
    if (e === errno.EINTR) continue;
    if (e === errno.EINPROGRESS || e === errno.EAGAIN) return false;
    throw new SysError('connect', what, e);
  }
}

/**
 * Native memory for sendmsg/recvmsg, laid out once: a struct msghdr pointing at one iovec
 * and a control buffer, then the data area. A call then passes a single pointer: koffi
 * marshalling a msghdr object with nested arrays cost ~20-28 µs a call, this ~2 µs plus
 * a memcpy of the bytes (measured on the host). Shared: calls are synchronous on the
 * main thread and the bytes are copied in or out at once.
 */
const STAGE_DATA = 256 * 1024;
const STAGE_CONTROL = CMSG_HEADER + 4 * SCM_MAX_FD + 4;
const MSGHDR_SIZE = koffi.sizeof(msghdr);
const IOVEC_SIZE = koffi.sizeof(iovec);
const c_sendmsg_raw = libc.func('long sendmsg(int fd, void *msg, int flags)');
const c_recvmsg_raw = libc.func('long recvmsg(int fd, void *msg, int flags)');
let stage: { ptr: unknown; hdr: Buffer; control: Buffer; data: Buffer; controlAddr: [number, number] } | null = null;

function msgStage(): NonNullable<typeof stage> {
  if (stage) return stage;
  const total = MSGHDR_SIZE + IOVEC_SIZE + STAGE_CONTROL + STAGE_DATA;
  const ptr = koffi.alloc('uint8_t', total);
  const base = koffi.address(ptr);
  const all = Buffer.from(koffi.view(ptr, total) as ArrayBuffer);
  const iovAt = MSGHDR_SIZE;
  const controlAt = iovAt + IOVEC_SIZE;
  const dataAt = controlAt + STAGE_CONTROL;
  const hdr = all.subarray(0, MSGHDR_SIZE);
  hdr.fill(0);
  hdr.writeBigUInt64LE(base + BigInt(iovAt), koffi.offsetof(msghdr, 'msg_iov'));
  hdr.writeBigUInt64LE(1n, koffi.offsetof(msghdr, 'msg_iovlen'));
  all.writeBigUInt64LE(base + BigInt(dataAt), iovAt + koffi.offsetof(iovec, 'iov_base'));
  const controlAddr = base + BigInt(controlAt);
  stage = { ptr, hdr: all.subarray(0, controlAt), control: all.subarray(controlAt, dataAt), data: all.subarray(dataAt), controlAddr: [Number(controlAddr & 0xffffffffn), Number(controlAddr >> 32n)] };
  return stage;
}

const OFF_IOV_LEN = MSGHDR_SIZE + koffi.offsetof(iovec, 'iov_len');
const OFF_CONTROL = koffi.offsetof(msghdr, 'msg_control');
const OFF_CONTROLLEN = koffi.offsetof(msghdr, 'msg_controllen');
const OFF_FLAGS = koffi.offsetof(msghdr, 'msg_flags');

/** Sets the lengths for one call (numbers below 2^32: no BigInt on this path). */
function stageArm(st: NonNullable<typeof stage>, dataLen: number, controlLen: number): void {
  st.hdr.writeUInt32LE(dataLen, OFF_IOV_LEN);
  st.hdr.writeUInt32LE(0, OFF_IOV_LEN + 4);
  st.hdr.writeUInt32LE(controlLen ? st.controlAddr[0] : 0, OFF_CONTROL);
  st.hdr.writeUInt32LE(controlLen ? st.controlAddr[1] : 0, OFF_CONTROL + 4);
  st.hdr.writeUInt32LE(controlLen, OFF_CONTROLLEN);
  st.hdr.writeUInt32LE(0, OFF_CONTROLLEN + 4);
  st.hdr.writeInt32LE(0, OFF_FLAGS);
}

/**
 * sendmsg(2) of `chunks` (at most 256 KiB of them per call) with `fds` as SCM_RIGHTS
 * (non-blocking). Returns the bytes the kernel took, or -1 when the socket is full
 * (EAGAIN). The fds stay the caller's.
 */
export function sendmsg(fd: number, chunks: readonly Uint8Array[], fds: readonly number[], what = `fd ${fd}`): number {
  if (fds.length > SCM_MAX_FD) throw new SysError('sendmsg', `${what} (${fds.length} fds, at most ${SCM_MAX_FD})`, errno.EINVAL);
  const st = msgStage();
  let len = 0;
  for (const c of chunks) {
    const n = Math.min(c.byteLength, STAGE_DATA - len);
    st.data.set(n === c.byteLength ? c : c.subarray(0, n), len);
    len += n;
    if (len === STAGE_DATA) break;
  }
  let controlLen = 0;
  if (fds.length) {
    controlLen = CMSG_HEADER + 8 * Math.ceil(fds.length / 2);
    st.control.fill(0, 0, controlLen);
    st.control.writeBigUInt64LE(BigInt(CMSG_HEADER + 4 * fds.length), 0);
    st.control.writeInt32LE(SOL_SOCKET, 8);
    st.control.writeInt32LE(SCM_RIGHTS, 12);
    fds.forEach((f, i) => st.control.writeInt32LE(f, CMSG_HEADER + 4 * i));
  }
  stageArm(st, len, controlLen);
  for (;;) {
    const ret = Number(c_sendmsg_raw(fd, st.ptr, MSG_DONTWAIT | MSG_NOSIGNAL));
    if (ret >= 0) return ret;
    const e = koffi.errno();
    if (e === errno.EINTR) continue;
    if (e === errno.EAGAIN) return -1;
    throw new SysError('sendmsg', what, e);
  }
}

/**
 * recvmsg(2) into `buf` (at most 256 KiB per call; non-blocking, fds close-on-exec).
 * Received fds are appended to `fds` and are the caller's. Returns the byte count (0: the
 * peer closed), or -1 when nothing is queued (EAGAIN). `truncated`: the kernel had more
 * fds than fit (it closed those).
 */
export function recvmsg(fd: number, buf: Uint8Array, fds: number[], what = `fd ${fd}`): { bytes: number; truncated: boolean } {
  const st = msgStage();
  const want = Math.min(buf.byteLength, STAGE_DATA);
  stageArm(st, want, STAGE_CONTROL);
  for (;;) {
    const ret = Number(c_recvmsg_raw(fd, st.ptr, MSG_DONTWAIT | MSG_CMSG_CLOEXEC));
    if (ret < 0) {
      const e = koffi.errno();
      if (e === errno.EINTR) continue;
      if (e === errno.EAGAIN) return { bytes: -1, truncated: false };
      throw new SysError('recvmsg', what, e);
    }
    if (ret > 0) buf.set(st.data.subarray(0, ret));
    // Walk the control messages; every SCM_RIGHTS fd becomes the caller's.
    const end = st.hdr.readUInt32LE(OFF_CONTROLLEN);
    let off = 0;
    while (off + CMSG_HEADER <= end) {
      const len = Number(st.control.readBigUInt64LE(off));
      if (len < CMSG_HEADER || off + len > end) break;
      if (st.control.readInt32LE(off + 8) === SOL_SOCKET && st.control.readInt32LE(off + 12) === SCM_RIGHTS) {
        for (let p = off + CMSG_HEADER; p + 4 <= off + len; p += 4) fds.push(st.control.readInt32LE(p));
      }
      off += (len + 7) & ~7;
    }
    const flags = st.hdr.readInt32LE(OFF_FLAGS);
    return { bytes: ret, truncated: (flags & MSG_CTRUNC) !== 0 };
  }
}

// ioctl request encoding (asm-generic/ioctl.h, used by x86_64).
const IOC_NONE = 0;
const IOC_WRITE = 1;
const IOC_READ = 2;
export function ioc(dir: number, type: number, nr: number, size: number): number {
  return ((dir << 30) | (size << 16) | (type << 8) | nr) >>> 0;
}
export const IO = (type: number, nr: number): number => ioc(IOC_NONE, type, nr, 0);
export const IOR = (type: number, nr: number, size: number): number => ioc(IOC_READ, type, nr, size);
export const IOW = (type: number, nr: number, size: number): number => ioc(IOC_WRITE, type, nr, size);
export const IOWR = (type: number, nr: number, size: number): number => ioc(IOC_READ | IOC_WRITE, type, nr, size);

/** The libc constants above, checked against the C headers by test/unit/abi.test.ts. */
export const ABI: AbiManifest = {
  headers: ['fcntl.h', 'unistd.h', 'sys/mman.h', 'poll.h', 'sys/eventfd.h', 'sys/socket.h', 'sys/stat.h', 'linux/netlink.h'],
  structs: {
    'struct sockaddr_nl': { type: sockaddr_nl },
    'struct iovec': { type: iovec },
    'struct msghdr': { type: msghdr },
    'struct cmsghdr': { type: cmsghdr },
    'struct statx': { type: statxStruct, members: ['stx_mask', 'stx_blksize', 'stx_attributes', 'stx_nlink', 'stx_uid', 'stx_gid', 'stx_mode', 'stx_ino', 'stx_size', 'stx_dev_major', 'stx_dev_minor'] },
  },
  constants: {
    AT_EMPTY_PATH,
    STATX_INO,
    STATX_SIZE,
    O_RDONLY,
    AF_UNIX,
    SOCK_STREAM,
    O_WRONLY,
    O_RDWR,
    O_NONBLOCK,
    O_CLOEXEC,
    PROT_READ,
    PROT_WRITE,
    MAP_SHARED,
    MAP_FAILED,
    SEEK_SET,
    SEEK_END,
    F_GETFL,
    F_SETFL,
    F_GETFD,
    F_DUPFD_CLOEXEC,
    F_ADD_SEALS,
    F_GET_SEALS,
    F_SEAL_SEAL,
    F_SEAL_SHRINK,
    F_SEAL_GROW,
    MFD_CLOEXEC,
    MFD_ALLOW_SEALING,
    POLLIN,
    POLLOUT,
    POLLERR,
    POLLHUP,
    POLLNVAL,
    EFD_CLOEXEC,
    EFD_NONBLOCK,
    AF_NETLINK,
    SOCK_DGRAM,
    SOCK_NONBLOCK,
    SOCK_CLOEXEC,
    NETLINK_KOBJECT_UEVENT,
    MSG_DONTWAIT,
    SOL_SOCKET,
    SCM_RIGHTS,
    MSG_CTRUNC,
    MSG_NOSIGNAL,
    MSG_CMSG_CLOEXEC,
  },
};
