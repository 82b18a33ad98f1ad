/**
 * Reconnect delays: exponential with full jitter ("decorrelated" variants cluster less, but full
 * jitter is simple and spreads a thundering herd well). Pure: the random source is injected.
 */
export interface BackoffOptions {
  /** First delay's upper bound, ms. Default 100. */
  baseMs?: number;
  /** Largest delay, ms. Default 30 000. */
  maxMs?: number;
  /** Growth per attempt. Default 2. */
  factor?: number;
}

/** The delay before reconnect attempt `attempt` (0-based): uniform in [0, min(max, base·factor^n)]. */
export function backoffDelay(
  attempt: number,
  random: () => number,
  o: BackoffOptions = {},
): number {
  const base = o.baseMs ?? 100;
  const max = o.maxMs ?? 30_000;
  const factor = o.factor ?? 2;
  const cap = Math.min(max, base * Math.pow(factor, Math.min(attempt, 64)));
  return Math.floor(random() * cap);
}

/**
 * The attempts of one retry loop: `next()` gives the delay before the next attempt (growing with
 * each failure), `reset()` starts over after a success.
 */
export class Backoff {
  #attempt = 0;
  constructor(private readonly random: () => number, private readonly o: BackoffOptions = {}) {}

  /** The delay before the next attempt; counts one more failure. */
  next(): number {
    return backoffDelay(this.#attempt++, this.random, this.o);
  }

  /** Failures since the last success. */
  get attempts(): number {
    return this.#attempt;
  }

  /** A success: the next delay is the first again. */
  reset(): void {
    this.#attempt = 0;
  }
}
