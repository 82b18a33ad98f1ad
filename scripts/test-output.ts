/**
 * Reading `bun test`'s output as it streams (scripts/check.ts): the closing counts, and each
 * failed test with what it printed, for the end of the output, the part CI shows.
 */

/** Scans bun test output for its closing counts (" 12 pass", " 0 fail", " 1 skip"). */
export class TestCounter {
  private buffered = "";
  readonly counts = new Map<string, number>();
  /**
   * What bun printed since the last test's result line (a failure's error, stack, diff): the
   * first 15 lines (the error's headline) and the last 25, with a count of those between.
   */
  private head: string[] = [];
  private since: string[] = [];
  private skipped = 0;
  /** Past bun's closing list of failed tests, which names them again. */
  private closing = false;
  /**
   * Each failed test with what it printed before its `(fail)` line, so that the end of the
   * output (all CI shows) says why, not only which (at most 8 failures of 41 lines each).
   */
  readonly failures: string[][] = [];

  feed(chunk: string): void {
    const lines = (this.buffered + chunk).split("\n");
    this.buffered = lines.pop() ?? "";
    for (const line of lines) {
      // deno-lint-ignore no-control-regex
      const plain = line.replace(/\x1b\[[0-9;]*m/g, "");
      if (/^\s*\d+ tests? failed:/.test(plain)) this.closing = true;
      if (/^\((pass|fail|skip|todo)\)/.test(plain)) {
        if (plain.startsWith("(fail)") && !this.closing && this.failures.length < 8) {
          const gap = this.skipped > 0 ? [`… ${this.skipped} lines left out …`] : [];
          this.failures.push([...this.head, ...gap, ...this.since, plain]);
        }
        this.head = [];
        this.since = [];
        this.skipped = 0;
      } else if (this.head.length < 15) this.head.push(plain);
      else {
        this.since.push(plain);
        if (this.since.length > 25) {
          this.since.shift();
          this.skipped++;
        }
      }
      const match = /^\s*(\d+) (pass|fail|skip|todo)\s*$/.exec(plain);
      if (match?.[1] !== undefined && match[2] !== undefined) {
        this.counts.set(match[2], Number(match[1]));
      }
    }
  }

  /** A closing line CI can read, e.g. `tests: 12 passed, 0 failed, 1 skipped`; undefined if none. */
  summary(): string | undefined {
    const passed = this.counts.get("pass");
    const failed = this.counts.get("fail");
    if (passed === undefined || failed === undefined) return undefined;
    const skipped = (this.counts.get("skip") ?? 0) + (this.counts.get("todo") ?? 0);
    return `tests: ${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ""}`;
  }
}
