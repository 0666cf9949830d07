// Issue 30: `guestplane compositor [options] -- CMD [ARGS…]`, cage's behaviour, as a user
// runs it (the CLI as a child process on vkms):
//  - CMD gets WAYLAND_DISPLAY and XDG_RUNTIME_DIR, and its exit status is the command's,
//    after the screen is restored; a CMD that cannot start is said, and exits 1;
//  - foot runs on it (its protocol trace shows frames done) and its status comes through;
//  - gtk3-widget-factory's window is shown; SIGTERM to guestplane is passed on to it, and
//    guestplane exits with its status (143: GTK 3 keeps SIGTERM's default) and the screen
//    as it was before.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync } from 'node:fs';
import { KmsDevice, findCardByDriver } from '../../plugin/kms/device.js';
import * as drm from '../../ffi/drm.js';
import { KioskProcess } from './helpers/kiosk-process.js';
import { screenState } from './helpers/modeset.js';
import { useRuntimeDir } from './helpers/wayland-client.js';
import { clientTraceViolations } from './helpers/wayland-trace.js';

const runtimeDir = useRuntimeDir('gp-cmd-');
let card: string;
let dev: KmsDevice;

beforeAll(() => {
  const c = findCardByDriver('vkms');
  if (!c) throw new Error('no vkms card in the rig');
  card = c;
  dev = KmsDevice.open(card, { master: false });
  // The first opener of a card is its DRM master: let go, for the compositor to take it.
  if (drm.isMaster(dev.fd)) drm.dropMaster(dev.fd);
});
afterAll(async () => {
  await dev?.close();
});

/** `guestplane compositor --device <vkms> --connector Virtual-1 --socket S --no-input -- CMD`. */
function compositor(socket: string, cmd: string[], env: NodeJS.ProcessEnv = {}): KioskProcess {
  return new KioskProcess(['--device', card, '--connector', 'Virtual-1', '--socket', socket, '--no-input', '--', ...cmd], [], { command: 'compositor', env: { XDG_RUNTIME_DIR: runtimeDir(), ...env } });
}

/** Frames the compositor completed for the client: wl_callback.done events in its trace. */
const framesDone = (lines: string[]) => lines.filter((l) => /wl_callback@\d+\.done\(/.test(l)).length;

describe('guestplane compositor -- CMD (vkms)', () => {
  it("CMD gets the socket in its environment; guestplane restores the screen and exits with CMD's status", async () => {
    const before = screenState(dev);
    const k = compositor('gp-cmd-sh', ['sh', '-c', 'echo "env $WAYLAND_DISPLAY $XDG_RUNTIME_DIR" >&2; test -S "$XDG_RUNTIME_DIR/$WAYLAND_DISPLAY" && exit 7; exit 1']);
    try {
      const ex = await k.exited;
      const out = k.lines.join('\n');
      expect(out).toContain(`env gp-cmd-sh ${runtimeDir()}`);
      expect(ex, out).toEqual({ code: 7, signal: null });
      expect(out).toMatch(/sh exited \(status 7\); screen restored/);
      expect(screenState(dev)).toEqual(before);
    } finally {
      await k.kill();
    }
  }, 60_000);

  it('a CMD that cannot start is named with the reason, and guestplane exits 1 with the screen restored', async () => {
    const before = screenState(dev);
    const k = compositor('gp-cmd-none', ['/nonexistent/app', '--flag']);
    try {
      const ex = await k.exited;
      const out = k.lines.join('\n');
      expect(ex, out).toEqual({ code: 1, signal: null });
      expect(out).toMatch(/cannot start '\/nonexistent\/app': no such command \(check the name and \$PATH\)/);
      expect(out).toMatch(/screen restored/);
      expect(screenState(dev)).toEqual(before);
    } finally {
      await k.kill();
    }
  }, 60_000);

  it("foot runs on it: frames are done, its shell's status is guestplane's", async () => {
    // foot exits with its client application's status; WAYLAND_DEBUG=client traces foot's protocol onto guestplane's stderr.
    const k = compositor('gp-cmd-foot', ['foot', '-o', 'colors.background=123456', 'sh', '-c', 'sleep 8; exit 5'], { WAYLAND_DEBUG: 'client' });
    try {
      const ex = await k.exited;
      const out = k.lines.join('\n');
      expect(out).not.toMatch(/not implemented by server|no seats available/);
      expect(framesDone(k.lines), out.slice(-3000)).toBeGreaterThan(0);
      expect(clientTraceViolations(out)).toEqual([]);
      expect(ex, out.slice(-3000)).toEqual({ code: 5, signal: null });
      expect(out).toMatch(/foot exited \(status 5\); screen restored/);
    } finally {
      await k.kill();
    }
  }, 120_000);

  it.skipIf(!existsSync('/usr/bin/gtk3-widget-factory'))('gtk3-widget-factory is shown; SIGTERM to guestplane is passed on to it, and its status (143) is the exit status', async () => {
    const before = screenState(dev);
    // No session bus in the rig: GTK's settings from memory, no accessibility bus.
    const k = compositor('gp-cmd-gtk', ['gtk3-widget-factory'], { WAYLAND_DEBUG: 'client', GDK_BACKEND: 'wayland', GSETTINGS_BACKEND: 'memory', NO_AT_BRIDGE: '1' });
    try {
      // Under TCG a widget factory takes 20-40 s to its first frame.
      const early = k.exited.then((e) => { throw new Error(`gtk3-widget-factory ended before its first frame (${JSON.stringify(e)}):\n${k.lines.slice(-40).join('\n')}`); });
      early.catch(() => {});
      await Promise.race([k.waitLine((l) => /xdg_toplevel@\d+\.configure\(/.test(l), 150_000), early]);
      await Promise.race([k.waitLine(() => framesDone(k.lines) >= 2, 150_000), early]);
      k.child.kill('SIGTERM');
      const ex = await k.exited;
      const out = k.lines.join('\n');
      expect(out).toMatch(/SIGTERM passed on to gtk3-widget-factory/);
      expect(ex, out.slice(-3000)).toEqual({ code: 143, signal: null });
      expect(out).toMatch(/gtk3-widget-factory exited \(signal SIGTERM\); screen restored/);
      expect(clientTraceViolations(out)).toEqual([]);
      expect(screenState(dev)).toEqual(before);
    } finally {
      await k.kill();
    }
  }, 240_000);
});
