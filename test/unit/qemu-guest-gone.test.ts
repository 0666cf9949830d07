// Issue 25: nothing a QEMU brought outlives it. QemuGuest lives across QEMU restarts, so
// the outputs showing it learn from its 'buffers-gone' event that a connection's buffers
// are gone (and drop their FBs and maps: plugin/output/output.ts; the rig proves the kernel side
// in qemu-dbus-hostile.test.ts). Here: the event comes once per connection that ended,
// after the console source let go, and not while attached. A fake QEMU on a real
// dbus-daemon plays the other side (test/integration/helpers/fake-qemu.ts).
import { describe, it, expect, afterEach } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QemuGuest } from '../../plugin/sources/qemu-guest.js';
import { FakeQemu } from '../integration/helpers/fake-qemu.js';
import { startSessionBus } from '../integration/helpers/qemu.js';

const later: (() => void)[] = [];
afterEach(() => {
  for (const f of later.splice(0).reverse()) f();
});

const until = async (pred: () => boolean, what: string, ms = 10_000) => {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('QemuGuest buffers-gone', () => {
  it('is emitted once per QEMU connection that ends, with the console already let go, and never while attached', async () => {
    const b = startSessionBus(mkdtempSync(join(tmpdir(), 'gpgone-')));
    later.push(() => b.close());
    const g = new QemuGuest({ address: b.address, retryMs: 50 });
    later.push(() => g.close());
    const seen: { console: unknown; state: string }[] = [];
    g.on('buffers-gone', () => seen.push({ console: g.console, state: g.state }));

    for (let round = 1; round <= 2; round++) {
      const fake = await FakeQemu.start(b.address);
      later.push(() => fake.close());
      await g.attached();
      expect(g.attachments).toBe(round);
      expect(seen).toHaveLength(round - 1);
      fake.close();
      await until(() => seen.length === round, `buffers-gone after QEMU ${round} exited`);
      expect(seen[round - 1]!.console).toBeNull();
    }
    // Retries while no QEMU is there have no buffers to give up.
    await new Promise((r) => setTimeout(r, 300));
    expect(seen).toHaveLength(2);
  });
});
