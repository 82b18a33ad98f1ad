/**
 * A node joins a seed given by host name: `join` quic://localhost:<port> reaches the seed on
 * 127.0.0.1, and a seed whose name does not resolve is logged in plain words on each retry.
 */
import "../helpers/no-dns.ts"; // no query leaves this machine: nohost.invalid fails locally
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "../../lib/client/client.ts";
import { Node } from "../../lib/node/node.ts";

const dir = mkdtempSync(join(tmpdir(), "macula-hostnames-"));
const nodes: Node[] = [];
afterAll(async () => {
  await Promise.allSettled(nodes.map((n) => n.stop()));
  rmSync(dir, { recursive: true, force: true });
});

async function start(name: string, o: Parameters<typeof Node.start>[0] = {}): Promise<Node> {
  const n = await Node.start({
    dataDir: join(dir, name),
    listen: { host: "127.0.0.1", port: 0 },
    ...o,
  });
  nodes.push(n);
  return n;
}

test("a node joins a seed given as quic://localhost:<port>", async () => {
  const seed = await start("seed");
  const joiner = await start("joiner", {
    devCaDir: seed.caDir!,
    join: [{ host: "localhost", port: seed.endpoint.address.port }],
  });
  await joiner.waitForRoutes(1);
  await seed.waitForRoutes(1);
  expect(joiner.routes).toContain(seed.nodeId);
});

test("a node listening on localhost binds its address; a client reaches it by the url it prints", async () => {
  const n = await start("named", { listen: { host: "localhost", port: 0 } });
  expect(n.endpoint.address.host).toBe("127.0.0.1");
  expect(n.url).toBe(`quic://localhost:${n.endpoint.address.port}`);
  const c = await connect({ url: n.url, creds: n.credsDir! });
  try {
    expect(c.status).toBe("connected");
  } finally {
    await c.close();
  }
});

test("a seed name that does not resolve is logged as `cannot resolve <host>`", async () => {
  let logged: (line: string) => void = () => {};
  const line = new Promise<string>((r) => (logged = r));
  await start("lost", {
    join: [{ host: "nohost.invalid", port: 4433 }],
    log: (l) => {
      if (l.startsWith("join ")) logged(l);
    },
  });
  expect(await line).toMatch(
    /^join quic:\/\/nohost\.invalid:4433: cannot resolve nohost\.invalid: no such host name .*; retrying in \d+ ms$/,
  );
}, 30_000);
