// An inherited fd checked as a peer-to-peer D-Bus socket (QEMU's -display dbus,p2p=yes),
// before anything else is opened. Apart from connection.ts so that the command line's check
// of --qemu-dbus fd:N loads libc's bindings alone, not the D-Bus stack.
import { fstatSync } from 'node:fs';
import * as libc from '../../ffi/libc.js';

/**
 * What is wrong with inherited fd `n` as QEMU's peer-to-peer display socket, or null when it
 * is an open AF_UNIX stream socket (what QMP add_client and libvirt hand over). Checked
 * before anything else is opened, so a socket found there was inherited, not our own.
 */
export function inheritedSocketProblem(n: number): string | null {
  let kind: string;
  try {
    const st = fstatSync(n);
    kind = st.isSocket() ? 'socket' : st.isFIFO() ? 'pipe' : st.isFile() ? 'file' : st.isDirectory() ? 'directory' : st.isCharacterDevice() ? 'character device' : st.isBlockDevice() ? 'block device' : 'special file (an epoll, eventfd or other anonymous inode: such an fd is one the process opened itself)';
  } catch {
    return `fd ${n} is not open`;
  }
  if (kind !== 'socket') return `fd ${n} is a ${kind}, not a socket`;
  const domain = libc.getsockoptInt(n, libc.SOL_SOCKET, libc.SO_DOMAIN, `fd ${n}`);
  if (domain !== libc.AF_UNIX) return `fd ${n} is a ${domain === 2 ? 'TCP/IPv4' : domain === 10 ? 'TCP/IPv6' : `domain ${domain}`} socket, not a Unix socket`;
  const type = libc.getsockoptInt(n, libc.SOL_SOCKET, libc.SO_TYPE, `fd ${n}`);
  if (type !== libc.SOCK_STREAM) return `fd ${n} is a Unix ${type === libc.SOCK_DGRAM ? 'datagram' : type === libc.SOCK_SEQPACKET ? 'seqpacket' : `type ${type}`} socket, not a stream socket`;
  return null;
}
