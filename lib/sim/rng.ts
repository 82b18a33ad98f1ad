/**
 * Derived random streams for the simulator. One run seed fans out into independent streams (the
 * network, the scenario, one per node incarnation) by hashing the seed with a label, so adding a
 * node or drawing one more scenario number never shifts another stream.
 */
import { type Rng, seededRng } from "../mesh/mod.ts";

/**
 * A deterministic stream for `seed` and a label, e.g. `deriveRng(42, "node", "n7", 0)`. The same
 * arguments always give the same stream; different labels give unrelated ones.
 */
export function deriveRng(seed: number, ...label: (string | number)[]): Rng {
  if (!Number.isFinite(seed)) throw new RangeError(`seed must be a finite number, got ${seed}`);
  return seededRng(`macula-sim\u0000${seed}`, ...label);
}
