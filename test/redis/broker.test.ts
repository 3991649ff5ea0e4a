import { afterAll, beforeAll } from 'vitest';
import { openBroker } from '../../src/brokers/open-broker.js';
import { describeBrokerConformance } from '../brokers/conformance.js';
import { testRedis, type TestRedis } from './redis-server.js';

let server: TestRedis;
beforeAll(async () => {
  server = await testRedis();
});
afterAll(() => server.stop());

// The suite's topics are fresh per test (conf.<uuid>), so runs sharing one server never meet.
describeBrokerConformance('redis', () => ({
  url: server.url,
  dataDir: '',
  leaseMs: 1000,
  open: () => openBroker({ url: server.url, dataDir: '' }),
}));
