// The multi-head config: good files load with defaults filled in; bad files fail with an
// error that names the field path, shows the value found and says the fix.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Socket } from 'node:net';
import { ConfigError, headInputOf, loadHeadsConfig, parseHeadsConfig, qemuGuestOptions } from '../../plugin/modes/heads-config.js';
import { QemuGuest } from '../../plugin/sources/qemu-guest.js';

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'gp-config-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

function issuesOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('expected a ConfigError, but the config was accepted');
}

const good = {
  guests: {
    win: { type: 'vfio', device: '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001' },
    demo: { type: 'udmabuf', width: 1920, height: 1080 },
  },
  heads: [
    { guest: 'win', connector: 'HDMI-A-1', mode: { width: 1920, height: 1080, refresh: 60 } },
    { guest: 'demo', connector: 'DP-1', region: { x: 0, y: 0, width: 960, height: 1080 }, view: { x: 0, y: 0, width: 960, height: 1080 }, scale: 'native' },
    { guest: 'demo', connector: 'DP-1', region: { x: 960, y: 0, width: 960, height: 1080 }, view: { x: 960, y: 0, width: 960, height: 1080 } },
  ],
};

describe('heads config: valid files', () => {
  it('loads a file and fills in the defaults', () => {
    const cfg = loadHeadsConfig(file('good.json', JSON.stringify(good, null, 2)));
    expect(cfg.guests.win).toEqual({ type: 'vfio', device: good.guests.win.device, edid: true });
    expect(cfg.guests.demo).toEqual({ type: 'udmabuf', width: 1920, height: 1080, buffers: 3, fps: 60 });
    expect(cfg.heads.map((h) => h.scale)).toEqual(['fit', 'native', 'fit']);
    expect(cfg.heads[1].region).toEqual({ x: 0, y: 0, width: 960, height: 1080 });
    expect(cfg.device).toBeUndefined();
    expect(cfg.heads.map((h) => [h.input, h.position])).toEqual([[true, undefined], [true, undefined], [true, undefined]]);
  });

  it('layout and input: a position per screen, input off, devices bound to a head, the absolute head', () => {
    const c = structuredClone(good) as any;
    c.heads[0].position = { x: -1920, y: 0 };
    c.heads[0].input = { devices: ['guestplane kbd 2', '/dev/input/by-id/usb-x-event-kbd'] };
    c.heads[1].input = false;
    c.heads[2].input = { absolute: true };
    const cfg = parseHeadsConfig(c);
    expect(cfg.heads.map((h) => headInputOf(h))).toEqual([
      { enabled: true, devices: ['guestplane kbd 2', '/dev/input/by-id/usb-x-event-kbd'], absolute: false },
      { enabled: false, devices: [], absolute: false },
      { enabled: true, devices: [], absolute: true },
    ]);
    expect(cfg.heads[0].position).toEqual({ x: -1920, y: 0 });
  });
});

describe('heads config: bad files name the field, the value and the fix', () => {
  const cases: Array<{ what: string; mutate: (c: any) => void; path: string; value: unknown; says: RegExp }> = [
    { what: 'unknown scale', mutate: (c) => (c.heads[0].scale = 'stretch'), path: 'heads[0].scale', value: 'stretch', says: /one of "native", "fit", "fill"/ },
    { what: 'fractional width', mutate: (c) => (c.heads[0].mode.width = 1920.5), path: 'heads[0].mode.width', value: 1920.5, says: /whole number; FIX/ },
    { what: 'negative region', mutate: (c) => (c.heads[1].region.x = -5), path: 'heads[1].region.x', value: -5, says: />= 0; FIX/ },
    { what: 'string for a number', mutate: (c) => (c.guests.demo.width = '1920'), path: 'guests.demo.width', value: '1920', says: /expected number, got string/ },
    { what: 'missing connector', mutate: (c) => delete c.heads[0].connector, path: 'heads[0].connector', value: undefined, says: /required; FIX: add "connector"/ },
    { what: 'unknown guest type', mutate: (c) => (c.guests.win.type = 'qxl'), path: 'guests.win.type', value: 'qxl', says: /"vfio", "qemu-dbus" or "udmabuf"/ },
    { what: 'misspelt field', mutate: (c) => (c.heads[0].conector = 'X'), path: 'heads[0].conector', value: 'X', says: /unknown field; FIX: remove it or check the spelling/ },
    { what: 'reference to no guest', mutate: (c) => (c.heads[0].guest = 'linux'), path: 'heads[0].guest', value: 'linux', says: /no guest of that name; FIX: .*\(win, demo\)/ },
    { what: 'overlapping regions', mutate: (c) => (c.heads[2].region.x = 900), path: 'heads[2].region', value: { x: 900, y: 0, width: 960, height: 1080 }, says: /overlaps heads\[1\]\.region on connector 'DP-1'/ },
    { what: 'shared connector without region', mutate: (c) => delete c.heads[2].region, path: 'heads[2].region', value: undefined, says: /share connector 'DP-1'/ },
    { what: 'two modes on one connector', mutate: (c) => ((c.heads[1].mode = { width: 1920, height: 1080 }), (c.heads[2].mode = { width: 1280, height: 720 })), path: 'heads[2].mode', value: { width: 1280, height: 720 }, says: /one connector has one mode/ },
    { what: 'view outside the guest', mutate: (c) => (c.heads[2].view.x = 1000), path: 'heads[2].view', value: { x: 1000, y: 0, width: 960, height: 1080 }, says: /ends at x=1960, y=1080, outside guest 'demo' \(1920x1080\)/ },
    { what: 'bad guest name', mutate: (c) => (c.guests['my vm'] = { type: 'vfio', device: 'x' }), path: 'guests.my vm', value: { type: 'vfio', device: 'x' }, says: /not valid .*FIX: rename it/ },
    { what: 'two positions for one screen', mutate: (c) => ((c.heads[1].position = { x: 0, y: 0 }), (c.heads[2].position = { x: 1920, y: 0 })), path: 'heads[2].position', value: { x: 1920, y: 0 }, says: /a position places the whole screen/ },
    { what: 'fractional position', mutate: (c) => (c.heads[0].position = { x: 0.5, y: 0 }), path: 'heads[0].position.x', value: 0.5, says: /whole number/ },
    { what: 'a device named by two heads', mutate: (c) => ((c.heads[0].input = { devices: ['kbd'] }), (c.heads[2].input = { devices: ['mouse', 'kbd'] })), path: 'heads[2].input.devices[1]', value: 'kbd', says: /named by heads\[0\]\.input\.devices too; FIX/ },
    { what: 'two absolute heads', mutate: (c) => ((c.heads[0].input = { absolute: true }), (c.heads[1].input = { absolute: true })), path: 'heads[1].input.absolute', value: true, says: /on one head only/ },
    { what: 'input neither boolean nor object', mutate: (c) => (c.heads[0].input = 'kbd'), path: 'heads[0].input', value: 'kbd', says: /must be true, false or \{ "devices"/ },
    { what: 'misspelt input field', mutate: (c) => (c.heads[0].input = { device: ['kbd'] }), path: 'heads[0].input.device', value: ['kbd'], says: /unknown field; FIX/ },
    { what: 'no heads', mutate: (c) => (c.heads = []), path: 'heads', value: [], says: /at least 1 entry/ },
  ];
  it.each(cases)('$what', ({ mutate, path, value, says }) => {
    const c = structuredClone(good) as any;
    mutate(c);
    const p = file('bad.json', JSON.stringify(c));
    const err = issuesOf(() => loadHeadsConfig(p));
    const issue = err.issues.find((i) => i.path === path);
    expect(issue, `issues: ${JSON.stringify(err.issues)}`).toBeDefined();
    expect(issue!.value).toEqual(value);
    expect(issue!.message).toMatch(says);
    // The message a user sees carries all three, and the file name.
    expect(err.message).toContain(p);
    expect(err.message).toContain(`${path} = `);
  });

  it('reports every problem at once', () => {
    const c = structuredClone(good) as any;
    c.heads[0].scale = 'zoom';
    c.heads[1].mode = { width: 0, height: 1080 };
    const err = issuesOf(() => parseHeadsConfig(c, 'inline'));
    expect(err.issues.map((i) => i.path).sort()).toEqual(['heads[0].scale', 'heads[1].mode.width']);
  });

  it('says where a JSON syntax error is', () => {
    const p = file('syntax.json', '{\n  "guests": {},\n  "heads": [,]\n}\n');
    const err = issuesOf(() => loadHeadsConfig(p));
    // Node 22 reports the position (we turn it into line/column); Node 20 quotes the text.
    expect(err.message).toMatch(/not valid JSON( at line 3, column \d+)?: .*\[,\]|not valid JSON at line 3, column \d+/s);
    expect(err.message).toMatch(/FIX: correct the syntax/);
  });

  it('says when the file cannot be read', () => {
    const err = issuesOf(() => loadHeadsConfig(join(dir, 'missing.json')));
    expect(err.message).toMatch(/cannot read the file \(ENOENT\); FIX: check the path/);
  });
});

describe('qemu-dbus guests', () => {
  it('accepts a QEMU D-Bus display (console defaults to 0) and names a bad address with the fix', () => {
    const c = parseHeadsConfig({ guests: { vm: { type: 'qemu-dbus', address: 'unix:path=/run/user/1000/bus' } }, heads: [{ guest: 'vm', connector: 'Virtual-1' }] });
    expect(c.guests.vm).toEqual({ type: 'qemu-dbus', address: 'unix:path=/run/user/1000/bus', console: 0 });
    expect(() => parseHeadsConfig({ guests: { vm: { type: 'qemu-dbus', address: '/run/user/1000/bus' } }, heads: [{ guest: 'vm', connector: 'Virtual-1' }] })).toThrow(/guests\.vm\.address.*not a D-Bus address; FIX/);
    expect(() => parseHeadsConfig({ guests: { vm: { type: 'qemu-dbus', address: 'session', console: -1 } }, heads: [{ guest: 'vm', connector: 'Virtual-1' }] })).toThrow(/console.*>= 0/);
  });

  it('"connectTimeout" (seconds, as --connect-timeout): checked, and it bounds each attempt of that guest', async () => {
    const vm = (extra: object) => parseHeadsConfig({ guests: { vm: { type: 'qemu-dbus', address: 'session', ...extra } }, heads: [{ guest: 'vm', connector: 'Virtual-1' }] }).guests.vm!;
    expect(vm({ connectTimeout: 0.5 })).toMatchObject({ connectTimeout: 0.5 });
    const noTimeout = vm({});
    expect(noTimeout.type === 'qemu-dbus' && 'connectTimeoutMs' in qemuGuestOptions(noTimeout, () => {})).toBe(false); // QemuGuest's default (5 s)
    for (const [bad, says] of [
      [0, /guests\.vm\.connectTimeout = 0: must be > 0; FIX: use a value above 0/],
      [-1, /guests\.vm\.connectTimeout = -1: must be > 0/],
      [601, /guests\.vm\.connectTimeout = 601: must be <= 600/],
      ['5', /guests\.vm\.connectTimeout = "5": expected number, got string/],
    ] as [unknown, RegExp][]) expect(() => vm({ connectTimeout: bad })).toThrow(says);
    // A socket that accepts and never speaks D-Bus: the guest made from the file gives up
    // after the file's 0.3 s, not the default 5 s.
    const d = mkdtempSync(join(tmpdir(), 'gp-mute-'));
    const held: Socket[] = [];
    const server = createServer((c) => held.push(c));
    await new Promise<void>((r) => server.listen(join(d, 's'), r));
    const g = parseHeadsConfig({ guests: { vm: { type: 'qemu-dbus', address: `unix:path=${join(d, 's')}`, connectTimeout: 0.3 } }, heads: [{ guest: 'vm', connector: 'Virtual-1' }] }).guests.vm!;
    if (g.type !== 'qemu-dbus') throw new Error('not a qemu-dbus guest');
    const t0 = performance.now();
    const said = await new Promise<string>((resolve) => {
      const guest = new QemuGuest(qemuGuestOptions(g, (l) => (guest.close(), resolve(l))));
    });
    const ms = performance.now() - t0;
    held.forEach((c) => c.destroy());
    server.close();
    rmSync(d, { recursive: true, force: true });
    expect(said).toMatch(/no D-Bus handshake within 0\.3 s/);
    expect(ms).toBeLessThan(3000);
  });
});
