/**
 * Polls `probe` every 25 ms until it gives a value (anything but undefined), and returns it; fails
 * naming `what` after `timeoutMs`. Tests wait for conditions this way, never for a fixed time.
 */
export async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
