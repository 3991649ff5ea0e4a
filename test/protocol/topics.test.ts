import { describe, expect, it } from 'vitest';
import { priorityClassOf, priorityClassOfOip } from '../../src/protocol/priority.js';
import { topicsFor } from '../../src/protocol/topics.js';

describe('request topics and priorities', () => {
  const lanes = new Map([['acme', 2]]);

  it('a model without priorities keeps exactly the topics it had, whatever priority a request asks for', () => {
    const t = topicsFor('p', lanes, new Set(['other']));
    expect(t.lanes('m').map((l) => l.topic)).toEqual(['p.requests.m', 'p.requests.m.lane.acme']);
    expect(t.requests('m', undefined, 'high')).toBe('p.requests.m');
    expect(t.requests('m', 'acme', 'low')).toBe('p.requests.m.lane.acme');
  });

  it('a model with priorities has high and low topics beside each lane, listed high tier first', () => {
    const t = topicsFor('p', lanes, new Set(['m']));
    expect(t.lanes('m').map((l) => [l.topic, l.priority, l.weight])).toEqual([
      ['p.requests.m.high', 'high', 1],
      ['p.requests.m.lane.acme.high', 'high', 2],
      ['p.requests.m', 'normal', 1],
      ['p.requests.m.lane.acme', 'normal', 2],
      ['p.requests.m.low', 'low', 1],
      ['p.requests.m.lane.acme.low', 'low', 2],
    ]);
    expect(t.requests('m', 'acme', 'high')).toBe('p.requests.m.lane.acme.high');
    expect(t.requests('m', 'unlisted', 'low')).toBe('p.requests.m.low');
    // Normal, stated or not, stays on the topic every request used before priorities.
    expect(t.requests('m', undefined, 'normal')).toBe('p.requests.m');
    expect(t.requests('m')).toBe('p.requests.m');
  });

  it('maps numbers onto the classes: 1–3 low, 4–6 normal, 7–9 high; OIP as Triton: 1 high, 0 and 2 normal, 3+ low', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8, 9].map(priorityClassOf)).toEqual(['low', 'low', 'low', 'normal', 'normal', 'normal', 'high', 'high', 'high']);
    expect(priorityClassOf('high')).toBe('high');
    expect([0, 1, 2, 3, 100].map(priorityClassOfOip)).toEqual(['normal', 'high', 'normal', 'low', 'low']);
  });
});
