// `guestplane --help`, `--version` and a usage error must not load koffi or any mode: each
// start under the rig's TCG paid 15-20 s for them. The static imports reachable from the bin
// entry (plugin/cli.ts) are walked; dynamic import() is how main.ts loads a subcommand and
// is not followed. A static import of a subcommand, a mode or ffi/ from there fails this.
import { describe, it, expect } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Modules a file loads when it is loaded: static imports and re-exports, not `import type`. */
function staticImports(text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
  const found: string[] = [];
  for (const m of code.matchAll(/^\s*(import|export)\s+(type\s+)?([^'";]*?\bfrom\s*)?['"]([^'"]+)['"]/gm)) {
    if (m[2]) continue; // import type / export type: erased
    if (m[3] && /^\{[^}]*\}\s*from\s*$/.test(m[3].trim()) && m[3].replace(/^\{|\}\s*from\s*$/g, '').split(',').every((n) => /^\s*type\s/.test(n) || n.trim() === '')) continue; // only `type` names
    found.push(m[4]!);
  }
  return found;
}

/** Every module loaded with `entry`: project files by path, packages by name. */
function loadedWith(entry: string): Set<string> {
  const seen = new Set<string>();
  const walk = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const s of staticImports(readFileSync(file, 'utf8'))) {
      if (s.startsWith('node:')) continue;
      if (!s.startsWith('.')) {
        seen.add(`package:${s}`);
        continue;
      }
      const p = resolve(dirname(file), s.replace(/\.js$/, '.ts'));
      if (existsSync(p)) walk(p);
    }
  };
  walk(resolve(root, entry));
  return new Set([...seen].map((f) => (f.startsWith('package:') ? f : relative(root, f))));
}

describe('the CLI loads a subcommand only when it runs it', () => {
  it('the bin entry loads no koffi, no ffi/, no mode, no subcommand', () => {
    const loaded = [...loadedWith('plugin/cli.ts')];
    expect(loaded).toContain('plugin/cli/main.ts');
    expect(loaded).toContain('plugin/cli/specs.ts');
    const heavy = loaded.filter((f) => f === 'package:koffi' || f.startsWith('ffi/') || f.startsWith('plugin/modes/') || /^plugin\/cli\/(info|kiosk|heads|compositor|window|qemu-address)\.ts$/.test(f));
    expect(heavy).toEqual([]);
  });

  it('a subcommand checks its options before it loads its mode: a bad one loads no mode (the fd:N check loads libc alone)', () => {
    for (const sub of ['info', 'kiosk', 'heads', 'compositor', 'window']) {
      const loaded = [...loadedWith(`plugin/cli/${sub}.ts`)];
      const heavy = loaded.filter((f) => f.startsWith('plugin/modes/') && f !== 'plugin/modes/heads-config.ts' || f.startsWith('plugin/device/') || f.startsWith('plugin/sources/') || (f.startsWith('ffi/') && f !== 'ffi/libc.ts'));
      expect(heavy, sub).toEqual([]);
    }
  });

  it('the walk sees what a mode loads (so the checks above can fail)', () => {
    const loaded = loadedWith('plugin/modes/kiosk.ts');
    expect(loaded.has('package:koffi')).toBe(true);
    expect([...loaded].some((f) => f.startsWith('plugin/sources/'))).toBe(true);
    expect([...loaded].some((f) => f.startsWith('ffi/') && f !== 'ffi/libc.ts')).toBe(true);
  });
});
