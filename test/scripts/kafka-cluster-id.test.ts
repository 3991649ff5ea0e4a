import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it, onTestFinished } from 'vitest';
import { kafkaScript } from '../helpers/kafka-script.js';

const ids = async (args: readonly string[]) => (await kafkaScript(['cluster-id', ...args], {}, 'all')).split('\n');
const base64url22 = /^[A-Za-z0-9_-]{22}$/;

it('cluster ids are 22-character base64url Kafka Uuids that never start with "-"', async () => {
  // Without the redraw, about 1 in 64 starts with '-': among 400, one almost surely would.
  const made = await ids(['400']);
  expect(made).toHaveLength(400);
  for (const id of made) {
    expect(id).toMatch(base64url22);
    expect(id.startsWith('-')).toBe(false);
  }
  expect(new Set(made).size).toBe(400);
});

it('an id starting with "-", the zero id and the metadata topic id are drawn again, as Kafka does', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'spillway-cluster-id-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  const bytes = join(dir, 'random');
  writeFileSync(bytes, Buffer.concat([
    Buffer.alloc(16, 0xf8), // "-PgP…": an option to StorageTool's parser
    Buffer.alloc(16, 0), // AAAAAAAAAAAAAAAAAAAAAA, Uuid.ZERO_UUID
    Buffer.from([...Array<number>(15).fill(0), 1]), // AAAAAAAAAAAAAAAAAAAAAQ, Uuid.METADATA_TOPIC_ID
    Buffer.alloc(16, 0x41),
  ]));
  expect(await ids(['1', '--from', bytes])).toEqual([Buffer.alloc(16, 0x41).toString('base64url')]);
});
