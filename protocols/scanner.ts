// guestplane's Wayland protocol scanner: protocol XML -> typed model -> server-side
// TypeScript bindings on libwayland-server (through koffi, see protocols/runtime.ts) and
// client-side ones on libwayland-client (generated/client/, protocols/client-runtime.ts).
//
// The wire tables (wl_message signatures, the per-protocol `types` array and every
// message's index into it) are laid out exactly as the C `wayland-scanner private-code`
// lays them out; test/unit/scanner.test.ts holds us to that, interface by interface.
//
// This module imports nothing but fast-xml-parser and node builtins, so it compiles on
// its own (protocols/tsconfig.scanner.json) before the generated files it writes exist.
//
// CLI: node dist/protocols/scanner.js protocols/xml/*.xml -o protocols/generated [--check]
import { XMLParser } from 'fast-xml-parser';
import { readFileSync, writeFileSync, mkdirSync, existsSync, realpathSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

// ---------------------------------------------------------------------------------------
// Model

export type ArgType = 'int' | 'uint' | 'fixed' | 'string' | 'object' | 'new_id' | 'array' | 'fd';
const ARG_TYPES: readonly ArgType[] = ['int', 'uint', 'fixed', 'string', 'object', 'new_id', 'array', 'fd'];

export interface Description {
  summary: string;
  /** The element's text, whitespace as in the XML; undefined when empty. */
  text?: string;
}

export interface Arg {
  name: string;
  type: ArgType;
  /** Interface of an object / new_id argument; undefined for an untyped one. */
  interface?: string;
  allowNull: boolean;
  /** The enum attribute as written: `format` or `wl_shm.format`. */
  enum?: string;
  summary?: string;
}

export interface Message {
  name: string;
  kind: 'request' | 'event';
  /** Position among the interface's requests (or events): the wire opcode. */
  opcode: number;
  destructor: boolean;
  since: number;
  deprecatedSince?: number;
  args: Arg[];
  description?: Description;
}

export interface EnumEntry {
  name: string;
  value: number;
  /** The value attribute as written (`0x34325241`). */
  valueText: string;
  since: number;
  deprecatedSince?: number;
  summary?: string;
  description?: Description;
}

export interface Enum {
  name: string;
  bitfield: boolean;
  since: number;
  entries: EnumEntry[];
  description?: Description;
}

export interface Interface {
  name: string;
  version: number;
  requests: Message[];
  events: Message[];
  enums: Enum[];
  description?: Description;
}

export interface Protocol {
  name: string;
  copyright?: string;
  description?: Description;
  interfaces: Interface[];
}

/** A protocol XML that does not follow the rules wayland-scanner enforces. */
export class ProtocolError extends Error {
  constructor(source: string, where: string, message: string) {
    super(`${source}: ${where}: ${message}`);
    this.name = 'ProtocolError';
  }
}

// ---------------------------------------------------------------------------------------
// XML -> model (fast-xml-parser does the XML; we only walk its tree)

type Node = Record<string, unknown>;
const ATTR = '@_';
const LIST_ELEMENTS = new Set(['interface', 'request', 'event', 'enum', 'entry', 'arg']);

function attr(node: Node, name: string): string | undefined {
  const v = node[ATTR + name];
  return v === undefined ? undefined : String(v);
}
function children(node: Node, name: string): Node[] {
  const v = node[name];
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]) as Node[];
}
function text(node: unknown): string | undefined {
  if (node === undefined || node === null) return undefined;
  if (typeof node === 'string') return node;
  const t = (node as Node)['#text'];
  return t === undefined ? undefined : String(t);
}

const IDENT = /^[_a-zA-Z][_0-9a-zA-Z]*$/;
const TRAILING_IDENT = /^[_0-9a-zA-Z]+$/;

/** Parses one protocol XML document into the model. `source` names it in errors. */
export function parseProtocol(xml: string, source = '<xml>'): Protocol {
  const parser = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: ATTR,
    parseAttributeValue: false,
    parseTagValue: false,
    trimValues: false,
    processEntities: true,
    ignoreDeclaration: true,
    ignorePiTags: true,
    commentPropName: false,
    isArray: (tagName) => LIST_ELEMENTS.has(tagName),
  });
  const doc = parser.parse(xml) as Node;
  const p = doc['protocol'] as Node | undefined;
  if (!p || typeof p !== 'object') throw new ProtocolError(source, 'document', 'no <protocol> element');

  const fail = (where: string, msg: string): never => {
    throw new ProtocolError(source, where, msg);
  };
  const ident = (where: string, s: string | undefined, trailing = false): string => {
    if (s === undefined || s === '') return fail(where, 'name missing');
    if (!(trailing ? TRAILING_IDENT : IDENT).test(s)) fail(where, `'${s}' is not a valid identifier`);
    return s;
  };
  const uint = (where: string, s: string): number => {
    if (!/^[0-9]+$/.test(s)) fail(where, `invalid integer (${s})`);
    const n = Number(s);
    if (n > 0x7fffffff) fail(where, `integer out of range (${s})`);
    return n;
  };
  const description = (node: Node, where: string): Description | undefined => {
    const d = node['description'];
    if (d === undefined) return undefined;
    const dn = (Array.isArray(d) ? d[0] : d) as Node | string;
    const summary = typeof dn === 'object' ? attr(dn, 'summary') : undefined;
    if (summary === undefined) fail(where, 'description without summary');
    const t = text(dn);
    return t !== undefined && t.trim() !== '' ? { summary: summary!, text: t } : { summary: summary! };
  };

  const protoName = ident('protocol', attr(p, 'name'));
  const copyrightText = text(p['copyright']);
  const protocol: Protocol = { name: protoName, interfaces: [] };
  if (copyrightText !== undefined) protocol.copyright = copyrightText;
  const pdesc = description(p, 'protocol');
  if (pdesc) protocol.description = pdesc;

  for (const inode of children(p, 'interface')) {
    const iname = ident('interface', attr(inode, 'name'));
    const where = `interface ${iname}`;
    const vtext = attr(inode, 'version');
    if (vtext === undefined) fail(where, 'no interface version given');
    const version = uint(where, vtext!);
    if (version === 0) fail(where, 'interface version must be at least 1');
    const iface: Interface = { name: iname, version, requests: [], events: [], enums: [] };
    const idesc = description(inode, where);
    if (idesc) iface.description = idesc;

    const sinceOf = (w: string, s: string | undefined): number => {
      if (s === undefined) return 1;
      const v = uint(w, s);
      if (v > version) fail(w, `since (${v}) larger than version (${version})`);
      return v;
    };
    const deprecatedOf = (w: string, s: string | undefined): number | undefined => {
      if (s === undefined) return undefined;
      const v = uint(w, s);
      if (v > version) fail(w, `deprecated-since (${v}) larger than version (${version})`);
      return v;
    };

    for (const kind of ['request', 'event'] as const) {
      const list = kind === 'request' ? iface.requests : iface.events;
      for (const mnode of children(inode, kind)) {
        const mname = ident(`${where} ${kind}`, attr(mnode, 'name'));
        const mw = `${iname}.${mname}`;
        const type = attr(mnode, 'type');
        if (type !== undefined && type !== 'destructor') fail(mw, `unknown message type (${type})`);
        const destructor = type === 'destructor';
        if (mname === 'destroy' && kind === 'request' && !destructor) {
          fail(mw, 'destroy request should be destructor type');
        }
        const msg: Message = {
          name: mname,
          kind,
          opcode: list.length,
          destructor,
          since: sinceOf(mw, attr(mnode, 'since')),
          args: [],
        };
        const dep = deprecatedOf(mw, attr(mnode, 'deprecated-since'));
        if (dep !== undefined) msg.deprecatedSince = dep;
        const mdesc = description(mnode, mw);
        if (mdesc) msg.description = mdesc;
        for (const anode of children(mnode, 'arg')) {
          const aname = ident(`${mw} arg`, attr(anode, 'name'));
          const aw = `${mw}(${aname})`;
          const atype = attr(anode, 'type') as ArgType | undefined;
          if (atype === undefined || !ARG_TYPES.includes(atype)) fail(aw, `unknown type (${atype})`);
          const arg: Arg = { name: aname, type: atype!, allowNull: false };
          const ai = attr(anode, 'interface');
          if (ai !== undefined) {
            if (atype !== 'object' && atype !== 'new_id') fail(aw, `interface attribute not allowed for type ${atype}`);
            arg.interface = ident(aw, ai);
          }
          const an = attr(anode, 'allow-null');
          if (an !== undefined) {
            if (an !== 'true' && an !== 'false') fail(aw, `invalid value for allow-null attribute (${an})`);
            arg.allowNull = an === 'true';
            // wayland-scanner's is_nullable_type(): only strings and objects.
            if (atype !== 'string' && atype !== 'object') fail(aw, 'allow-null is only valid for objects and strings');
          }
          const en = attr(anode, 'enum');
          if (en !== undefined && en !== '') arg.enum = en;
          const sum = attr(anode, 'summary');
          if (sum !== undefined) arg.summary = sum;
          msg.args.push(arg);
        }
        list.push(msg);
      }
    }

    for (const enode of children(inode, 'enum')) {
      const ename = ident(`${where} enum`, attr(enode, 'name'), true);
      const ew = `${iname}.${ename}`;
      const bf = attr(enode, 'bitfield');
      if (bf !== undefined && bf !== 'true' && bf !== 'false') fail(ew, `invalid value (${bf}) for bitfield attribute`);
      const e: Enum = { name: ename, bitfield: bf === 'true', since: sinceOf(ew, attr(enode, 'since')), entries: [] };
      const edesc = description(enode, ew);
      if (edesc) e.description = edesc;
      for (const xnode of children(enode, 'entry')) {
        const xname = ident(`${ew} entry`, attr(xnode, 'name'), true);
        const xw = `${ew}.${xname}`;
        const vt = attr(xnode, 'value');
        if (vt === undefined) fail(xw, 'entry without value');
        const value = Number(vt!.trim());
        if (!Number.isInteger(value) || value < -0x80000000 || value > 0xffffffff) fail(xw, `invalid value (${vt})`);
        const entry: EnumEntry = { name: xname, value, valueText: vt!.trim(), since: sinceOf(xw, attr(xnode, 'since')) };
        const dep = deprecatedOf(xw, attr(xnode, 'deprecated-since'));
        if (dep !== undefined) entry.deprecatedSince = dep;
        const sum = attr(xnode, 'summary');
        if (sum !== undefined) entry.summary = sum;
        const xdesc = description(xnode, xw);
        if (xdesc) entry.description = xdesc;
        e.entries.push(entry);
      }
      if (e.entries.length === 0) fail(ew, `enumeration ${ename} was empty`);
      iface.enums.push(e);
    }
    protocol.interfaces.push(iface);
  }

  // wayland-scanner's verify_arguments(): enum arguments must be int/uint, bitfields uint.
  for (const iface of protocol.interfaces) {
    for (const m of [...iface.requests, ...iface.events]) {
      for (const a of m.args) {
        if (!a.enum) continue;
        if (a.type !== 'int' && a.type !== 'uint') fail(`${iface.name}.${m.name}(${a.name})`, 'enumeration-style argument has wrong type');
        const e = findEnum([protocol], iface, a.enum);
        if (e && e.enum.bitfield && a.type === 'int') {
          fail(`${iface.name}.${m.name}(${a.name})`, 'bitfield-style enum must only be referenced by uint');
        }
      }
    }
  }
  return protocol;
}

/** Resolves an enum attribute (`format`, `wl_shm.format`) among the given protocols. */
export function findEnum(
  protocols: readonly Protocol[],
  current: Interface,
  ref: string,
): { protocol: Protocol; interface: Interface; enum: Enum } | undefined {
  const dot = ref.lastIndexOf('.');
  const ifaceName = dot > 0 ? ref.slice(0, dot) : current.name;
  const enumName = dot > 0 ? ref.slice(dot + 1) : ref;
  for (const protocol of protocols) {
    for (const iface of protocol.interfaces) {
      if (iface.name !== ifaceName) continue;
      if (dot <= 0 && iface !== current) continue;
      const e = iface.enums.find((x) => x.name === enumName);
      if (e) return { protocol, interface: iface, enum: e };
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------
// Wire tables, laid out as wayland-scanner's emit_code() lays them out

export interface WireMessage {
  name: string;
  signature: string;
  /** Index of this message's first entry in the protocol's types array. */
  typesIndex: number;
}
export interface WireInterface {
  name: string;
  version: number;
  requests: WireMessage[];
  events: WireMessage[];
}
export interface WireTables {
  protocol: string;
  /** Interface names (or null) in the order of wayland-scanner's `<protocol>_types[]`. */
  types: (string | null)[];
  interfaces: WireInterface[];
}

/** The wl_message signature: since prefix (when > 1), `?` for nullable, one letter per wire arg. */
export function signatureOf(m: Message): string {
  let s = m.since > 1 ? String(m.since) : '';
  for (const a of m.args) {
    if (a.allowNull && (a.type === 'string' || a.type === 'object')) s += '?';
    switch (a.type) {
      case 'int': s += 'i'; break;
      case 'uint': s += 'u'; break;
      case 'fixed': s += 'f'; break;
      case 'string': s += 's'; break;
      case 'object': s += 'o'; break;
      case 'new_id': s += a.interface ? 'n' : 'sun'; break;
      case 'array': s += 'a'; break;
      case 'fd': s += 'h'; break;
    }
  }
  return s;
}

function allNull(m: Message): boolean {
  return !m.args.some((a) => (a.type === 'object' || a.type === 'new_id') && a.interface);
}

export function buildTables(protocol: Protocol): WireTables {
  // emit_types_forward_declarations(): the longest argument list of a message whose
  // arguments name no interface is the run of NULLs every such message points at.
  let nullRun = 0;
  for (const i of protocol.interfaces) {
    for (const m of [...i.requests, ...i.events]) if (allNull(m) && m.args.length > nullRun) nullRun = m.args.length;
  }
  const types: (string | null)[] = new Array(nullRun).fill(null);
  const wire = (m: Message): WireMessage => {
    let typesIndex = 0;
    if (!allNull(m)) {
      typesIndex = types.length;
      for (const a of m.args) types.push((a.type === 'object' || a.type === 'new_id') && a.interface ? a.interface : null);
    }
    return { name: m.name, signature: signatureOf(m), typesIndex };
  };
  const interfaces = protocol.interfaces.map((i) => {
    // emit_types() walks requests, then events, interface by interface.
    const requests = i.requests.map(wire);
    const events = i.events.map(wire);
    return { name: i.name, version: i.version, requests, events };
  });
  return { protocol: protocol.name, types, interfaces };
}

// ---------------------------------------------------------------------------------------
// TypeScript generation

const RESERVED = new Set(
  ('break case catch class const continue debugger default delete do else enum export extends false finally for ' +
    'function if import in instanceof new null return super switch this throw true try typeof var void while with ' +
    'implements interface let package private protected public static yield await arguments eval undefined').split(' '),
);

export function pascalCase(s: string): string {
  return s
    .split('_')
    .filter((p) => p !== '')
    .map((p) => p[0]!.toUpperCase() + p.slice(1))
    .join('');
}
export function camelCase(s: string): string {
  const p = pascalCase(s);
  const c = p[0]!.toLowerCase() + p.slice(1);
  return s.startsWith('_') ? `_${c}` : c;
}
function safeIdent(s: string): string {
  return RESERVED.has(s) ? `${s}_` : s;
}
function enumMember(name: string): string {
  const u = name.toUpperCase();
  return /^[0-9]/.test(u) ? `_${u}` : u;
}
/** The generated module name (file name without .ts) for a protocol. */
export function moduleName(protocol: Protocol): string {
  return protocol.name;
}

function jsdoc(lines: (string | undefined)[], indent: string): string {
  const ls = lines.filter((l): l is string => l !== undefined && l.trim() !== '').map((l) => l.replace(/\*\//g, '*\\/'));
  if (ls.length === 0) return '';
  if (ls.length === 1) return `${indent}/** ${ls[0]} */\n`;
  return `${indent}/**\n${ls.map((l) => `${indent} * ${l}`).join('\n')}\n${indent} */\n`;
}
function versionNotes(since: number, deprecatedSince?: number): string[] {
  const out: string[] = [];
  if (since > 1) out.push(`@since ${since}`);
  if (deprecatedSince !== undefined) out.push(`@deprecated since version ${deprecatedSince}`);
  return out;
}
function quote(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

export interface GenerateOptions {
  /** Path of the XML as it should appear in the header comment. */
  source: string;
  /** Every protocol of the set, to resolve interfaces and enums from other protocols. */
  all: readonly Protocol[];
}

/** Generates protocols/generated/<protocol>.ts for one protocol of a set. */
export function generate(protocol: Protocol, opts: GenerateOptions): string {
  const tables = buildTables(protocol);
  const searchSet = opts.all.includes(protocol) ? opts.all : [protocol, ...opts.all];
  const local = new Set(protocol.interfaces.map((i) => i.name));
  const owner = new Map<string, Protocol>();
  for (const p of searchSet) for (const i of p.interfaces) if (!owner.has(i.name)) owner.set(i.name, p);
  for (const i of protocol.interfaces) owner.set(i.name, protocol);

  // Names used at module scope, so a clash is caught here instead of by tsc.
  const taken = new Map<string, string>();
  const claim = (name: string, what: string): string => {
    const prev = taken.get(name);
    if (prev !== undefined) throw new Error(`${protocol.name}: generated name ${name} is used by ${prev} and ${what}`);
    taken.set(name, what);
    return name;
  };
  for (const n of ['defineProtocol', 'Resource', 'NewId', 'Global', 'createResource', 'createGlobal', 'Client', 'Display',
    'WireInterface', 'RequestSpec', 'interfaces', 'protocol']) claim(n, 'the runtime');

  // Imports from other generated modules: class names (for argument types), enum names,
  // and their `interfaces` records (for the types table).
  const imports = new Map<string, Set<string>>();
  const externalModules = new Set<string>();
  const needIface = (name: string): string => {
    const p = owner.get(name);
    if (!p) throw new Error(`${protocol.name}: interface ${name} is not defined by any protocol given to the scanner`);
    const cls = pascalCase(name);
    if (p !== protocol) {
      const mod = moduleName(p);
      if (!imports.has(mod)) imports.set(mod, new Set());
      if (!imports.get(mod)!.has(cls)) {
        imports.get(mod)!.add(cls);
        if (!taken.has(cls)) claim(cls, `interface ${name} of ${p.name}`);
      }
    }
    return cls;
  };
  const enumTsName = new Map<Enum, string>();
  const enumName = (iface: Interface, e: Enum): string => {
    let n = enumTsName.get(e);
    if (n) return n;
    n = pascalCase(iface.name) + pascalCase(e.name);
    // An enum named like an interface class (wl_foo.bar vs wl_foo_bar) takes a suffix.
    const clash = searchSet.some((p) => p.interfaces.some((i) => pascalCase(i.name) === n));
    if (clash) n += 'Enum';
    enumTsName.set(e, n);
    return n;
  };
  const argEnum = (iface: Interface, a: Arg): string | undefined => {
    if (!a.enum) return undefined;
    const found = findEnum(searchSet, iface, a.enum);
    if (!found) return undefined;
    const n = enumName(found.interface, found.enum);
    if (found.protocol !== protocol) {
      const mod = moduleName(found.protocol);
      if (!imports.has(mod)) imports.set(mod, new Set());
      if (!imports.get(mod)!.has(n)) {
        imports.get(mod)!.add(n);
        if (!taken.has(n)) claim(n, `enum ${found.interface.name}.${found.enum.name}`);
      }
    }
    return n;
  };
  for (const t of tables.types) {
    if (t && !local.has(t)) {
      needIface(t);
      externalModules.add(moduleName(owner.get(t)!));
    }
  }
  for (const i of protocol.interfaces) {
    claim(pascalCase(i.name), `interface ${i.name}`);
    claim(`${pascalCase(i.name)}Handlers`, `handlers of ${i.name}`);
    claim(`${i.name}_interface`, `table of ${i.name}`);
  }
  for (const i of protocol.interfaces) for (const e of i.enums) claim(enumName(i, e), `enum ${i.name}.${e.name}`);

  const body: string[] = [];

  // --- the wire tables
  const ifaceRows = tables.interfaces.map((wi) => {
    const msgs = (ms: WireMessage[]) =>
      `[${ms.map((m) => `[${quote(m.name)}, ${quote(m.signature)}, ${m.typesIndex}]`).join(', ')}]`;
    return `    [${quote(wi.name)}, ${wi.version}, ${msgs(wi.requests)}, ${msgs(wi.events)}],`;
  });
  const typeRows: string[] = [];
  for (let i = 0; i < tables.types.length; i += 8) {
    typeRows.push('    ' + tables.types.slice(i, i + 8).map((t) => (t === null ? 'null' : quote(t))).join(', ') + ',');
  }
  const ext = [...externalModules].sort();
  body.push(
    '/** The wl_interface / wl_message tables, in native memory, laid out as wayland-scanner lays them out. */',
    'const protocol = defineProtocol(',
    '  {',
    `    name: ${quote(protocol.name)},`,
    '    types: [',
    ...typeRows.map((r) => '  ' + r),
    '    ],',
    '    interfaces: [',
    ...ifaceRows.map((r) => '  ' + r),
    '    ],',
    '  },',
    ext.length ? `  [${ext.map((m) => `${safeIdent(m)}_interfaces`).join(', ')}],` : '  [],',
    ');',
    'export const interfaces: Readonly<Record<string, WireInterface>> = protocol.interfaces;',
    '',
  );
  for (const i of protocol.interfaces) {
    body.push(`export const ${i.name}_interface: WireInterface = protocol.interfaces[${quote(i.name)}]!;`);
  }
  body.push('');

  // --- enums
  for (const i of protocol.interfaces) {
    for (const e of i.enums) {
      const n = enumName(i, e);
      body.push(
        jsdoc(
          [
            `${i.name}.${e.name}${e.description ? `: ${e.description.summary}` : ''}`,
            e.bitfield ? 'Bitfield: values combine with `|`.' : undefined,
            ...versionNotes(e.since),
          ],
          '',
        ) + `export enum ${n} {`,
      );
      const seen = new Set<string>();
      for (const x of e.entries) {
        const m = enumMember(x.name);
        if (seen.has(m)) throw new Error(`${protocol.name}: enum ${i.name}.${e.name} has two entries named ${m}`);
        seen.add(m);
        body.push(jsdoc([x.summary ?? x.description?.summary, ...versionNotes(x.since, x.deprecatedSince)], '  ') + `  ${m} = ${x.valueText},`);
      }
      body.push('}', '');
    }
  }

  // --- one handler interface and one class per interface
  for (const i of protocol.interfaces) {
    const cls = pascalCase(i.name);
    const handlers = `${cls}Handlers`;

    // Request handlers.
    body.push(jsdoc([`Request handlers of ${i.name}${i.description ? `: ${i.description.summary}` : ''}`], '') + `export interface ${handlers} {`);
    const requestSpecs: string[] = [];
    for (const m of i.requests) {
      const params: string[] = [`resource: ${cls}`];
      const newIds: string[] = [];
      let slot = 0;
      const docs: string[] = [];
      const used = new Set(['resource']);
      const pname = (n: string): string => {
        let p = safeIdent(camelCase(n));
        while (used.has(p)) p += '_';
        used.add(p);
        return p;
      };
      for (const a of m.args) {
        const nullable = a.allowNull ? ' | null' : '';
        const p = pname(a.name);
        switch (a.type) {
          case 'int':
          case 'uint':
            params.push(`${p}: ${argEnum(i, a) ?? 'number'}`);
            slot++;
            break;
          case 'fixed':
            params.push(`${p}: number`);
            slot++;
            break;
          case 'fd':
            params.push(`${p}: number`);
            docs.push(`@param ${p} a file descriptor that the handler now owns (close it)`);
            slot++;
            break;
          case 'string':
            params.push(`${p}: string${nullable}`);
            slot++;
            break;
          case 'array':
            params.push(`${p}: Uint8Array`);
            slot++;
            break;
          case 'object':
            params.push(`${p}: ${a.interface ? needIface(a.interface) : 'Resource'}${nullable}`);
            slot++;
            break;
          case 'new_id':
            if (a.interface) {
              const c = needIface(a.interface);
              params.push(`${p}: NewId<${c}>`);
              newIds.push(`${slot}: () => ${c}`);
              slot++;
            } else {
              params.push(`${pname(`${a.name}_interface`)}: string`, `${pname(`${a.name}_version`)}: number`, `${p}: number`);
              slot += 3;
            }
            break;
        }
        if (a.summary) docs.push(`@param ${p} ${a.summary}`);
      }
      const method = safeIdent(camelCase(m.name));
      const optional = m.destructor ? '?' : '';
      body.push(
        jsdoc(
          [
            m.description?.summary,
            m.destructor ? 'Destructor: optional; the resource is destroyed after it (if the handler did not).' : undefined,
            ...versionNotes(m.since, m.deprecatedSince),
            ...docs,
          ],
          '  ',
        ) + `  ${method}${optional}(${params.join(', ')}): void;`,
      );
      requestSpecs.push(
        `    { name: ${quote(m.name)}, handler: ${quote(method)}, destructor: ${m.destructor}, newIds: {${newIds.length ? ` ${newIds.join(', ')} ` : ''}} },`,
      );
    }
    body.push('}', '');

    // The resource class.
    body.push(jsdoc([`${i.name} (version ${i.version})${i.description ? `: ${i.description.summary}` : ''}`], '') + `export class ${cls} extends Resource<${handlers}> {`);
    body.push(`  static readonly interface: WireInterface = ${i.name}_interface;`);
    if (requestSpecs.length) body.push(`  static readonly requests: readonly RequestSpec[] = [`, ...requestSpecs, '  ];');
    else body.push('  static readonly requests: readonly RequestSpec[] = [];');
    body.push(
      '',
      `  /** Creates a ${i.name} resource for \`client\` (id 0: a server-allocated id, for new_id events). */`,
      `  static create(client: Client, version: number, id: number, handlers: ${handlers}${i.requests.length === 0 ? ' = {}' : ''}): ${cls} {`,
      `    return createResource(${cls}, client, version, id, handlers);`,
      '  }',
      '',
      `  /** Advertises ${i.name} (up to \`version\`) on \`display\`; \`bind\` runs for each client that binds it. */`,
      `  static global(display: Display, version: number, bind: (id: NewId<${cls}>) => void): Global<${cls}> {`,
      `    return createGlobal(${cls}, display, version, bind);`,
      '  }',
    );
    for (const m of i.events) {
      const params: string[] = [];
      const values: string[] = [];
      const docs: string[] = [];
      const used = new Set<string>();
      const pname = (n: string): string => {
        let p = safeIdent(camelCase(n));
        while (used.has(p)) p += '_';
        used.add(p);
        return p;
      };
      for (const a of m.args) {
        const nullable = a.allowNull ? ' | null' : '';
        const p = pname(a.name);
        switch (a.type) {
          case 'int':
          case 'uint':
            params.push(`${p}: ${argEnum(i, a) ?? 'number'}`);
            values.push(p);
            break;
          case 'fixed':
            params.push(`${p}: number`);
            values.push(p);
            break;
          case 'fd':
            params.push(`${p}: number`);
            values.push(p);
            docs.push(`@param ${p} a file descriptor; libwayland sends a duplicate, the caller keeps this one`);
            break;
          case 'string':
            params.push(`${p}: string${nullable}`);
            values.push(p);
            break;
          case 'array':
            params.push(`${p}: Uint8Array`);
            values.push(p);
            break;
          case 'object':
            params.push(`${p}: ${a.interface ? needIface(a.interface) : 'Resource'}${nullable}`);
            values.push(p);
            break;
          case 'new_id':
            if (a.interface) {
              params.push(`${p}: ${needIface(a.interface)}`);
              values.push(p);
            } else {
              const pi = pname(`${a.name}_interface`);
              const pv = pname(`${a.name}_version`);
              params.push(`${pi}: string`, `${pv}: number`, `${p}: Resource`);
              values.push(pi, pv, p);
            }
            break;
        }
        if (a.summary) docs.push(`@param ${p} ${a.summary}`);
      }
      body.push(
        '',
        jsdoc(
          [
            m.description?.summary,
            m.since > 1 ? `Needs a resource of version ${m.since} or later; throws otherwise.` : undefined,
            ...versionNotes(m.since, m.deprecatedSince),
            ...docs,
          ],
          '  ',
        ) + `  send${pascalCase(m.name)}(${params.join(', ')}): void {`,
        `    this.postEvent(${m.opcode}, [${values.join(', ')}]);`,
        '  }',
      );
    }
    body.push('}', '');
  }

  // --- header and imports
  const head: string[] = [
    `// generated by protocols/scanner.ts from ${opts.source}; do not edit`,
    `// (npm run protocols:gen regenerates it).`,
    `// Protocol ${protocol.name}${protocol.description ? `: ${protocol.description.summary}` : ''}`,
    '/* eslint-disable */',
    'import {',
    '  defineProtocol,',
    '  Resource,',
    '  NewId,',
    '  Global,',
    '  createResource,',
    '  createGlobal,',
    '  type Client,',
    '  type Display,',
    '  type WireInterface,',
    '  type RequestSpec,',
    "} from '../runtime.js';",
  ];
  for (const mod of [...new Set([...imports.keys(), ...externalModules])].sort()) {
    const names = [...(imports.get(mod) ?? [])].sort();
    if (externalModules.has(mod)) names.unshift(`interfaces as ${safeIdent(mod)}_interfaces`);
    head.push(`import { ${names.join(', ')} } from './${mod}.js';`);
  }
  head.push('');
  // Silence "declared but never read" for runtime names a small protocol does not need.
  body.push('void NewId;', 'void Global;', '');
  return head.join('\n') + '\n' + body.join('\n');
}

// ---------------------------------------------------------------------------------------
// Client-side TypeScript generation (protocols/generated/client/<protocol>.ts)
//
// The client modules take their wire tables from the server modules (one native copy per
// process; the tables are the same on both ends) and add proxy classes on
// protocols/client-runtime.ts: a method per request, an `<Interface>Events` handler type.

interface ClientNames {
  cls: (iface: string) => string;
  enumOf: (iface: Interface, a: Arg) => string | undefined;
}

function clientParam(a: Arg, p: string, names: ClientNames, iface: Interface, event: boolean): string {
  switch (a.type) {
    case 'int':
    case 'uint':
      return `${p}: ${names.enumOf(iface, a) ?? 'number'}`;
    case 'fixed':
    case 'fd':
      return `${p}: number`;
    case 'string':
      return `${p}: string${a.allowNull ? ' | null' : ''}`;
    case 'array':
      return `${p}: Uint8Array`;
    case 'object':
    case 'new_id': {
      const t = a.interface ? names.cls(a.interface) : 'Proxy';
      // An event's object may be one this client never saw (or already destroyed): null.
      return `${p}: ${t}${a.allowNull || (event && a.type === 'object') ? ' | null' : ''}`;
    }
  }
}

function clientRequest(i: Interface, m: Message, names: ClientNames): string[] {
  const used = new Set<string>();
  const pname = (n: string): string => {
    let p = safeIdent(camelCase(n));
    while (used.has(p)) p += '_';
    used.add(p);
    return p;
  };
  const params: string[] = [];
  const values: string[] = [];
  const docs: string[] = [];
  let made: { cls: string; generic: boolean } | undefined;
  for (const a of m.args) {
    if (a.type === 'new_id') {
      if (a.interface) {
        made = { cls: names.cls(a.interface), generic: false };
        values.push('null');
      } else {
        made = { cls: 'P', generic: true };
        params.push('cls: ProxyClass<P>', 'version: number');
        values.push('cls.interface.name', 'version', 'null');
        docs.push('@param cls the generated class of the interface to bind', '@param version the version to bind (at most the advertised one)');
      }
      continue;
    }
    const p = pname(a.name);
    params.push(clientParam(a, p, names, i, false));
    values.push(p);
    if (a.type === 'fd') docs.push(`@param ${p} a file descriptor; libwayland sends a duplicate, the caller keeps (and closes) this one`);
    else if (a.summary) docs.push(`@param ${p} ${a.summary}`);
  }
  const method = safeIdent(camelCase(m.name));
  const doc = jsdoc([
    m.description?.summary,
    m.destructor ? 'Destructor: the proxy is destroyed after sending.' : undefined,
    ...versionNotes(m.since, m.deprecatedSince),
    ...docs,
  ], '  ');
  if (made) {
    const generic = made.generic ? '<P extends Proxy>' : '';
    const call = made.generic
      ? `this.requestNew(${m.opcode}, cls, [${values.join(', ')}], version)`
      : `this.requestNew(${m.opcode}, ${made.cls}, [${values.join(', ')}])`;
    return ['', doc + `  ${method}${generic}(${params.join(', ')}): ${made.cls} {`, `    return ${call};`, '  }'];
  }
  return ['', doc + `  ${method}(${params.join(', ')}): void {`, `    this.request(${m.opcode}, [${values.join(', ')}]${m.destructor ? ', true' : ''});`, '  }'];
}

function clientEvents(i: Interface, names: ClientNames): { handlers: string[]; specs: string[] } {
  const handlers: string[] = [];
  const specs: string[] = [];
  for (const m of i.events) {
    const used = new Set<string>();
    const params: string[] = [];
    const newIds: string[] = [];
    const docs: string[] = [];
    m.args.forEach((a, k) => {
      let p = safeIdent(camelCase(a.name));
      while (used.has(p)) p += '_';
      used.add(p);
      params.push(clientParam(a, p, names, i, true));
      if (a.type === 'new_id' && a.interface) newIds.push(`${k}: () => ${names.cls(a.interface)}`);
      if (a.type === 'fd') docs.push(`@param ${p} a file descriptor the handler now owns (close it)`);
      else if (a.summary) docs.push(`@param ${p} ${a.summary}`);
    });
    const method = safeIdent(camelCase(m.name));
    handlers.push(jsdoc([m.description?.summary, ...versionNotes(m.since, m.deprecatedSince), ...docs], '  ') + `  ${method}(${params.join(', ')}): void;`);
    specs.push(`    { name: ${quote(m.name)}, handler: ${quote(method)}, newIds: {${newIds.length ? ` ${newIds.join(', ')} ` : ''}} },`);
  }
  return { handlers, specs };
}

/** Generates protocols/generated/client/<protocol>.ts for one protocol of a set. */
export function generateClient(protocol: Protocol, opts: GenerateOptions): string {
  const searchSet = opts.all.includes(protocol) ? opts.all : [protocol, ...opts.all];
  const owner = new Map<string, Protocol>();
  for (const p of searchSet) for (const i of p.interfaces) if (!owner.has(i.name)) owner.set(i.name, p);
  for (const i of protocol.interfaces) owner.set(i.name, protocol);
  const mod = moduleName(protocol);
  const classImports = new Map<string, Set<string>>();
  const enumImports = new Map<string, Set<string>>();
  const add = (m: Map<string, Set<string>>, module: string, name: string) => {
    if (!m.has(module)) m.set(module, new Set());
    m.get(module)!.add(name);
  };
  const enumTs = (iface: Interface, e: Enum): string => {
    const n = pascalCase(iface.name) + pascalCase(e.name);
    return searchSet.some((p) => p.interfaces.some((x) => pascalCase(x.name) === n)) ? `${n}Enum` : n;
  };
  const names: ClientNames = {
    cls: (name) => {
      const p = owner.get(name);
      if (!p) throw new Error(`${protocol.name}: interface ${name} is not defined by any protocol given to the scanner`);
      if (p !== protocol) add(classImports, moduleName(p), pascalCase(name));
      return pascalCase(name);
    },
    enumOf: (iface, a) => {
      if (!a.enum) return undefined;
      const found = findEnum(searchSet, iface, a.enum);
      // A bitfield is any combination of its entries, 0 included: a plain number.
      if (!found || found.enum.bitfield) return undefined;
      const n = enumTs(found.interface, found.enum);
      add(enumImports, moduleName(found.protocol), n);
      return n;
    },
  };
  const body: string[] = [];
  for (const i of protocol.interfaces) {
    const cls = pascalCase(i.name);
    const { handlers, specs } = clientEvents(i, names);
    body.push(jsdoc([`Events of ${i.name}${i.description ? `: ${i.description.summary}` : ''}`], '') + `export interface ${cls}Events {`, ...handlers, '}', '');
    body.push(jsdoc([`${i.name} (version ${i.version})${i.description ? `: ${i.description.summary}` : ''}`], '') + `export class ${cls} extends Proxy<${cls}Events> {`);
    body.push(`  static readonly interface: WireInterface = tables[${quote(i.name)}]!;`);
    body.push(specs.length ? `  static readonly events: readonly EventSpec[] = [\n${specs.join('\n')}\n  ];` : '  static readonly events: readonly EventSpec[] = [];');
    for (const m of i.requests) body.push(...clientRequest(i, m, names));
    body.push('}', '');
  }
  const ownEnums = protocol.interfaces.flatMap((i) => i.enums.map((e) => enumTs(i, e)));
  const head: string[] = [
    `// generated by protocols/scanner.ts (client side) from ${opts.source}; do not edit`,
    `// (npm run protocols:gen regenerates it).`,
    `// Protocol ${protocol.name}${protocol.description ? `: ${protocol.description.summary}` : ''}`,
    '/* eslint-disable */',
    "import { Proxy, type ProxyClass, type EventSpec, type WireInterface } from '../../client-runtime.js';",
    `import { interfaces as tables } from '../${mod}.js';`,
  ];
  for (const [m, set] of [...enumImports].sort(([a], [b]) => a.localeCompare(b))) {
    head.push(`import { ${[...set].sort().join(', ')} } from '../${m}.js';`);
  }
  for (const [m, set] of [...classImports].sort(([a], [b]) => a.localeCompare(b))) {
    head.push(`import { ${[...set].sort().join(', ')} } from './${m}.js';`);
  }
  if (ownEnums.length) head.push(`export { ${ownEnums.join(', ')} } from '../${mod}.js';`);
  head.push('');
  return head.join('\n') + '\n' + body.join('\n');
}

// ---------------------------------------------------------------------------------------
// CLI

export interface GeneratedFile {
  path: string;
  content: string;
}

/** Parses every XML and generates one module per protocol into `outDir`. */
export function generateAll(xmlPaths: readonly string[], outDir: string, cwd = process.cwd()): GeneratedFile[] {
  const parsed = xmlPaths.map((x) => {
    const source = relative(cwd, resolve(cwd, x)).split(sep).join('/');
    return { source, protocol: parseProtocol(readFileSync(resolve(cwd, x), 'utf8'), source) };
  });
  const all = parsed.map((p) => p.protocol);
  const names = new Set<string>();
  for (const p of all) {
    if (names.has(p.name)) throw new Error(`protocol ${p.name} is given twice`);
    names.add(p.name);
  }
  return parsed.flatMap(({ source, protocol }) => [
    { path: join(resolve(cwd, outDir), `${moduleName(protocol)}.ts`), content: generate(protocol, { source, all }) },
    { path: join(resolve(cwd, outDir), 'client', `${moduleName(protocol)}.ts`), content: generateClient(protocol, { source, all }) },
  ]);
}

function main(argv: string[]): number {
  const xmls: string[] = [];
  let out: string | undefined;
  let check = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-o' || a === '--out') out = argv[++i];
    else if (a === '--check') check = true;
    else if (a === '-h' || a === '--help') {
      process.stdout.write('usage: scanner.js PROTOCOL.xml... -o OUTDIR [--check]\n');
      return 0;
    } else xmls.push(a);
  }
  if (!out || xmls.length === 0) {
    process.stderr.write('usage: scanner.js PROTOCOL.xml... -o OUTDIR [--check]\n');
    return 2;
  }
  const files = generateAll(xmls, out);
  let stale = 0;
  if (!check) mkdirSync(join(resolve(out), 'client'), { recursive: true });
  for (const f of files) {
    const old = existsSync(f.path) ? readFileSync(f.path, 'utf8') : undefined;
    if (old === f.content) continue;
    if (check) {
      process.stderr.write(`${relative(process.cwd(), f.path)} is out of date\n`);
      stale++;
    } else {
      writeFileSync(f.path, f.content);
      process.stdout.write(`wrote ${relative(process.cwd(), f.path)}\n`);
    }
  }
  return stale ? 1 : 0;
}

const invokedAs = process.argv[1] ? realpathSync(resolve(process.argv[1])) : '';
if (invokedAs && invokedAs === realpathSync(fileURLToPath(import.meta.url))) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
