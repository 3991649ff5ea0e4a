/**
 * The order in which measurement k (0, 1, 2, …) runs the systems of a round: `systems` rotated by
 * k. Each system takes each place equally often, so a drift in machine load favours none; with
 * two systems it alternates who goes first.
 */
export function rotation<T>(systems: readonly T[], k: number): T[] {
  const n = systems.length;
  const shift = ((k % n) + n) % n;
  return [...systems.slice(shift), ...systems.slice(0, shift)];
}
