/** Restarts and shutdowns: clients come back with their subscriptions and procedures. */
import { afterEach, describe, expect, test } from "bun:test";
import type { ClientStatus } from "../../lib/client/client.ts";
import { type Mesh, mesh, take } from "../helpers/mesh.ts";

let m: Mesh | undefined;
afterEach(async () => {
  await m?.close();
  m = undefined;
});

/** Resolves on the client's next status `want` (status changes reported through onStatus). */
function statusWatcher() {
  const waiters: { want: ClientStatus; resolve: (detail: string) => void }[] = [];
  const seen: string[] = [];
  return {
    seen,
    onStatus: (s: ClientStatus, detail: string) => {
      seen.push(`${s}: ${detail}`);
      for (const w of [...waiters]) {
        if (w.want === s) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(detail);
        }
      }
    },
    next: (want: ClientStatus) => new Promise<string>((resolve) => waiters.push({ want, resolve })),
  };
}

describe("restarts", () => {
  test("a restarted node gets its clients back, subscriptions and procedures restored", async () => {
    m = await mesh(2);
    const watch = statusWatcher();
    const app = await m.client(1, { onStatus: watch.onStatus, maxReconnectDelayMs: 200 });
    const other = await m.client(0);
    const sub = app.subscribe("restore.>");
    app.serve("restore.echo", (p) => p);
    await app.flush();

    const old = m.nodes[1]!;
    const port = old.endpoint.address.port;
    const lost = watch.next("reconnecting");
    await old.stop();
    expect(await lost).toContain("node shutting down");

    const back = watch.next("connected");
    const fresh = await m.add({
      dataDir: old.dataDir,
      listen: { host: "127.0.0.1", port },
      join: [{ host: "127.0.0.1", port: m.nodes[0]!.endpoint.address.port }],
    });
    await back;
    await fresh.waitForRoutes(1);
    expect(fresh.nodeId).toBe(old.nodeId); // same data dir, same identity

    // The application did nothing: its subscription and procedure are on the new node.
    await app.flush();
    other.publish("restore.x", "after restart");
    expect(await take(sub, 1)).toEqual(["restore.x after restart"]);
    expect(new TextDecoder().decode(await other.call("restore.echo", "hi"))).toBe("hi");
    expect(fresh.snapshot().subscriptions).toBe(1);
  });

  test("messages published while the node is away are held and sent after reconnecting; a flush waits for it", async () => {
    m = await mesh(1);
    const watch = statusWatcher();
    const pub = await m.client(0, { onStatus: watch.onStatus, maxReconnectDelayMs: 200 });
    const old = m.nodes[0]!;
    const port = old.endpoint.address.port;
    const lost = watch.next("reconnecting");
    await old.stop();
    await lost;
    for (let i = 0; i < 5; i++) pub.publish("held.x", String(i)); // held, not thrown away
    const flushed = pub.flush(20_000); // waits for the session it gets back
    const back = watch.next("connected");
    const fresh = await m.add({
      dataDir: old.dataDir,
      listen: { host: "127.0.0.1", port },
      join: [],
    });
    await back;
    await flushed;
    expect(fresh.snapshot().router.published).toBe(5);
  });

  test("publishes a flush had not confirmed when the session dropped are counted and said", async () => {
    m = await mesh(1);
    const watch = statusWatcher();
    const pub = await m.client(0, { onStatus: watch.onStatus, maxReconnectDelayMs: 200 });
    for (let i = 0; i < 3; i++) pub.publish("confirmed.x", String(i));
    await pub.flush(); // these three the node confirmed
    for (let i = 0; i < 4; i++) pub.publish("unconfirmed.x", String(i));
    const lost = watch.next("reconnecting");
    await m.nodes[0]!.stop();
    expect(await lost).toContain("; 4 messages published on it since the last flush may be lost");
    expect(pub.publishesMaybeLost).toBe(4);
  });

  test("the reconnect buffer is bounded: publishes past it are refused, not lost silently", async () => {
    m = await mesh(1);
    const watch = statusWatcher();
    const pub = await m.client(0, {
      onStatus: watch.onStatus,
      reconnectBufferBytes: 1000,
      maxReconnectDelayMs: 200,
    });
    const lost = watch.next("reconnecting");
    await m.nodes[0]!.stop();
    await lost;
    pub.publish("full.x", "x".repeat(500));
    expect(() => pub.publish("full.x", "x".repeat(600))).toThrow(/reconnect buffer/);
  });

  test("without reconnect, a lost node closes the client and ends its subscriptions", async () => {
    m = await mesh(1);
    const watch = statusWatcher();
    const c = await m.client(0, { reconnect: false, onStatus: watch.onStatus });
    const sub = c.subscribe("x.y");
    const closed = watch.next("closed");
    await m.nodes[0]!.stop();
    expect(await closed).toContain("connection lost");
    expect(await take(sub, 0)).toEqual([]);
    const it = sub[Symbol.asyncIterator]();
    expect((await it.next()).done).toBe(true);
    expect(() => c.publish("x.y", "z")).toThrow(/closed/);
  });

  test("stop drains: a publish accepted before stop reaches a subscriber on another node", async () => {
    m = await mesh(2);
    const pub = await m.client(0);
    const subc = await m.client(1);
    const s = subc.subscribe("drain.x");
    await subc.flush();
    for (let i = 0; i < 100; i++) pub.publish("drain.x", String(i));
    await pub.flush(); // node 0 has processed them all
    await m.nodes[0]!.stop();
    expect((await take(s, 100)).length).toBe(100);
  });

  test("a client cannot reach a node that is not there: a clear error", async () => {
    m = await mesh(1);
    const port = m.nodes[0]!.endpoint.address.port;
    const creds = m.nodes[0]!.credsDir!;
    await m.nodes[0]!.stop();
    const { connect } = await import("../../lib/client/client.ts");
    await expect(
      connect({ url: `quic://127.0.0.1:${port}`, creds, connectTimeoutMs: 300 }),
    ).rejects.toThrow(`quic://127.0.0.1:${port}`);
  });
});
