// Issue 14, the seat: the card opened through libseat and a real seatd (Debian's), session
// switches made the way a user makes them (chvt: VT_ACTIVATE, which seatd answers in
// VT_PROCESS mode). While another VT has the seat nothing is committed, not even TEST_ONLY;
// when it is back the screen is lit again with the guest's current frame. The non-root
// kiosk with input is test/integration/seat-kiosk.test.ts.
import { describe, it, expect } from 'vitest';
import { readdirSync } from 'node:fs';
import { SeatSession } from '../../plugin/session.js';
import { Backend } from '../../plugin/backend.js';
import { findCardByDriver } from '../../plugin/kms/device.js';
import { UdmabufSource } from '../../plugin/sources/udmabuf.js';
import { drawPattern } from '../../plugin/sources/pattern.js';
import { cleanupAfterEach } from './helpers/cleanup.js';
import { nextPresent, patternMismatches, sleep } from './helpers/faults.js';
import { activeVt, chvt, seatdMissing, startSeatd } from './helpers/seat.js';

const cleanup = cleanupAfterEach();
const missing = seatdMissing();
if (missing) console.log(`seat: skipped: ${missing}`);

const fdCount = () => readdirSync('/proc/self/fd').length;

/** Sets environment variables for this test (libseat reads them), restored after it. */
function setEnv(vars: Record<string, string>): void {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  cleanup.push(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
}

describe('seat session (libseat, seatd, VT switches)', { timeout: 120_000 }, () => {
  it.skipIf(missing)('no seat daemon: opening the seat fails and says what to start', async () => {
    setEnv({ LIBSEAT_BACKEND: 'seatd', SEATD_SOCK: '/nonexistent/seatd.sock' });
    await expect(SeatSession.open({ timeoutMs: 2000 })).rejects.toThrow(/cannot open a seat: .*start seatd/);
  });

  it.skipIf(missing)('the card through seatd: away, nothing is committed; back, the current frame is lit again at once, pixel-exact; fds flat; a node the seat does not hand out is refused', async () => {
    const seatd = await startSeatd('root');
    cleanup.push(() => seatd.close());
    setEnv(seatd.env);
    const home = activeVt();
    cleanup.push(() => {
      if (activeVt() !== home) chvt(home);
    });
    const session = await SeatSession.open();
    cleanup.push(() => session.close());
    expect(session.name).toBe('seat0');
    expect(() => session.openDevice('/dev/null')).toThrow(/seat seat0 cannot open \/dev\/null: .*not a device the seat hands out/);

    const backend = Backend.open({ device: findCardByDriver('vkms')!, session });
    cleanup.push(() => backend.close());
    const out = backend.enableOutput('Virtual-1', { mode: { width: 640, height: 480 } });
    const guest = new UdmabufSource({ width: 640, height: 480, buffers: 3 });
    cleanup.push(() => guest.close());
    out.attach(guest, 'native');
    guest.render(0, 1);
    const first = nextPresent(out, (p) => p.frame === 1);
    guest.flip(0, 1);
    expect(await first).toMatchObject({ path: 'scanout', zeroCopy: true });
    const fds0 = fdCount();

    // Away: the kernel's VT switch goes through seatd, which drops master and tells us.
    const disabled = new Promise<void>((r) => session.once('disable', () => r()));
    chvt(home + 1);
    await disabled;
    expect(out.suspended).toBe(true);
    const away = { ...backend.device.counters };
    const errors: string[] = [];
    out.on('error', (e) => errors.push(`${e.cause}: ${e.message}`));
    guest.render(1, 2);
    guest.flip(1, 2); // the guest goes on meanwhile
    await sleep(500); // 30 refreshes
    expect(backend.device.counters).toEqual(away);
    expect(() => backend.enableOutput('Virtual-2')).toThrow(/seat session is not active/);

    // Back: master again, and the frame the guest flipped to while we were away on screen.
    let relitMs = -1;
    const enabled = new Promise<void>((r) =>
      session.once('enable', () => {
        relitMs = performance.now() - session.enabledAt; // the backend's own handler ran first
        r();
      }),
    );
    const shown = nextPresent(out, (p) => p.frame === 2);
    chvt(home);
    await enabled;
    expect(out.suspended).toBe(false);
    expect(await shown).toMatchObject({ path: 'scanout', zeroCopy: true });
    const cap = await out.captureNext();
    expect(patternMismatches(cap, 2, 640, 480, drawPattern)).toBe(0);
    expect(errors).toEqual([]);
    expect(session.counters).toEqual({ enables: 2, disables: 1 });
    expect(session.openDevices).toBe(1);
    expect(fdCount()).toBe(fds0);
    console.log(`seat: relit ${relitMs.toFixed(1)} ms after the seat came back (refresh ${(out.refreshNs / 1e6).toFixed(1)} ms); ${backend.device.counters.commits - away.commits} commits after`);
    expect(seatd.log()).toMatch(/Disabled client/);
  });
});
