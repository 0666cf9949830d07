// `guestplane window --console all` (issue 28 item 6): one toplevel per graphic console of
// a QEMU VM (a guest with two virtio-gpu outputs gets two windows, each fullscreened on its
// own monitor if asked). Each console is an ordinary window of plugin/modes/window.ts with
// its own desktop connection and its own QemuGuest, so each lives, reattaches across QEMU
// restarts and closes on its own; closing one window leaves the others (and the VM) alone,
// and the mode ends when the last one has closed. The consoles are read once, when QEMU is
// first there (waited for, as a single window waits): a console added later is not opened.
//
// Ownership: the running windows are this mode's; stop() stops them all. The D-Bus
// connection used to list the consoles is closed before any window opens.
import { QemuDisplay } from '../sources/qemu-display.js';
import { runWindow, type RunningWindow, type WindowModeOptions } from './window.js';

export interface WindowAllOptions extends Omit<WindowModeOptions, 'source'> {
  address: string;
  /** Between attempts while QEMU is not there, ms (default 1000). */
  retryMs?: number;
}

export interface RunningWindows {
  readonly windows: readonly RunningWindow[];
  /** The consoles shown, in the order of the windows. */
  readonly consoles: readonly number[];
  /** Resolves with the highest exit code once every window has closed. */
  readonly done: Promise<number>;
  stop(reason: string): Promise<number>;
}

/** The graphic consoles of the VM at `address`, waiting for QEMU while it is not there; null if `cancelled` first. */
async function graphicConsoles(address: string, retryMs: number, log: (l: string) => void, cancelled: () => boolean): Promise<number[] | null> {
  let said = '';
  while (!cancelled()) {
    let display: QemuDisplay | null = null;
    try {
      display = await QemuDisplay.connect(address);
      const ids = (await display.consoles()).filter((c) => c.type === 'Graphic').map((c) => c.id);
      if (ids.length === 0) throw new Error(`QEMU at ${address} has no graphic console (see guestplane info --qemu-dbus ${address})`);
      return ids;
    } catch (e) {
      const m = (e as Error).message;
      if (m !== said) log(`guestplane window: ${m}; waiting for QEMU to list its consoles, retrying every ${retryMs} ms`);
      said = m;
      await new Promise((r) => setTimeout(r, retryMs));
    } finally {
      display?.close();
    }
  }
  return null;
}

/**
 * Returns at once; the windows open when QEMU has listed its consoles (until then nothing
 * is shown: the number of windows is not known). stop() also ends the wait.
 */
export function runWindowAll(opts: WindowAllOptions): RunningWindows {
  let stopping = false;
  const windows: RunningWindow[] = [];
  const consoles: number[] = [];
  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((r) => (resolveDone = r));
  const opening = (async (): Promise<void> => {
    const ids = await graphicConsoles(opts.address, opts.retryMs ?? 1000, opts.log, () => stopping);
    for (const console of ids ?? []) {
      if (stopping) break;
      const title = `${opts.title ?? `guestplane: ${opts.address}`} console ${console}`;
      windows.push(await runWindow({ ...opts, title, source: { kind: 'qemu-dbus', address: opts.address, console } }));
      consoles.push(console);
      opts.log(`guestplane window: showing ${windows.at(-1)!.source.name} in "${title}"`);
    }
    if (stopping) await Promise.all(windows.map((w) => w.stop('stopped while the windows opened')));
    resolveDone(Math.max(0, ...(await Promise.all(windows.map((w) => w.done)))));
  })().catch(async (e: Error) => {
    opts.log(`guestplane window: ${e.message}`);
    await Promise.all(windows.map((w) => w.stop('another console\'s window could not open')));
    resolveDone(1);
  });
  return {
    windows,
    consoles,
    done,
    stop: async (reason) => {
      stopping = true;
      await Promise.all(windows.map((w) => w.stop(reason)));
      await opening;
      return done;
    },
  };
}
