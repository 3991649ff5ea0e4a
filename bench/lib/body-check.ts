/**
 * Checks one response body in `every` (parsing each would slow the load generator down and
 * favour the faster system), counting what was checked and what was wrong.
 */
export function sampledBodyCheck(every: number, isValid: (parsed: unknown) => boolean) {
  let seen = 0;
  const tally = { checked: 0, bad: 0, firstBad: undefined as string | undefined };
  const verify = (text: string): boolean => {
    if (seen++ % every !== 0) return true;
    tally.checked += 1;
    let ok = false;
    try {
      ok = isValid(JSON.parse(text));
    } catch {
      ok = false;
    }
    if (!ok) {
      tally.bad += 1;
      tally.firstBad ??= text.slice(0, 500);
    }
    return ok;
  };
  return { verify, tally };
}
