import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerError, markAccepted } from '../../src/gateway/accepted.js';
import type { PredictionRecord } from '../../src/protocol/prediction.js';

/**
 * Once a prediction is accepted, no failure while answering may come back as a 5xx: a client
 * told "retryable" would submit it again and the model would run twice.
 */
const queued: PredictionRecord = { id: 'p-1', model: 'echo', status: 'queued', metadata: {}, created_at: new Date(0).toISOString(), attempts: 0, metrics: {} };

const app = Fastify();
app.setErrorHandler(answerError);
app.post('/accepted-then-unserialisable', async (request, reply) => {
  markAccepted(request, queued);
  // JSON cannot carry a BigInt: the serialiser throws after the handler returned.
  return reply.code(200).send({ output: 10n });
});
app.post('/accepted-then-throws', async (request) => {
  markAccepted(request, queued);
  throw new Error('the store went away');
});
app.post('/never-accepted', async () => {
  throw new Error('the queue went away');
});

beforeAll(() => app.ready());
afterAll(() => app.close());

describe('an accepted request is never answered with a 5xx', () => {
  it.each(['/accepted-then-unserialisable', '/accepted-then-throws'])('%s: 202 with the Location of the prediction', async (url) => {
    const res = await app.inject({ method: 'POST', url });
    expect(res.statusCode).toBe(202);
    expect(res.headers['location']).toBe('/v1/predictions/p-1');
    expect(res.json()).toMatchObject({ id: 'p-1', status: 'queued' });
  });

  it('a request never accepted still gets its problem', async () => {
    const res = await app.inject({ method: 'POST', url: '/never-accepted' });
    expect(res.statusCode).toBe(500);
    expect(res.headers['content-type']).toContain('application/problem+json');
    expect(res.json()).toMatchObject({ code: 'SPILLWAY_INTERNAL' });
  });
});
