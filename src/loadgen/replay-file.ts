/**
 * Reads a replay file: one arrival per line, in seconds from the start of the run (decimals
 * allowed, e.g. `0.125`). Blank lines and lines starting with `#` are skipped; the lines need not
 * be in order. Returns the times ascending, or throws an Error naming the first bad line.
 */
export function parseReplay(text: string): Float64Array {
  const times: number[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? '').trim();
    if (line === '' || line.startsWith('#')) continue;
    const t = Number(line);
    if (!/^[0-9.eE+-]+$/.test(line) || !Number.isFinite(t) || t < 0) {
      throw new Error(`line ${i + 1} is not a time in seconds at or after 0: "${line.slice(0, 40)}"`);
    }
    times.push(t);
  }
  if (times.length === 0) throw new Error('it holds no arrival times');
  return Float64Array.from(times).sort();
}
