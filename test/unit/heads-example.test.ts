// Issue 30: examples/heads.json is a heads file the checker accepts as shipped, and
// examples/heads.schema.json is the JSON Schema zod makes of the checker's schema today
// (`npm run schema:gen` writes it), so an editor's completion and the checker agree.
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { headsJsonSchema, loadHeadsConfig, parseHeadsConfig } from '../../plugin/modes/heads-config.js';

const root = join(import.meta.dirname, '../..');

describe('examples/heads.json and heads.schema.json', () => {
  it('the example passes the checker: two guests on two heads, as README describes them', () => {
    const c = loadHeadsConfig(join(root, 'examples/heads.json'));
    expect(Object.keys(c.guests)).toEqual(['vm', 'demo']);
    expect(c.guests.vm).toMatchObject({ type: 'qemu-dbus', connectTimeout: 5 });
    expect(c.heads.map((h) => [h.guest, h.connector])).toEqual([['vm', 'HDMI-A-1'], ['demo', 'DP-1']]);
  });

  it('the shipped JSON Schema is what zod makes of the checker\'s schema now (else: npm run schema:gen)', () => {
    const shipped = readFileSync(join(root, 'examples/heads.schema.json'), 'utf8');
    expect(shipped, 'examples/heads.schema.json is stale: run npm run schema:gen').toBe(headsJsonSchema());
  });

  it('the schema says what the checker says of a field: names, required, enums, no unknown fields', () => {
    const s = JSON.parse(headsJsonSchema()) as { properties: Record<string, unknown>; required: string[]; additionalProperties: boolean };
    expect(Object.keys(s.properties).sort()).toEqual(['device', 'guests', 'heads']);
    expect(s.required.sort()).toEqual(['guests', 'heads']);
    expect(s.additionalProperties).toBe(false);
    const text = JSON.stringify(s);
    for (const word of ['"qemu-dbus"', '"udmabuf"', '"vfio"', '"native"', '"fit"', '"fill"']) expect(text).toContain(word);
    // What the schema refuses, the checker refuses too.
    expect(() => parseHeadsConfig({ guests: {}, heads: [], colour: 'red' })).toThrow(/colour/);
  });
});
