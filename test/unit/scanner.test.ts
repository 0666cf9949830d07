// Our protocol scanner against the C wayland-scanner (Debian libwayland-bin), interface
// by interface: message names and order (= opcodes), signatures, interface versions, the
// per-protocol types array and each message's index into it. Both the model-derived
// tables (buildTables) and the tables the generated modules build in native memory are
// held to `wayland-scanner private-code`; for wayland.xml also to the wl_*_interface
// structs compiled into libwayland-server itself.
import { describe, it, expect, beforeAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import koffi from 'koffi';
import {
  parseProtocol,
  buildTables,
  generateAll,
  signatureOf,
  findEnum,
  generateClient,
  type Protocol,
  type WireTables,
} from '../../protocols/scanner.js';
import { readNativeInterface, parseSignature, fixedFromDouble, fixedToDouble, type WireInterface } from '../../protocols/runtime.js';

const root = resolve(import.meta.dirname, '../..');
const xmlDir = join(root, 'protocols/xml');
const xmlFiles = readdirSync(xmlDir)
  .filter((f) => f.endsWith('.xml'))
  .sort();

// ---------------------------------------------------------------------------------------
// Reading wayland-scanner's private-code output

interface CMessage {
  name: string;
  signature: string;
  typesIndex: number;
}
interface CInterface {
  name: string;
  version: number;
  requests: CMessage[];
  events: CMessage[];
}
interface COutput {
  protocol: string;
  types: (string | null)[];
  interfaces: CInterface[];
}

function runWaylandScanner(xmlPath: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'gp-scanner-'));
  try {
    const out = join(dir, 'code.c');
    execFileSync('wayland-scanner', ['private-code', xmlPath, out], { stdio: ['ignore', 'ignore', 'pipe'] });
    return readFileSync(out, 'utf8');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function parseCCode(code: string): COutput {
  const typesMatch = /static const struct wl_interface \*(\w+)_types\[\] = \{([\s\S]*?)\n\};/.exec(code);
  if (!typesMatch) throw new Error('no types array in wayland-scanner output');
  const protocol = typesMatch[1]!;
  const types = typesMatch[2]!
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '')
    .map((e) => {
      if (e === 'NULL') return null;
      const m = /^&(\w+)_interface$/.exec(e);
      if (!m) throw new Error(`unexpected types entry ${e}`);
      return m[1]!;
    });

  const messages = new Map<string, CMessage[]>();
  const msgRe = /static const struct wl_message (\w+)_(requests|events)\[\] = \{([\s\S]*?)\n\};/g;
  for (const m of code.matchAll(msgRe)) {
    const rows: CMessage[] = [];
    const rowRe = /\{ "(\w+)", "([^"]*)", (\w+)_types \+ (\d+) \},/g;
    for (const r of m[3]!.matchAll(rowRe)) {
      if (r[3] !== protocol) throw new Error(`message ${r[1]} points into ${r[3]}_types`);
      rows.push({ name: r[1]!, signature: r[2]!, typesIndex: Number(r[4]) });
    }
    messages.set(`${m[1]}_${m[2]}`, rows);
  }

  const interfaces: CInterface[] = [];
  const ifaceRe =
    /(?:WL_PRIVATE|WL_EXPORT) const struct wl_interface (\w+)_interface = \{\s*"(\w+)", (\d+),\s*(\d+), (\w+),\s*(\d+), (\w+),\s*\};/g;
  for (const m of code.matchAll(ifaceRe)) {
    const [, sym, name, version, nreq, reqs, nev, evs] = m;
    expect(sym).toBe(name);
    const requests = reqs === 'NULL' ? [] : messages.get(reqs!)!;
    const events = evs === 'NULL' ? [] : messages.get(evs!)!;
    expect(requests.length).toBe(Number(nreq));
    expect(events.length).toBe(Number(nev));
    interfaces.push({ name: name!, version: Number(version), requests, events });
  }
  return { protocol, types, interfaces };
}

// ---------------------------------------------------------------------------------------

function expectSameAsC(ours: WireTables, c: COutput): void {
  expect(ours.protocol).toBe(c.protocol);
  expect(ours.types).toEqual(c.types);
  expect(ours.interfaces.map((i) => i.name)).toEqual(c.interfaces.map((i) => i.name));
  for (const ci of c.interfaces) {
    const oi = ours.interfaces.find((i) => i.name === ci.name)!;
    expect({ name: oi.name, version: oi.version }).toEqual({ name: ci.name, version: ci.version });
    expect(oi.requests, `${ci.name} requests`).toEqual(ci.requests);
    expect(oi.events, `${ci.name} events`).toEqual(ci.events);
  }
}

/** The native tables of a generated module against wayland-scanner's. */
function expectNativeSameAsC(ifaces: Readonly<Record<string, WireInterface>>, c: COutput): void {
  expect(Object.keys(ifaces)).toEqual(c.interfaces.map((i) => i.name));
  for (const ci of c.interfaces) {
    const wi = ifaces[ci.name]!;
    expect(wi.protocol.types).toEqual(c.types);
    const native = readNativeInterface(wi.address);
    expect(native.name).toBe(ci.name);
    expect(native.version).toBe(ci.version);
    for (const [kind, cms] of [
      ['requests', ci.requests],
      ['events', ci.events],
    ] as const) {
      const nms = native[kind];
      expect(nms.map((m) => [m.name, m.signature]), `${ci.name} ${kind}`).toEqual(cms.map((m) => [m.name, m.signature]));
      cms.forEach((cm, k) => {
        const nm = nms[k]!;
        // Same slot of the same array: the pointer is types + index.
        expect(nm.typesAddress, `${ci.name}.${cm.name} types pointer`).toBe(wi.protocol.typesAddress + 8n * BigInt(cm.typesIndex));
        // And the interfaces it reaches are wayland-scanner's, for every argument slot.
        const slots = parseSignature(cm.signature).slots.length;
        const cTypes = Array.from({ length: slots }, (_, s) => c.types[cm.typesIndex + s] ?? null);
        expect(nm.types, `${ci.name}.${cm.name} types`).toEqual(cTypes);
      });
    }
  }
}

const generatedModule: Record<string, string> = {
  'wayland.xml': 'wayland',
  'linux-dmabuf-unstable-v1.xml': 'linux_dmabuf_unstable_v1',
  'presentation-time.xml': 'presentation_time',
  'xdg-shell.xml': 'xdg_shell',
  'drm-lease-v1.xml': 'drm_lease_v1',
  'viewporter.xml': 'viewporter',
  'xdg-decoration-unstable-v1.xml': 'xdg_decoration_unstable_v1',
  'single-pixel-buffer-v1.xml': 'single_pixel_buffer_v1',
  'fractional-scale-v1.xml': 'fractional_scale_v1',
  'relative-pointer-unstable-v1.xml': 'relative_pointer_unstable_v1',
  'pointer-constraints-unstable-v1.xml': 'pointer_constraints_unstable_v1',
  'keyboard-shortcuts-inhibit-unstable-v1.xml': 'keyboard_shortcuts_inhibit_unstable_v1',
};
type Tables = { interfaces: Record<string, WireInterface> };
const importGenerated: Record<string, () => Promise<Tables>> = {
  wayland: () => import('../../protocols/generated/wayland.js'),
  linux_dmabuf_unstable_v1: () => import('../../protocols/generated/linux_dmabuf_unstable_v1.js'),
  presentation_time: () => import('../../protocols/generated/presentation_time.js'),
  xdg_shell: () => import('../../protocols/generated/xdg_shell.js'),
  drm_lease_v1: () => import('../../protocols/generated/drm_lease_v1.js'),
  viewporter: () => import('../../protocols/generated/viewporter.js'),
  xdg_decoration_unstable_v1: () => import('../../protocols/generated/xdg_decoration_unstable_v1.js'),
  single_pixel_buffer_v1: () => import('../../protocols/generated/single_pixel_buffer_v1.js'),
  fractional_scale_v1: () => import('../../protocols/generated/fractional_scale_v1.js'),
  relative_pointer_unstable_v1: () => import('../../protocols/generated/relative_pointer_unstable_v1.js'),
  pointer_constraints_unstable_v1: () => import('../../protocols/generated/pointer_constraints_unstable_v1.js'),
  keyboard_shortcuts_inhibit_unstable_v1: () => import('../../protocols/generated/keyboard_shortcuts_inhibit_unstable_v1.js'),
};

describe('scanner vs wayland-scanner', () => {
  beforeAll(() => {
    try {
      execFileSync('wayland-scanner', ['--version'], { stdio: 'ignore' });
    } catch (err) {
      throw new Error(`wayland-scanner is needed (apt-get install -y libwayland-bin): ${(err as Error).message}`);
    }
  });

  it('has the protocol XMLs it was asked for', () => {
    expect(xmlFiles).toEqual(Object.keys(generatedModule).sort());
  });

  for (const file of Object.keys(generatedModule).sort()) {
    describe(file, () => {
      let c: COutput;
      let protocol: Protocol;
      beforeAll(() => {
        c = parseCCode(runWaylandScanner(join(xmlDir, file)));
        protocol = parseProtocol(readFileSync(join(xmlDir, file), 'utf8'), file);
      });

      it('model tables match private-code: names, opcodes, signatures, versions, types', () => {
        expect(c.interfaces.length).toBeGreaterThan(0);
        expectSameAsC(buildTables(protocol), c);
      });

      it('generated module builds the same tables in native memory', async () => {
        const mod = await importGenerated[generatedModule[file]!]!();
        expectNativeSameAsC(mod.interfaces, c);
      });
    });
  }

  it('wayland.xml tables match the wl_*_interface structs inside libwayland-server', async () => {
    const lib = koffi.load('libwayland-server.so.0');
    const mod = (await import('../../protocols/generated/wayland.js')) as { interfaces: Record<string, WireInterface> };
    let compared = 0;
    for (const [name, wi] of Object.entries(mod.interfaces)) {
      let sym: unknown;
      try {
        sym = lib.symbol(`${name}_interface`, 'void *');
      } catch {
        continue; // not exported by this build
      }
      const theirs = readNativeInterface(sym);
      const ours = readNativeInterface(wi.address);
      const strip = (x: typeof ours) => ({
        name: x.name,
        version: x.version,
        requests: x.requests.map((m) => [m.name, m.signature, m.types]),
        events: x.events.map((m) => [m.name, m.signature, m.types]),
      });
      expect(strip(ours), name).toEqual(strip(theirs));
      compared++;
    }
    expect(compared).toBeGreaterThanOrEqual(20);
  });

  it('a protocol with every argument kind matches too', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gp-scanner-'));
    try {
      const xml = join(dir, 'kinds.xml');
      writeFileSync(xml, KINDS_XML);
      const c = parseCCode(runWaylandScanner(xml));
      expectSameAsC(buildTables(parseProtocol(KINDS_XML, 'kinds.xml')), c);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// Covers: a null run longer than any typed message, untyped new_id (sun), since prefixes
// above 9, nullable object/string, a message whose only typed arg is last, events with
// new_id, an interface with no requests and one with no events.
const KINDS_XML = `<?xml version="1.0" encoding="UTF-8"?>
<protocol name="gp_kinds">
  <interface name="gp_kinds_a" version="12">
    <request name="many"><arg name="a" type="int"/><arg name="b" type="uint"/><arg name="c" type="fixed"/>
      <arg name="d" type="string"/><arg name="e" type="array"/><arg name="f" type="fd"/><arg name="g" type="int"/>
      <arg name="h" type="int"/><arg name="i" type="int"/><arg name="j" type="int"/></request>
    <request name="bind_any"><arg name="name" type="uint"/><arg name="id" type="new_id"/></request>
    <request name="late" since="11"><arg name="x" type="int"/><arg name="o" type="object" interface="gp_kinds_b" allow-null="true"/></request>
    <request name="str" since="12"><arg name="s" type="string" allow-null="true"/><arg name="o" type="object"/></request>
    <event name="spawn"><arg name="id" type="new_id" interface="gp_kinds_b"/><arg name="o" type="object" interface="gp_kinds_a"/></event>
  </interface>
  <interface name="gp_kinds_b" version="1">
    <event name="hello"><arg name="s" type="string"/></event>
  </interface>
  <interface name="gp_kinds_c" version="2">
    <request name="destroy" type="destructor"/>
    <request name="make" since="2"><arg name="id" type="new_id" interface="gp_kinds_b"/></request>
  </interface>
</protocol>
`;

describe('scanner model', () => {
  const wl = parseProtocol(readFileSync(join(xmlDir, 'wayland.xml'), 'utf8'), 'wayland.xml');
  const iface = (n: string) => wl.interfaces.find((i) => i.name === n)!;

  it('parses arguments with type, interface, allow-null, enum and summary', () => {
    const attach = iface('wl_surface').requests.find((m) => m.name === 'attach')!;
    expect(attach.opcode).toBe(1);
    expect(attach.args[0]).toEqual({
      name: 'buffer',
      type: 'object',
      interface: 'wl_buffer',
      allowNull: true,
      summary: 'buffer of surface contents',
    });
    expect(signatureOf(attach)).toBe('?oii');
    const setTransform = iface('wl_surface').requests.find((m) => m.name === 'set_buffer_transform')!;
    expect(setTransform.since).toBe(2);
    expect(setTransform.args[0]!.enum).toBe('wl_output.transform');
    expect(signatureOf(setTransform)).toBe('2i');
  });

  it('parses enums, bitfields, entry values and since', () => {
    const fmt = iface('wl_shm').enums.find((e) => e.name === 'format')!;
    expect(fmt.bitfield).toBe(false);
    expect(fmt.entries[0]).toMatchObject({ name: 'argb8888', value: 0 });
    expect(fmt.entries.find((e) => e.name === 'xbgr8888')).toMatchObject({ value: 0x34324258, valueText: '0x34324258' });
    const caps = iface('wl_seat').enums.find((e) => e.name === 'capability')!;
    expect(caps.bitfield).toBe(true);
    const axisSource = iface('wl_pointer').enums.find((e) => e.name === 'axis_source')!;
    expect(axisSource.entries.find((e) => e.name === 'wheel_tilt')!.since).toBe(6);
    const found = findEnum([wl], iface('wl_surface'), 'wl_output.transform');
    expect(found?.enum.entries.map((e) => e.name)).toContain('flipped_270');
  });

  it('parses descriptions, destructors and deprecated-since', () => {
    expect(iface('wl_surface').description?.summary).toBe('an onscreen surface');
    expect(iface('wl_buffer').requests[0]).toMatchObject({ name: 'destroy', destructor: true });
    const p = parseProtocol(
      `<protocol name="x"><interface name="x_a" version="3">
         <description summary="sum">text</description>
         <request name="old" deprecated-since="3"/>
         <enum name="e"><entry name="one" value="1" deprecated-since="2" summary="s"/></enum>
       </interface></protocol>`,
    );
    expect(p.interfaces[0]!.description).toEqual({ summary: 'sum', text: 'text' });
    expect(p.interfaces[0]!.requests[0]!.deprecatedSince).toBe(3);
    expect(p.interfaces[0]!.enums[0]!.entries[0]).toMatchObject({ deprecatedSince: 2, summary: 's' });
  });

  it('rejects what wayland-scanner rejects', () => {
    const bad = (body: string) => () => parseProtocol(`<protocol name="x"><interface name="x_a" version="2">${body}</interface></protocol>`, 'bad.xml');
    expect(bad('<request name="r"><arg name="a" type="long"/></request>')).toThrow(/unknown type/);
    expect(bad('<request name="r" since="3"/>')).toThrow(/larger than version/);
    expect(bad('<request name="destroy"/>')).toThrow(/destructor/);
    expect(bad('<request name="r"><arg name="a" type="int" allow-null="true"/></request>')).toThrow(/allow-null/);
    expect(bad('<request name="r"><arg name="a" type="int" interface="x_a"/></request>')).toThrow(/interface attribute/);
    expect(bad('<enum name="e" bitfield="true"><entry name="a" value="1"/></enum><request name="r"><arg name="a" type="int" enum="e"/></request>')).toThrow(/bitfield/);
    expect(bad('<enum name="e"></enum>')).toThrow(/empty/);
    expect(bad('<request name="9r"/>')).toThrow(/identifier/);
    expect(() => parseProtocol('<protocol name="x"><interface name="x_a"/></protocol>')).toThrow(/version/);
  });

  it('wl_fixed_t conversions match wayland-util.h', () => {
    expect(fixedFromDouble(1.5)).toBe(384);
    expect(fixedFromDouble(-1.5)).toBe(-384);
    expect(fixedFromDouble(0.001953125)).toBe(0); // half of 1/256: ties to even
    expect(fixedFromDouble(0.005859375)).toBe(2); // 1.5/256 -> 2
    expect(fixedToDouble(-384)).toBe(-1.5);
    expect(fixedToDouble(fixedFromDouble(123.25))).toBe(123.25);
  });
});

describe('generated files', () => {
  it('are up to date with protocols/xml (npm run protocols:gen)', () => {
    const xmls = xmlFiles.map((f) => `protocols/xml/${f}`);
    for (const f of generateAll(xmls, 'protocols/generated', root)) {
      expect(readFileSync(f.path, 'utf8'), f.path).toBe(f.content);
    }
  });

  it('carry the do-not-edit header naming their XML', () => {
    for (const [xml, mod] of Object.entries(generatedModule)) {
      const head = readFileSync(join(root, 'protocols/generated', `${mod}.ts`), 'utf8').split('\n')[0];
      expect(head).toBe(`// generated by protocols/scanner.ts from protocols/xml/${xml}; do not edit`);
    }
  });
});

describe('client-side generation', () => {
  const kinds = parseProtocol(KINDS_XML, 'kinds.xml');
  const code = generateClient(kinds, { source: 'kinds.xml', all: [kinds] });

  it('writes one request method per request, with the argument kinds typed for the caller', () => {
    expect(code).toContain('many(a: number, b: number, c: number, d: string, e: Uint8Array, f: number, g: number, h: number, i: number, j: number): void {');
    expect(code).toContain('this.request(0, [a, b, c, d, e, f, g, h, i, j]);');
    // untyped new_id (as wl_registry.bind): the caller names the class and the version
    expect(code).toContain('bindAny<P extends Proxy>(name: number, cls: ProxyClass<P>, version: number): P {');
    expect(code).toContain('return this.requestNew(1, cls, [name, cls.interface.name, version, null], version);');
    expect(code).toContain('late(x: number, o: GpKindsB | null): void {');
    expect(code).toContain('str(s: string | null, o: Proxy): void {');
    // typed new_id returns the new proxy; destructors say so to the runtime
    expect(code).toContain('make(): GpKindsB {\n    return this.requestNew(1, GpKindsB, [null]);');
    expect(code).toContain('destroy(): void {\n    this.request(0, [], true);');
  });

  it('writes event handler types and the event table, new_id events with their class', () => {
    expect(code).toContain('spawn(id: GpKindsB, o: GpKindsA | null): void;');
    expect(code).toContain("{ name: 'spawn', handler: 'spawn', newIds: { 0: () => GpKindsB } },");
    expect(code).toContain('hello(s: string): void;');
    expect(code).toContain("static readonly interface: WireInterface = tables['gp_kinds_c']!;");
  });

  it('the generated client classes share the server modules\' native tables', async () => {
    const client = await import('../../protocols/generated/client/wayland.js');
    const serverSide = await import('../../protocols/generated/wayland.js');
    expect(client.WlSurface.interface).toBe(serverSide.wl_surface_interface);
    expect(client.WlSurface.events.map((e) => e.name)).toEqual(serverSide.wl_surface_interface.events.map((e) => e.name));
    expect(client.WlShmFormat.XRGB8888).toBe(serverSide.WlShmFormat.XRGB8888);
  });
});
