// Writes examples/heads.schema.json, the JSON Schema of a heads file, from the zod schema
// (zod 4's own converter) of the built tree: `npm run schema:gen` after `npm run build`.
// test/unit/heads-example.test.ts fails when the file and the zod schema disagree.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { headsJsonSchema } from '../../dist/plugin/modes/heads-config.js';

const out = join(import.meta.dirname, '../../examples/heads.schema.json');
writeFileSync(out, headsJsonSchema());
console.log(`wrote ${out}`);
