/**
 * docs/tutorial.md, run as written: three `macula node up` processes on 127.0.0.1, the example
 * app of examples/hello/ under Bun and under Deno, and the output the page shows.
 *
 * The page drives the test through HTML comments (invisible when rendered), in page order:
 * `<!-- step: … -->`, `<!-- output: … -->`, `<!-- ctrl-c: … -->`, `<!-- exit: … -->` and
 * `<!-- file: … -->`; test/helpers/docrun.ts, which runs them, explains each.
 *
 * What the test changes before running a command, and only that: `macula` is `bun cli/main.ts`
 * (the page's alias), `bun` and `deno` are the repository's, `/tmp/hello` is a fresh temporary
 * directory, and the ports 4433-4435 are free ports (in the commands and in the output shown).
 * Commands run from the repository root, as the page says. Deno runs exactly the page's command,
 * `deno run --allow-net --allow-read --allow-env --allow-ffi <file>` (docs/client.md,
 * "Runtimes", has the permissions).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { lineMatches, PageRun, ROOT, unmatched } from "../helpers/docrun.ts";

/** How long a line may take to appear, or a process to exit (Deno's first start is slow). */
const WAIT_MS = 60_000;

const dir = mkdtempSync(join(tmpdir(), "macula-tutorial-"));
const run = new PageRun({
  page: "docs/tutorial.md",
  ports: ["4433", "4434", "4435"],
  substitutions: [["/tmp/hello", dir]],
  cwd: ROOT,
  waitMs: WAIT_MS,
});
const page = run.directives;

afterAll(async () => {
  await run.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("docs/tutorial.md", () => {
  test("shows the example files as they are", () => {
    const files = page.filter((d) => d.kind === "file");
    expect(files.map((f) => f.path)).toEqual([
      "examples/hello/greeter.ts",
      "examples/hello/watch.ts",
      "examples/hello/call.ts",
    ]);
    for (const f of files) {
      expect([f.path, f.text]).toEqual([f.path, readFileSync(join(ROOT, f.path), "utf8")]);
    }
  });

  test("the examples type-check with the repository's compiler options", async () => {
    // examples/ is outside tsconfig.json's include; examples/tsconfig.json extends it.
    const p = Bun.spawn({
      cmd: [join(ROOT, "node_modules/.bin/tsc"), "--noEmit", "-p", "examples/tsconfig.json"],
      cwd: ROOT,
      stdout: "pipe",
      stderr: "pipe",
    });
    const [out, code] = await Promise.all([new Response(p.stdout).text(), p.exited]);
    expect([code, out]).toEqual([0, ""]);
  }, 60_000);

  test("runs Bun and Deno programs, and names every process it waits on", () => {
    const commands = run.commands();
    expect(commands.some((c) => /^\S+=\S+ \S+=\S+ bun examples\/hello\//.test(c.text))).toBe(true);
    expect(commands.some((c) => /\bdeno run (--allow-\w+ )+examples\//.test(c.text))).toBe(true);
    expect(run.nameProblems()).toEqual([]);
  });

  test("every step runs as written and prints what the page shows", async () => {
    await run.run();
    // Nothing the page started is left running: it stopped everything it started.
    expect(run.stillRunning()).toEqual([]);
  }, 240_000);
});

test("the page's output matcher", () => {
  expect(lineMatches("… route up: node … direct)", "2026 route up: node ab… (dialed, direct)"))
    .toBe(true);
  expect(lineMatches("Hello, Ada!", "  Hello,   Ada! ")).toBe(true);
  expect(lineMatches("Hello, Ada!", "Hello, Ada!!")).toBe(false);
  expect(lineMatches("… a … b", "b a")).toBe(false); // pieces in order
  expect(lineMatches("macula node … is up", "x macula node ab is up")).toBe(false); // anchored
  expect(lineMatches("macula node … is up", "macula node ab is up")).toBe(true);
  expect(unmatched(["… x", "… x"], "1 x\n2 x")).toBeNull();
  expect(unmatched(["… x", "… x"], "1 x")).toBe("… x"); // each shown line its own output line
});
