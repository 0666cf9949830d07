// A misbehaving QEMU, written from QEMU's D-Bus display protocol (ui/dbus-display1.xml):
// on a bus it owns org.qemu and serves /org/qemu/Display1/VM (Properties.GetAll of
// org.qemu.Display1.VM) and /org/qemu/Display1/Console_0 (GetAll of
// org.qemu.Display1.Console, RegisterListener, SetUIInfo; its Keyboard and Mouse calls are
// recorded with their arrival time). RegisterListener's fd becomes
// a D-Bus server connection, as in QEMU (which authenticates it before it answers), and
// the listener is then called as QEMU calls it — or lied to, flooded, hung or left
// mid-message, as a test says. Each attach step can hang or fail (`steps`).
//
// Raw messages (a header that declares other fds than are sent, signatures the method
// does not have, floods written as fast as the socket takes them, a message cut off) are
// encoded with wire.ts and written with sendmsg on a duplicate of the listener socket,
// past our own DbusConnection: only while no call of ours is queued on it, so bytes
// never interleave. Their serials are far above the connection's own, so the kiosk's
// answers to them are dropped as "never ours".
//
// Ownership: a FakeQemu owns its bus connection, the listener fds it took and every
// FakeListener; a FakeListener owns its server connection (and through it the socket),
// its duplicate for raw writes and the write watch on it. Fds passed in stay the caller's.
import * as libc from '../../../ffi/libc.js';
import { FdWatch, UV_WRITABLE } from '../../../ffi/uv.js';
import { DbusConnection, type DbusArg, type DbusValue, type IncomingCall } from '../../../plugin/dbus/connection.js';
import { encodeMessage, MESSAGE_TYPE, FLAG_NO_REPLY_EXPECTED } from '../../../plugin/dbus/wire.js';
import { CONSOLE_IFACE, KEYBOARD_IFACE, LISTENER_IFACE, LISTENER_PATH, MOUSE_IFACE, QEMU_NAME, VM_IFACE, VM_PATH } from '../../../plugin/sources/qemu-dbus-protocol.js';

const consolePath = (id: number) => `/org/qemu/Display1/Console_${id}`;
/** pixman's x8r8g8b8, the format QEMU names in Scanout/Update. */
export const PIXMAN_X8R8G8B8 = 0x20020888;
const PROPS = 'org.freedesktop.DBus.Properties';

/** How the fake answers one step of the kiosk's attach. */
export interface AttachSteps {
  /** GetAll of the VM: answered, or never (the caller's call times out). */
  vmGetAll: 'answer' | 'never';
  /**
   * RegisterListener: 'answer' (handshake, then the answer, as QEMU); 'error'; 'never'
   * (the fd kept, no answer); 'no-handshake' (answered, the fd kept, D-Bus never spoken on it).
   */
  register: 'answer' | 'error' | 'never' | 'no-handshake';
}

/** au: not among DbusArg's shapes, but the writer marshals any array of a basic type. */
function uintArray(values: number[]): DbusArg {
  return { type: 'au', value: values } as unknown as DbusArg;
}

const variant = (a: DbusArg): DbusArg => ({ type: 'v', value: a });

export class FakeQemu {
  readonly steps: AttachSteps = { vmGetAll: 'answer', register: 'answer' };
  readonly counts = { vmGetAll: 0, consoleGetAll: 0, register: 0, setUIInfo: 0 };
  /** SetUIInfo calls as they arrived: the size in pixels the client asked the guest for. */
  readonly uiInfo: { width: number; height: number }[] = [];
  /** Keyboard and mouse calls on the console as they arrived (the newest 10,000); `at`: performance.now(). */
  readonly input: { iface: string; member: string; args: readonly DbusValue[]; at: number }[] = [];
  readonly #bus: DbusConnection;
  readonly #keptFds: number[] = [];
  readonly #listeners: FakeListener[] = [];
  readonly #waiters: ((l: FakeListener) => void)[] = [];
  /** Listeners that came before anyone asked for one. */
  readonly #unclaimed: FakeListener[] = [];

  private constructor(
    bus: DbusConnection,
    readonly width: number,
    readonly height: number,
    /** Graphic consoles 0..consoles-1 (ConsoleIDs); each takes its own listeners. */
    readonly consoles = 1,
  ) {
    this.#bus = bus;
    bus.on('error', (e) => this.#note(e));
    bus.addObject(VM_PATH, (c) => this.#vm(c));
    for (let id = 0; id < consoles; id++) bus.addObject(consolePath(id), (c) => this.#console(c, id));
  }

  /** Connects to the bus at `address` and owns org.qemu there. */
  static async start(address: string, size = { width: 640, height: 480 }, consoles = 1): Promise<FakeQemu> {
    const bus = DbusConnection.connect(address, { busClient: true, name: 'fake QEMU bus' });
    try {
      await bus.ready();
      const fake = new FakeQemu(bus, size.width, size.height, consoles);
      // DO_NOT_QUEUE: a second owner would be a test bug, not something to wait for.
      const [r] = await bus.call('org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus', 'RequestName', [{ type: 's', value: QEMU_NAME }, { type: 'u', value: 4 }], 5000);
      if (r !== 1) throw new Error(`fake QEMU: RequestName(${QEMU_NAME}) answered ${String(r)}, not 1 (primary owner)`);
      return fake;
    } catch (e) {
      bus.close();
      throw e;
    }
  }

  /** What the peer sent that the fake's connections refused (the newest 20), for a failing test to show. */
  readonly errors: string[] = [];

  #note(e: Error): void {
    this.errors.push(e.message);
    if (this.errors.length > 20) this.errors.shift();
  }

  #vm(c: IncomingCall): void {
    if (c.interface !== PROPS || c.member !== 'GetAll') return c.fail('org.freedesktop.DBus.Error.UnknownMethod', `fake QEMU: no ${c.interface}.${c.member} on the VM`);
    this.counts.vmGetAll++;
    if (this.steps.vmGetAll === 'never') return; // held unanswered until the bus connection ends
    c.reply([
      {
        type: 'a{sv}',
        value: new Map<string, DbusArg>([
          ['Name', variant({ type: 's', value: 'fake' })],
          ['UUID', variant({ type: 's', value: '00000000-0000-0000-0000-0000000000fa' })],
          ['ConsoleIDs', variant(uintArray(Array.from({ length: this.consoles }, (_, i) => i)))],
        ]),
      },
    ]);
  }

  #console(c: IncomingCall, id: number): void {
    if (c.interface === PROPS && c.member === 'GetAll') {
      this.counts.consoleGetAll++;
      return c.reply([
        {
          type: 'a{sv}',
          value: new Map<string, DbusArg>([
            ['Label', variant({ type: 's', value: 'fake' })],
            ['Head', variant({ type: 'u', value: id })],
            ['Type', variant({ type: 's', value: 'Graphic' })],
            ['Width', variant({ type: 'u', value: this.width })],
            ['Height', variant({ type: 'u', value: this.height })],
            ['DeviceAddress', variant({ type: 's', value: 'pci/0000/02.0' })],
            ['Interfaces', variant({ type: 'as', value: [CONSOLE_IFACE, 'org.qemu.Display1.Keyboard', 'org.qemu.Display1.Mouse'] })],
          ]),
        },
      ]);
    }
    if (c.interface === PROPS && c.member === 'Get' && c.args[0] === MOUSE_IFACE && c.args[1] === 'IsAbsolute') return c.reply([variant({ type: 'b', value: false })]);
    if (c.interface === KEYBOARD_IFACE || c.interface === MOUSE_IFACE) {
      this.input.push({ iface: c.interface, member: c.member, args: c.args, at: performance.now() });
      if (this.input.length > 10_000) this.input.shift();
      return c.reply();
    }
    if (c.interface === CONSOLE_IFACE && c.member === 'RegisterListener') return void this.#register(c, id);
    if (c.interface === CONSOLE_IFACE && c.member === 'SetUIInfo') {
      this.counts.setUIInfo++;
      this.uiInfo.push({ width: Number(c.args[4]), height: Number(c.args[5]) });
      return c.reply();
    }
    c.fail('org.freedesktop.DBus.Error.UnknownMethod', `fake QEMU: no ${c.interface}.${c.member} on the console`);
  }

  async #register(c: IncomingCall, console: number): Promise<void> {
    this.counts.register++;
    const fd = c.takeFd(c.args[0]);
    if (fd < 0) return c.fail('org.freedesktop.DBus.Error.InvalidArgs', 'fake QEMU: RegisterListener without an fd');
    const step = this.steps.register;
    if (step === 'error') {
      libc.close(fd);
      return c.fail('org.freedesktop.DBus.Error.Failed', 'fake QEMU: refusing the listener');
    }
    if (step === 'never' || step === 'no-handshake') {
      this.#keptFds.push(fd);
      if (step === 'no-handshake') c.reply();
      return;
    }
    let l: FakeListener;
    try {
      l = new FakeListener(fd, console);
    } catch (e) {
      return c.fail('org.freedesktop.DBus.Error.Failed', (e as Error).message);
    }
    this.#listeners.push(l);
    // An EventEmitter 'error' without a listener would throw into the fake's own reading.
    l.conn.on('error', (e) => this.#note(e));
    try {
      // QEMU authenticates the listener before it answers, then (8.1+) loads its properties.
      await l.conn.ready();
      c.reply();
      // A listener without properties makes QEMU log an assertion and go on: so does the fake.
      await l.conn.call(null, LISTENER_PATH, PROPS, 'GetAll', [{ type: 's', value: LISTENER_IFACE }], 5000).catch((e: Error) => this.#note(e));
    } catch (e) {
      if (!c.answered) c.fail('org.freedesktop.DBus.Error.Failed', (e as Error).message);
      return;
    }
    const w = this.#waiters.shift();
    if (w) w(l);
    else this.#unclaimed.push(l);
  }

  /** The next listener the kiosk registers (and that finished its handshake). */
  nextListener(timeoutMs = 20_000): Promise<FakeListener> {
    const ready = this.#unclaimed.shift();
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const waiter = (l: FakeListener) => {
        clearTimeout(t);
        resolve(l);
      };
      const t = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        reject(new Error(`fake QEMU: no listener registered within ${timeoutMs} ms (calls: ${JSON.stringify(this.counts)})`));
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }

  /** QEMU exits: every connection and fd it had goes at once. */
  close(): void {
    for (const l of this.#listeners) l.close();
    this.#listeners.length = 0;
    for (const fd of this.#keptFds.splice(0)) libc.close(fd);
    this.#bus.close();
  }
}

/** A message to write raw: its bytes and the fds sent with its first byte. */
export interface RawOut {
  bytes: Buffer;
  fds: readonly number[];
}

/** QEMU's side of one listener connection. */
export class FakeListener {
  readonly conn: DbusConnection;
  /** The console it was registered on. */
  readonly console: number;
  readonly #raw: number;
  #watch: FdWatch | null = null;
  #writable: (() => void)[] = [];
  #serial = 0x40000000;
  #closed = false;

  constructor(fd: number, console = 0) {
    this.console = console;
    let raw = -1;
    try {
      raw = libc.fcntl(fd, libc.F_DUPFD_CLOEXEC, 3, 'fake QEMU raw listener socket');
    } catch (e) {
      libc.close(fd);
      throw e;
    }
    this.#raw = raw;
    this.conn = DbusConnection.fromSocket(fd, 'fake QEMU listener', { server: true });
  }

  /** Calls the listener as QEMU does; resolves with its answer. */
  call(member: string, args: DbusArg[] = [], timeoutMs = 10_000): Promise<DbusValue[]> {
    return this.conn.call(null, LISTENER_PATH, LISTENER_IFACE, member, args, timeoutMs);
  }

  scanoutDmabuf(fd: number, b: { width: number; height: number; stride: number; fourcc: number; modifier?: bigint; y0Top?: boolean }): Promise<DbusValue[]> {
    return this.call('ScanoutDMABUF', dmabufArgs(fd, b));
  }

  updateDmabuf(w: number, h: number): Promise<DbusValue[]> {
    return this.call('UpdateDMABUF', [{ type: 'i', value: 0 }, { type: 'i', value: 0 }, { type: 'i', value: w }, { type: 'i', value: h }]);
  }

  /** A pixel frame as QEMU sends one for a gl=off display: Scanout of a w×h surface filled with byte `fill`. */
  scanoutPixels(fill: number, w = 64, h = 48): Promise<DbusValue[]> {
    return this.call('Scanout', [{ type: 'u', value: w }, { type: 'u', value: h }, { type: 'u', value: w * 4 }, { type: 'u', value: PIXMAN_X8R8G8B8 }, { type: 'ay', value: new Uint8Array(w * h * 4).fill(fill) }]);
  }

  /** The `i`th of a flood of 1×1 Update calls on a 64×48 pixel surface, encoded for a raw write. */
  tinyUpdate(i: number): RawOut {
    return this.message('Update', [{ type: 'i', value: i % 64 }, { type: 'i', value: (i >> 6) % 48 }, { type: 'i', value: 1 }, { type: 'i', value: 1 }, { type: 'u', value: 4 }, { type: 'u', value: PIXMAN_X8R8G8B8 }, { type: 'ay', value: new Uint8Array([i & 255, 0, 0, 0]) }]);
  }

  /** A listener call encoded for a raw write; `noReply` sets NO_REPLY_EXPECTED. */
  message(member: string, args: DbusArg[] = [], opts: { noReply?: boolean; iface?: string } = {}): RawOut {
    this.#serial = this.#serial >= 0xfffffff0 ? 0x40000000 : this.#serial + 1;
    const { bytes, fds } = encodeMessage({ type: MESSAGE_TYPE.call, flags: opts.noReply ? FLAG_NO_REPLY_EXPECTED : 0, serial: this.#serial, path: LISTENER_PATH, interface: opts.iface ?? LISTENER_IFACE, member, args });
    return { bytes, fds };
  }

  /**
   * Writes messages as fast as the socket takes them, each one's fds with its first byte
   * (a RawOut may carry other fds than its header declares). Returns the bytes written.
   */
  async write(messages: Iterable<RawOut>): Promise<number> {
    let total = 0;
    for (const m of batched(messages)) {
      let off = 0;
      while (off < m.bytes.length) {
        if (this.#closed) throw new Error('fake QEMU listener closed');
        const n = libc.sendmsg(this.#raw, [m.bytes.subarray(off)], off === 0 ? m.fds : [], 'fake QEMU raw write');
        if (n < 0) {
          await this.#untilWritable();
          continue;
        }
        off += n;
        total += n;
      }
    }
    return total;
  }

  /** The first `bytes` bytes of a message (with its fds), then nothing more. */
  async writePart(m: RawOut, bytes: number): Promise<void> {
    await this.write([{ bytes: m.bytes.subarray(0, bytes), fds: m.fds }]);
  }

  #untilWritable(): Promise<void> {
    return new Promise((resolve) => {
      this.#writable.push(resolve);
      if (!this.#watch) {
        this.#watch = new FdWatch(this.#raw, UV_WRITABLE, {
          ready: () => {
            this.#watch?.setEvents(0);
            for (const w of this.#writable.splice(0)) w();
          },
          error: () => {
            for (const w of this.#writable.splice(0)) w();
          },
        });
      } else {
        this.#watch.setEvents(UV_WRITABLE);
      }
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const w = this.#watch;
    this.#watch = null;
    for (const r of this.#writable.splice(0)) r();
    this.conn.close();
    // The watch must stop before its fd closes (uv.ts).
    if (w) void w.close().then(() => libc.close(this.#raw));
    else libc.close(this.#raw);
  }
}

/**
 * Consecutive messages without fds joined into chunks of up to 256 KiB, as a peer that
 * writes a flood "at once" does (one sendmsg per chunk, not per message).
 */
function* batched(messages: Iterable<RawOut>): Iterable<RawOut> {
  let parts: Buffer[] = [];
  let size = 0;
  const flush = function* () {
    if (parts.length) yield { bytes: Buffer.concat(parts, size), fds: [] };
    parts = [];
    size = 0;
  };
  for (const m of messages) {
    if (m.fds.length) {
      yield* flush();
      yield m;
      continue;
    }
    parts.push(m.bytes);
    size += m.bytes.length;
    if (size >= 256 * 1024) yield* flush();
  }
  yield* flush();
}

/** ScanoutDMABUF's arguments (h fd, u width, u height, u stride, u fourcc, t modifier, b y0_top). */
export function dmabufArgs(fd: number, b: { width: number; height: number; stride: number; fourcc: number; modifier?: bigint; y0Top?: boolean }): DbusArg[] {
  return [
    { type: 'h', value: fd },
    { type: 'u', value: b.width },
    { type: 'u', value: b.height },
    { type: 'u', value: b.stride },
    { type: 'u', value: b.fourcc },
    { type: 't', value: b.modifier ?? 0n },
    { type: 'b', value: b.y0Top ?? false },
  ];
}
