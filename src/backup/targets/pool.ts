/**
 * Runs `work` over items with at most `inFlight` running at once. After the first failure no
 * new item starts; the ones running are let finish (so nothing is left half-done behind the
 * caller's back) and then the first error is thrown.
 */
export async function eachInPool<T>(items: readonly T[], inFlight: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: { err: unknown } | null = null;
  const worker = async (): Promise<void> => {
    while (failed === null && next < items.length) {
      const item = items[next++]!;
      try {
        await work(item);
      } catch (err) {
        failed ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(inFlight, items.length)) }, worker));
  if (failed !== null) throw (failed as { err: unknown }).err;
}
