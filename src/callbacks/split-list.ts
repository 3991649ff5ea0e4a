/** Splits a comma- or whitespace-separated environment value; empty items are dropped. */
export function splitList(raw: string): string[] {
  return raw.split(/[\s,]+/).filter((s) => s !== '');
}
