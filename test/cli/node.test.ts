/**
 * `macula node up` end to end, as real processes on 127.0.0.1: the ready line and the banner,
 * configuration from a file under flags, configuration errors naming the key (exit 2), a busy
 * port (exit 1), draining on SIGINT/SIGTERM (exit 0), two nodes joined from the command line,
 * and the compiled `dist/macula` running a node with pub/sub through it. Synchronisation is by
 * printed lines, never by sleeping; every wait is bounded.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Node } from "../../lib/node/node.ts";
import type { Subprocess } from "bun";
import { Proc } from "../helpers/proc.ts";

const MAIN = fileURLToPath(new URL("../../cli/main.ts", import.meta.url));
const BUILT = fileURLToPath(new URL("../../dist/macula", import.meta.url));

let root: string;
let env: Record<string, string>;
const procs: Proc[] = [];
let dirs = 0;

/** A fresh directory under the test root. */
function fresh(name: string): string {
  return join(root, `${name}-${++dirs}`);
}

/** Starts `macula ...args` (from source, or the compiled binary with `binary`). */
function macula(args: string[], o: { binary?: boolean } = {}): Proc {
  const p = Bun.spawn({
    cmd: o.binary ? [BUILT, ...args] : [process.execPath, MAIN, ...args],
    cwd: root,
    env,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    timeout: 60_000,
    killSignal: "SIGKILL",
  }) as Subprocess<"pipe" | "ignore", "pipe", "pipe">;
  const proc = new Proc(args, p);
  procs.push(proc);
  return proc;
}

/** Runs a command to its end. */
async function done(args: string[], o: { binary?: boolean } = {}) {
  const p = macula(args, o);
  const code = await p.code();
  return { code, stdout: p.out, stderr: p.err };
}

interface Ready {
  ready: true;
  nodeId: string;
  realm: string;
  url: string;
  port: number;
  dataDir: string;
  credsDir: string;
  caDir: string;
}

/** Starts `node up --ready-json ...args` and waits for its ready line. */
async function nodeUp(args: string[], o: { binary?: boolean } = {}) {
  const p = macula(["node", "up", "--ready-json", ...args], o);
  await p.waitFor("out", "\n");
  return { proc: p, ready: JSON.parse(p.lines()[0]!) as Ready };
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "macula-node-cli-"));
  env = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: join(root, "home"),
    MACULA_CONFIG_DIR: join(root, "config"),
  };
});

afterAll(async () => {
  for (const p of procs) p.p.kill("SIGKILL");
  await Promise.allSettled(procs.map((p) => p.exited));
  rmSync(root, { recursive: true, force: true });
});

describe("macula node up", () => {
  test("--ready-json: one JSON line; pub/sub through the node; SIGTERM drains, exit 0", async () => {
    const dataDir = fresh("n");
    const { proc, ready } = await nodeUp(["--port", "0", "--data-dir", dataDir]);
    expect(ready).toMatchObject({ ready: true, realm: "dev", dataDir });
    expect(ready.url).toBe(`quic://127.0.0.1:${ready.port}`);
    expect(ready.nodeId).toMatch(/^[a-z2-7]{52}$/);
    expect(ready.credsDir).toBe(join(dataDir, "client"));
    expect(ready.caDir).toBe(join(dataDir, "ca"));
    // The help and docs/cli.md name exactly the fields the line has.
    const help = (await done(["node", "up", "--help"])).stdout.replace(/\s+/g, " ");
    const listed = /--ready-json print one JSON line \{([^}]+)\}/.exec(help)![1]!.split(",");
    expect(listed).toEqual(Object.keys(ready));
    const documented = /with `--ready-json` one[\s\S]*?```json\n([\s\S]*?)```/.exec(
      readFileSync(join(import.meta.dir, "../../docs/cli.md"), "utf8"),
    )![1]!;
    expect(Object.keys(JSON.parse(documented))).toEqual(Object.keys(ready));
    expect(proc.err).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z INFO {2}created dev realm CA in /m);

    const target = ["--server", ready.url, "--creds", ready.credsDir];
    const sub = macula(["sub", "up.test", "--count", "1", ...target]);
    await sub.waitFor("err", "subscribed to up.test");
    expect((await done(["pub", "up.test", "through the node", ...target])).code).toBe(0);
    expect(await sub.code()).toBe(0);
    expect(sub.out).toBe("[up.test] through the node\n");

    proc.p.kill("SIGTERM");
    expect(await proc.code()).toBe(0);
    expect(proc.err).toContain("SIGTERM: draining");
    expect(proc.err).toContain("stopped: node shutting down (SIGTERM)");
    expect(proc.lines().length).toBe(1);
  });

  test("the banner says how to connect and how a second node joins; SIGINT exits 0", async () => {
    const dataDir = fresh("banner");
    const proc = macula(["node", "up", "--listen", "127.0.0.1:0", "--data-dir", dataDir]);
    await proc.waitFor("out", "drains the node");
    const url = /url +(quic:\/\/127\.0\.0\.1:\d+)/.exec(proc.out)?.[1];
    expect(url).toBeDefined();
    expect(proc.out).toMatch(/^macula node [a-z2-7]{52} is up$/m);
    expect(proc.out).toContain("realm    dev");
    expect(proc.out).toContain(
      `$ macula sub '>' --server ${url} --creds ${join(dataDir, "client")}`,
    );
    expect(proc.out).toContain(`--dev-ca-dir ${join(dataDir, "ca")} --join ${url}`);
    proc.p.kill("SIGINT");
    expect(await proc.code()).toBe(0);
    expect(proc.err).toContain("SIGINT: draining");
  });

  test("two nodes joined from the command line carry a message across", async () => {
    const a = await nodeUp(["--port", "0", "--data-dir", fresh("a")]);
    const b = await nodeUp([
      "--port",
      "0",
      "--data-dir",
      fresh("b"),
      "--dev-ca-dir",
      a.ready.caDir,
      "--join",
      a.ready.url,
    ]);
    await b.proc.waitFor("err", "route up: ");
    const sub = macula([
      "sub",
      "across.>",
      "--count",
      "1",
      "--server",
      b.ready.url,
      "--creds",
      b.ready.credsDir,
    ]);
    await sub.waitFor("err", "subscribed to across.>");
    const pub = await done([
      "pub",
      "across.nodes",
      "hop",
      "--server",
      a.ready.url,
      "--creds",
      a.ready.credsDir,
    ]);
    expect(pub.code).toBe(0);
    expect(await sub.code()).toBe(0);
    expect(sub.out).toBe("[across.nodes] hop\n");
    for (const n of [a, b]) n.proc.p.kill("SIGTERM");
    expect([await a.proc.code(), await b.proc.code()]).toEqual([0, 0]);
  });

  test("flags override the config file", async () => {
    const dataDir = fresh("file");
    const file = join(root, "override.yaml");
    writeFileSync(
      file,
      `realm: dev\ndata_dir: ${join(root, "not-this-one")}\nlisten: { host: 127.0.0.1, port: 1 }\n`,
    );
    const { proc, ready } = await nodeUp(["--config", file, "--port", "0", "--data-dir", dataDir]);
    expect(ready.port).not.toBe(1);
    expect(ready.url).toBe(`quic://127.0.0.1:${ready.port}`); // host from the file
    expect(ready.dataDir).toBe(dataDir);
    expect(statSync(join(dataDir, "client", "cert.pem")).isFile()).toBe(true);
    proc.p.kill("SIGTERM");
    expect(await proc.code()).toBe(0);
  });

  test("configuration errors name the key and exit 2", async () => {
    const bad = (name: string, text: string) => {
      const file = join(root, name);
      writeFileSync(file, text);
      return file;
    };
    let r = await done(["node", "up", "--config", bad("k.yaml", "listen: { prot: 4433 }\n")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("k.yaml: listen.prot: unknown key (known: host, port)");
    r = await done(["node", "up", "--config", bad("p.yaml", "listen: { port: 70000 }\n")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("listen.port: must be an integer from 0 to 65535");
    r = await done(["node", "up", "--config", bad("y.yaml", "realm: [unclosed\n")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/y\.yaml:\d+:\d+: /);
    r = await done(["node", "up", "--config", bad("dup.yaml", "realm: dev\nrealm: acme\n")]);
    expect(r.stderr).toBe( // the line and a caret under the column
      `macula node up: ${join(root, "dup.yaml")}:2:1: Map keys must be unique\n` +
        "  2 | realm: acme\n" +
        "    | ^\n",
    );
    r = await done(["node", "up", "--config", join(root, "missing.yaml")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("missing.yaml: cannot read it: no such file");
    r = await done(["node", "up", "--realm", "acme", "--data-dir", fresh("acme")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("tls: required for realm acme");
    r = await done(["node", "up", "--port", "0", "--listen", "127.0.0.1:0"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("macula node up: --listen and --port cannot be used together");
    r = await done(["node", "up", "--join", "http://x:1"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--join "http://x:1": scheme must be quic://');
    r = await done(["node", "up", "--listen", "1.2.3.4:99999"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("the port must be 0-65535");
  });

  test("a port already in use: exit 1 saying so, before anything is written", async () => {
    const busy = await Node.start({
      dataDir: fresh("busy"),
      listen: { host: "127.0.0.1", port: 0 },
    });
    try {
      const port = busy.endpoint.address.port;
      const second = fresh("second");
      mkdirSync(second); // a data directory that exists stays as it was: empty
      const r = await done(["node", "up", "--listen", `127.0.0.1:${port}`, "--data-dir", second]);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(
        `macula node up: cannot listen on udp 127.0.0.1:${port}: the port is in use (another ` +
          `node or program has it; choose another with --listen or --port, or 0 for a free one)\n`,
      );
      expect(readdirSync(second)).toEqual([]);
    } finally {
      await busy.stop();
    }
  });
});

describe("dist/macula (compiled)", () => {
  test("node up, sub and pub end to end", async () => {
    const info = (() => {
      try {
        return statSync(BUILT);
      } catch {
        return undefined;
      }
    })();
    if (!info?.isFile()) {
      throw new Error(`${BUILT} is missing: run \`npm run build\` first (\`npm test\` does)`);
    }
    const { proc, ready } = await nodeUp(["--port", "0", "--data-dir", fresh("bin")], {
      binary: true,
    });
    const target = ["--server", ready.url, "--creds", ready.credsDir];
    const sub = macula(["sub", "bin.>", "--json", "--count", "2", ...target], { binary: true });
    await sub.waitFor("err", "subscribed to bin.>");
    const pub = await done(["pub", "bin.test", '{"compiled":true}', "--count", "2", ...target], {
      binary: true,
    });
    expect(pub).toEqual({ code: 0, stdout: "", stderr: "published 2 messages to bin.test\n" });
    expect(await sub.code()).toBe(0);
    expect(sub.lines().map((l) => JSON.parse(l))).toEqual(
      Array(2).fill({ topic: "bin.test", data: { compiled: true }, bytes: 17 }),
    );
    proc.p.kill("SIGINT");
    expect(await proc.code()).toBe(0);
  });
});
