/**
 * What a node tells its operator (docs/operations.md), in-process over real QUIC on 127.0.0.1:
 * why it refused a peer (logged once per cause, counted), and tags reloaded while running,
 * announced to the realm.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "../../lib/client/client.ts";
import { Node } from "../../lib/node/node.ts";
import { startTracing } from "../../lib/observe/mod.ts";
import { QuicEndpoint } from "../../lib/quic/mod.ts";
import { Logger } from "../../lib/util/mod.ts";
import { mesh } from "../helpers/mesh.ts";
import { otlpReceiver } from "../helpers/otlp.ts";
import { until } from "../helpers/quic.ts";

const dir = mkdtempSync(join(tmpdir(), "macula-ops-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("refused peers", () => {
  test("a client of another CA: refused, logged once with its cause, counted", async () => {
    const lines: Record<string, unknown>[] = [];
    let wake = () => {};
    const log = new Logger({
      format: "json",
      write: (l) => {
        lines.push(JSON.parse(l));
        wake();
      },
    });
    const node = await Node.start({
      dataDir: join(dir, "a"),
      listen: { host: "127.0.0.1", port: 0 },
      log,
    });
    // Another dev realm node: its own CA, its own client credentials. A hostile peer trusts
    // this node's CA (so it goes on with the handshake) and shows the other CA's certificate
    // (the client library would refuse to, so a raw endpoint).
    const other = await Node.start({ dataDir: join(dir, "b"), listen: { host: "127.0.0.1" } });
    const read = (d: string, f: string) => readFileSync(join(d, f), "utf8");
    const ep = await QuicEndpoint.bind({
      host: "127.0.0.1",
      port: 0,
      tls: {
        ca: read(node.credsDir!, "ca.pem"),
        cert: read(other.credsDir!, "cert.pem"),
        key: read(other.credsDir!, "key.pem"),
      },
      acceptIncoming: false,
    });
    try {
      const refused = () => lines.filter((l) => l.event === "peer.refused");
      for (let i = 0; i < 3; i++) {
        const seen = refused().length;
        await expect(
          ep.connect({ host: "127.0.0.1", port: node.endpoint.address.port }),
        ).rejects.toThrow();
        // The first refusal is written; the later ones only counted.
        if (i === 0) {
          await new Promise<void>((r, reject) => {
            const t = setTimeout(() => reject(new Error("no peer.refused line in 10 s")), 10_000);
            wake = () => {
              if (refused().length > seen) r(), clearTimeout(t);
            };
            wake();
          });
        }
      }
      expect(refused()).toHaveLength(1);
      expect(refused()[0]).toMatchObject({ level: "warn", cause: "unknown-ca" });
      expect(String(refused()[0]!.msg)).toMatch(/^refused a peer at 127\.0\.0\.1:\d+: /);
      await until(() => node.snapshot().refused.peers["unknown-ca"] === 3, "3 refusals counted");
      log.close(); // the interval's summary: the two repeats
      expect(refused()[1]).toMatchObject({ cause: "unknown-ca", repeated: 2 });
    } finally {
      await ep.close();
      await other.stop();
      await node.stop();
    }
  });
});

describe("reload", () => {
  test("new tags are announced to the realm; other keys are named as needing a restart", async () => {
    const m = await mesh(2);
    try {
      const [a, b] = m.nodes as [Node, Node];
      const lines = await a.reload({
        ...a.config,
        tags: ["gpu", "edge"],
        overlay: { k: 3, shortcuts: 128 },
      });
      expect(lines).toEqual([
        "tags reloaded: gpu, edge",
        "changed, needs a restart: overlay",
      ]);
      const seen = () => b.membership.members().find((x) => x.id === a.nodeId)?.meta.tags;
      await until(() => seen()?.join() === "gpu,edge", "b sees a's new tags");
      expect(await a.reload({ ...a.config })).toEqual(["reloaded: nothing changed"]);
    } finally {
      await m.close();
    }
  });
});

describe("trace", () => {
  test("a node with trace.otlp exports the spans of what arrives traced; counted in its snapshot", async () => {
    const rx = await otlpReceiver();
    const node = await Node.start({
      dataDir: join(dir, "traced"),
      listen: { host: "127.0.0.1", port: 0 },
      trace: { otlp: rx.url },
    });
    const app = startTracing({ otlp: rx.url, nodeId: "app", realm: "dev", serviceName: "app" });
    const c = await connect({ url: node.url, creds: node.credsDir!, tracer: app.tracer });
    try {
      expect(node.snapshot().tracing).toEqual({
        exported: 0,
        dropped: 0,
        pending: 0,
        failedExports: 0,
      });
      c.publish("ops.traced", "x");
      await c.flush();
      await app.flush();
      await node.stop(); // the export is flushed at stop
      await rx.waitFor(
        (spans) => spans.some((x) => x.resource["service.instance.id"] === node.nodeId),
        "a span from the node",
      );
      const mine = rx.spans.filter((x) => x.resource["service.instance.id"] === node.nodeId);
      const producer = rx.spans.find((x) => x.resource["service.name"] === "app")!;
      expect(mine[0]!.traceId).toBe(producer.traceId);
      expect(node.snapshot().tracing!.exported).toBeGreaterThan(0);
    } finally {
      await c.close();
      await app.shutdown();
      await node.stop();
      await rx.close();
    }
  });
});
