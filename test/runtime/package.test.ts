/**
 * The package as its users get it: `npm pack` (its `prepack` builds dist/lib), `npm install` of
 * the tarball into a fresh project outside the repository, and `import { connect, Node } from
 * "macula"` there under Node (20+), Deno (with the permissions docs/client.md documents, each of
 * them needed) and Bun: a node in-process on 127.0.0.1, a pub/sub round trip and an RPC through
 * `connect()`. The declarations type-check a user's code under tsc (Node types) and deno check.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Node } from "../../lib/node/mod.ts";
import { run } from "../helpers/run.ts";
import pkg from "../../package.json" with { type: "json" };

const ROOT = resolve(import.meta.dir, "../..");
const BIN = join(ROOT, "node_modules", ".bin");
const ENV: Record<string, string> = {
  ...(process.env as Record<string, string>),
  PATH: `${BIN}:${process.env.PATH ?? ""}`,
  DENO_NO_UPDATE_CHECK: "1",
  DENO_NO_PROMPT: "1",
  NO_COLOR: "1",
  npm_config_fund: "false",
  npm_config_audit: "false",
  npm_config_update_notifier: "false",
};
/** The commands docs/client.md gives; the tests below run exactly these. */
const DENO_CLIENT = ["deno", "run", "--allow-net", "--allow-read", "--allow-ffi", "app.ts"];
const DENO_NODE = ["deno", "run", "--allow-net", "--allow-read", "--allow-write", "--allow-ffi"];

/** A pub/sub round trip and an RPC through `c`; prints what came back as one JSON line. */
const ROUND_TRIP = `
const sub = c.subscribe("runtime.*");
c.serve("runtime.upper", (p) => new TextEncoder().encode(new TextDecoder().decode(p).toUpperCase()));
await c.flush();
c.publish("runtime.hello", "published");
const got = await sub[Symbol.asyncIterator]().next();
const reply = new TextDecoder().decode(await c.call("runtime.upper", "called"));
console.log(JSON.stringify({ message: got.value?.text(), reply }));
await c.close();
`;
const EXPECTED = { message: "published", reply: "CALLED" };

/** A node of its own in-process, then the round trip through a client attached to it. */
const NODE_APP = `
import { connect, Node } from "macula";
import process from "node:process";
const dataDir = String(process.argv.at(-1));
const node = await Node.start({ dataDir, listen: { host: "127.0.0.1", port: 0 } });
const c = await connect({ url: node.url, creds: node.credsDir ?? "" });
${ROUND_TRIP}
await node.stop();
`;

let dir: string;
let project: string;

function lastJson(stdout: string): unknown {
  const line = stdout.trim().split("\n").at(-1) ?? "";
  try {
    return JSON.parse(line);
  } catch {
    return { unparsed: stdout };
  }
}

/** `r` exited 0, or the test fails showing its output. */
function ok(r: { code: number; stdout: string; stderr: string }, what: string): void {
  if (r.code !== 0) throw new Error(`${what}: exit ${r.code}\n${r.stdout}\n${r.stderr}`);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "macula-package-"));
  expect(dir.startsWith(ROOT)).toBe(false);
  const packed = await run(["npm", "pack", "--pack-destination", dir], {
    cwd: ROOT,
    env: ENV,
    timeoutMs: 180_000,
  });
  ok(packed, "npm pack");
  const tarball = join(dir, `macula-${pkg.version}.tgz`);
  expect(existsSync(tarball)).toBe(true);
  project = join(dir, "app");
  await Bun.write(
    join(project, "package.json"),
    JSON.stringify({ name: "macula-user", private: true, type: "module" }),
  );
  // --prefer-offline: the dependencies are in npm's cache since the repository's `npm install`.
  const installed = await run(["npm", "install", "--prefer-offline", tarball], {
    cwd: project,
    env: ENV,
    timeoutMs: 240_000,
  });
  ok(installed, "npm install of the packed tarball");
}, 480_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("the packed package", () => {
  test("holds the built library and nothing of the sources", () => {
    const root = join(project, "node_modules", "macula");
    for (const f of ["package.json", "dist/lib/mod.js", "dist/lib/mod.d.ts"]) {
      expect(existsSync(join(root, f))).toBe(true);
    }
    for (const f of ["mod.ts", "lib", "cli", "test"]) expect(existsSync(join(root, f))).toBe(false);
    const installed = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
    expect(installed.exports["."]).toEqual({
      types: "./dist/lib/mod.d.ts",
      default: "./dist/lib/mod.js",
    });
  });
});

describe("Node", () => {
  test("is version 20 or later", async () => {
    const r = await run(["node", "--version"], { env: ENV });
    ok(r, "node --version");
    expect(Number(/^v(\d+)\./.exec(r.stdout)?.[1])).toBeGreaterThanOrEqual(20);
  });

  test('import { connect, Node } from "macula": a node in-process, pub/sub and RPC', async () => {
    writeFileSync(join(project, "app.mjs"), NODE_APP);
    const r = await run(["node", "app.mjs", join(dir, "node-data")], {
      cwd: project,
      env: ENV,
      timeoutMs: 60_000,
    });
    ok(r, "node app.mjs");
    expect(lastJson(r.stdout)).toEqual(EXPECTED);
  });

  test("the declarations type-check a user's code with tsc and Node's types", async () => {
    // Node's types from the repository (no download); no skipLibCheck: the .d.ts are checked.
    const tsconfig = {
      compilerOptions: {
        target: "ES2022",
        module: "NodeNext",
        moduleResolution: "NodeNext",
        strict: true,
        noEmit: true,
        types: ["node"],
        typeRoots: [join(ROOT, "node_modules", "@types")],
      },
    };
    const good = `import { connect, Node, type Client } from "macula";
const node: Node = await Node.start({ dataDir: "d", listen: { host: "127.0.0.1", port: 0 } });
const c: Client = await connect({ url: node.url, creds: node.credsDir! });
c.publish("a.b", "x");
`;
    writeFileSync(join(project, "good.ts"), good);
    writeFileSync(join(project, "bad.ts"), `${good}await connect({ server: "quic://x" });\n`);
    const tsc = join(BIN, "tsc");
    writeFileSync(
      join(project, "tsconfig.json"),
      JSON.stringify({ ...tsconfig, files: ["good.ts"] }),
    );
    ok(await run([tsc, "-p", "tsconfig.json"], { cwd: project, env: ENV }), "tsc good.ts");
    writeFileSync(
      join(project, "tsconfig.json"),
      JSON.stringify({ ...tsconfig, files: ["bad.ts"] }),
    );
    const bad = await run([tsc, "-p", "tsconfig.json"], { cwd: project, env: ENV });
    expect(bad.code).not.toBe(0);
    expect(bad.stdout).toContain("'server' does not exist in type 'ConnectOptions'");
  });
});

describe("Deno, outside the repository", () => {
  let node: Node;
  beforeAll(async () => {
    node = await Node.start({
      dataDir: join(dir, "deno-peer"),
      listen: { host: "127.0.0.1", port: 0 },
    });
    writeFileSync(
      join(project, "app.ts"),
      `import { connect } from "macula";
const [url, creds] = Deno.args;
const c = await connect({ url, creds });
${ROUND_TRIP}`,
    );
  });
  afterAll(async () => {
    await node?.stop();
  });

  test("docs/client.md gives exactly the commands run here", () => {
    const doc = readFileSync(join(ROOT, "docs", "client.md"), "utf8");
    expect(doc).toContain(DENO_CLIENT.join(" "));
    expect(doc).toContain(`${DENO_NODE.join(" ")} app.ts`);
  });

  test(`${DENO_CLIENT.join(" ")}: pub/sub and RPC through a node`, async () => {
    const [, ...args] = DENO_CLIENT;
    const r = await run([join(BIN, "deno"), ...args, node.url, node.credsDir!], {
      cwd: project,
      env: ENV,
      timeoutMs: 60_000,
    });
    ok(r, DENO_CLIENT.join(" "));
    expect(lastJson(r.stdout)).toEqual(EXPECTED);
  });

  test("each of those permissions is needed: without it Deno names the flag", async () => {
    for (const flag of ["--allow-net", "--allow-read", "--allow-ffi"]) {
      const args = DENO_CLIENT.slice(1).filter((a) => a !== flag);
      const r = await run([join(BIN, "deno"), ...args, node.url, node.credsDir!], {
        cwd: project,
        env: ENV,
        timeoutMs: 60_000,
      });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(`run again with the ${flag} flag`);
    }
  });

  test(`${DENO_NODE.join(" ")}: a node in-process, pub/sub and RPC`, async () => {
    writeFileSync(join(project, "node-app.ts"), NODE_APP);
    const r = await run(
      [join(BIN, "deno"), ...DENO_NODE.slice(1), "node-app.ts", join(dir, "deno-node")],
      { cwd: project, env: ENV, timeoutMs: 60_000 },
    );
    ok(r, "deno run node-app.ts");
    expect(lastJson(r.stdout)).toEqual(EXPECTED);
  });

  test("deno check: the declarations type-check a user's code", async () => {
    // app.ts only: node-app.ts imports node:process, whose types Deno wants from an installed
    // @types/node in a package.json project; that is about the user's code, not the package.
    ok(await run([join(BIN, "deno"), "check", "app.ts"], { cwd: project, env: ENV }), "deno check");
    writeFileSync(
      join(project, "bad-app.ts"),
      'import { connect } from "macula";\nawait connect({ server: "quic://x" });\n',
    );
    const bad = await run([join(BIN, "deno"), "check", "bad-app.ts"], { cwd: project, env: ENV });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain("'server' does not exist in type 'ConnectOptions'");
  });
});

describe("Bun", () => {
  test('import { connect, Node } from "macula": a node in-process, pub/sub and RPC', async () => {
    writeFileSync(join(project, "app.mjs"), NODE_APP);
    const r = await run([process.execPath, "app.mjs", join(dir, "bun-node")], {
      cwd: project,
      env: ENV,
      timeoutMs: 60_000,
    });
    ok(r, "bun app.mjs");
    expect(lastJson(r.stdout)).toEqual(EXPECTED);
  });
});
