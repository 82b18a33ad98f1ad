/**
 * scripts/build.ts's command line: the targets (`bin`, `lib`, both by default) and `--outfile`.
 * What each target builds is tested where it is used: test/cli runs dist/macula, and
 * test/runtime/package.test.ts packs and runs dist/lib.
 */
import { expect, test } from "bun:test";
import { join, resolve } from "node:path";
import { parseArgs } from "../../scripts/build.ts";

const ROOT = resolve(import.meta.dir, "../..");

test("no arguments: both targets, the binary at dist/macula", () => {
  expect(parseArgs([])).toEqual({ targets: ["bin", "lib"], outfile: join(ROOT, "dist/macula") });
});

test("targets as named, once each, in order; --outfile relative to the repository", () => {
  expect(parseArgs(["lib"])).toEqual({ targets: ["lib"], outfile: join(ROOT, "dist/macula") });
  expect(parseArgs(["lib", "bin", "lib", "--outfile", "out/m"])).toEqual({
    targets: ["lib", "bin"],
    outfile: join(ROOT, "out/m"),
  });
});

test("bad arguments are named", () => {
  expect(() => parseArgs(["--outfile"])).toThrow("--outfile needs a path");
  expect(() => parseArgs(["docs"])).toThrow(
    "unknown argument 'docs' (targets: bin, lib; --outfile PATH)",
  );
});
