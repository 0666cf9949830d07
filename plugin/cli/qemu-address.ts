// --qemu-dbus ADDRESS checked before anything is opened. Apart from args.ts because the
// fd:N check asks the kernel (fstat, getsockopt: koffi), which --help must not load; it
// loads libc's bindings alone (dbus/inherited.ts), so a bad fd is refused quickly.
import { inheritedSocketProblem } from '../dbus/inherited.js';
import { UsageError } from './args.js';

/** A --qemu-dbus address: a D-Bus address, 'session', or fd:N. */
export function parseQemuAddress(s: string, cmd: string): string {
  if (s === 'session' || /^[a-z]+:.+/.test(s)) {
    const fd = /^fd:(.*)$/.exec(s);
    if (fd && !(/^\d+$/.test(fd[1]!) && Number(fd[1]) >= 3)) throw new UsageError(`--qemu-dbus '${s}': fd:N needs an inherited file descriptor number (3 or above)`, cmd);
    const wrong = fd ? inheritedSocketProblem(Number(fd[1])) : null;
    if (wrong) throw new UsageError(`--qemu-dbus '${s}': ${wrong}; start guestplane with QEMU's peer-to-peer display socket (-display dbus,p2p=yes, QMP add_client, or libvirt's virDomainOpenGraphicsFD) inherited as fd ${fd![1]}`, cmd);
    return s;
  }
  throw new UsageError(`--qemu-dbus '${s}' is not a D-Bus address; give the bus QEMU's -display dbus uses, e.g. unix:path=/run/user/1000/bus, 'session' for $DBUS_SESSION_BUS_ADDRESS, or fd:N for an inherited socket connected peer-to-peer (QMP add_client)`, cmd);
}
