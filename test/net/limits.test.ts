/**
 * Bounds a node keeps against one client, over real QUIC on 127.0.0.1: a client that never reads
 * what the node sends it cannot make the node queue without end, whatever the frame kind (here:
 * replies to its own calls, which are never dropped one by one), and the node's other clients
 * carry on.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Client, connect } from "../../lib/client/client.ts";
import { type Credentials, CREDS_FILES } from "../../lib/identity/mod.ts";
import { busCodec } from "../../lib/messaging/mod.ts";
import { Node } from "../../lib/node/node.ts";
import { rawPeer } from "../helpers/raw.ts";

let dir: string;
let node: Node;
let provider: Client;
let creds: Credentials;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "macula-limits-"));
  node = await Node.start({
    dataDir: join(dir, "n0"),
    listen: { host: "127.0.0.1", port: 0 },
    maxBacklog: 256 * 1024,
  });
  const read = (f: string) => readFileSync(join(node.credsDir!, f), "utf8");
  creds = { ca: read(CREDS_FILES.ca), cert: read(CREDS_FILES.cert), key: read(CREDS_FILES.key) };
  provider = await connect({ url: node.url, creds });
  await provider.serve("big.reply", () => new Uint8Array(32 * 1024)).ready;
});

afterAll(async () => {
  await provider?.close();
  await node?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** A session that sends `calls` CALLs for 32 KiB replies and never reads; resolves at its close. */
async function deafCaller(target: Node, calls: number) {
  const peer = await rawPeer(target.caDir!, "deaf", { creds });
  const ep = peer.endpoint;
  try {
    // The node's channel to us is taken and never read.
    const s = await peer.session(target.endpoint.address.port, { onChannel: () => {} });
    const ch = await s.openChannel("client");
    for (let i = 1; i <= calls; i++) {
      if (s.conn.closeInfo) break;
      const f = busCodec.encode("CALL", {
        id: i,
        proc: "big.reply",
        payload: new Uint8Array(0),
        timeout_ms: 60_000,
      });
      await ch.write(f).catch(() => {});
    }
    return await s.closed;
  } finally {
    await ep.close();
  }
}

test(
  "a client that does not read is closed past twice the backlog bound; others carry on",
  async () => {
    // 1,000 calls whose replies (32 KiB each, 32 MB in all) the node must queue for us.
    const info = await deafCaller(node, 1000);
    expect(info.message).toContain("bus queue to this session over 524288 bytes: it does not read");
    expect(node.snapshot().dropped.closedBackedUp).toBe(1);
    // The provider and another caller still work.
    const caller = await connect({ url: node.url, creds });
    try {
      expect((await caller.call("big.reply")).length).toBe(32 * 1024);
    } finally {
      await caller.close();
    }
  },
  60_000,
);

test(
  "past the node's budget for queued bytes, the session holding the most is shed first",
  async () => {
    const small = await Node.start({
      dataDir: join(dir, "n1"),
      listen: { host: "127.0.0.1", port: 0 },
      devCaDir: node.caDir!,
      maxBacklog: 256 * 1024,
      limits: { maxQueuedBytes: 300 * 1024 },
    });
    const p = await connect({ url: small.url, creds });
    try {
      await p.serve("big.reply", () => new Uint8Array(32 * 1024)).ready;
      const info = await deafCaller(small, 1000);
      expect(info.message).toContain(
        "the node's queues are over their budget and this session held the most",
      );
      expect(small.snapshot().dropped.shed).toBe(1);
      expect(small.snapshot().dropped.closedBackedUp).toBe(0);
    } finally {
      await p.close();
      await small.stop();
    }
  },
  60_000,
);
