// Issue 6: the example host compositor (examples/host-compositor.mjs), which uses only the
// public API, runs on vkms and its screen is pixel-checked through the writeback capture
// it writes on exit; `guestplane kiosk --config` runs a heads file end to end.
import { describe, it, expect } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findCardByDriver } from '../../plugin/kms/device.js';
import { decodeFrameNumber } from '../../plugin/sources/pattern.js';
import { placement } from '../../plugin/compose/cpu.js';
import { readPng } from './helpers/png.js';
import { createVkmsDevice, vkmsConfigfsAvailable } from './helpers/vkms-configfs.js';
import { Backend, type OutputDescription } from '../../plugin/device/backend.js';
import type { Output } from '../../plugin/output/output.js';

const card = findCardByDriver('vkms')!;

/**
 * Runs node with `args` and SIGTERMs it `runMs` after it started, or, with `startAt`, `runMs` after
 * its stderr first matched `startAt` (so that start-up under TCG, which takes 2-8 s, does not eat
 * into the time the test observes); `capMs` bounds the whole run either way.
 */
function runNode(args: string[], runMs: number, startAt?: RegExp, capMs = 120_000): Promise<{ code: number | null; out: string; err: string; started: boolean }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let started = !startAt;
    let t = setTimeout(() => c.kill('SIGTERM'), startAt ? capMs : runMs);
    c.stdout.on('data', (b: Buffer) => (out += b.toString()));
    c.stderr.on('data', (b: Buffer) => {
      err += b.toString();
      if (!started && startAt!.test(err)) {
        started = true;
        clearTimeout(t);
        t = setTimeout(() => c.kill('SIGTERM'), runMs);
      }
    });
    c.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, out, err, started });
    });
  });
}

describe('examples and multi-head from the command line', { timeout: 180_000 }, () => {
  it('examples/host-compositor.mjs shows the guest on Virtual-1 and restores the screen on exit', async () => {
    const dir = mkdtempSync('/tmp/example-');
    const png = join(dir, 'screen.png');
    const r = await runNode(['examples/host-compositor.mjs', '--device', card, '--seconds', '4', '--capture', png], 120_000);
    expect(r.err).not.toMatch(/Error/);
    expect(r.code).toBe(0);
    const lines = r.out.split('\n').filter((l) => l.startsWith('Virtual-1:'));
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.some((l) => /: [1-9]\d* frames\/s/.test(l))).toBe(true);
    const img = readPng(readFileSync(png));
    expect([img.width, img.height]).toEqual([1024, 768]); // Virtual-1's preferred mode
    // 800x600 'fit' on 1024x768: scaled to fill it exactly (same aspect).
    const pl = placement('fit', 800, 600, img.width, img.height);
    expect(pl.dst).toEqual({ x: 0, y: 0, width: 1024, height: 768 });
    // readPng gives R,G,B,A bytes; the decoder reads B,G,R,X words: swap R and B.
    const bgr = new Uint8Array(img.pixels);
    for (let i = 0; i < bgr.length; i += 4) [bgr[i], bgr[i + 2]] = [bgr[i + 2], bgr[i]];
    const frame = decodeFrameNumber({ bytes: bgr, offset: 0, width: img.width, height: img.height, stride: img.stride }, 0, 0, img.width / 800);
    expect(frame).toBeGreaterThan(0);
  });

  it('guestplane kiosk --config runs a heads file, prints per-head stats, and SIGTERM restores', async () => {
    const dir = mkdtempSync('/tmp/heads-');
    const cfg = join(dir, 'heads.json');
    writeFileSync(cfg, JSON.stringify({ device: card, guests: { g: { type: 'udmabuf', width: 640, height: 480, fps: 30 } }, heads: [{ guest: 'g', connector: 'Virtual-1', mode: { width: 1024, height: 768 }, scale: 'native' }] }));
    // 4.5 s from the first one-second stats row (4-5 rows, at least 3 on a loaded host), whatever the start-up took.
    const r = await runNode(['dist/plugin/cli.js', 'kiosk', '--config', cfg, '--stats', 'json'], 4500, /^\{"heads"/m);
    expect(r.started, r.err).toBe(true);
    expect(r.code).toBe(0);
    const rows = r.err.split('\n').filter((l) => l.startsWith('{"heads"')).map((l) => JSON.parse(l).heads[0]);
    expect(rows.length).toBeGreaterThan(2);
    expect(rows.at(-1).state).toBe('up');
    expect(rows.some((x: { fps: number }) => x.fps > 0)).toBe(true);
    expect(r.err).toMatch(/SIGTERM received; screens restored/);
  });

  it.runIf(vkmsConfigfsAvailable())('Backend follows hotplug by itself: an enabled output whose connector goes is closed, and comes back as output-added', async () => {
    const vd = createVkmsDevice({ crtcs: [{ writeback: false }, { writeback: false }] });
    const backend = Backend.open({ device: vd.cardPath });
    const guest = backend.createUdmabufGuest({ width: 64, height: 64 });
    try {
      const name = vd.connectorNames[1];
      const out = backend.enableOutput(name);
      expect(backend.listOutputs().find((o) => o.name === name)?.enabled).toBe(true);
      const next = (ev: 'output-added' | 'output-removed') =>
        new Promise<OutputDescription>((resolve, reject) => {
          const t = setTimeout(() => reject(new Error(`no ${ev} within 10 s`)), 10_000);
          backend.once(ev, (d) => { clearTimeout(t); resolve(d); });
        });
      const removed = next('output-removed');
      const order: string[] = [];
      backend.on('output-removed', () => order.push('removed'));
      // Enabled from inside the event, as a mode does: output-added must not come while
      // the old output still holds the CRTC it is turning off.
      let again: Output | undefined;
      const added = new Promise<OutputDescription>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no output-added within 10 s')), 10_000);
        backend.once('output-added', (d) => {
          clearTimeout(t);
          order.push('added');
          try {
            again = backend.enableOutput(d.name);
            resolve(d);
          } catch (e) {
            reject(e instanceof Error ? e : new Error(String(e)));
          }
        });
      });
      const rescanned = new Promise<void>((resolve) => backend.once('hotplug', () => resolve()));
      vd.setConnectorStatus(1, false); // the kernel sends a hotplug uevent
      await rescanned;
      // Plugged back at once: the unplugged output is most likely still restoring its CRTC.
      vd.setConnectorStatus(1, true);
      expect(await removed).toMatchObject({ name, connected: false, enabled: false });
      void out;
      const d = await added;
      expect(d.name).toBe(name);
      expect(d.modes.length).toBeGreaterThan(10);
      expect(order).toEqual(['removed', 'added']);
      expect(backend.output(name)).toBe(again);
      again?.attach(guest, 'native');
    } finally {
      await backend.close();
      guest.close();
      vd.remove();
    }
  });
});
