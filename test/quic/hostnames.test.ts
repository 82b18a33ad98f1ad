/**
 * Dialing a host name: the endpoint resolves it (once per dial) before quiche sees the address,
 * and a name that does not resolve fails in plain words. On 127.0.0.1 via `localhost`.
 */
import "../helpers/no-dns.ts"; // no query leaves this machine: nohost.invalid fails locally
import { describe, expect, test } from "bun:test";
import { QuicError } from "../../lib/quic/mod.ts";
import { closingEndpoints, serveEcho } from "../helpers/quic.ts";

const { ep } = closingEndpoints();

describe("dialing a host name", () => {
  test("quic to localhost:<port> reaches the endpoint on 127.0.0.1", async () => {
    const server = await ep();
    const client = await ep({ acceptIncoming: false });
    serveEcho(server);
    const conn = await client.connect({ host: "localhost", port: server.address.port });
    expect(conn.remote.host).toBe("127.0.0.1");
    const s = await conn.openStream();
    await s.end(new TextEncoder().encode("ping"));
    expect(new TextDecoder().decode(await s.readAll())).toBe("ping");
    expect(server.stats.connectionsAccepted).toBe(1);
  });

  test(
    "a name that does not resolve fails with `cannot resolve <host>`, naming no library",
    async () => {
      const client = await ep({ acceptIncoming: false });
      const err = await client.connect({ host: "nohost.invalid", port: 4433 }).catch((e) => e);
      expect(err).toBeInstanceOf(QuicError);
      expect(err.message).toStartWith("cannot resolve nohost.invalid: ");
      expect(err.message).not.toContain("socket address");
      expect(err.message).not.toContain("getaddrinfo");
      expect(client.stats.connectionsDialed).toBe(0);
    },
    30_000,
  );

  test("an IP address is dialed at once: the connection exists before the event loop turns", async () => {
    const server = await ep();
    const client = await ep({ acceptIncoming: false });
    const p = client.connect({ host: "127.0.0.1", port: server.address.port });
    expect(client.stats.connectionsDialed).toBe(1);
    await p;
  });
});
