/**
 * Roles and permissions over real QUIC on 127.0.0.1 (docs/security.md): a node enforces its
 * `permissions` for the clients attached to it, refuses a client's certificate on the channels
 * and requests of nodes, keeps inspection for operators, and applies new rules on SIGHUP
 * (through `macula node up` and `macula sub`, as a user would).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Subprocess } from "bun";
import { type Client, ClientError, connect } from "../../lib/client/client.ts";
import type { Credentials } from "../../lib/identity/mod.ts";
import { busCodec, RpcError } from "../../lib/messaging/mod.ts";
import { Node } from "../../lib/node/node.ts";
import { SessionError } from "../../lib/peer/mod.ts";
import { take } from "../helpers/mesh.ts";
import { until } from "../helpers/quic.ts";
import { issueCreds, rawPeer } from "../helpers/raw.ts";
import { Proc } from "../helpers/proc.ts";

const MAIN = fileURLToPath(new URL("../../cli/main.ts", import.meta.url));
let dir: string;
let node: Node;
const clients: Client[] = [];

const PERMISSIONS = {
  default: "deny" as const,
  operatorGroup: "operator",
  groups: {
    readers: { subscribe: { allow: ["news.>"] } },
    writers: { publish: { allow: ["news.>"] } },
    math: { serve: { allow: ["math.*"] }, call: { allow: ["math.*"] } },
    callers: { call: { allow: ["math.*"] } },
  },
};

/** Writes credentials where `--creds` reads them. */
function credsDir(c: Credentials, name: string): string {
  const d = join(dir, "creds", name);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, "ca.pem"), c.ca);
  writeFileSync(join(d, "cert.pem"), c.cert);
  writeFileSync(join(d, "key.pem"), c.key);
  return d;
}

async function client(name: string, groups: string[]): Promise<Client> {
  const c = await connect({
    url: node.url,
    creds: await issueCreds(node.caDir!, name, { groups }),
    onError: () => {},
  });
  clients.push(c);
  return c;
}

async function refusal(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error("it was allowed");
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "macula-perms-"));
  node = await Node.start({
    dataDir: join(dir, "n0"),
    listen: { host: "127.0.0.1", port: 0 },
    permissions: PERMISSIONS,
  });
});

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  await node?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("permissions from certificate groups", () => {
  test("sub '>' without a group is refused, naming the rule; a reader gets its topics", async () => {
    const nobody = await client("nobody", []);
    const all = nobody.subscribe(">");
    const e = await refusal(take(all, 1));
    expect(e).toBeInstanceOf(ClientError);
    expect((e as ClientError).code).toBe("permission_denied");
    expect(e.message).toContain(
      "subscribe >: no rule allows it (no groups) and the default is deny (permissions.default)",
    );
    const reader = await client("reader", ["readers"]);
    const writer = await client("writer", ["writers"]);
    const news = reader.subscribe("news.>");
    await reader.flush();
    writer.publish("news.today", "hello");
    expect(await take(news, 1)).toEqual(["news.today hello"]);
    // A reader may not publish, a writer may not subscribe: both refused, counted.
    const before = node.snapshot().refused.operations;
    const wrong = writer.subscribe("news.>");
    expect((await refusal(take(wrong, 1))).message).toContain(
      "subscribe news.>: no rule allows it (groups writers) and the default is deny",
    );
    expect(node.snapshot().refused.operations).toBe(before + 1);
  });

  test("a procedure cannot be taken over by a client not allowed to serve it", async () => {
    const owner = await client("owner", ["math"]);
    const thief = await client("thief", []);
    const caller = await client("caller", ["callers"]);
    await owner.serve("math.add", () => new TextEncoder().encode("owner")).ready;
    const seen: string[] = [];
    const stolen = thief.serve("math.add", (p) => {
      seen.push(new TextDecoder().decode(p));
      return new TextEncoder().encode("thief");
    });
    const e = await refusal(stolen.ready);
    expect((e as ClientError).code).toBe("permission_denied");
    expect(e.message).toContain("serve math.add");
    for (let i = 0; i < 4; i++) {
      expect(new TextDecoder().decode(await caller.call("math.add", `secret ${i}`))).toBe("owner");
    }
    expect(seen).toEqual([]);
    // A call the caller's groups do not allow fails with permission_denied.
    const denied = await refusal(thief.call("math.add", "x"));
    expect(denied).toBeInstanceOf(RpcError);
    expect((denied as RpcError).code).toBe("permission_denied");
  });

  test("inspect is for operators; nat.ping and relay use too", async () => {
    const plain = await client("plain", ["readers"]);
    const e = await refusal(plain.inspect("node"));
    expect(e.message).toContain(
      "inspect.node is for operators only (this certificate is not in group operator)",
    );
    const op = await client("op", ["operator"]);
    const snap = await op.inspect("node") as { refused: { requests: Record<string, number> } };
    expect(snap.refused.requests["inspect.node"]).toBe(1);
  });
});

describe("roles", () => {
  test("a client's certificate on the route channel is closed with the reason; nodes' requests refused", async () => {
    const peer = await rawPeer(node.caDir!, "intruder");
    const ep = peer.endpoint;
    const port = node.endpoint.address.port;
    try {
      const s = await peer.session(port);
      // A node's request first: refused, the session goes on.
      const e = await refusal(s.request("membership.msg", new Uint8Array([1])));
      expect(e).toBeInstanceOf(SessionError);
      expect((e as SessionError).remoteCode).toBe("permission_denied");
      expect(e.message).toContain(
        "membership.msg is for peer nodes only (this certificate is a client's)",
      );
      // A flood of requests that are refused anyway ends the session (here: 200 at once).
      const floods = node.snapshot().refused.requestFloods;
      const s2 = await peer.session(port);
      for (let i = 0; i < 300 && !s2.conn.closeInfo; i++) {
        await s2.request("membership.msg", new Uint8Array([1])).catch(() => {});
      }
      expect((await s2.closed).message).toContain(
        "too many refused requests (200 at once, then 20 a second)",
      );
      expect(node.snapshot().refused.requestFloods).toBe(floods + 1);
      // … and holds the certificate down (the session still open is not affected).
      const again = await ep.connect({ host: "127.0.0.1", port: node.endpoint.address.port })
        .then((c) => c.closed.then((i) => i.message), (e: Error) => e.message);
      expect(again).toContain("closed for misbehaving (too many refused requests");
      const before = node.snapshot().refused.channels;
      await s.openChannel("route");
      const info = await s.closed;
      expect(info.message).toBe(
        "connection closed by peer: application code 19 (channel route: only nodes may open routes (this certificate is a client's))",
      );
      expect(node.snapshot().refused.channels).toBe(before + 1);
      expect(node.routes).toEqual([]);
    } finally {
      await ep.close();
    }
  });

  test("a client's certificate on the shortcut channel is closed with the reason", async () => {
    const peer = await rawPeer(node.caDir!, "shortcutter");
    try {
      const s = await peer.session(node.endpoint.address.port);
      const before = node.snapshot().refused.channels;
      await s.openChannel("shortcut");
      expect((await s.closed).message).toBe(
        "connection closed by peer: application code 19 (channel shortcut: only nodes may open shortcuts (this certificate is a client's))",
      );
      expect(node.snapshot().refused.channels).toBe(before + 1);
      expect(node.snapshot().shortcuts.open).toBe(0);
    } finally {
      await peer.endpoint.close();
    }
  });

  test("a node that opens a second shortcut channel on one session is closed with the reason", async () => {
    const peer = await rawPeer(node.caDir!, "twice", { role: "node" });
    try {
      const s = await peer.session(node.endpoint.address.port);
      await s.openChannel("shortcut");
      await until(
        () => node.snapshot().shortcuts.open === 1,
        "the first shortcut is taken",
        10_000,
      );
      await s.openChannel("shortcut");
      expect((await s.closed).message).toBe(
        "connection closed by peer: application code 18 (a second shortcut channel on one session)",
      );
    } finally {
      await peer.endpoint.close();
    }
  });
});

describe("malformed frames", () => {
  test("a malformed bus frame closes the session, counted by frame in inspect", async () => {
    const peer = await rawPeer(node.caDir!, "sloppy");
    const { endpoint: ep, creds: c } = peer;
    try {
      const before = node.snapshot().refused.frames.PUB ?? 0;
      const s = await peer.session(node.endpoint.address.port);
      const ch = await s.openChannel("client");
      await ch.write(busCodec.encodeRaw([35, 42, new Uint8Array(0)])); // PUB with a numeric topic
      const info = await s.closed;
      expect(info.message).toContain("PUB.topic");
      expect(node.snapshot().refused.frames.PUB).toBe(before + 1);
      // The certificate is held down: its next session is refused at the handshake, with why.
      const held = node.snapshot().refused.heldDown;
      expect(held.strikes).toBeGreaterThan(0);
      const again = await ep.connect({ host: "127.0.0.1", port: node.endpoint.address.port })
        .then((c) => c.closed.then((i) => i.message), (e: Error) => e.message);
      expect(again).toContain("held down for 1 s more");
      expect(again).toContain("closed for misbehaving (protocol: PUB.topic: not a text string)");
      expect(node.snapshot().refused.heldDown.refused).toBe(held.refused + 1);
      // A session over such a connection fails with the node's reason, not "closing".
      const dialed = await peer.session(node.endpoint.address.port)
        .then(() => "dialed", (x: Error) => x.message);
      expect(dialed).toContain("held down for 1 s more");
      // A client of that certificate is told, not left to see a closed connection.
      const e = await connect({ url: node.url, creds: c, reconnect: false }).then(
        () => new Error("connected"),
        (x: Error) => x,
      );
      expect(e.message).toContain("the node refused this client: held down for 1 s more");
    } finally {
      await ep.close();
    }
  });
});

describe("SIGHUP", () => {
  test(
    "macula node up applies new permissions: a withdrawn subscription ends in macula sub",
    async () => {
      const base = join(dir, "cli");
      mkdirSync(base, { recursive: true });
      const config = join(base, "node.yaml");
      const yaml = (readers: string) =>
        `permissions:\n  default: deny\n  groups:\n    readers: { subscribe: { allow: [${readers}] } }\n`;
      writeFileSync(config, yaml("news.>"));
      const spawn = (args: string[]) =>
        new Proc(
          args,
          Bun.spawn({
            cmd: [process.execPath, MAIN, ...args],
            cwd: base,
            stdin: "ignore",
            stdout: "pipe",
            stderr: "pipe",
            timeout: 60_000,
            killSignal: "SIGKILL",
          }) as Subprocess<"pipe" | "ignore", "pipe", "pipe">,
        );
      const up = spawn([
        "node",
        "up",
        "--ready-json",
        "--config",
        config,
        "--data-dir",
        join(base, "data"),
        "--listen",
        "127.0.0.1:0",
      ]);
      try {
        await up.waitFor("out", "\n");
        const ready = JSON.parse(up.lines()[0]!) as { url: string; caDir: string };
        const reader = credsDir(await issueCreds(ready.caDir, "r", { groups: ["readers"] }), "r");
        const nobody = credsDir(await issueCreds(ready.caDir, "n"), "n");
        const denied = spawn(["sub", ">", "--server", ready.url, "--creds", nobody]);
        expect(await denied.code()).toBe(1);
        expect(denied.err).toContain("permission_denied");
        expect(denied.err).toContain("(permissions.default)");
        // inspect through the CLI, without the operator group: refused, naming why.
        const peek = spawn(["inspect", "node", "--server", ready.url, "--creds", reader]);
        expect(await peek.code()).toBe(1);
        expect(peek.err).toContain(
          "inspect.node is for operators only (this certificate is not in group operator)",
        );
        const sub = spawn(["sub", "news.>", "--server", ready.url, "--creds", reader]);
        writeFileSync(config, yaml("weather.>"));
        // The subscription may not have reached the node yet: it is refused or withdrawn either way.
        up.p.kill("SIGHUP");
        await up.waitFor("err", /SIGHUP: permissions reloaded/);
        expect(await sub.code()).toBe(1);
        expect(sub.err).toContain("subscribe news.>");
        expect(sub.err).toContain("permissions.groups.readers.subscribe.allow");
        // A bad file is refused with the key named, and the running rules stay.
        writeFileSync(config, "permissions: { default: sometimes }\n");
        up.p.kill("SIGHUP");
        await up.waitFor("err", /permissions\.default: must be allow or deny.*keeping the running/);
      } finally {
        up.p.kill("SIGTERM");
        await up.code();
      }
    },
    60_000,
  );
});
