/**
 * The `macula` command tree, run from source (`bun cli/main.ts`): help, version, exit codes,
 * and usage errors. The compiled binary has its own test
 * (binary.test.ts).
 */
import { describe, expect, test } from "bun:test";
import { fileURLToPath } from "node:url";
import pkg from "../../package.json" with { type: "json" };
import { formatQuicVersion } from "../../cli/commands/version.ts";
import { buildProgram } from "../../cli/main.ts";
import { quiche } from "../../lib/quic/native.ts";
import { type Result, run } from "../helpers/run.ts";

const MAIN = fileURLToPath(new URL("../../cli/main.ts", import.meta.url));

/** Runs `bun cli/main.ts ...args`, bounded by a timeout. */
function macula(...args: string[]): Promise<Result> {
  return run([process.execPath, MAIN, ...args]);
}

describe("macula (from source)", () => {
  test("--version prints the package.json version", async () => {
    const result = await macula("--version");
    expect(result).toEqual({ code: 0, stdout: `${pkg.version}\n`, stderr: "" });
  });

  test("--help lists every command group with its description, and examples", async () => {
    const result = await macula("--help");
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^ {2}bench +load your mesh/m);
    expect(result.stdout).toMatch(/^ {2}demo( \[options\])? +run a local demo/m);
    expect(result.stdout).toContain("Examples:");
    expect(result.stdout).toContain("Exit codes:");
    expect(result.stdout).not.toMatch(/^ {2}version/m); // hidden diagnostic command
  });

  test("the tree holds every command group exactly once", () => {
    const names = buildProgram().commands.map((command) => command.name());
    const expected = [
      "demo",
      "node",
      "pub",
      "sub",
      "call",
      "serve",
      "certs",
      "inspect",
      "ping",
      "netcheck",
      "stun",
      "relay",
      "bench",
      "sim",
      "context",
    ];
    for (const name of expected) expect(names.filter((n) => n === name)).toEqual([name]);
  });

  test("help <command> works like <command> --help", async () => {
    const result = await macula("help", "pub");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("Usage: macula pub");
  });

  test("help <command> <subcommand> shows the subcommand's help", async () => {
    const result = await macula("help", "node", "up");
    expect(result.code).toBe(0);
    expect(result.stdout).toStartWith("Usage: macula node up");
    const certs = await macula("help", "certs", "ca", "init");
    expect(certs.stdout).toStartWith("Usage: macula certs ca init");
  });

  test("a bad option value names the option and the value once", async () => {
    const result = await macula("sub", "-n", "abc", "x");
    expect(result.code).toBe(2);
    expect(result.stderr).toStartWith(
      "macula sub: --count 'abc': give a whole number from 1 to 1000000000\n",
    );
  });

  test("a bad argument says what was wrong once, without commander's wording", async () => {
    const result = await macula("pub", "a..b", "x");
    expect(result.code).toBe(2);
    expect(result.stderr).toStartWith(
      `macula pub: invalid topic "a..b": topic has an empty segment 2 (leading, trailing or doubled '.')\n`,
    );
    expect(result.stderr).not.toContain("command-argument");
  });

  test("help of a command that does not exist says so, at the level it is missing", async () => {
    let r = await macula("help", "nope");
    expect(r).toEqual({
      code: 2,
      stdout: "",
      stderr: "macula: unknown command 'nope'\n(run 'macula --help' for usage)\n",
    });
    r = await macula("help", "node", "down");
    expect(r.code).toBe(2);
    expect(r.stderr).toStartWith("macula node: unknown command 'down'\n");
  });

  test.each([
    [
      ["node", "up", "--listen", "127.0.0.1:99999"],
      'macula node up: --listen: "127.0.0.1:99999": the port must be 0-65535',
    ],
    [
      ["pub", "--server", "http://x", "a", "b"],
      'macula pub: --server "http://x": scheme must be quic://',
    ],
    [
      ["node", "up", "-l", "1.2.3.4:5", "-p", "4"],
      "macula node up: --listen and --port cannot be used together",
    ],
    [["certs", "issue", "--realm", "acme"], "macula certs issue: --name is required"],
    [["docs", "a", "b"], "macula docs: too many arguments: it takes 1, got 2"],
    [["pub", "--input", "yaml", "a", "b"], "macula pub: --input 'yaml': give one of text, json"],
  ])("usage errors in plain words, the value named once: %p", async (args, line) => {
    const r = await macula(...args);
    expect(r.code).toBe(2);
    expect(r.stderr.split("\n")[0]).toStartWith(line);
    expect(r.stderr).not.toMatch(/option '|Expected \d|Allowed choices/);
  });

  test("a full disk on stdout: said once, exit 1, no stack trace", async () => {
    const r = await run([
      "sh",
      "-c",
      `${JSON.stringify(process.execPath)} ${JSON.stringify(MAIN)} docs cli > /dev/full`,
    ]);
    expect(r).toEqual({
      code: 1,
      stdout: "",
      stderr: "macula: cannot write to stdout: no space left on the device\n",
    });
  });

  test("a closed pipe ends the command quietly with status 0", async () => {
    // `true` exits at once, long before the help is written: every write meets EPIPE.
    const script = `set -o pipefail; ${JSON.stringify(process.execPath)} ${
      JSON.stringify(MAIN)
    } help node up | true`;
    const result = await run(["bash", "-c", script]);
    expect(result).toEqual({ code: 0, stdout: "", stderr: "" });
  });

  test("an unknown command exits 2 naming it", async () => {
    const result = await macula("frobnicate", "--now");
    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
    expect(result.stderr).toContain("macula: unknown command 'frobnicate'");
    expect(result.stderr).toContain("macula --help");
  });

  test("a misspelt command gets a suggestion", async () => {
    const result = await macula("netchek");
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("unknown command 'netchek'");
    expect(result.stderr).toContain("Did you mean netcheck?");
  });

  test("an unknown option exits 2 naming it", async () => {
    const result = await macula("--frobnicate");
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("macula: unknown option '--frobnicate'");
  });

  test("an unknown option on a built command exits 2 naming the command", async () => {
    const result = await macula("version", "--frobnicate");
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("macula version: unknown option '--frobnicate'");
    expect(result.stderr).toContain("macula version --help");
  });

  test("no command prints help to stderr and exits 2", async () => {
    const result = await macula();
    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
    expect(result.stderr).toContain("Usage: macula");
  });

  test("version --verbose names the runtime and loads the QUIC addon", async () => {
    const result = await macula("version", "--verbose");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`macula ${pkg.version}\n`);
    expect(result.stdout).toContain(`runtime: bun ${Bun.version}`);
    expect(result.stdout).toContain("build: source\n");
    expect(result.stdout).toContain(
      `quiche: PROTOCOL_VERSION ${formatQuicVersion(quiche.PROTOCOL_VERSION)}\n`,
    );
  });

  test("version --json is machine-readable", async () => {
    const result = await macula("version", "--verbose", "--json");
    expect(result.code).toBe(0);
    const info = JSON.parse(result.stdout) as Record<string, string>;
    expect(info.version).toBe(pkg.version);
    expect(info.quiche).toBe(`PROTOCOL_VERSION ${formatQuicVersion(quiche.PROTOCOL_VERSION)}`);
  });
});
