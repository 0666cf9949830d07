// Issue 30: one public API. README's table "Everything `guestplane` exports" and
// plugin/index.ts name the same things, values and types, both ways; the package's
// `exports` map offers the entry point and nothing else of the tree.
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';

const root = join(import.meta.dirname, '../..');

/** Every name plugin/index.ts exports (types included), as the compiler sees them. */
function exportedNames(): string[] {
  const file = join(root, 'plugin/index.ts');
  const program = ts.createProgram([file], { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, strict: true, noEmit: true });
  const checker = program.getTypeChecker();
  const mod = checker.getSymbolAtLocation(program.getSourceFile(file)!);
  if (!mod) throw new Error('plugin/index.ts: no module symbol');
  return checker.getExportsOfModule(mod).map((s) => s.name).sort();
}

/** The names in the first cell of each row of README's exports table. */
export function readmeNames(readme: string): string[] {
  const start = readme.indexOf('#### Everything `guestplane` exports');
  if (start < 0) throw new Error('README.md has no section "#### Everything `guestplane` exports"');
  const end = readme.indexOf('\n#', start + 5);
  const rows = readme.slice(start, end < 0 ? undefined : end).split('\n').filter((l) => l.startsWith('| `'));
  return rows.flatMap((r) => [...r.split('|')[1]!.matchAll(/`(\w+)`/g)].map((m) => m[1]!)).sort();
}

describe('the public API', () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');

  it("README's exports table and plugin/index.ts name the same things, both ways", () => {
    const code = exportedNames();
    const doc = readmeNames(readme);
    expect(code.length).toBeGreaterThan(50);
    expect(doc.filter((n) => !code.includes(n)), 'in README, not exported').toEqual([]);
    expect(code.filter((n) => !doc.includes(n)), 'exported, not in README').toEqual([]);
    expect(new Set(doc).size, 'a name twice in README').toBe(doc.length);
  }, 120_000); // the compiler reads the whole tree

  it('the names README says are exported exist at run time (values), and what README calls the way in works', async () => {
    const api = (await import('../../plugin/index.js')) as Record<string, unknown>;
    for (const n of ['runHeads', 'HeadsInput', 'runCompositor', 'SeatSession', 'loadHeadsConfig', 'Backend', 'startKiosk', 'parseChords']) expect(typeof api[n], n).toBe('function');
    expect(typeof (api['SeatSession'] as { open?: unknown }).open).toBe('function');
  }, 60_000);

  it("package.json's exports map: the entry point only (no ffi/*)", () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { exports: Record<string, unknown>; main: string; types: string };
    expect(Object.keys(pkg.exports)).toEqual(['.']);
    expect(pkg.main).toBe('dist/plugin/index.js');
    expect(pkg.types).toBe('dist/plugin/index.d.ts');
  });

  it('the table reader finds names in the first cell only, and a missing section is an error', () => {
    expect(readmeNames('x\n#### Everything `guestplane` exports\n\n| export | kind |\n|---|---|\n| `A` | `B` |\n| `C`, `D` | types |\n## next\n| `E` | x |\n')).toEqual(['A', 'C', 'D']);
    expect(() => readmeNames('# nothing')).toThrow(/no section/);
  });
});
