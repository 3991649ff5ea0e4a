/**
 * Where a process spent its CPU, from a V8 .cpuprofile (node --cpu-prof): self time by package
 * or Spillway folder, the top functions by self time, and Spillway's functions by inclusive time.
 * From a .heapprofile (lib/heap-sampling.mjs), the same for bytes allocated instead of time.
 *
 *   npx tsx bench/profile-summary.ts <file.cpuprofile|file.heapprofile> [--top 25]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { markdownTable } from './lib/report.js';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}
interface HeapNode {
  readonly callFrame: ProfileNode['callFrame'];
  readonly selfSize: number;
  readonly children: readonly HeapNode[];
}
interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

const { values, positionals } = parseArgs({ options: { top: { type: 'string', default: '25' } }, allowPositionals: true });
const file = positionals[0];
if (file === undefined) {
  process.stderr.write('Usage: npx tsx bench/profile-summary.ts <file.cpuprofile|file.heapprofile> [--top 25]\n');
  process.exit(2);
}
const top = Number(values.top);
const parsed = JSON.parse(readFileSync(file, 'utf8')) as Profile | { head: HeapNode };
if ('head' in parsed) {
  summariseHeap(parsed.head);
  process.exit(0);
}
const profile = parsed;

const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

/** A package, a Spillway folder, a V8 pseudo-frame, or a native function. */
function category(node: Pick<ProfileNode, 'callFrame'>): string {
  const { url, functionName } = node.callFrame;
  if (url === '') return functionName.startsWith('(') ? functionName : `native: ${functionName || '(anonymous)'}`;
  if (url.startsWith('node:')) return 'node internals';
  const pkg = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (pkg !== null) return pkg[1]!;
  const own = /\/dist\/([^/]+)\//.exec(url);
  if (own !== null) return `spillway dist/${own[1]!}`;
  return 'other';
}

function label(node: Pick<ProfileNode, 'callFrame'>): string {
  const { url, functionName, lineNumber } = node.callFrame;
  const where = url === '' ? '' : ` ${url.replace(/^.*\/(node_modules|dist)\//, '$1/').replace(/^file:\/\//, '')}:${lineNumber + 1}`;
  return `${functionName || '(anonymous)'}${where}`;
}

const self = new Map<number, number>();
let totalUs = 0;
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i + 1] ?? 0;
  self.set(id, (self.get(id) ?? 0) + dt);
  totalUs += dt;
});
const busyUs = totalUs - [...self].filter(([id]) => byId.get(id)?.callFrame.functionName === '(idle)').reduce((s, [, t]) => s + t, 0);

function add(m: Map<string, number>, k: string, v: number): void {
  m.set(k, (m.get(k) ?? 0) + v);
}
const byCategory = new Map<string, number>();
const byFunction = new Map<string, number>();
for (const [id, us] of self) {
  const node = byId.get(id)!;
  add(byCategory, category(node), us);
  add(byFunction, label(node), us);
}

// Inclusive: each sample counts once for every distinct Spillway function on its stack.
const inclusive = new Map<string, number>();
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i + 1] ?? 0;
  const seen = new Set<string>();
  for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
    const node = byId.get(n)!;
    if (!node.callFrame.url.includes('/dist/')) continue;
    const key = label(node);
    if (!seen.has(key)) {
      seen.add(key);
      add(inclusive, key, dt);
    }
  }
});

const pct = (us: number) => `${((100 * us) / busyUs).toFixed(1)}%`;
const rows = (m: Map<string, number>, n: number) =>
  [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, us]) => [k.length > 90 ? `${k.slice(0, 89)}…` : k, (us / 1000).toFixed(0), pct(us)]);

process.stdout.write(
  [
    `Profile ${file}: ${(totalUs / 1e6).toFixed(1)} s sampled, ${(busyUs / 1e6).toFixed(1)} s busy (percentages are of busy time)`,
    '',
    markdownTable(['self time by package or folder', 'ms', 'share'], rows(byCategory, top)),
    '',
    markdownTable(['function (self time)', 'ms', 'share'], rows(byFunction, top)),
    '',
    markdownTable(['Spillway function (inclusive time)', 'ms', 'share'], rows(inclusive, top)),
    '',
  ].join('\n'),
);

/** Bytes allocated in the window, by package or folder and by function, inclusive for Spillway's. */
function summariseHeap(head: HeapNode): void {
  const byCategory = new Map<string, number>();
  const byFunction = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let total = 0;
  const walk = (node: HeapNode, spillwayAbove: ReadonlySet<string>) => {
    total += node.selfSize;
    add(byCategory, category(node), node.selfSize);
    add(byFunction, label(node), node.selfSize);
    let above = spillwayAbove;
    if (node.callFrame.url.includes('/dist/')) above = new Set([...spillwayAbove, label(node)]);
    for (const key of above) add(inclusive, key, node.selfSize);
    for (const child of node.children) walk(child, above);
  };
  walk(head, new Set());
  const mb = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
  const share = (bytes: number) => `${((100 * bytes) / total).toFixed(1)}%`;
  const heapRows = (m: Map<string, number>) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, bytes]) => [k.length > 90 ? `${k.slice(0, 89)}…` : k, mb(bytes), share(bytes)]);
  process.stdout.write(
    [
      `Allocation profile ${file}: ${mb(total)} MiB allocated in its window (sampled every 4 KiB; divide by the requests answered in the window for bytes per request)`,
      '',
      markdownTable(['allocated by package or folder', 'MiB', 'share'], heapRows(byCategory)),
      '',
      markdownTable(['function (self)', 'MiB', 'share'], heapRows(byFunction)),
      '',
      markdownTable(['Spillway function (inclusive)', 'MiB', 'share'], heapRows(inclusive)),
      '',
    ].join('\n'),
  );
}
