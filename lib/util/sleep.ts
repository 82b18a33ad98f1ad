/**
 * Sleeps that a shutdown can cut short: the backoff loops of the node (seed dialing) and the
 * client (reconnecting) wait in one of these, so `stop()` / `close()` do not wait out a delay.
 */

/** A set of pending sleeps, all woken at once by `wakeAll` (and every later one at once). */
export class Sleeper {
  readonly #waiting = new Set<() => void>();
  #woken = false;

  /** Resolves after `ms`, or at once when `wakeAll` ran (before or during the sleep). */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiting.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      if (this.#woken) done();
      else this.#waiting.add(done);
    });
  }

  /** Ends every sleep now and makes later ones return at once. */
  wakeAll(): void {
    this.#woken = true;
    for (const done of [...this.#waiting]) done();
  }
}
