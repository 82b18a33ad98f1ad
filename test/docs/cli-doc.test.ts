/**
 * docs/cli.md, run as written: every ```sh block of the page either runs, in page order, with
 * the output shown in its ```text blocks compared (a dev-realm node on the defaults, `sub`,
 * `pub`, `serve`, `call` with each failure and exit code, configuration errors, a port in use, a
 * second node joining, `certs key` / `ca init` / `issue`, `inspect`, `relay ls`, the simulators),
 * or is marked `<!-- not-run: why -->` (a second machine, a script of the user's, minutes of CPU)
 * and its `macula` command lines must still be accepted by the CLI's parser. Every command line
 * of the page is parsed first, so a flag or a command that no longer exists fails here; so does
 * a change of what a command prints. The configuration file shown must load, and the
 * `--ready-json` object shown must have the keys the command prints.
 *
 * The page drives the run with the directives of test/helpers/docrun.ts (its header has them).
 * What this test changes, and only that (each one below, with its reason): the page's ports
 * 4433, 4434 and 4439 are free ports; the nodes listen on 127.0.0.1 (`macula node up` alone
 * gets `--listen 127.0.0.1:4433`, `--port N` becomes `--listen 127.0.0.1:N`, and `udp 0.0.0.0:`
 * in the output shown reads `udp 127.0.0.1:`); the client commands that rely on the default
 * address reach the node on its free port through MACULA_URL; `/home/me` is the directory the
 * commands run in (a fresh one, also HOME); the banner of a node that is not on 4433 proposes
 * `--port 0` for a second node where the page's proposes 4434. `macula` is `bun cli/main.ts` of
 * the repository; `jq` must be installed (`apt-get install jq`).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig } from "../../lib/node/mod.ts";
import {
  fencedBlocks,
  maculaCommands,
  PageRun,
  parseProblem,
  shellWords,
  stripComment,
} from "../helpers/docrun.ts";

const dir = mkdtempSync(join(tmpdir(), "macula-cli-doc-"));
const run = new PageRun({
  page: "docs/cli.md",
  ports: ["4433", "4434", "4439"],
  substitutions: [
    // Only 127.0.0.1 here: the node of the defaults listens on 0.0.0.0, `--port` alone too.
    [/^macula node up$/, "macula node up --listen 127.0.0.1:4433"],
    // The banner proposes 4434 to a node on 4433 only; on any other port it proposes 0.
    [
      "$ macula node up --data-dir macula-data-2 --port 4434",
      "$ macula node up --data-dir macula-data-2 --port 0",
    ],
    [/--port (4433|4434)\b/g, "--listen 127.0.0.1:$1"],
    ["udp 0.0.0.0:", "udp 127.0.0.1:"],
    // The admin listener is on the QUIC port + 5000: here a free port's, not 9433.
    ["http://127.0.0.1:9433", "http://127.0.0.1:…"],
    ["/home/me", dir],
  ],
  cwd: dir,
  env: {
    MACULA_URL: "quic://127.0.0.1:4433", // the default address, on its free port
    HOME: dir,
    XDG_CONFIG_HOME: "",
    MACULA_CONFIG_DIR: "",
  },
  waitMs: 30_000,
});

afterAll(async () => {
  await run.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** The fenced block of a language right after the paragraph ending with `after`. */
function blockAfter(after: string, lang: string): string {
  const at = run.md.indexOf(after);
  expect([after, at >= 0]).toEqual([after, true]);
  const m = new RegExp("```" + lang + "\\n([\\s\\S]*?)```").exec(run.md.slice(at));
  return m![1]!;
}

describe("docs/cli.md", () => {
  test("every shell block is run or marked not-run, every output block compared", () => {
    const loose = fencedBlocks(run.md)
      .filter((b) => (b.lang === "sh" || b.lang === "text") && !b.claimed)
      .map((b) => `${b.lang} block at docs/cli.md:${b.line}`);
    expect(loose).toEqual([]);
    // Every not-run block says why, and holds a macula command for the parser to check.
    for (const d of run.directives) {
      if (d.kind !== "not-run") continue;
      expect([d.line, d.why.length > 10]).toEqual([d.line, true]);
      expect([d.line, d.lines.flatMap(maculaCommands).length > 0]).toEqual([d.line, true]);
    }
    expect(run.directives.filter((d) => d.kind === "not-run").length).toBeGreaterThan(0);
    expect(run.directives.filter((d) => d.kind === "step").length).toBeGreaterThan(20);
  });

  test("names every process it waits on, once", () => {
    expect(run.nameProblems()).toEqual([]);
  });

  test("every macula command line, run or not, is accepted by the CLI's parser", async () => {
    expect(await run.parseProblems()).toEqual([]);
  });

  test("the configuration file shown loads", () => {
    const yaml = blockAfter("The file (unknown keys are errors):", "yaml");
    const config = parseConfig(yaml, "docs/cli.md");
    expect([config.realm, config.listen.port, config.overlay.k]).toEqual(["acme", 4433, 8]);
  });

  test("the --ready-json object shown has the keys the command prints", async () => {
    const shown = JSON.parse(blockAfter("or with `--ready-json` one\nline:", "json"));
    const { buildProgram } = await import("../../cli/main.ts");
    const up = buildProgram().commands.find((c) => c.name() === "node")!.commands.find((c) =>
      c.name() === "up"
    )!;
    // test/cli/node.test.ts checks that this list is what the command prints.
    const flag = up.options.find((o) => o.long === "--ready-json")!.description;
    const listed = /one JSON line \{([^}]+)\}/.exec(flag)![1]!.split(",");
    expect(Object.keys(shown)).toEqual(listed);
  });

  test("every step runs as written and prints what the page shows", async () => {
    const jq = Bun.which("jq");
    expect([jq !== null, "docs/cli.md pipes into jq: apt-get install jq"]).toEqual([
      true,
      "docs/cli.md pipes into jq: apt-get install jq",
    ]);
    await run.run();
    // Nothing the page started is left running: it stopped everything it started.
    expect(run.stillRunning()).toEqual([]);
  }, 150_000);
});

describe("the checks bite", () => {
  test("the parser check refuses what no longer exists", async () => {
    const refused = [
      ["pub", "x.y", "hi", "--nope"], // an unknown option
      ["frobnicate"], // an unknown command
      ["node", "frob"], // an unknown subcommand
      ["sub"], // a missing argument
      ["pub", "a.*", "x"], // a bad value (wildcards are for patterns)
      ["sub", "a.>", "--count", "x"],
      ["node", "up", "--port", "1", "--listen", "127.0.0.1:2"], // options that conflict
      ["bench", "pubsub", "--size", "4"], // a bad value of a command's own parser
    ];
    for (const args of refused) {
      expect([args, typeof (await parseProblem(args))]).toEqual([args, "string"]);
    }
    for (const args of [["sub", "a.>"], ["help", "sim", "membership"], ["node", "up", "--help"]]) {
      expect([args, await parseProblem(args)]).toEqual([args, null]);
    }
  });

  test("the runner fails a page whose output or exit code is not what it shows", async () => {
    const page = (body: string) => {
      const file = join(dir, `bite-${Math.random().toString(36).slice(2)}.md`);
      writeFileSync(file, body);
      return new PageRun({ page: file, ports: [], cwd: dir, waitMs: 10_000 });
    };
    const fails = async (body: string): Promise<string> => {
      const p = page(body);
      try {
        await p.run();
        return "passed";
      } catch (e) {
        return (e as Error).message;
      } finally {
        await p.stop();
      }
    };
    const sh = (names: string, line: string) =>
      `<!-- step: ${names} -->\n\n\`\`\`sh\n${line}\n\`\`\`\n`;
    const text = (kind: string, names: string, lines: string) =>
      `\n<!-- ${kind}: ${names} -->\n\n\`\`\`text\n${lines}\n\`\`\`\n`;
    // What passes, as a baseline for the three that must not.
    expect(await fails(sh("a", "echo hello, world | cat") + text("output", "a", "hello, …"))).toBe(
      "passed",
    );
    expect(await fails(sh("a", "echo hello, world | cat") + text("output", "a", "hullo, …")))
      .toContain('a should print "hullo, …"');
    expect(await fails(sh("a", "(exit 3)"))).toContain("Expected");
    expect(await fails(sh("a", "printf 'x\\nx\\nx\\n' | cat") + text("stdout", "a", "x\nx")))
      .toContain('not shown "x"');
  });

  test("shell lines are split as sh would", () => {
    expect(stripComment(`macula sub 'a.#' # terminal 2`)).toBe(`macula sub 'a.#'`);
    expect(
      maculaCommands(`echo '{"q":"x"}' | macula call q - --timeout 2 2>/dev/null || echo "$?"`),
    )
      .toEqual([["call", "q", "-", "--timeout", "2"]]);
    expect(maculaCommands(`tail -f app.log | macula pub logs.app -`)).toEqual([[
      "pub",
      "logs.app",
      "-",
    ]]);
    expect(shellWords(`A=1 macula serve t.f -- sh -c 'echo x >&2; exit 3' &`)).toEqual([
      "A=1",
      "macula",
      "serve",
      "t.f",
      "--",
      "sh",
      "-c",
      "echo x >&2; exit 3",
    ]);
    expect(shellWords(`macula sub x | head -1`)).toBeNull(); // for sh
    expect(shellWords(`macula call t '{}' || echo "exit $?"`)).toBeNull();
  });
});
