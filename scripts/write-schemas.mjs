// Writes docs/schemas/v1/<name>.json from the schemas in src/protocol/message-schemas.ts (read
// from the build, so run `npm run schemas`, which builds first). The files are what a consumer
// that is not Spillway's code reads; test/protocol/message-schema-files.test.ts fails when they
// differ from the code, so they cannot drift.
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { messageSchemas, schemaFileText } from '../dist/protocol/message-schemas.js';

const dir = fileURLToPath(new URL('../docs/schemas/v1/', import.meta.url));
mkdirSync(dir, { recursive: true });
const names = new Set(messageSchemas.map((s) => `${s.name}.json`));
// A schema removed from the code must not linger as a file.
for (const file of readdirSync(dir)) if (file.endsWith('.json') && !names.has(file)) rmSync(`${dir}${file}`);
for (const { name } of messageSchemas) writeFileSync(`${dir}${name}.json`, schemaFileText(name));
process.stdout.write(`wrote ${names.size} schemas to docs/schemas/v1\n`);
