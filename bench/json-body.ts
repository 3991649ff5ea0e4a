/**
 * What the gateway's own JSON body parser costs against the one it replaced.
 *
 * Spillway parses request bodies with `parseJsonBody` (src/gateway/json-body.ts): a UTF-8
 * check, JSON.parse, then one walk of the value for depth, finite numbers and prototype keys.
 * Before, Fastify's default parser did secure-json-parse on the body decoded as a string (its
 * own scan for `__proto__` and `constructor`). Both run here on the same bodies, in interleaved
 * rounds, in one process; the ratio is what to read.
 *
 *   npx tsx bench/json-body.ts [--rounds 7] [--ms 300]
 */
import { performance } from 'node:perf_hooks';
import secureJson from 'secure-json-parse';
import { parseJsonBody } from '../dist/gateway/json-body.js';
import { distribution } from '../src/loadgen/stats.js';
import { num, parseFlags } from './lib/args.js';
import { log, machineInfo, markdownTable, writeResult } from './lib/report.js';

const flags = parseFlags('npx tsx bench/json-body.ts', {
  rounds: { description: 'interleaved rounds per body and parser', default: '7' },
  ms: { description: 'milliseconds each parser runs per round', default: '300' },
});
const rounds = num('rounds', flags.rounds, { min: 1, integer: true });
const roundMs = num('ms', flags.ms, { min: 10 });

const tensor = (rows: number, cols: number) =>
  Array.from({ length: rows }, (_, r) => Array.from({ length: cols }, (_, c) => Math.round(Math.sin(r * cols + c) * 1e4) / 1e4));

/** Bodies as clients send them to the demo models. */
const bodies: Record<string, Buffer> = {
  'iris (4 numbers)': Buffer.from(JSON.stringify({ input: [5.1, 3.5, 1.4, 0.2] })),
  'echo (~200 B object)': Buffer.from(JSON.stringify({ input: { text: 'x'.repeat(120), n: 42, tags: ['a', 'b'] }, metadata: { user: 'u-1' } })),
  'digits (64 numbers)': Buffer.from(JSON.stringify({ input: Array.from({ length: 64 }, (_, i) => i % 17) })),
  'tensor 256x256 (~560 KB)': Buffer.from(JSON.stringify({ input: tensor(256, 256) })),
};

const fastifyDefault = (body: Buffer): unknown => secureJson.parse(body.toString('utf8'), undefined, { protoAction: 'error', constructorAction: 'error' });
const parsers: Record<string, (body: Buffer) => unknown> = { 'secure-json-parse (before)': fastifyDefault, 'parseJsonBody (now)': parseJsonBody };

/** Microseconds per parse, over one round of about `roundMs`. */
function measure(parse: (body: Buffer) => unknown, body: Buffer): number {
  let n = 0;
  const start = performance.now();
  let now = start;
  while (now - start < roundMs) {
    for (let i = 0; i < 16; i++) parse(body);
    n += 16;
    now = performance.now();
  }
  return ((now - start) * 1000) / n;
}

const results: { body: string; before_us: number; now_us: number; ratio: number }[] = [];
for (const [name, body] of Object.entries(bodies)) {
  const samples: Record<string, number[]> = Object.fromEntries(Object.keys(parsers).map((p) => [p, []]));
  for (const parse of Object.values(parsers)) measure(parse, body); // warm-up
  for (let r = 0; r < rounds; r++) {
    for (const [p, parse] of Object.entries(parsers)) samples[p]?.push(measure(parse, body));
  }
  const [before = 0, now = 0] = Object.values(samples).map((s) => distribution(s).p50 ?? Number.NaN);
  results.push({ body: name, before_us: before, now_us: now, ratio: now / before });
  log(`${name}: ${before.toFixed(2)} µs before, ${now.toFixed(2)} µs now`);
}

process.stdout.write(
  `${markdownTable(
    ['body', 'secure-json-parse (µs, median)', 'parseJsonBody (µs, median)', 'now ÷ before'],
    results.map((r) => [r.body, r.before_us.toFixed(2), r.now_us.toFixed(2), r.ratio.toFixed(2)]),
  )}\n`,
);
writeResult('json-body', { machine: machineInfo(), rounds, roundMs, results });
