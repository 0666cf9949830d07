// A QEMU VM's display on a D-Bus bus (or a peer-to-peer socket): connects, reads the VM's
// and the consoles' descriptions (org.qemu.Display1.VM / .Console_N) and opens a console
// as a guest source (qemu-dbus.ts), which registers its listener with QEMU.
//
// Ownership: the QemuDisplay owns the bus connection; closing it closes every console
// source it opened.
import { fstatSync } from 'node:fs';
import * as libc from '../../ffi/libc.js';
import { DbusConnection, DbusError, type DbusValue } from '../dbus/connection.js';
import { inheritedSocketProblem } from '../dbus/inherited.js';
import { CONSOLE_IFACE, QEMU_NAME, VM_IFACE, VM_PATH, num, str, type QemuConsoleInfo, type QemuVmInfo } from './qemu-dbus-protocol.js';
import { QemuConsoleSource, type QemuIdSpace } from './qemu-dbus.js';
import { registerListener } from './qemu-listener.js';

/** The handshake with the bus (or QEMU's p2p socket) must be done by then. */
/** How long connect() waits for the D-Bus handshake and the VM's first answer, by default. */
export const CONNECT_TIMEOUT_MS = 5000;
const CONSOLES_AT_ONCE = 8;

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | null = null;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]).finally(() => {
    if (timer) clearTimeout(timer);
  });
}

/** A QEMU VM's display on a bus (or a peer-to-peer D-Bus socket from QMP add_client). */
export class QemuDisplay {
  readonly address: string;
  readonly #bus: DbusConnection;
  readonly #dest: string | null;
  readonly #consoles = new Set<QemuConsoleSource>();

  private constructor(address: string, bus: DbusConnection, dest: string | null) {
    this.address = address;
    this.#bus = bus;
    this.#dest = dest;
  }

  /**
   * Connects to QEMU's display. `address` is a D-Bus address (`unix:path=…`) of the bus
   * QEMU's -display dbus is on, `session` for $DBUS_SESSION_BUS_ADDRESS, or `fd:N`: an
   * inherited socket already connected peer-to-peer to QEMU (-display dbus,p2p=yes and
   * QMP add_client, or libvirt's virDomainOpenGraphicsFD). fd N stays the caller's (a
   * duplicate is used); it cannot be reconnected once QEMU drops it. `timeoutMs` bounds the
   * handshake and the VM's first answer (default CONNECT_TIMEOUT_MS).
   */
  static async connect(address: string, opts: { timeoutMs?: number } = {}): Promise<QemuDisplay> {
    const timeoutMs = opts.timeoutMs ?? CONNECT_TIMEOUT_MS;
    let addr = address;
    if (address === 'session') {
      addr = process.env.DBUS_SESSION_BUS_ADDRESS ?? '';
      if (!addr) throw new Error('--qemu-dbus session: DBUS_SESSION_BUS_ADDRESS is not set; give the bus address QEMU uses (unix:path=…)');
    }
    const fdMatch = /^fd:(\d+)$/.exec(addr);
    if (!fdMatch && !/^[a-z]+:/.test(addr)) throw new Error(`--qemu-dbus ${address}: not a D-Bus address; expected unix:path=/run/…/bus, session, or fd:N`);
    let bus: DbusConnection;
    try {
      if (fdMatch) {
        const n = Number(fdMatch[1]);
        // Any open fd would do for dup(): a wrong number (a wrapper that did not pass it)
        // would take one of Node's own. Only a socket can be QEMU's.
        let kind: string;
        try {
          const st = fstatSync(n);
          kind = st.isSocket() ? 'socket' : st.isFIFO() ? 'pipe' : st.isFile() ? 'file' : st.isDirectory() ? 'directory' : st.isCharacterDevice() ? 'character device' : 'not a socket';
        } catch {
          throw Object.assign(new Error(`fd ${n} is not open`), { code: 'EBADF' });
        }
        if (kind !== 'socket') throw new Error(`fd ${n} is a ${kind}, not a socket connected to QEMU (pass the fd of QMP add_client's or libvirt's socket)`);
        const wrong = inheritedSocketProblem(n);
        if (wrong) throw new Error(`${wrong}: not QEMU's display socket (pass the fd of QMP add_client's or libvirt's socket)`);
        const fd = libc.fcntl(n, libc.F_DUPFD_CLOEXEC, 3, `--qemu-dbus ${address}`);
        bus = DbusConnection.fromSocket(fd, `QEMU display ${address}`);
      } else {
        bus = DbusConnection.connect(addr, { busClient: true, name: `QEMU display bus ${addr}` });
      }
    } catch (e) {
      const code = (e as { code?: string }).code;
      const why = code === 'ENOENT' ? 'no bus socket there' : code === 'ECONNREFUSED' ? 'nothing listens on that socket' : code === 'EACCES' ? 'permission denied' : code === 'EBADF' ? 'no such open fd' : (e as Error).message;
      throw new Error(`no QEMU display at ${address}: cannot connect (${why}). Start QEMU with -display dbus on that bus (or libvirt's <graphics type='dbus'/>), or check the address`);
    }
    const d = new QemuDisplay(address, bus, fdMatch ? null : QEMU_NAME);
    try {
      await withTimeout(bus.ready(), timeoutMs, `no D-Bus handshake within ${timeoutMs / 1000} s: the socket does not speak D-Bus, or its process hangs`);
      await d.vmInfo(timeoutMs);
    } catch (e) {
      bus.close();
      throw new Error(`no QEMU display at ${address}: ${(e as Error).message}. Start QEMU with -display dbus (and the same bus), or check the address`);
    }
    return d;
  }

  get closed(): boolean {
    return this.#bus.closed;
  }

  onClosed(fn: (e: Error | null) => void): void {
    this.#bus.on('closed', fn);
  }

  async vmInfo(timeoutMs = 5000): Promise<QemuVmInfo> {
    const [props] = await this.#bus.call(this.#dest, VM_PATH, 'org.freedesktop.DBus.Properties', 'GetAll', [{ type: 's', value: VM_IFACE }], timeoutMs);
    const p = props instanceof Map ? props : new Map<DbusValue, DbusValue>();
    const ids = p.get('ConsoleIDs');
    return { name: str(p.get('Name')), uuid: str(p.get('UUID')), consoleIds: Array.isArray(ids) ? ids.map(num) : [] };
  }

  /**
   * Every console, asked a few at a time: a bus daemon bounds the calls one connection
   * may have waiting (a VM with 1,000 consoles asked at once got LimitsExceeded).
   */
  async consoles(): Promise<QemuConsoleInfo[]> {
    const { consoleIds } = await this.vmInfo();
    const out: QemuConsoleInfo[] = new Array(consoleIds.length);
    let next = 0;
    const worker = async () => {
      while (next < consoleIds.length) {
        const i = next++;
        out[i] = await this.console(consoleIds[i]!);
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONSOLES_AT_ONCE, consoleIds.length) }, worker));
    return out;
  }

  async console(id: number): Promise<QemuConsoleInfo> {
    const path = `/org/qemu/Display1/Console_${id}`;
    let props: DbusValue | undefined;
    try {
      [props] = await this.#bus.call(this.#dest, path, 'org.freedesktop.DBus.Properties', 'GetAll', [{ type: 's', value: CONSOLE_IFACE }], 5000);
    } catch (e) {
      throw new Error(`QEMU console ${id}: ${(e as Error).message}${e instanceof DbusError ? ' (see guestplane info --qemu-dbus for the consoles there are)' : ''}`);
    }
    const p = props instanceof Map ? props : new Map<DbusValue, DbusValue>();
    let ifs = p.get('Interfaces');
    if (!Array.isArray(ifs)) {
      // QEMU 7.2 has no Interfaces property: the object's introspection lists them.
      const [xml] = await this.#bus.call(this.#dest, path, 'org.freedesktop.DBus.Introspectable', 'Introspect', [], 5000).catch(() => ['']);
      ifs = [...String(xml).matchAll(/<interface name="(org\.qemu\.Display1\.[^"]+)"/g)].map((m) => m[1]!);
    }
    return {
      id,
      path,
      type: str(p.get('Type')),
      label: str(p.get('Label')),
      head: num(p.get('Head')),
      width: num(p.get('Width')),
      height: num(p.get('Height')),
      deviceAddress: str(p.get('DeviceAddress')),
      interfaces: Array.isArray(ifs) ? ifs.map(str) : [],
    };
  }

  /** Registers a listener on console `id` and returns it as a guest source. */
  async open(id = 0, ids?: QemuIdSpace): Promise<QemuConsoleSource> {
    const info = await this.console(id);
    if (info.type !== 'Graphic') throw new Error(`QEMU console ${id} is a ${info.type || 'unknown'} console, not a graphic one; pick another with --console N`);
    let made = null as QemuConsoleSource | null;
    try {
      await registerListener(this.#bus, this.#dest, info.path, `QEMU console ${id} listener`, (listener) => {
        made = new QemuConsoleSource(info, listener, this.#bus, this.#dest, ids);
      });
    } catch (e) {
      made?.close();
      throw new Error(`QEMU console ${id}: RegisterListener failed: ${(e as Error).message}`);
    }
    const source = made!;
    this.#consoles.add(source);
    source.onClosed = () => this.#consoles.delete(source);
    return source;
  }

  close(): void {
    for (const c of [...this.#consoles]) c.close();
    this.#bus.close();
  }
}
