// Registering a display listener with QEMU: a socketpair whose other end QEMU takes with
// Console.RegisterListener (it becomes the D-Bus server on it). QEMU sends a new listener
// the console's current scanout, which is how a console source learns a buffer whose
// ScanoutDMABUF QEMU dropped (qemu-dbus.ts).
//
// Ownership: the returned connection is the caller's; the end given to QEMU is closed here.
import * as libc from '../../ffi/libc.js';
import { DbusConnection } from '../dbus/connection.js';
import { CONSOLE_IFACE } from './qemu-dbus-protocol.js';

/** Makes a listener connection, lets `serve` export the listener object on it, registers it on `consolePath`. */
export async function registerListener(bus: DbusConnection, dest: string | null, consolePath: string, name: string, serve: (listener: DbusConnection) => void): Promise<DbusConnection> {
  const [ours, theirs] = libc.socketpair(libc.AF_UNIX, libc.SOCK_STREAM, 'QEMU listener socket');
  let listener: DbusConnection | null = null;
  try {
    listener = DbusConnection.fromSocket(ours, name);
    serve(listener);
    // QEMU authenticates the listener while this call is in flight: the event loop serves it.
    await bus.call(dest, consolePath, CONSOLE_IFACE, 'RegisterListener', [{ type: 'h', value: theirs }], 10000);
    const done = listener;
    listener = null;
    return done;
  } finally {
    libc.close(theirs);
    listener?.close();
  }
}
