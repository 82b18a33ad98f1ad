/** scripts/test-output.ts: bun test's counts, and each failure with what it printed before it. */
import { expect, test } from "bun:test";
import { TestCounter } from "../../scripts/test-output.ts";

test("counts, and each failure with the lines since the result before it, across chunks", () => {
  const c = new TestCounter();
  const out = [
    "test/a.test.ts:",
    "\x1b[32m(pass)\x1b[0m a > works [1.00ms]",
    "some log line",
    "error: gave up after 30000 ms waiting for 59 of 60 subscribers complete",
    "      at eventually (test/net/mesh60.test.ts:31:36)",
    "(fail) a > fails [30001.00ms]",
    "(pass) a > after [1.00ms]",
    "",
    "1 tests failed:",
    "(fail) a > fails [30001.00ms]",
    "",
    " 2 pass",
    " 1 fail",
    "",
  ].join("\n");
  // Fed in pieces that split lines, as a pipe delivers them.
  for (let i = 0; i < out.length; i += 7) c.feed(out.slice(i, i + 7));
  c.feed("\n");
  expect(c.summary()).toBe("tests: 2 passed, 1 failed");
  expect(c.failures).toEqual([[
    "some log line",
    "error: gave up after 30000 ms waiting for 59 of 60 subscribers complete",
    "      at eventually (test/net/mesh60.test.ts:31:36)",
    "(fail) a > fails [30001.00ms]",
  ]]);
});

test("what a failure keeps is bounded: its first 15 and last 25 lines, at most 8 failures", () => {
  const c = new TestCounter();
  const lines: string[] = [];
  for (let f = 0; f < 10; f++) {
    for (let i = 0; i < 100; i++) lines.push(`f${f} line ${i}`);
    lines.push(`(fail) t${f}`);
  }
  c.feed(`${lines.join("\n")}\n`);
  expect(c.failures.length).toBe(8);
  expect(c.failures[0]).toEqual([
    ...Array.from({ length: 15 }, (_, i) => `f0 line ${i}`),
    "… 60 lines left out …",
    ...Array.from({ length: 25 }, (_, i) => `f0 line ${75 + i}`),
    "(fail) t0",
  ]);
  expect(c.failures[7]!.at(-1)).toBe("(fail) t7");
});
