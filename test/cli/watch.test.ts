/**
 * `macula inspect … --watch`, from source against two nodes on 127.0.0.1: views one after
 * another when stdout is not a terminal (one JSON document per line with --json), the screen
 * cleared and redrawn on a terminal (util-linux `script` gives the command one), `--count`,
 * Ctrl-C (exit 130, nothing on stderr), and a view that fails (said once, the watch goes on).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { buildProgram } from "../../cli/main.ts";
import { CLEAR_SCREEN } from "../../cli/commands/shared.ts";
import { issueCert, loadCa, writeCredsDir } from "../../lib/identity/mod.ts";
import { type Mesh, mesh } from "../helpers/mesh.ts";
import { spawnMacula } from "../helpers/proc.ts";

const MAIN = fileURLToPath(new URL("../../cli/main.ts", import.meta.url));
let m: Mesh;
let nobody: string; // client credentials of the realm, in no group: inspect is refused
beforeAll(async () => {
  m = await mesh(2);
  await Promise.all(m.nodes.map((x) => x.waitForMembers(2)));
  nobody = join(m.dir, "nobody");
  const ca = await loadCa(m.nodes[0]!.caDir!);
  const cert = await issueCert({ ca, name: "nobody", role: "client", durationMs: 3_600_000 });
  await writeCredsDir(nobody, { ca: ca.pem, cert: cert.pem, key: cert.keyPem! });
});
afterAll(() => m.close());

const at = (creds = m.nodes[0]!.credsDir!) => ["--server", m.nodes[0]!.url, "--creds", creds];
const HEADER = /^--- \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** stdout cut into views at each `--- <time>` line (the header lines themselves checked). */
function views(stdout: string): string[][] {
  expect(stdout.endsWith("\n")).toBe(true);
  const out: string[][] = [];
  for (const line of stdout.slice(0, -1).split("\n")) {
    if (line.startsWith("--- ")) {
      expect(line).toMatch(HEADER);
      out.push([]);
    } else {
      expect([line, out.length > 0]).toEqual([line, true]); // nothing before the first header
      out.at(-1)!.push(line);
    }
  }
  return out;
}

describe("macula inspect --watch", () => {
  test("not a terminal: --count views, one after another, each under its time", async () => {
    const p = spawnMacula(
      ["inspect", "members", "--watch", "--interval", "100", "--count", "3", ...at()],
    );
    expect(await p.code()).toBe(0);
    expect(p.err).toBe("");
    const all = views(p.out);
    expect(all).toHaveLength(3);
    const ids = m.nodes.map((n) => n.nodeId).sort();
    for (const v of all) {
      expect(v).toHaveLength(3);
      expect(v.slice(0, 2).map((l) => l.slice(0, 52)).sort()).toEqual(ids); // whole ids
      expect(v[2]).toBe("2 members");
    }
  });

  test("--json: one document per line, nothing else", async () => {
    const p = spawnMacula(
      ["inspect", "node", "--watch", "--json", "--interval", "100", "-n", "2", ...at()],
    );
    expect(await p.code()).toBe(0);
    const lines = p.out.split("\n");
    expect(lines.pop()).toBe("");
    expect(lines).toHaveLength(2);
    for (const l of lines) expect(JSON.parse(l).nodeId).toBe(m.nodes[0]!.nodeId);
  });

  test("Ctrl-C ends it: exit 130, nothing on stderr, the last view whole", async () => {
    const p = spawnMacula(["inspect", "interest", "--watch", "--interval", "100", ...at()]);
    await p.waitFor("out", /^--- [^\n]*\n[\s\S]*^--- [^\n]*\n[\s\S]*other nodes with interest/m);
    p.p.kill("SIGINT");
    expect(await p.code()).toBe(130);
    expect(p.err).toBe("");
    const all = views(p.out);
    expect(all.length).toBeGreaterThanOrEqual(2);
    for (const v of all) {
      expect(v[0]).toStartWith(`${m.nodes[0]!.nodeId}  v`);
      expect(v.at(-1)).toMatch(/^\d+ other nodes with interest; /);
    }
  });

  test("Ctrl-C with --json: every line a whole document", async () => {
    const p = spawnMacula(["inspect", "dht", "--watch", "--json", "--interval", "100", ...at()]);
    await p.waitFor("out", /\n.*\n/);
    p.p.kill("SIGINT");
    expect(await p.code()).toBe(130);
    const lines = p.out.split("\n");
    expect(lines.pop()).toBe("");
    for (const l of lines) expect(JSON.parse(l).nodeId).toBe(m.nodes[0]!.nodeId);
  });

  test("on a terminal: the screen cleared and redrawn under a header", async () => {
    const args = ["inspect", "dht", "--watch", "--interval", "100", "--count", "2", ...at()];
    const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    const line = [process.execPath, MAIN, ...args].map(quote).join(" ");
    const proc = Bun.spawn({
      cmd: ["script", "-qfec", line, "/dev/null"], // util-linux: the command on a pseudo-terminal
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      timeout: 60_000,
      killSignal: "SIGKILL",
    });
    const [out, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
    expect(code).toBe(0);
    const frames = out.split(CLEAR_SCREEN);
    expect(frames.shift()).toBe(""); // it starts by clearing
    expect(frames).toHaveLength(2);
    for (const f of frames) {
      const lines = f.split("\r\n"); // the terminal's line ends
      expect(lines[0]).toMatch(/^Every 100 ms: macula inspect dht {2}\S/);
      expect(lines[1]).toBe("");
      expect(lines[2]).toStartWith(`${m.nodes[0]!.nodeId}  server mode (`);
    }
  });

  test("a view that fails is said once on stderr and the watch goes on", async () => {
    const p = spawnMacula(
      ["inspect", "node", "--watch", "--interval", "100", "--count", "3", ...at(nobody)],
    );
    expect(await p.code()).toBe(1); // the last view failed
    expect(p.out).toBe("");
    const lines = p.err.split("\n");
    expect(lines.pop()).toBe("");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toBe(
      "macula inspect node: inspect.node: inspect.node is for operators only " +
        "(this certificate is not in group operator)",
    );
  });

  test("--count is for --watch", async () => {
    const p = spawnMacula(["inspect", "members", "--count", "2", ...at()]);
    expect(await p.code()).toBe(2);
    expect(p.out).toBe("");
    expect(p.err).toBe("macula inspect members: --count is for --watch\n");
  });

  test("every inspect subcommand watches", () => {
    const inspect = buildProgram().commands.find((c) => c.name() === "inspect")!;
    const names = inspect.commands.map((c) => c.name());
    expect(names).toEqual(["members", "node", "interest", "dht"]);
    for (const c of inspect.commands) {
      const flags = c.options.map((o) => o.flags);
      expect([c.name(), flags]).toEqual([
        c.name(),
        expect.arrayContaining(["--watch", "--interval <ms>", "-n, --count <n>"]),
      ]);
      expect(c.options.find((o) => o.long === "--interval")!.defaultValue).toBe(1000);
    }
  });
});
