// Which QEMU is on the other end, as far as the D-Bus display lets us tell. QEMU does not
// say its version over D-Bus (the VM object has Name, UUID and ConsoleIDs only), but each
// release that changed `-display dbus` left a mark we can see (README, "QEMU versions
// tested"):
//   8.1   puts org.qemu.Display1.MultiTouch on its consoles, and reads the listener's
//         Interfaces (7.2 loads the listener's properties too, measured in the rig, but
//         uses none: a properties read is no mark);
//   9.2   uses Listener.Unix.Map (ScanoutMap/UpdateMap) when it can share the surface;
//   10.1  sends every dma-buf scanout as Listener.Unix.ScanoutDMABUF2 once it is offered.
// So the range is a lower bound that can rise while the console runs ("9.2 or later" only
// once QEMU has sent a ScanoutMap); a user reading the log learns which of our listener
// interfaces this QEMU really uses.
import { DMABUF2_IFACE, LISTENER_INTERFACES, MAP_IFACE, MULTITOUCH_IFACE } from './qemu-dbus-protocol.js';

const SHORT = (iface: string): string => iface.replace(/^org\.qemu\.Display1\./, '');

/** What a listener call tells about the QEMU that made it: [lower bound, interface used]. */
const MARKS: Readonly<Record<string, readonly [string, string]>> = {
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
 * What one console's QEMU has shown of itself: the bound from its console's interfaces at
 * first, raised by `saw` (fed every listener call before it is handled). The first use of
 * each of our extra interfaces is said once through `onLearnt` (a sentence for the log,
 * never per frame).
 */
export class QemuPeerVersion {
  #atLeast: string | null;
  readonly #used = new Set<string>();
  onLearnt: ((sentence: string) => void) | null = null;

  constructor(consoleInterfaces: readonly string[]) {
    this.#atLeast = consoleInterfaces.includes(MULTITOUCH_IFACE) ? '8.1' : null;
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
    if (!mark || this.#used.has(mark[1])) return;
    const [bound, iface] = mark;
    this.#atLeast = this.#atLeast ? later(this.#atLeast, bound) : bound;
    this.#used.add(iface);
    this.onLearnt?.(`QEMU uses ${SHORT(iface)} (so it is ${bound} or later)`);
  }

  /** For the attach line: the version range and which of our listener interfaces it may use. */
  describe(): string {
    const offered = LISTENER_INTERFACES.map(SHORT).join(', ');
    if (this.#atLeast) return `QEMU ${this.#atLeast} or later: it reads our listener interfaces (${offered}) and uses those its release has (Unix.Map from 9.2, ScanoutDMABUF2 from 10.1)`;
    return `QEMU before 8.1 (its console has no MultiTouch): none of our listener interfaces (${offered}), plain ScanoutDMABUF/Scanout/Update`;
  }
}
