// A peer that goes away while we still have output queued for it (QEMU killed in the middle
// of a flood of answers): the connection must end with an error, not recurse. Found by the
// rig's hostile QEMU (qemu-dbus-hostile.test.ts) run against the pre-rewrite kiosk: the
// fake QEMU's own connection overflowed the stack when the kiosk reset the socket.
import { describe, it, expect } from 'vitest';
import * as libc from '../../ffi/libc.js';
import { DbusConnection } from '../../plugin/dbus/connection.js';

describe('D-Bus transport, peer gone with output queued', () => {
  it('a write error on a running connection closes it once, with the error', async () => {
    const [ours, theirs] = libc.socketpair(libc.AF_UNIX, libc.SOCK_STREAM, 'peer-gone test');
    const conn = DbusConnection.fromSocket(ours, 'peer-gone test');
    const errors: unknown[] = [];
    const onUncaught = (e: unknown) => errors.push(e);
    process.on('uncaughtException', onUncaught);
    try {
      // The server's side of the handshake, raw: the peer never reads another byte.
      libc.sendmsg(theirs, [Buffer.from('OK 0123456789abcdef0123456789abcdef\r\nAGREE_UNIX_FD\r\n', 'latin1')], []);
      await conn.ready();
      const closed = new Promise<Error | null>((r) => conn.once('closed', r));
      let closes = 0;
      conn.on('closed', () => closes++);
      // More than the socket holds: the rest waits for the peer to read.
      const call = conn.call(null, '/x', 'x.y', 'Z', [{ type: 'ay', value: new Uint8Array(8 * 1024 * 1024) }], 10_000).catch((e: Error) => e);
      await new Promise((r) => setImmediate(r));
      libc.close(theirs);
      const why = await closed;
      // libuv reports the reset socket's POLLERR as EBADF ("polling fd N failed: bad file descriptor").
      expect(why).toBeInstanceOf(Error);
      expect(await call).toBeInstanceOf(Error);
      await new Promise((r) => setTimeout(r, 20)); // a nextTick'd rethrow would land by then
      expect(errors.map(String)).toEqual([]);
      expect(closes).toBe(1);
    } finally {
      process.off('uncaughtException', onUncaught);
    }
  });
});
