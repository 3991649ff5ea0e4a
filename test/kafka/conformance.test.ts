import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openBroker } from '../../src/brokers/open-broker.js';
import { describeBrokerConformance } from '../brokers/conformance.js';

/** Runs against the broker that scripts/kafka started (the test command starts it). */
const url = process.env['SPILLWAY_TEST_KAFKA'] ?? 'kafka://127.0.0.1:9092';

describeBrokerConformance('kafka', () => ({
  url,
  dataDir: mkdtempSync(join(tmpdir(), 'spillway-kafka-')),
  leaseMs: 2000,
  open: () => openBroker({ url, dataDir: '', kafka: { partitions: 3 } }),
}));
