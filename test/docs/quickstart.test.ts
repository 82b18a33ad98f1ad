/**
 * docs/quickstart.md, run as written: the three `macula node up` terminals, the context, `sub`,
 * `pub` (an argument and stdin), a queue group, `serve` and `call` across nodes (no_provider
 * exits 3, a provider on the caller's node wins), node 3 stopped (Ctrl-C, exit 0, listed as
 * `left`, the subscriber reconnecting) and started again (the subscriber restored and receiving),
 * the library example as a program, and Ctrl-C for everything, with the output the page shows.
 *
 * The page drives the run with the directives of test/helpers/docrun.ts (its header has them).
 * What this test changes, and only that: the page's ports 4433-4435 are free ports; the nodes
 * listen on 127.0.0.1 (`--port N` becomes `--listen 127.0.0.1:N`, and the banner's
 * `(udp 0.0.0.0:N)` reads `(udp 127.0.0.1:N)`); the banner of a node that is not on 4433
 * proposes `--port 0` for a second node where the page's, on 4433, proposes 4434. Commands run
 * in a fresh directory (the page's "same directory"), with HOME there (the context store), and
 * `macula` is `bun cli/main.ts` of the repository.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fencedBlocks, PageRun } from "../helpers/docrun.ts";

const dir = mkdtempSync(join(tmpdir(), "macula-quickstart-"));
const run = new PageRun({
  page: "docs/quickstart.md",
  ports: ["4433", "4434", "4435"],
  substitutions: [
    // The banner proposes 4434 to a node on 4433 only; on any other port it proposes 0.
    ["--data-dir macula-data-2 --port 4434", "--data-dir macula-data-2 --port 0"],
    // Only 127.0.0.1: `--port` alone binds 0.0.0.0.
    [/--port (4433|4434|4435)\b/g, "--listen 127.0.0.1:$1"],
    ["(udp 0.0.0.0:", "(udp 127.0.0.1:"],
    // The admin listener is on the QUIC port + 5000: here a free port's, not 9433.
    ["http://127.0.0.1:9433", "http://127.0.0.1:…"],
  ],
  cwd: dir,
  env: { HOME: dir, XDG_CONFIG_HOME: "", MACULA_CONFIG_DIR: "" },
  waitMs: 30_000,
});

afterAll(async () => {
  await run.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("docs/quickstart.md", () => {
  test("every block of the page is run or checked", () => {
    const loose = fencedBlocks(run.md).filter((b) => !b.claimed).map((b) => `${b.lang}:${b.line}`);
    expect(loose).toEqual([]);
    expect(run.directives.some((d) => d.kind === "not-run")).toBe(false); // all of it runs here
  });

  test("names every process it waits on, once", () => {
    expect(run.nameProblems()).toEqual([]);
    const names = run.commands().map((c) => c.name);
    for (const want of ["n1", "n2", "n3", "greet", "w2", "w3", "upper", "n3again", "app"]) {
      expect([want, names.includes(want)]).toEqual([want, true]);
    }
  });

  test("every macula command line is accepted by the CLI's parser", async () => {
    expect(await run.parseProblems()).toEqual([]);
  });

  test("every step runs as written and prints what the page shows", async () => {
    await run.run();
    // Nothing the page started is left running: it stopped everything it started.
    expect(run.stillRunning()).toEqual([]);
  }, 120_000);
});
