import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import {
  ConnectionClosedError,
  type QuicConnection,
  type QuicEndpoint,
  StreamResetError,
  StreamStoppedError,
} from "../../lib/quic/mod.ts";
import { closingEndpoints, echoStreams, pattern, until } from "../helpers/quic.ts";

const { ep } = closingEndpoints();

async function pair(
  serverOpts: Parameters<typeof ep>[0] = {},
  clientOpts: Parameters<typeof ep>[0] = {},
): Promise<
  { server: QuicEndpoint; client: QuicEndpoint; conn: QuicConnection; sconn: QuicConnection }
> {
  const server = await ep(serverOpts);
  const client = await ep({ acceptIncoming: false, ...clientOpts });
  const accepted = server.accept();
  const conn = await client.connect(server.address);
  const sconn = (await accepted)!;
  return { server, client, conn, sconn };
}

describe("streams", () => {
  test("100 MiB on one stream arrives intact (SHA-256 matches)", async () => {
    const { conn, sconn } = await pair();
    const total = 100 * 1024 * 1024;
    const chunk = pattern(256 * 1024, 7);
    const received = (async () => {
      const s = (await sconn.acceptStream())!;
      const h = createHash("sha256");
      let n = 0;
      for await (const c of s) {
        h.update(c);
        n += c.length;
      }
      await s.end(new TextEncoder().encode(h.digest("hex")));
      return n;
    })();
    const s = await conn.openStream();
    const h = createHash("sha256");
    for (let sent = 0; sent < total; sent += chunk.length) {
      h.update(chunk);
      await s.write(chunk);
    }
    await s.end();
    const theirs = new TextDecoder().decode(await s.readAll());
    expect(await received).toBe(total);
    expect(theirs).toBe(h.digest("hex"));
  }, 120_000);

  test("1,000 concurrent streams, more than the peer's stream limit, all echo back", async () => {
    const { conn, sconn } = await pair({ maxStreams: 100 });
    echoStreams(sconn);
    const results = await Promise.all(
      Array.from({ length: 1000 }, async (_, i) => {
        const s = await conn.openStream();
        const msg = pattern(1000 + i, i + 1);
        await s.end(msg);
        const back = await s.readAll();
        return back.length === msg.length && back.every((b, j) => b === msg[j]);
      }),
    );
    expect(results.filter(Boolean).length).toBe(1000);
  }, 60_000);

  test("small writes are coalesced: 10,000 writes of 16 bytes take far fewer packets", async () => {
    const { client, conn, sconn } = await pair();
    const s = await conn.openStream();
    const before = client.stats.packetsSent;
    const reader = (async () => {
      const r = (await sconn.acceptStream())!;
      let n = 0;
      for await (const c of r) n += c.length;
      return n;
    })();
    for (let i = 0; i < 10_000; i++) await s.write(pattern(16, i + 1));
    await s.end();
    expect(await reader).toBe(160_000);
    expect(client.stats.packetsSent - before).toBeLessThan(1000);
  });

  test("a lone ACK that is held for the application's answer still goes out without one", async () => {
    const { server, conn, sconn } = await pair();
    const s = await conn.openStream();
    const accepted = sconn.acceptStream();
    const before = server.stats.packetsSent;
    await s.write(pattern(100, 7));
    const r = (await accepted)!;
    expect((await r.read())?.length).toBe(100); // the application reads and never answers
    await until(() => server.stats.packetsSent > before, "the server acknowledges the data");
    await s.end();
  });

  test("FIN: the reader sees the end after the last byte", async () => {
    const { conn, sconn } = await pair();
    const s = await conn.openStream();
    await s.end(new TextEncoder().encode("last words"));
    const r = (await sconn.acceptStream())!;
    expect(new TextDecoder().decode(await r.readAll())).toBe("last words");
    expect(await r.read()).toBeNull();
    await expect(s.write(new Uint8Array(1))).rejects.toThrow("write after end");
  });

  test("reset: the peer's reader fails with the reset code", async () => {
    const { conn, sconn } = await pair();
    const s = await conn.openStream();
    await s.write(new Uint8Array(10));
    const r = (await sconn.acceptStream())!;
    expect((await r.read())!.length).toBe(10);
    s.reset(77);
    const err = await r.read().catch((e) => e);
    expect(err).toBeInstanceOf(StreamResetError);
    expect(err.code).toBe(77);
  });

  test("stop sending: the peer's writer fails with the code", async () => {
    const { conn, sconn } = await pair();
    const s = await conn.openStream();
    await s.write(new Uint8Array(10));
    const r = (await sconn.acceptStream())!;
    await r.read();
    r.stopSending(9);
    let err: unknown = null;
    for (let i = 0; i < 10_000 && err === null; i++) {
      await s.write(new Uint8Array(1024)).catch((e) => (err = e));
    }
    expect(err).toBeInstanceOf(StreamStoppedError);
    expect((err as StreamStoppedError).code).toBe(9);
  });

  test("unidirectional streams carry data one way, both directions", async () => {
    const { conn, sconn } = await pair();
    const u = await conn.openUniStream();
    expect(u.bidi).toBe(false);
    await u.end(new TextEncoder().encode("to server"));
    const r = (await sconn.acceptStream())!;
    expect(r.bidi).toBe(false);
    expect(new TextDecoder().decode(await r.readAll())).toBe("to server");
    await expect(r.write(new Uint8Array(1))).rejects.toThrow();
    const u2 = await sconn.openUniStream();
    await u2.end(new TextEncoder().encode("to client"));
    const r2 = (await conn.acceptStream())!;
    expect(new TextDecoder().decode(await r2.readAll())).toBe("to client");
  });

  test("backpressure: a slow reader bounds what the writer and the reader buffer", async () => {
    const readBuf = 256 * 1024;
    const writeBuf = 64 * 1024;
    const window = 128 * 1024;
    const { conn, sconn } = await pair(
      { readBufferBytes: readBuf, streamWindow: window },
      { writeBufferBytes: writeBuf },
    );
    const s = await conn.openStream();
    const chunk = pattern(16 * 1024);
    let accepted = 0;
    let stuck = false;
    const writer = (async () => {
      for (let i = 0; i < 4096; i++) {
        const p = s.write(chunk);
        stuck = true;
        await p;
        stuck = false;
        accepted += chunk.length;
      }
      await s.end();
    })();
    const r = (await sconn.acceptStream())!;
    // Nobody reads: the writer must get stuck with bounded memory on both sides.
    await until(
      () => stuck && s.blocked && r.readableBytes >= readBuf,
      "writer blocked by flow control",
    );
    const before = accepted;
    await until(() => stuck && s.blocked, "writer still blocked");
    expect(accepted).toBe(before);
    expect(s.writableBytes).toBeLessThanOrEqual(writeBuf + chunk.length);
    expect(r.readableBytes).toBeLessThanOrEqual(readBuf + 65536);
    // quiche holds at most the (auto-tuned) stream window; everything else waits in the writer.
    expect(accepted).toBeLessThan(readBuf + 16 * 1024 * 1024);
    // Now read everything: the writer finishes and every byte arrives.
    let got = 0;
    for await (const c of r) got += c.length;
    await writer;
    expect(got).toBe(4096 * chunk.length);
  }, 60_000);

  test("datagrams are delivered; oversize ones are refused, not truncated", async () => {
    const { conn, sconn } = await pair();
    expect(conn.maxDatagramSize).toBeGreaterThan(1000);
    expect(conn.sendDatagram(new Uint8Array(conn.maxDatagramSize + 1))).toBe(false);
    const got: string[] = [];
    const reader = (async () => {
      for await (const d of sconn.datagrams()) {
        got.push(new TextDecoder().decode(d));
        if (got.length === 10) return;
      }
    })();
    for (let i = 0; i < 10; i++) {
      expect(conn.sendDatagram(new TextEncoder().encode(`d${i}`))).toBe(true);
    }
    await reader;
    expect(got).toEqual(Array.from({ length: 10 }, (_, i) => `d${i}`));
    // And back.
    expect(sconn.sendDatagram(new TextEncoder().encode("back"))).toBe(true);
    expect(new TextDecoder().decode((await conn.receiveDatagram())!)).toBe("back");
  });

  test("stats report RTT, congestion window, packets and bytes", async () => {
    const { conn } = await pair();
    const s = await conn.openStream();
    await s.write(pattern(100_000));
    await until(() => conn.stats().bytesSent > 100_000, "bytes on the wire");
    const st = conn.stats();
    // quiche reports RTT in whole milliseconds: below 1 ms on loopback.
    expect(st.rttMs).toBeGreaterThanOrEqual(0);
    expect(st.rttMs).toBeLessThan(50);
    expect(st.cwnd).toBeGreaterThan(0);
    expect(st.packetsSent).toBeGreaterThan(70);
    expect(st.packetsReceived).toBeGreaterThan(0);
    expect(st.streams).toBe(1);
    expect(st.remote.port).toBeGreaterThan(0);
  });
});

describe("close", () => {
  test("client closes with a code and reason; the server sees them, pending reads fail", async () => {
    const { conn, sconn } = await pair();
    const s = await conn.openStream();
    await s.write(new Uint8Array(1));
    const r = (await sconn.acceptStream())!;
    await r.read();
    const pending = r.read().catch((e) => e);
    const mine = await conn.close(42, "bye");
    expect(mine.initiator).toBe("local");
    const theirs = await sconn.closed;
    expect(theirs).toMatchObject({ initiator: "peer", app: true, code: 42, reason: "bye" });
    expect(theirs.message).toBe("connection closed by peer: application code 42 (bye)");
    expect(await pending).toBeInstanceOf(ConnectionClosedError);
    expect(await sconn.acceptStream()).toBeNull();
    await expect(conn.openStream()).rejects.toThrow();
  });

  test("server closes; the client sees it", async () => {
    const { conn, sconn } = await pair();
    await sconn.close(7, "shutting down");
    expect(await conn.closed).toMatchObject({
      initiator: "peer",
      app: true,
      code: 7,
      reason: "shutting down",
    });
  });

  test("idle timeout closes both sides when keepalive is off", async () => {
    const { conn, sconn } = await pair({ idleTimeoutMs: 300, keepAliveMs: 0 }, {
      idleTimeoutMs: 300,
      keepAliveMs: 0,
    });
    const [a, b] = await Promise.all([conn.closed, sconn.closed]);
    expect(a.initiator).toBe("idle");
    expect(b.initiator).toBe("idle");
    expect(a.message).toContain("idle timeout");
  });

  test("keepalive keeps an idle connection open past the idle timeout", async () => {
    const { conn, sconn } = await pair({ idleTimeoutMs: 300, keepAliveMs: 0 }, {
      idleTimeoutMs: 300,
      keepAliveMs: 100,
    });
    // Three idle timeouts pass (this waits on the clock on purpose: the behaviour is time itself).
    let closed = false;
    void conn.closed.then(() => (closed = true));
    await new Promise((r) => setTimeout(r, 1000));
    expect(closed).toBe(false);
    expect(conn.isOpen && sconn.isOpen).toBe(true);
  });

  test("endpoint close ends its connections and resolves pending accept with null", async () => {
    const server = await ep();
    const client = await ep({ acceptIncoming: false });
    const conn = await client.connect(server.address);
    const sconn = (await server.accept())!;
    const next = server.accept();
    await server.close("maintenance");
    expect(await next).toBeNull();
    expect((await sconn.closed).initiator).toBe("endpoint");
    expect(await conn.closed).toMatchObject({ initiator: "peer", reason: "maintenance" });
  });
});
