/**
 * The compiled `dist/macula` binary, copied alone into an empty folder (no node_modules, no
 * sources): it must start, know its version, list its commands and load the embedded QUIC
 * addon. Build it first with `npm run build` (`npm test` does).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { copyFile, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pkg from "../../package.json" with { type: "json" };
import { readable } from "../../cli/commands/docs.ts";
import { formatQuicVersion } from "../../cli/commands/version.ts";
import { quiche } from "../../lib/quic/native.ts";
import { type Result, run } from "../helpers/run.ts";

const BUILT = fileURLToPath(new URL("../../dist/macula", import.meta.url));

let folder: Promise<string> | undefined;

/** Copies dist/macula into a fresh empty temp folder, once; fails clearly when it is missing. */
function isolatedFolder(): Promise<string> {
  folder ??= (async () => {
    const info = await stat(BUILT).catch(() => undefined);
    if (!info?.isFile()) {
      throw new Error(`${BUILT} is missing: run \`npm run build\` first (\`npm test\` does)`);
    }
    const dir = await mkdtemp(join(tmpdir(), "macula-bin-"));
    await copyFile(BUILT, join(dir, "macula"));
    return dir;
  })();
  return folder;
}

/** Runs `./macula ...args` inside the isolated folder, bounded by a timeout. */
async function macula(...args: string[]): Promise<Result> {
  const dir = await isolatedFolder();
  return run(["./macula", ...args], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir },
  });
}

afterAll(async () => {
  if (folder) await rm(await folder.catch(() => ""), { recursive: true, force: true });
});

describe("dist/macula (compiled, alone in an empty folder)", () => {
  test("./macula --version prints the package.json version", async () => {
    const result = await macula("--version");
    expect(result).toEqual({ code: 0, stdout: `${pkg.version}\n`, stderr: "" });
  });

  test("./macula --help lists every command group", async () => {
    const result = await macula("--help");
    expect(result.code).toBe(0);
    for (const name of ["demo", "node", "pub", "certs", "docs", "bench"]) {
      expect(result.stdout).toMatch(new RegExp(`^  ${name} `, "m"));
    }
  });

  test("./macula docs: the guides ship inside the binary", async () => {
    const result = await macula("docs", "troubleshooting");
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(
      readable(readFileSync(new URL("../../docs/troubleshooting.md", import.meta.url), "utf8")),
    );
  });

  test("./macula version --verbose loads the embedded QUIC addon", async () => {
    const result = await macula("version", "--verbose");
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`macula ${pkg.version}\n`);
    expect(result.stdout).toContain("build: standalone binary\n");
    expect(result.stdout).toContain(
      `quiche: PROTOCOL_VERSION ${formatQuicVersion(quiche.PROTOCOL_VERSION)}\n`,
    );
  });

  test("./macula demo runs three nodes: pub/sub and RPC across them, exit 0", async () => {
    const result = await macula("demo");
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(
      "published on node A, received on node C through 'demo.greetings.*'",
    );
    expect(result.stdout).toContain("each went to one worker");
    expect(result.stdout).toContain("node B answered 42");
    expect(result.stdout).toContain("nodes drained and stopped");
  });

  test("./macula demo quic runs two QUIC endpoints end to end and exits 0", async () => {
    const result = await macula("demo", "quic", "--mib", "4");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("mutual TLS 1.3, ALPN macula/1");
    expect(result.stdout).toContain("4 MiB sent on one stream");
    expect(result.stdout).toContain("SHA-256 matches");
    expect(result.stdout).toContain('closed gracefully ("demo done")');
  });

  test("demo rejects a bad --mib with a clear message", async () => {
    const result = await macula("demo", "quic", "--mib", "lots");
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("give a whole number of MiB from 1 to 4096");
  });

  test("./macula bench runs from the binary: its help, and a failure to connect", async () => {
    // Credentials that are not there: the run fails (exit 1) once its arguments were parsed.
    const result = await macula("bench", "rpc", "--server", "quic://127.0.0.1:9", "--creds", ".");
    expect(result.code).toBe(1);
    expect(result.stderr).toStartWith("macula bench rpc: ");
    const help = await macula("bench", "pubsub", "--help");
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("Usage: macula bench pubsub");
  });

  test("an unknown command exits 2 naming it", async () => {
    const result = await macula("frobnicate");
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("unknown command 'frobnicate'");
  });

  test("ignores a bunfig.toml in the folder it is started from", async () => {
    // Built with --no-compile-autoload-bunfig; otherwise this preload would break every run.
    const dir = await isolatedFolder();
    await writeFile(join(dir, "bunfig.toml"), 'preload = ["./missing-preload.ts"]\n');
    try {
      const result = await macula("--version");
      expect(result).toEqual({ code: 0, stdout: `${pkg.version}\n`, stderr: "" });
    } finally {
      await rm(join(dir, "bunfig.toml"), { force: true });
    }
  });
});
