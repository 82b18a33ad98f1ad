/** Deadlines on promises. */

/**
 * Resolves or rejects like `p`, or rejects with `onTimeout()` after `ms`, whichever comes first.
 * The timer is cleared either way; `p` itself is not cancelled (settle it elsewhere if needed).
 */
export function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(onTimeout()), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
