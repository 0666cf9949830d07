// A peer that plays QEMU's side of the display listener protocol, for what an unmodified
// QEMU never sends (a file that is not a dma-buf, lying sizes, unknown formats or
// methods) or cannot send in the rig (a dma-buf vkms can scan out: QEMU's mbochs buffers
// are neither mappable nor scannable there). The real QEMU is in qemu-dbus.test.ts.
import * as libc from '../../../ffi/libc.js';
import { DbusConnection, type DbusArg, type DbusValue } from '../../../plugin/dbus/connection.js';
import { DMABUF2_IFACE, LISTENER_IFACE, LISTENER_PATH } from '../../../plugin/sources/qemu-dbus-protocol.js';
import { QemuConsoleSource, type QemuConsoleInfo } from '../../../plugin/sources/qemu-dbus.js';

export interface QemuPeer {
  src: QemuConsoleSource;
  qemu: DbusConnection;
  /** Calls the listener as QEMU does; resolves when the listener answers. */
  call(member: string, args: DbusArg[]): Promise<DbusValue[]>;
  /** ScanoutDMABUF2 on its own interface (org.qemu.Display1.Listener.Unix.ScanoutDMABUF2), as QEMU 10.1+ calls it. */
  scanoutDmabuf2(d: Dmabuf2): Promise<DbusValue[]>;
  close(): void;
}

/** What ScanoutDMABUF2 describes: fds (the caller's), the shown rectangle, planes, the backing size. */
export interface Dmabuf2 {
  fds: number[];
  x: number;
  y: number;
  width: number;
  height: number;
  offsets: number[];
  strides: number[];
  /** Default: offsets.length. */
  numPlanes?: number;
  fourcc: number;
  backingWidth: number;
  backingHeight: number;
  modifier?: bigint;
  y0Top?: boolean;
}

/** ScanoutDMABUF2's arguments (ah, u x, u y, u w, u h, au offset, au stride, u n, u fourcc, u bw, u bh, t modifier, b y0_top). */
export function dmabuf2Args(d: Dmabuf2): DbusArg[] {
  // ah and au are not among DbusArg's shapes; the writer marshals any array of a basic type.
  const arr = (type: string, value: number[]) => ({ type, value }) as unknown as DbusArg;
  const u = (value: number): DbusArg => ({ type: 'u', value });
  return [
    arr('ah', d.fds),
    u(d.x),
    u(d.y),
    u(d.width),
    u(d.height),
    arr('au', d.offsets),
    arr('au', d.strides),
    u(d.numPlanes ?? d.offsets.length),
    u(d.fourcc),
    u(d.backingWidth),
    u(d.backingHeight),
    { type: 't', value: d.modifier ?? 0n },
    { type: 'b', value: d.y0Top ?? false },
  ];
}

/**
 * A console source on one end of a socketpair; the returned peer is QEMU on the other.
 * Like QEMU 8.1 and later (its listener proxy loads properties: a GetAll round trip), the
 * peer asks for the listener's properties before it sends anything.
 */
export async function qemuPeer(size = { width: 64, height: 32 }): Promise<QemuPeer> {
  const [ours, theirs] = libc.socketpair(libc.AF_UNIX, libc.SOCK_STREAM, 'QEMU peer');
  const listener = DbusConnection.fromSocket(ours, 'listener');
  const qemu = DbusConnection.fromSocket(theirs, 'QEMU peer', { server: true });
  const info: QemuConsoleInfo = { id: 0, path: '/org/qemu/Display1/Console_0', type: 'Graphic', label: 'peer', head: 0, ...size, deviceAddress: '', interfaces: [] };
  const src = new QemuConsoleSource(info, listener, listener, null);
  await qemu.call(null, LISTENER_PATH, 'org.freedesktop.DBus.Properties', 'GetAll', [{ type: 's', value: LISTENER_IFACE }], 5000).catch(() => []);
  return {
    src,
    qemu,
    call: (member, args) => qemu.call(null, LISTENER_PATH, LISTENER_IFACE, member, args, 5000),
    scanoutDmabuf2: (d) => qemu.call(null, LISTENER_PATH, DMABUF2_IFACE, 'ScanoutDMABUF2', dmabuf2Args(d), 5000),
    close: () => {
      src.close();
      qemu.close();
    },
  };
}
