// Which QEMU is on the other end, as far as the D-Bus display lets us tell. QEMU does not
// say its version over D-Bus (the VM object has Name, UUID and ConsoleIDs only), but each
// release that changed `-display dbus` left a mark we can see (README, "QEMU versions
// tested"):
//   8.1   loads the listener's properties (Properties.GetAll) while it registers it, and
//         puts org.qemu.Display1.MultiTouch on its consoles;
//   9.2   uses Listener.Unix.Map (ScanoutMap/UpdateMap) when it can share the surface;
//   10.1  sends every dma-buf scanout as Listener.Unix.ScanoutDMABUF2 once it is offered.
// So the range is a lower bound that can rise while the console runs ("9.2 or later" only
// once QEMU has sent a ScanoutMap); a user reading the log learns which of our listener
// interfaces this QEMU really uses.
import { DMABUF2_IFACE, LISTENER_INTERFACES, MAP_IFACE, MULTITOUCH_IFACE } from './qemu-dbus-protocol.js';

const SHORT = (iface: string): string => iface.replace(/^org\.qemu\.Display1\./, '');

/** What a listener call tells about the QEMU that made it: [lower bound, interface used]. */
const MARKS: Readonly<Record<string, readonly [string, string | null]>> = {
  'Properties.GetAll': ['8.1', null],
  'Properties.Get': ['8.1', null],
  ScanoutMap: ['9.2', MAP_IFACE],
  UpdateMap: ['9.2', MAP_IFACE],
  ScanoutDMABUF2: ['10.1', DMABUF2_IFACE],
};

function later(a: string, b: string): string {
  const [am, an] = a.split('.').map(Number) as [number, number];
  const [bm, bn] = b.split('.').map(Number) as [number, number];
  return am > bm || (am === bm && an > bn) ? a : b;
}

/** The lower bound info can give from the consoles alone (no listener registered). */
export function qemuRangeFromConsoles(consoleInterfaces: readonly (readonly string[])[]): string {
  return consoleInterfaces.some((ifs) => ifs.includes(MULTITOUCH_IFACE))
    ? `QEMU 8.1 or later (its consoles offer ${SHORT(MULTITOUCH_IFACE)})`
    : `QEMU before 8.1 (no console offers ${SHORT(MULTITOUCH_IFACE)}; 7.2 is Debian 12's)`;
}

/**
 * What one console's QEMU has shown of itself. `saw` is fed every listener call (before it
 * is handled). QEMU 8.1+ reads the listener's properties before it sends anything else, but
 * (10.0.2 in the rig) only after it has answered RegisterListener, so the first call, not
 * the registration, tells which QEMU it is: that is said once through `onLearnt`, and so is
 * the first use of each of our extra interfaces (sentences for the log, never per frame;
 * kept until `onLearnt` is set).
 */
export class QemuPeerVersion {
  #atLeast: string | null;
  #readInterfaces = false;
  #heard = false;
  readonly #used = new Set<string>();
  #said: ((sentence: string) => void) | null = null;
  readonly #unsaid: string[] = [];

  constructor(consoleInterfaces: readonly string[]) {
    this.#atLeast = consoleInterfaces.includes(MULTITOUCH_IFACE) ? '8.1' : null;
  }

  set onLearnt(fn: ((sentence: string) => void) | null) {
    this.#said = fn;
    if (fn) for (const s of this.#unsaid.splice(0)) fn(s);
  }

  /** "8.1", "9.2", "10.1" or null (nothing seen that only 8.1+ does). */
  get atLeast(): string | null {
    return this.#atLeast;
  }

  /** Our extra listener interfaces this QEMU has used so far. */
  get used(): readonly string[] {
    return [...this.#used];
  }

  saw(member: string): void {
    const mark = MARKS[member];
    if (mark) this.#atLeast = this.#atLeast ? later(this.#atLeast, mark[0]) : mark[0];
    if (!this.#heard) {
      this.#heard = true;
      this.#readInterfaces = member.startsWith('Properties.');
      this.#say(this.describe());
    }
    const iface = mark?.[1];
    if (!iface || this.#used.has(iface)) return;
    this.#used.add(iface);
    this.#say(`QEMU uses ${SHORT(iface)} (so it is ${mark[0]} or later)`);
  }

  #say(sentence: string): void {
    if (this.#said) this.#said(sentence);
    else this.#unsaid.push(sentence);
  }

  /** The version range and the listener interfaces agreed, from the first call on. */
  describe(): string {
    const offered = LISTENER_INTERFACES.map(SHORT).join(', ');
    if (!this.#heard) return 'QEMU has not called the listener yet';
    if (this.#readInterfaces) return `QEMU ${this.#atLeast} or later: it read our listener interfaces (${offered}) and uses those its release knows`;
    if (this.#atLeast) return `QEMU ${this.#atLeast} or later, but it did not read our listener interfaces: plain ScanoutDMABUF/Scanout/Update only`;
    return 'QEMU before 8.1 (it did not read our listener interfaces): plain ScanoutDMABUF/Scanout/Update only';
  }
}
