/**
 * `macula context` end to end, from source (`bun cli/main.ts context …`), each test with its
 * own temp MACULA_CONFIG_DIR and HOME: add, use, ls, show, rm, their JSON, their help, and the
 * exit codes (1 for failures, 2 for usage errors).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { writeCredsDir } from "../../lib/identity/credentials.ts";
import { makeCa, tlsFor } from "../../lib/identity/devca.ts";
import { type Result, run } from "../helpers/run.ts";

const MAIN = fileURLToPath(new URL("../../cli/main.ts", import.meta.url));

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** A fresh folder to work in, with its own config dir and home. */
async function sandbox() {
  const root = await mkdtemp(join(tmpdir(), "macula-context-cli-"));
  dirs.push(root);
  const config = join(root, "config");
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: join(root, "home"), // Bun may leave a cache folder in $HOME
    MACULA_CONFIG_DIR: config,
  };
  /** Runs `bun cli/main.ts context ...args` in the sandbox. */
  const macula = (args: string[], extra: Record<string, string> = {}): Promise<Result> =>
    run([process.execPath, MAIN, ...args], { cwd: root, env: { ...env, ...extra } });
  const context = (args: string[], extra: Record<string, string> = {}): Promise<Result> =>
    macula(["context", ...args], extra);
  return { root, config, file: join(config, "contexts.json"), context, macula };
}

describe("macula context (from source)", () => {
  test("add, ls, use, show, rm: the whole round", async () => {
    const { root, file, context } = await sandbox();
    await mkdir(join(root, "acme"));
    for (const f of ["ca.pem", "cert.pem", "key.pem"]) await writeFile(join(root, "acme", f), "");

    let r = await context([
      "add",
      "acme",
      "--server",
      "quic://Edge-1.acme.example",
      "--creds",
      "acme",
      "--description",
      "acme production",
      "--use",
    ]);
    expect(r).toEqual({
      code: 0,
      stdout: `saved context acme (quic://edge-1.acme.example:4433), now current in ${file}\n`,
      stderr: "",
    });
    r = await context(["add", "local", "--server", "quic://[::1]:7000"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`saved context local (quic://[::1]:7000) in ${file}\n`);

    r = await context(["ls"]);
    expect(r.code).toBe(0);
    expect(r.stdout.split("\n")).toEqual([
      "  NAME   SERVER                           CREDS" +
      " ".repeat(join(root, "acme").length - 3) + "DESCRIPTION",
      `* acme   quic://edge-1.acme.example:4433  ${join(root, "acme")}  acme production`,
      `  local  quic://[::1]:7000                -`,
      "",
    ]);

    r = await context(["ls", "--json"]);
    expect(JSON.parse(r.stdout)).toEqual({
      file,
      current: "acme",
      contexts: [
        {
          name: "acme",
          server: "quic://edge-1.acme.example:4433",
          creds: join(root, "acme"),
          description: "acme production",
          current: true,
        },
        {
          name: "local",
          server: "quic://[::1]:7000",
          creds: null,
          description: null,
          current: false,
        },
      ],
    });

    r = await context(["show"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      [
        "name         acme",
        "server       quic://edge-1.acme.example:4433",
        `creds        ${join(root, "acme")}`,
        "description  acme production",
        "current      yes",
        `file         ${file}`,
        "",
      ].join("\n"),
    );

    r = await context(["use", "local"]);
    expect(r).toEqual({ code: 0, stdout: "using context local (quic://[::1]:7000)\n", stderr: "" });
    r = await context(["show", "--json"]);
    expect(JSON.parse(r.stdout)).toMatchObject({ name: "local", current: true, missingCreds: [] });

    r = await context(["rm", "local"]);
    expect(r).toEqual({
      code: 0,
      stdout: "removed context local (it was current; no context is current now)\n",
      stderr: "",
    });
    r = await context(["rm", "acme"]);
    expect(r.stdout).toBe("removed context acme\n");
    expect(JSON.parse(await readFile(file, "utf8"))).toEqual({
      version: 1,
      current: null,
      contexts: {},
    });
    expect((await stat(join(file, ".."))).mode & 0o777).toBe(0o700);

    r = await context(["ls"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toStartWith(`no contexts saved (${file})\n`);
  });

  test("list and remove are aliases of ls and rm", async () => {
    const { context } = await sandbox();
    expect((await context(["add", "a", "--server", "quic://x"])).code).toBe(0);
    expect((await context(["list"])).stdout).toContain("  a     quic://x:4433");
    expect((await context(["remove", "a"])).stdout).toBe("removed context a\n");
  });

  test("show warns about missing credential files and overriding variables", async () => {
    const { root, context } = await sandbox();
    await context(["add", "a", "--server", "quic://x", "--creds", "nowhere", "--use"]);
    const r = await context(["show"], { MACULA_URL: "quic://y" });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      `creds        ${join(root, "nowhere")} (missing ca.pem, cert.pem, key.pem)`,
    );
    expect(r.stderr).toBe(
      "macula context show: warning: MACULA_URL is set and overrides this context " +
        "(unless --context names it)\n",
    );
    const add = await context(["add", "b", "--server", "quic://x", "--creds", "nowhere"]);
    expect(add.code).toBe(0);
    expect(add.stderr).toBe(
      `macula context add: warning: ${join(root, "nowhere")} lacks ca.pem, cert.pem, key.pem\n`,
    );
  });

  test("add refuses to overwrite without --force (exit 1), replaces with it", async () => {
    const { context } = await sandbox();
    await context(["add", "a", "--server", "quic://x:1"]);
    let r = await context(["add", "a", "--server", "quic://y:2"]);
    expect(r).toEqual({
      code: 1,
      stdout: "",
      stderr: 'macula context add: context "a" already exists (--force replaces it)\n',
    });
    r = await context(["add", "a", "--server", "quic://y:2", "--force"]);
    expect(r.code).toBe(0);
    r = await context(["show", "a", "--json"]);
    expect(JSON.parse(r.stdout)).toMatchObject({ server: "quic://y:2", current: false });
  });

  test("unknown names fail with exit 1, listing the known ones", async () => {
    const { context } = await sandbox();
    await context(["add", "b", "--server", "quic://x"]);
    await context(["add", "a", "--server", "quic://x"]);
    for (const args of [["use", "nope"], ["show", "nope"], ["rm", "nope"]]) {
      const r = await context(args);
      expect(r).toEqual({
        code: 1,
        stdout: "",
        stderr: `macula context ${args[0]}: no context named "nope" (known: a, b)\n`,
      });
    }
  });

  test("show with no current context fails with a hint", async () => {
    const { context } = await sandbox();
    const r = await context(["show"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("macula context show: no context is current");
    expect(r.stderr).toContain("macula context use <name>");
  });

  test("a corrupt file is reported (exit 1) and left alone", async () => {
    const { config, file, context } = await sandbox();
    await mkdir(config, { recursive: true });
    await writeFile(file, "{ not json");
    for (const args of [["ls"], ["add", "a", "--server", "quic://x"]]) {
      const r = await context(args);
      expect(r.code).toBe(1);
      expect(r.stderr).toStartWith(`macula context ${args[0]}: ${file}: not valid JSON`);
    }
    expect(await readFile(file, "utf8")).toBe("{ not json");
  });

  test.each([
    [["add", "a", "--server", "http://x:1"], '--server "http://x:1": scheme must be quic://'],
    [["add", "a", "--server", "quic://x:0"], "port 0 is out of range (1-65535)"],
    [["add", "a b", "--server", "quic://x"], 'context name "a b" may only contain'],
    [["add", "a"], "--server is required"],
    [["add", "--server", "quic://x"], "missing required argument 'name'"],
    [["use"], "missing required argument 'name'"],
    [["rm", "x".repeat(65)], "is longer than 64 characters"],
    [["ls", "--frobnicate"], "unknown option '--frobnicate'"],
    [["frobnicate"], "unknown command 'frobnicate'"],
  ])("usage error %p exits 2: %s", async (args, message) => {
    const { config, context } = await sandbox();
    const r = await context(args);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain(message);
    expect(r.stderr).toContain("macula context");
    expect(await stat(config).catch(() => null)).toBeNull(); // nothing written
  });

  test.each(["add", "use", "ls", "show", "rm"])("context %s --help has examples", async (sub) => {
    const { context } = await sandbox();
    const r = await context([sub, "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Usage: macula context ${sub}`);
    expect(r.stdout).toMatch(/Examples?:\n {2}\$ macula context /);
  });

  test("use warns that MACULA_URL and MACULA_CREDS override it, short of --context", async () => {
    const { context } = await sandbox();
    await context(["add", "a", "--server", "quic://x", "--creds", "/c"]);
    await context(["add", "b", "--server", "quic://x"]);
    let r = await context(["use", "a"], { MACULA_URL: "quic://y", MACULA_CREDS: "/e" });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(
      "macula context use: warning: MACULA_URL is set and overrides this context's server " +
        "(unless a command is given --context a)\n" +
        "macula context use: warning: MACULA_CREDS is set and overrides this context's creds " +
        "(unless a command is given --context a)\n",
    );
    // A context without creds has nothing for MACULA_CREDS to override.
    r = await context(["use", "b"], { MACULA_CREDS: "/e" });
    expect(r).toMatchObject({ code: 0, stderr: "" });
  });

  test("--context beats MACULA_URL and MACULA_CREDS for a client command", async () => {
    const { root, context, macula } = await sandbox();
    const creds = join(root, "creds");
    await writeCredsDir(
      creds,
      await tlsFor(await makeCa("ed25519", "acme-ca", "acme"), { role: "client" }),
    );
    // The context's server never resolves (RFC 6761): the error names where it came from.
    await context(["add", "a", "--server", "quic://nohost.invalid:4433", "--creds", creds]);
    const r = await macula(["inspect", "node", "--context", "a"], {
      MACULA_URL: "quic://127.0.0.1:9",
      MACULA_CREDS: join(root, "nowhere"),
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(
      "cannot connect to quic://nohost.invalid:4433 (from context a): cannot resolve nohost.invalid",
    );
    expect(r.stderr).not.toContain("MACULA_URL");
    expect(r.stderr).not.toContain("nowhere");
  }, 60_000);

  test("context --help explains the precedence and the exit codes", async () => {
    const { context } = await sandbox();
    const r = await context(["--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("server: --server, --context <name>, MACULA_URL, the current");
    expect(r.stdout).toContain("creds:  --creds, --context's creds, MACULA_CREDS, the current");
    expect(r.stdout).toContain("Exit codes:");
  });
});
