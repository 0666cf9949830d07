// Room sizes stay readable (issue 16): no file in plugin/ over 600 lines, no function in
// plugin/ over 80 lines. ffi/ is left out: its files are binding tables (one line per
// native call), not logic. A file or function that grows past the limit is a sign that a
// concern wants a file or a function of its own (ARCHITECTURE.md lists the rooms).
import { describe, it, expect } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const MAX_FILE_LINES = 600;
const MAX_FUNCTION_LINES = 80;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** Functions (declarations, methods, arrows, accessors) longer than `max` lines, as "file:line name (n lines)". */
function longFunctions(file: string, text: string, max: number): string[] {
  const src = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out: string[] = [];
  const visit = (n: ts.Node) => {
    if (ts.isFunctionLike(n) && 'body' in n && n.body) {
      const a = src.getLineAndCharacterOfPosition(n.getStart(src)).line + 1;
      const b = src.getLineAndCharacterOfPosition(n.end).line + 1;
      const name = n.name?.getText(src) ?? '(anonymous)';
      if (b - a + 1 > max) out.push(`${relative(root, file)}:${a} ${name} (${b - a + 1} lines)`);
    }
    ts.forEachChild(n, visit);
  };
  visit(src);
  return out;
}

describe('room sizes', () => {
  const files = sources(join(root, 'plugin'));

  it(`no file in plugin/ is over ${MAX_FILE_LINES} lines`, () => {
    expect(files.length).toBeGreaterThan(50);
    const big = files.map((f) => ({ f, n: readFileSync(f, 'utf8').split('\n').length - 1 })).filter(({ n }) => n > MAX_FILE_LINES);
    expect(big.map(({ f, n }) => `${relative(root, f)} (${n} lines)`)).toEqual([]);
  });

  it(`no function in plugin/ is over ${MAX_FUNCTION_LINES} lines`, () => {
    expect(files.flatMap((f) => longFunctions(f, readFileSync(f, 'utf8'), MAX_FUNCTION_LINES))).toEqual([]);
  });

  it('finds a long function', () => {
    const body = Array.from({ length: 90 }, (_, i) => `  x += ${i};`).join('\n');
    expect(longFunctions(join(root, 'plugin/x.ts'), `function f() {\n  let x = 0;\n${body}\n}\n`, 80)).toEqual(['plugin/x.ts:1 f (93 lines)']);
  });
});
