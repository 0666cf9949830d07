// ABI check of every ffi module against the C headers it mirrors.
//
// Every ffi/*.ts that exports `ABI: AbiManifest` (ffi/abi.ts) is imported; one C program
// is generated that includes all their headers and prints sizeof/_Alignof of each struct,
// offsetof/sizeof of each member and the value of each macro; it is compiled with gcc,
// run, and every number is compared with koffi's. A mismatch names the struct and the
// field: `struct vfio_region_info.offset: koffi 16, C 24`.
import { describe, it, expect } from 'vitest';
import koffi from 'koffi';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { abiMember, abiMemberPaths, type AbiManifest } from '../../ffi/abi.js';

const ffiDir = fileURLToPath(new URL('../../ffi/', import.meta.url));
const CC = process.env.CC || 'gcc';

// ---- discovery ----------------------------------------------------------------------------

const ffiFiles = readdirSync(ffiDir)
  .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
  .sort();
const EXPORTS_ABI = /^export\s+const\s+ABI\b/m;
const abiFiles = ffiFiles.filter((f) => EXPORTS_ABI.test(readFileSync(join(ffiDir, f), 'utf8')));

interface Loaded {
  file: string;
  abi?: AbiManifest;
  error?: unknown;
}
const modules: Loaded[] = [];
for (const file of abiFiles) {
  try {
    const mod = (await import(join(ffiDir, file))) as { ABI?: AbiManifest };
    modules.push(mod.ABI ? { file, abi: mod.ABI } : { file, error: new Error(`${file} has no ABI export at runtime`) });
  } catch (error) {
    modules.push({ file, error });
  }
}

// ---- probes: one printf line per number we want from C ---------------------------------------

type Probe =
  | { id: number; file: string; kind: 'struct'; cType: string }
  | { id: number; file: string; kind: 'member'; cType: string; path: string }
  | { id: number; file: string; kind: 'flexible'; cType: string; path: string }
  | { id: number; file: string; kind: 'constant'; name: string };

const probes: Probe[] = [];
const structProbe = new Map<string, number>(); // `${file}\0${cType}` -> id
const memberProbe = new Map<string, number>(); // `${file}\0${cType}\0${path}` -> id
const constantProbe = new Map<string, number>(); // `${file}\0${name}` -> id

function membersToCheck(s: AbiManifest['structs'][string]): string[] {
  return s.members ?? abiMemberPaths(s.type);
}

for (const m of modules) {
  if (!m.abi) continue;
  for (const [cType, s] of Object.entries(m.abi.structs)) {
    structProbe.set(`${m.file}\0${cType}`, probes.length);
    probes.push({ id: probes.length, file: m.file, kind: 'struct', cType });
    for (const path of membersToCheck(s)) {
      memberProbe.set(`${m.file}\0${cType}\0${path}`, probes.length);
      probes.push({ id: probes.length, file: m.file, kind: 'member', cType, path });
    }
    if (s.flexible) {
      memberProbe.set(`${m.file}\0${cType}\0${s.flexible.member}[]`, probes.length);
      probes.push({ id: probes.length, file: m.file, kind: 'flexible', cType, path: s.flexible.member });
    }
  }
  for (const name of Object.keys(m.abi.constants)) {
    constantProbe.set(`${m.file}\0${name}`, probes.length);
    probes.push({ id: probes.length, file: m.file, kind: 'constant', name });
  }
}

function cProgram(files: string[]): string {
  const wanted = new Set(files);
  const headers: string[] = [];
  for (const m of modules) {
    if (!m.abi || !wanted.has(m.file)) continue;
    for (const h of m.abi.headers) if (!headers.includes(h)) headers.push(h);
  }
  const lines = [
    '#define _GNU_SOURCE 1',
    '#include <stddef.h>',
    '#include <stdio.h>',
    ...headers.map((h) => `#include <${h}>`),
    '',
    'int main(void) {',
  ];
  for (const p of probes) {
    if (!wanted.has(p.file)) continue;
    switch (p.kind) {
      case 'struct':
        lines.push(`  printf("%d %llu %llu\\n", ${p.id}, (unsigned long long)sizeof(${p.cType}), (unsigned long long)_Alignof(${p.cType}));`);
        break;
      case 'member':
        lines.push(
          `  printf("%d %llu %llu\\n", ${p.id}, (unsigned long long)offsetof(${p.cType}, ${p.path}), (unsigned long long)sizeof(((${p.cType} *)0)->${p.path}));`,
        );
        break;
      case 'flexible':
        lines.push(
          `  printf("%d %llu %llu\\n", ${p.id}, (unsigned long long)offsetof(${p.cType}, ${p.path}), (unsigned long long)sizeof(((${p.cType} *)0)->${p.path}[0]));`,
        );
        break;
      case 'constant':
        lines.push(`  printf("%d %llu 0\\n", ${p.id}, (unsigned long long)(${p.name}));`);
        break;
    }
  }
  lines.push('  return 0;', '}', '');
  return lines.join('\n');
}

// ---- compile and run (lazily, once per module set) -------------------------------------------

type Values = Map<number, [bigint, bigint]>;
type RunResult = { ok: true; values: Values } | { ok: false; log: string };

function ensureCompiler(): void {
  const r = spawnSync(CC, ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    throw new Error(
      `C compiler '${CC}' not found or not working (${r.error?.message ?? `exit ${r.status}`}). ` +
        'test/unit/abi.test.ts compiles a C program against the kernel/libc headers to check every koffi layout; ' +
        'install gcc and linux-libc-dev (apt-get install gcc linux-libc-dev libdrm-dev) or set CC.',
    );
  }
}

function compileAndRun(files: string[]): RunResult {
  ensureCompiler();
  const dir = mkdtempSync(join(tmpdir(), 'guestplane-abi-'));
  try {
    const src = join(dir, 'abi.c');
    const exe = join(dir, 'abi');
    const program = cProgram(files);
    writeFileSync(src, program);
    const args = ['-std=gnu11', '-w', '-o', exe, src];
    if (existsSync('/usr/include/libdrm')) args.unshift('-I/usr/include/libdrm');
    // uv.h (ffi/uv.ts): Node's own headers where installed, else the copy koffi vendors.
    args.unshift(existsSync('/usr/include/node/uv.h') ? '-I/usr/include/node' : `-I${join(ffiDir, '../node_modules/koffi/vendor/node-api-headers/include')}`);
    const cc = spawnSync(CC, args, { encoding: 'utf8' });
    if (cc.error || cc.status !== 0) {
      const numbered = program
        .split('\n')
        .map((l, i) => `${String(i + 1).padStart(4)}  ${l}`)
        .join('\n');
      return { ok: false, log: `${CC} ${args.join(' ')} failed for [${files.join(', ')}]:\n${cc.stderr || cc.error?.message}\n--- abi.c ---\n${numbered}` };
    }
    const run = spawnSync(exe, [], { encoding: 'utf8' });
    if (run.error || run.status !== 0) {
      return { ok: false, log: `abi probe program failed: ${run.error?.message ?? `exit ${run.status}`}\n${run.stderr}` };
    }
    const values: Values = new Map();
    for (const line of run.stdout.trim().split('\n')) {
      const [id, a, b] = line.split(' ');
      values.set(Number(id), [BigInt(a), BigInt(b)]);
    }
    return { ok: true, values };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

let combined: RunResult | undefined;
const perModule = new Map<string, RunResult>();
const loadedFiles = modules.filter((m) => m.abi).map((m) => m.file);

function combinedRun(): RunResult {
  combined ??= compileAndRun(loadedFiles);
  return combined;
}

/** C values for one module: from the combined program, or from its own if that failed. */
function valuesFor(file: string): Values {
  const all = combinedRun();
  if (all.ok) return all.values;
  let own = perModule.get(file);
  if (!own) {
    own = compileAndRun([file]);
    perModule.set(file, own);
  }
  if (!own.ok) throw new Error(own.log);
  return own.values;
}

function cValue(values: Values, id: number | undefined, what: string): [bigint, bigint] {
  const v = id === undefined ? undefined : values.get(id);
  if (!v) throw new Error(`no C value for ${what} (probe program output incomplete)`);
  return v;
}

// ---- tests -----------------------------------------------------------------------------------

describe('ffi ABI manifests', () => {
  it('finds libc, vfio and dmabuf among the ffi modules exporting ABI', () => {
    expect(abiFiles).toEqual(expect.arrayContaining(['libc.ts', 'vfio.ts', 'dmabuf.ts']));
  });

  it('every ffi module (except abi.ts itself) exports ABI', () => {
    expect(ffiFiles.filter((f) => f !== 'abi.ts' && !abiFiles.includes(f))).toEqual([]);
  });

  it('a C compiler is available', () => {
    ensureCompiler();
  });

  it('all ffi headers compile together in one C file', () => {
    const r = combinedRun();
    if (!r.ok) throw new Error(r.log);
  });
});

for (const m of modules) {
  describe(`ffi/${m.file}`, () => {
    it('imports and exports an ABI manifest', () => {
      if (m.error) throw m.error instanceof Error ? m.error : new Error(String(m.error));
      expect(m.abi?.headers.length).toBeGreaterThan(0);
    });
    const abi = m.abi;
    if (!abi) return;

    const structNames = Object.keys(abi.structs);
    if (structNames.length > 0) {
      it.each(structNames)('%s matches C', (cType) => {
        const s = abi.structs[cType];
        const values = valuesFor(m.file);
        const errs: string[] = [];
        const [cSize, cAlign] = cValue(values, structProbe.get(`${m.file}\0${cType}`), cType);
        const kSize = koffi.sizeof(s.type);
        const kAlign = koffi.alignof(s.type);
        if (BigInt(kSize) !== cSize) errs.push(`sizeof(${cType}): koffi ${kSize}, C ${cSize}`);
        if (BigInt(kAlign) !== cAlign) errs.push(`_Alignof(${cType}): koffi ${kAlign}, C ${cAlign}`);
        for (const path of membersToCheck(s)) {
          const [cOff, cMemberSize] = cValue(values, memberProbe.get(`${m.file}\0${cType}\0${path}`), `${cType}.${path}`);
          const k = abiMember(s.type, path);
          if (!k) {
            errs.push(`${cType}.${path}: missing from the koffi type (C offset ${cOff})`);
            continue;
          }
          if (BigInt(k.offset) !== cOff) errs.push(`${cType}.${path}: koffi ${k.offset}, C ${cOff}`);
          if (BigInt(k.size) !== cMemberSize) errs.push(`sizeof(${cType}.${path}): koffi ${k.size}, C ${cMemberSize}`);
        }
        if (s.flexible) {
          const f = s.flexible;
          const [cOff, cElem] = cValue(values, memberProbe.get(`${m.file}\0${cType}\0${f.member}[]`), `${cType}.${f.member}[]`);
          if (BigInt(f.offset) !== cOff) errs.push(`${cType}.${f.member}[]: koffi ${f.offset}, C ${cOff}`);
          const kElem = koffi.sizeof(f.element);
          if (BigInt(kElem) !== cElem) errs.push(`sizeof(${cType}.${f.member}[0]): koffi ${kElem}, C ${cElem}`);
        }
        if (errs.length > 0) throw new Error(`${m.file}: ${errs.length} layout mismatch(es):\n  ${errs.join('\n  ')}`);
      });
    }

    const constantNames = Object.keys(abi.constants);
    if (constantNames.length > 0) {
      it(`constants match C (${constantNames.length})`, () => {
        const values = valuesFor(m.file);
        const errs: string[] = [];
        for (const name of constantNames) {
          const [c] = cValue(values, constantProbe.get(`${m.file}\0${name}`), name);
          const ts = abi.constants[name];
          if (BigInt.asUintN(64, BigInt(ts)) !== c) {
            errs.push(`${name}: TS ${fmt(BigInt(ts))}, C ${fmt(BigInt.asIntN(64, c))}`);
          }
        }
        if (errs.length > 0) throw new Error(`${m.file}: ${errs.length} constant mismatch(es):\n  ${errs.join('\n  ')}`);
      });
    }
  });
}

function fmt(v: bigint): string {
  return v < 0n ? `${v}` : `${v} (0x${v.toString(16)})`;
}
