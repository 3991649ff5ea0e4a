import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openBroker } from '../../src/brokers/open-broker.js';
import { describeBrokerConformance } from '../brokers/conformance.js';
import { testKafkaUrl as url } from '../helpers/paths.js';

describeBrokerConformance('kafka', () => ({
  url,
  dataDir: mkdtempSync(join(tmpdir(), 'spillway-kafka-')),
  leaseMs: 2000,
  open: () => openBroker({ url, dataDir: '', kafka: { partitions: 3 } }),
}));
