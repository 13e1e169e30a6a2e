/**
 * Calls `attempt` until it returns a value, sleeping between calls with jittered exponential backoff
 * (from `firstDelayMs`, doubling up to `maxDelayMs`). Returns undefined once the next sleep would end
 * past `maxWaitMs` (default: wait forever). Shared by the Redis leases (semaphore slots, key leases).
 */
export async function pollWithBackoff<T>(
  attempt: () => Promise<T | undefined>,
  options: { readonly firstDelayMs: number; readonly maxDelayMs: number; readonly maxWaitMs?: number },
): Promise<T | undefined> {
  const deadline = Date.now() + (options.maxWaitMs ?? Number.POSITIVE_INFINITY);
  let delay = options.firstDelayMs;
  for (;;) {
    const value = await attempt();
    if (value !== undefined) return value;
    if (Date.now() + delay > deadline) return undefined;
    await new Promise((resolve) => setTimeout(resolve, delay + Math.random() * delay));
    delay = Math.min(options.maxDelayMs, delay * 2);
  }
}
