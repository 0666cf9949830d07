// No import circles in plugin/ and ffi/, and imports only go down the list of rooms in
// ARCHITECTURE.md: a circle, or an import upwards, is how a lower room starts depending on
// a higher one. A small walk over the TypeScript sources (static imports, re-exports and
// `import type`: a type-only circle is still a circle of design; dynamic import() and
// type-position import('…') count too).
import { describe, it, expect } from 'vitest';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const ROOMS = ['plugin', 'ffi'];

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(p));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** The relative module specifiers a file imports (comments stripped first). */
export function specifiers(text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
  const found: string[] = [];
  const patterns = [
    /\b(?:import|export)\b[^'";]*?\bfrom\s*['"]([^'"]+)['"]/g, // import … from, export … from
    /\bimport\s*['"]([^'"]+)['"]/g, // side-effect import
    /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g, // import('…'), in code or in a type
  ];
  for (const re of patterns) for (const m of code.matchAll(re)) found.push(m[1]);
  return found.filter((s) => s.startsWith('.'));
}

/** File → files it imports, over the given rooms (imports leaving them are dropped). */
function importGraph(): Map<string, string[]> {
  const files = ROOMS.flatMap((r) => sources(join(root, r)));
  const known = new Set(files);
  const graph = new Map<string, string[]>();
  for (const f of files) {
    const deps = specifiers(readFileSync(f, 'utf8'))
      .map((s) => resolve(dirname(f), s.replace(/\.js$/, '.ts')))
      .map((p) => (existsSync(p) ? p : p.endsWith('.ts') ? p : `${p}.ts`))
      .filter((p) => known.has(p));
    graph.set(f, [...new Set(deps)]);
  }
  return graph;
}

/** Every elementary circle found by a depth-first walk (one per back edge), as file lists. */
export function circles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const found: string[][] = [];
  const visit = (n: string) => {
    state.set(n, 'open');
    stack.push(n);
    for (const d of graph.get(n) ?? []) {
      const s = state.get(d);
      if (s === 'open') found.push([...stack.slice(stack.indexOf(d)), d]);
      else if (s === undefined) visit(d);
    }
    stack.pop();
    state.set(n, 'done');
  };
  for (const n of [...graph.keys()].sort()) if (!state.has(n)) visit(n);
  return found;
}

/** The rooms of ARCHITECTURE.md, top first: a file may import its own room's files and lower rooms'. */
const ROOM_ORDER: [string, RegExp][] = [
  ['entry', /^plugin\/(index\.ts|cli\.ts|cli\/)/],
  ['modes', /^plugin\/modes\//],
  ['wayland', /^plugin\/wayland\//],
  ['device', /^plugin\/device\//],
  ['window', /^plugin\/window\//],
  ['output', /^plugin\/output\//],
  ['input', /^plugin\/input\//],
  ['planes', /^plugin\/planes\//],
  ['compose', /^plugin\/compose\//],
  ['buffers', /^plugin\/buffers\//],
  ['sources', /^plugin\/(sources|dbus)\//],
  ['kms', /^plugin\/kms\//],
  ['shared', /^plugin\/(geometry|transform|stats|png)\.ts$/],
  ['ffi', /^ffi\//],
];

function roomOf(file: string): number {
  const r = relative(root, file);
  const i = ROOM_ORDER.findIndex(([, re]) => re.test(r));
  if (i < 0) throw new Error(`${r} is in no room of ARCHITECTURE.md (add it to ROOM_ORDER and the document)`);
  return i;
}

describe('import graph', () => {
  it('finds the import forms the sources use', () => {
    const text = [
      "import { a } from './a.js';",
      "import type {\n  B,\n  C,\n} from '../b.js';",
      "export { d } from './d.js';",
      "export * from './e.js';",
      "import './f.js';",
      "const g = await import('./g.js');",
      "let h: import('./h.js').H;",
      "// import { x } from './commented.js';",
      "/* import { y } from './block.js'; */",
      "import { EventEmitter } from 'node:events';",
      "const s = 'import from nothing';",
    ].join('\n');
    expect(specifiers(text)).toEqual(expect.arrayContaining(['./a.js', '../b.js', './d.js', './e.js', './f.js', './g.js', './h.js']));
    expect(specifiers(text)).toHaveLength(7);
  });

  it('reports a planted circle', () => {
    const g = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a', 'd']],
      ['d', []],
    ]);
    expect(circles(g)).toEqual([['a', 'b', 'c', 'a']]);
  });

  it('has no import circle in plugin/ and ffi/', () => {
    const graph = importGraph();
    expect(graph.size).toBeGreaterThan(50);
    const named = circles(graph).map((c) => c.map((f) => relative(root, f)).join(' → '));
    expect(named).toEqual([]);
  });

  it('imports only go down the rooms of ARCHITECTURE.md', () => {
    const upward: string[] = [];
    for (const [f, deps] of importGraph()) {
      for (const d of deps) {
        if (roomOf(d) < roomOf(f)) upward.push(`${relative(root, f)} (${ROOM_ORDER[roomOf(f)][0]}) → ${relative(root, d)} (${ROOM_ORDER[roomOf(d)][0]})`);
      }
    }
    expect(upward).toEqual([]);
  });
});
