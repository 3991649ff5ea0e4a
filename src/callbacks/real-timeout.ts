import { performance } from 'node:perf_hooks';

/**
 * Calls `onExpire` once `ms` of real time have passed since now, after any I/O that is already
 * waiting has been handled; returns the function that cancels it.
 *
 * A plain setTimeout gets both wrong on a busy event loop. It counts from the loop's cached
 * clock, which is as old as the current turn, so a timer armed late in a long turn (a
 * synchronous SQLite commit, say) fires early. And when it comes due in the same turn as the
 * bytes it waits for, timers run before I/O, so an answer that arrived in time reads as a
 * timeout: for a webhook, a second delivery of one the receiver already took.
 */
export function realTimeout(ms: number, onExpire: () => void): () => void {
  const armedAt = performance.now();
  let timer: NodeJS.Timeout | undefined;
  let immediate: NodeJS.Immediate | undefined;
  const check = () => {
    const left = ms - (performance.now() - armedAt);
    if (left > 0) timer = setTimeout(check, Math.ceil(left));
    // setImmediate runs after the poll phase, so what the kernel already holds is read first.
    else immediate = setImmediate(onExpire);
  };
  timer = setTimeout(check, ms);
  return () => {
    clearTimeout(timer);
    if (immediate !== undefined) clearImmediate(immediate);
  };
}
