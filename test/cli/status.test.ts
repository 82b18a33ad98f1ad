/**
 * `macula status` from source against three nodes on 127.0.0.1: this node, a table of the
 * members (with tags, the route's certificate name, path and RTT), a summary line; `--json` as
 * the document docs/cli.md describes; a member that left. The text of a relayed path is checked
 * on a document made here (three nodes on one host reach each other directly).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import dgram from "node:dgram";
import { statusOf, statusText } from "../../cli/commands/status.ts";
import type { NodeDoc } from "../../cli/commands/inspect.ts";
import type { MemberRow } from "../../cli/commands/shared.ts";
import type { Node } from "../../lib/node/node.ts";
import { VERSION } from "../../lib/util/mod.ts";
import { type Mesh, mesh } from "../helpers/mesh.ts";
import { spawnMacula } from "../helpers/proc.ts";

let m: Mesh;
let a: Node, b: Node, c: Node;
beforeAll(async () => {
  m = await mesh(1);
  a = m.nodes[0]!;
  b = await m.add({ tags: ["gpu", "edge"] });
  c = await m.add();
  await Promise.all(m.nodes.map((x) => x.waitForRoutes(2)));
  await Promise.all(m.nodes.map((x) => x.waitForMembers(3)));
});
afterAll(() => m.close());

const port = (n: Node) => n.endpoint.address.port;
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

async function status(...args: string[]) {
  const p = spawnMacula(["status", ...args, "--server", a.url, "--creds", a.credsDir!]);
  const code = await p.code();
  return { code, stdout: p.out, stderr: p.err };
}

/** The nodes other than `a`, in the order the table lists them (by address). */
const others = () => [b, c].sort((x, y) => x.url.localeCompare(y.url));

describe("macula status", () => {
  test("text: this node, one line per member under a header, then the summary", async () => {
    const r = await status();
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const lines = r.stdout.split("\n");
    expect(lines.at(-1)).toBe(""); // ends with a line break
    const blank = lines.indexOf("");
    const head = lines.slice(0, blank);
    // The uptime line is there once the node reports its uptime.
    expect(head.filter((l) => !l.startsWith("uptime "))).toEqual([
      `node     ${a.nodeId}`,
      "realm    dev",
      `url      ${a.url}`,
      `version  ${VERSION}`,
      "clients  1", // this command's own connection
    ]);
    for (const l of head) if (l.startsWith("uptime ")) expect(l).toMatch(/^uptime {3}\d+[dhms]/);
    const table = lines.slice(blank + 1, blank + 5);
    expect(table[0]).toMatch(/^ID {52}ADDRESS +STATE +TAGS +NAME +CONN +PATH +RTT$/);
    expect(table[1]).toMatch(
      new RegExp(`^${a.nodeId}  ${esc(`127.0.0.1:${port(a)}`)} +alive  -  +-  +self   -  +-$`),
    );
    const tags = (n: Node) => (n === b ? "gpu,edge" : "-");
    others().forEach((n, i) => {
      expect(table[i + 2]).toMatch(
        new RegExp(
          `^${n.nodeId}  ${esc(`127.0.0.1:${port(n)}`)} +alive  ${
            tags(n)
          } +node  route  direct  \\d+ ms$`,
        ),
      );
    });
    // Columns line up under their headers.
    for (const col of ["ADDRESS", "STATE", "TAGS", "NAME", "CONN", "PATH", "RTT"]) {
      const at = table[0]!.indexOf(col);
      for (const row of table.slice(1)) {
        expect([col, row[at - 1], row[at - 2], row[at]]).toEqual([col, " ", " ", row[at]!.trim()]);
      }
    }
    expect(lines[blank + 5]).toBe("");
    expect(lines[blank + 6]).toMatch(
      /^3 members: 3 alive, 0 suspect, 0 dead, 0 left; 2 routes: 2 direct, 0 punched, 0 relayed; \d+ other sessions?, 1 client$/,
    );
    expect(lines.length).toBe(blank + 8);
  });

  test("--json: one document with the fields docs/cli.md lists", async () => {
    const r = await status("--json");
    expect(r.code).toBe(0);
    expect(r.stdout.endsWith("}\n")).toBe(true);
    expect(r.stdout.trim().split("\n")).toHaveLength(1);
    const d = JSON.parse(r.stdout);
    expect(Object.keys(d)).toEqual(["node", "members", "summary"]);
    expect(d.node).toEqual({
      id: a.nodeId,
      realm: "dev",
      url: a.url,
      version: VERSION,
      uptimeMs: d.node.uptimeMs === null ? null : expect.any(Number),
      clients: 1,
    });
    const keys = [
      "id",
      "addr",
      "state",
      "inc",
      "tags",
      "version",
      "self",
      "sinceMs",
      "lastSeenMs",
      "conn",
      "name",
      "path",
      "via",
      "remote",
      "rttMs",
    ];
    for (const row of d.members) expect(Object.keys(row)).toEqual(keys);
    expect(d.members.map((x: { id: string }) => x.id)).toEqual([
      a.nodeId,
      ...others().map((n) => n.nodeId),
    ]);
    expect(d.members[0]).toMatchObject({
      self: true,
      conn: "self",
      state: "alive",
      path: null,
      rttMs: null,
      lastSeenMs: 0,
      addr: a.url,
    });
    const bRow = d.members.find((x: { id: string }) => x.id === b.nodeId);
    expect(bRow).toMatchObject({
      self: false,
      conn: "route",
      name: "node",
      path: "direct",
      via: null,
      remote: `127.0.0.1:${port(b)}`,
      tags: ["gpu", "edge"],
      version: VERSION,
      rttMs: expect.any(Number),
    });
    expect(d.summary).toEqual({
      members: { total: 3, alive: 3, suspect: 0, dead: 0, left: 0 },
      routes: { total: 2, direct: 2, punched: 0, relayed: 0 },
      sessions: expect.any(Number),
      clients: 1,
    });
  });

  test("a member that left: its state, and no path to it", async () => {
    const gone = c;
    await gone.stop();
    // No event of the node says so from outside: a bounded poll of its own view.
    for (let i = 0; i < 500; i++) {
      const left = a.membership.members().find((x) => x.id === gone.nodeId)?.state === "left";
      const routed = a.snapshot().routes.some((x) => x.nodeId === gone.nodeId);
      if (left && !routed) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(a.membership.members().find((x) => x.id === gone.nodeId)?.state).toBe("left");
    const r = await status();
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      new RegExp(`^${gone.nodeId}  ${esc(`127.0.0.1:${port(gone)}`)} +left +- +- +- +- +-$`, "m"),
    );
    expect(r.stdout).toMatch(
      /^3 members: 2 alive, 0 suspect, 0 dead, 1 left; 1 route: 1 direct, 0 punched, 0 relayed; /m,
    );
    // The member that left comes last: after the alive ones.
    const ids = r.stdout.split("\n").filter((l) => /^[a-z2-7]{52} /.test(l)).map((l) =>
      l.slice(0, 52)
    );
    expect(ids).toEqual([a.nodeId, b.nodeId, gone.nodeId]);
  });

  test("no node there: exit 1, the one connect error", async () => {
    const silent = dgram.createSocket("udp4"); // a UDP port that never answers
    await new Promise<void>((r) => silent.bind(0, "127.0.0.1", () => r()));
    const url = `quic://127.0.0.1:${silent.address().port}`;
    try {
      const p = spawnMacula(
        ["status", "--server", url, "--creds", a.credsDir!, "--connect-timeout", "300"],
      );
      expect(await p.code()).toBe(1);
      expect(p.out).toBe("");
      expect(p.err).toStartWith(
        `macula status: cannot connect to ${url} (from --server): no answer within 300 ms\n`,
      );
    } finally {
      silent.close();
    }
  });
});

describe("the status document and its text", () => {
  const id = (ch: string) => ch.repeat(52);
  const row = (ch: string, port: number, state: MemberRow["state"], self = false): MemberRow => ({
    id: id(ch),
    addr: `quic://127.0.0.1:${port}`,
    state,
    inc: 0,
    sinceMs: 10,
    lastSeenMs: self ? 0 : 5,
    self,
    meta: { tags: [], version: "9.9.9" },
  });
  const snap: NodeDoc = {
    nodeId: id("a"),
    realm: "acme",
    url: "quic://127.0.0.1:4433",
    clients: 0,
    routes: [{
      nodeId: id("b"),
      name: "edge-b",
      dialed: true,
      path: "punched",
      remote: "127.0.0.1:5002",
      rttMs: 12,
    }],
    peers: [
      { nodeId: id("b"), role: "route", path: "punched", remote: "127.0.0.1:5002", rttMs: 12 },
      {
        nodeId: id("c"),
        role: "session",
        path: "relayed",
        via: id("b"),
        remote: "127.0.0.1:5002",
        rttMs: 40,
      },
      { nodeId: id("z"), role: "client", path: "direct", remote: "127.0.0.1:5009", rttMs: 1 },
    ],
    procedures: [],
    uptimeMs: 3 * 3_600_000 + 4 * 60_000 + 5000,
  };
  const rows = [
    row("d", 4436, "suspect"),
    row("c", 4435, "alive"),
    row("a", 4433, "alive", true),
    row("b", 4434, "alive"),
  ];

  test("a relayed session, a punched route, a suspect member and the uptime, as text", () => {
    expect(statusText(statusOf(rows, snap))).toBe(
      [
        `node     ${id("a")}`,
        "realm    acme",
        "url      quic://127.0.0.1:4433",
        "version  9.9.9",
        "uptime   3h 4m",
        "clients  0",
        "",
        `ID${
          " ".repeat(52)
        }ADDRESS         STATE    TAGS  NAME    CONN     PATH                   RTT`,
        `${id("a")}  127.0.0.1:4433  alive    -     -       self     -                      -`,
        `${id("b")}  127.0.0.1:4434  alive    -     edge-b  route    punched                12 ms`,
        `${id("c")}  127.0.0.1:4435  alive    -     -       session  relayed via bbbbbbbb…  40 ms`,
        `${id("d")}  127.0.0.1:4436  suspect  -     -       -        -                      -`,
        "",
        "4 members: 3 alive, 1 suspect, 0 dead, 0 left; 1 route: 0 direct, 1 punched, 0 relayed; " +
        "1 other session, 0 clients",
      ].join("\n"),
    );
  });

  test("the relay's id is cut where it stays unique among the members", () => {
    const near = [...rows, {
      ...row("e", 4437, "alive"),
      id: `${"b".repeat(10)}${"e".repeat(42)}`,
    }];
    const text = statusText(statusOf(near, snap));
    expect(text).toContain(" relayed via bbbbbbbbbbb…  40 ms");
  });
});
