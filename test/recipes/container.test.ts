/**
 * recipes/container/Containerfile. No Docker engine runs here (`docker info` cannot reach a
 * daemon; the docker CLI has no buildx or compose plugin; base images cannot be pulled), so the
 * image is not built: recipes/container/README.md says so. What is tested: the file's stages and
 * settings (multi-stage, the build command is scripts/build.ts's, non-root user, the data
 * volume, the ports, the health check), that the image's default command with the image's own
 * config passes `macula node up --check`, and that its HEALTHCHECK command, run here, tells a
 * live node's /healthz from a stopped one.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { parseArgs } from "../../scripts/build.ts";
import { type Proc, spawnMacula } from "../helpers/proc.ts";
import { execForm, type Instruction, instructions, options } from "./containerfile.ts";
import { FakeRoot, macula, nodeCreds, realm, recipe, REPO, tool } from "./helpers.ts";

const FILE = instructions(recipe("container/Containerfile"));
const CONFIG = recipe("container/node.yaml");
const last = Math.max(...FILE.map((i) => i.stage));
const runtime = FILE.filter((i) => i.stage === last);
const only = (op: string, list: Instruction[] = runtime): Instruction => {
  const found = list.filter((i) => i.op === op);
  if (found.length !== 1) throw new Error(`${op}: expected one in the runtime stage`);
  return found[0]!;
};
/** The admin port of the image's config (`admin.listen`). */
const ADMIN_PORT = Number(
  String((parse(CONFIG) as { admin: { listen: string } }).admin.listen).split(":").pop(),
);

/** A TCP port on 127.0.0.1 that was free a moment ago (the kernel's pick for port 0). */
function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

let dir: string;
let root: FakeRoot;
const procs: Proc[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "macula-container-"));
  root = new FakeRoot(join(dir, "root"), ["/etc/macula", "/var/lib/macula"]);
  // What `docker run -v …/creds:/etc/macula/creds:ro` mounts (README), realm as in node.yaml.
  await nodeCreds(await realm("acme"), "box-1", root.path("/etc/macula/creds"));
});

afterAll(async () => {
  for (const p of procs) p.p.kill("SIGKILL");
  await Promise.all(procs.map((p) => p.exited.catch(() => 0)));
  rmSync(dir, { recursive: true, force: true });
});

/** The image's ENTRYPOINT + CMD, with the binary run from source and paths under the root. */
function imageCommand(): string[] {
  const [bin, ...entry] = execForm(only("ENTRYPOINT"));
  expect(bin).toBe("/usr/local/bin/macula");
  return [...entry, ...execForm(only("CMD"))].map((a) => root.rewrite(a));
}

describe("recipes/container/Containerfile", () => {
  test("two stages: the build runs scripts/build.ts bin, the runtime copies dist/macula", () => {
    expect(FILE.filter((i) => i.op === "FROM").length).toBe(2);
    const build = FILE.filter((i) => i.stage === 0);
    expect(only("FROM", build).args).toMatch(/ AS build$/);
    const compile = build.find((i) => i.op === "RUN" && i.args.includes("scripts/build.ts"));
    const words = compile!.args.split("&&")[0]!.trim().split(/\s+/);
    expect(words.slice(0, 2)).toEqual(["node_modules/.bin/bun", "scripts/build.ts"]);
    // The arguments are ones scripts/build.ts accepts: the binary, at its default place.
    expect(parseArgs(words.slice(2))).toEqual({
      targets: ["bin"],
      outfile: join(REPO, "dist", "macula"),
    });
    const copy = runtime.filter((i) => i.op === "COPY").map((i) => options(i.args));
    expect(copy).toContainEqual({
      opts: { from: "build" },
      rest: "/src/dist/macula /usr/local/bin/macula",
    });
  });

  test("every file the runtime stage copies from the context exists", () => {
    const sources = runtime.filter((i) => i.op === "COPY" && !i.args.startsWith("--from"))
      .map((i) => i.args.split(/\s+/)[0]!);
    expect(sources).toEqual(["recipes/container/node.yaml"]);
    for (const s of sources) expect(existsSync(join(REPO, s))).toBe(true);
    const ignored = recipe("container/Containerfile.dockerignore").split("\n")
      .filter((l) => l !== "" && !l.startsWith("#"));
    for (const s of sources) expect(ignored.some((i) => s.startsWith(i))).toBe(false);
  });

  test("runs as a non-root user, with the data volume and the ports exposed", () => {
    const user = only("USER").args;
    expect(user).toMatch(/^[1-9]\d*:[1-9]\d*$/);
    expect(JSON.parse(only("VOLUME").args)).toEqual(["/var/lib/macula"]);
    expect(only("EXPOSE").args.split(/\s+/)).toEqual(["4433/udp", `${ADMIN_PORT}/tcp`]);
    const config = parse(CONFIG) as { data_dir: string; listen: { port: number } };
    expect(config.data_dir).toBe("/var/lib/macula");
    expect(config.listen.port).toBe(4433);
  });

  test("HEALTHCHECK asks the admin listener's /healthz, on the config's admin port", () => {
    const { opts, rest } = options(only("HEALTHCHECK").args);
    expect(Object.keys(opts).sort()).toEqual(["interval", "retries", "start-period", "timeout"]);
    const cmd = execForm({ op: "CMD", args: rest.replace(/^CMD\s+/, ""), stage: last });
    expect(cmd.at(-1)).toBe(`http://127.0.0.1:${ADMIN_PORT}/healthz`);
  });

  test("the image's command with the image's config passes `node up --check`", async () => {
    root.write("/etc/macula/node.yaml", CONFIG);
    const args = imageCommand();
    expect(args).toEqual(["node", "up", "--config", root.path("/etc/macula/node.yaml")]);
    const r = await macula([...args, "--check"]);
    expect(r.err).toContain("configuration ok");
    expect(r.code).toBe(0);
    expect(r.out).toContain(`cert: ${root.path("/etc/macula/creds/cert.pem")}`);
  });

  test("the image's command fails the check (exit 2) without its mounted credentials", async () => {
    const bare = new FakeRoot(join(dir, "bare"), ["/etc/macula", "/var/lib/macula"]);
    bare.write("/etc/macula/node.yaml", CONFIG);
    const r = await macula([
      "node",
      "up",
      "--config",
      bare.path("/etc/macula/node.yaml"),
      "--check",
    ]);
    expect(r.code).toBe(2);
    expect(r.err).toContain("tls.ca: cannot read");
  });

  test("HEALTHCHECK's command: exit 0 against a live node, non-zero once it stopped", async () => {
    // The image's config on 127.0.0.1 here: a free QUIC port, and a free TCP port for the admin
    // listener (the health check's URL follows it).
    const port = await freeTcpPort();
    const config = root.write(
      "/etc/macula/node.yaml",
      CONFIG.replace("host: 0.0.0.0, port: 4433", "host: 127.0.0.1, port: 0")
        .replace(`listen: 0.0.0.0:${ADMIN_PORT}`, `listen: 127.0.0.1:${port}`),
    );
    const p = spawnMacula(["node", "up", "--config", config]);
    procs.push(p);
    await p.waitFor("out", / is up\n/);
    const { rest } = options(only("HEALTHCHECK").args);
    const cmd = execForm({ op: "CMD", args: rest.replace(/^CMD\s+/, ""), stage: last })
      .map((a) => a.replace(`127.0.0.1:${ADMIN_PORT}`, `127.0.0.1:${port}`));
    const live = await tool(cmd);
    expect(live.stderr).toBe("");
    expect(live.code).toBe(0);
    p.p.kill("SIGTERM");
    expect(await p.code()).toBe(0);
    const after = await tool(cmd);
    expect(after.code).not.toBe(0);
  });
});
