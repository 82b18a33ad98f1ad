/** The contract between bench/run.ts and each bench. */

export interface BenchOptions {
  /** Repository root (absolute). */
  repoRoot: string;
  /** Main iteration count (e.g. measured round trips); undefined = the bench's default or env. */
  count?: number;
  warmup?: number;
  /** Bulk size in MiB. */
  mib?: number;
  /** Restrict to these systems; undefined = all. */
  systems?: string[];
  /** Upper bound for any one spawned process, in seconds. */
  timeoutS: number;
  /** Small counts for a smoke run. */
  quick: boolean;
}

export interface DocSection {
  /** Heading text without the `## `. */
  heading: string;
  body: string;
}

export interface BenchOutcome {
  /** False if any system failed. */
  ok: boolean;
  /** Rewritten into docs/benchmarks.md unless the run says not to. */
  doc?: DocSection;
}

export interface Bench {
  summary: string;
  run(opts: BenchOptions): Promise<BenchOutcome>;
}

/** Bad arguments for a bench (unknown system, bad count): the runner exits 2, like for usage errors. */
export class UsageError extends Error {
  override name = "UsageError";
}
