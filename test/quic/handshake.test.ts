import { describe, expect, test } from "bun:test";
import {
  ConnectionClosedError,
  PEER_REJECTED,
  type QuicConnection,
  type QuicEndpoint,
} from "../../lib/quic/mod.ts";
import { makeCa, tlsFor } from "../../lib/identity/devca.ts";
import { ca, closingEndpoints, endpoint, serveEcho, until } from "../helpers/quic.ts";
import { QuicEndpoint as Endpoint } from "../../lib/quic/mod.ts";

const { ep, track } = closingEndpoints();

async function roundTrip(conn: Awaited<ReturnType<QuicEndpoint["connect"]>>) {
  const s = await conn.openStream();
  await s.end(new TextEncoder().encode("ping"));
  return new TextDecoder().decode(await s.readAll());
}

describe("handshake", () => {
  test("connects with mutual TLS and ALPN macula/1; both sides see the peer's chain", async () => {
    const server = await ep();
    const client = await ep({ acceptIncoming: false });
    const accepted = server.accept();
    const conn = await client.connect(server.address);
    const sconn = (await accepted)!;
    expect(conn.alpn).toBe("macula/1");
    expect(sconn.alpn).toBe("macula/1");
    expect(conn.peerCertificates.length).toBe(1);
    expect(sconn.peerCertificates.length).toBe(1);
    expect(server.stats.retriesSent).toBe(1);
    expect(server.stats.connectionsAccepted).toBe(1);
    serveEcho(server);
  });

  test("ALPN mismatch fails with no_application_protocol", async () => {
    const server = await ep({ alpn: ["macula/1"] });
    const client = await ep({ alpn: ["other/9"], acceptIncoming: false });
    const err = await client.connect(server.address).catch((e) => e);
    expect(err).toBeInstanceOf(ConnectionClosedError);
    expect(err.message).toContain("no_application_protocol");
  });

  for (const type of ["ed25519", "p256"] as const) {
    test(`mTLS with ${type} certificates carries data`, async () => {
      const c = await makeCa(type);
      const server = await ep({}, c);
      const client = await ep({ acceptIncoming: false }, c);
      serveEcho(server);
      const conn = await client.connect(server.address);
      expect(await roundTrip(conn)).toBe("ping");
    });
  }

  test("a server certificate from an unknown CA is refused: unknown_ca", async () => {
    const server = await ep({}, await makeCa("ed25519", "other-ca"));
    const client = await ep({ acceptIncoming: false });
    const err = await client.connect(server.address).catch((e) => e);
    expect(err).toBeInstanceOf(ConnectionClosedError);
    expect(err.message).toContain("unknown_ca");
    expect(err.info.initiator).toBe("local");
  });

  test("a client certificate from an unknown CA is refused by the server", async () => {
    const server = await ep();
    const other = await makeCa("ed25519", "other-ca");
    const client = await Endpoint.bind({
      host: "127.0.0.1",
      acceptIncoming: false,
      tls: { ...(await tlsFor(other)), ca: (await ca()).pem },
    });
    track(client);
    const accepted = server.accept();
    const err = await client.connect(server.address).catch((e) => e);
    // TLS 1.3: the client finishes first, so it may learn of the refusal as the server's close.
    expect(err).toBeInstanceOf(ConnectionClosedError);
    expect(err.message).toContain("unknown_ca");
    expect(err.info.initiator).toBe("peer");
    expect(server.stats.connectionsAccepted).toBe(0);
    void accepted;
  });

  test("an expired certificate is refused: certificate_expired", async () => {
    const c = await ca();
    const server = await Endpoint.bind({
      host: "127.0.0.1",
      tls: await tlsFor(c, {
        notBefore: new Date(Date.now() - 3e9),
        notAfter: new Date(Date.now() - 1e9),
      }),
    });
    track(server);
    const client = await ep({ acceptIncoming: false });
    const err = await client.connect(server.address).catch((e) => e);
    expect(err).toBeInstanceOf(ConnectionClosedError);
    expect(err.message).toContain("certificate_expired");
  });

  test("a certificate not yet valid is refused", async () => {
    const c = await ca();
    const server = await Endpoint.bind({
      host: "127.0.0.1",
      tls: await tlsFor(c, {
        notBefore: new Date(Date.now() + 1e9),
        notAfter: new Date(Date.now() + 2e9),
      }),
    });
    track(server);
    const client = await ep({ acceptIncoming: false });
    const err = await client.connect(server.address).catch((e) => e);
    expect(err).toBeInstanceOf(ConnectionClosedError);
    expect(err.message).toContain("certificate_expired");
  });

  test("a client without a certificate is refused: certificate_required", async () => {
    const server = await ep();
    const client = await Endpoint.bind({
      host: "127.0.0.1",
      acceptIncoming: false,
      tls: { ca: (await ca()).pem },
    });
    track(client);
    const err = await client.connect(server.address).catch((e) => e);
    expect(err).toBeInstanceOf(ConnectionClosedError);
    expect(err.message).toContain("certificate_required");
  });

  test("checkPeer refusing a peer closes it with PEER_REJECTED and the reason", async () => {
    const server = await ep({
      checkPeer: (chain) => {
        throw new Error(`node with ${chain.length} certificate(s) is not in realm acme`);
      },
    });
    const client = await ep({ acceptIncoming: false });
    const err = await client.connect(server.address).catch((e) => e);
    expect(err).toBeInstanceOf(ConnectionClosedError);
    expect(err.info.app).toBe(true);
    expect(err.info.code).toBe(PEER_REJECTED);
    expect(err.info.reason).toBe("node with 1 certificate(s) is not in realm acme");
    expect(server.stats.connectionsAccepted).toBe(0);
  });

  test("checkPeer on the dialing side sees the server's chain and may refuse it", async () => {
    const server = await ep();
    let seen = 0;
    const client = await ep({
      acceptIncoming: false,
      checkPeer: async (chain) => {
        seen = chain.length;
        await Promise.resolve();
        throw new Error("wrong node id");
      },
    });
    const err = await client.connect(server.address).catch((e) => e);
    expect(seen).toBe(1);
    expect(err.message).toContain("wrong node id");
  });

  test("data sent while the server's asynchronous checkPeer runs is read once it passes", async () => {
    let pass!: () => void;
    const gate = new Promise<void>((r) => (pass = r));
    let checking: QuicConnection | null = null;
    const server = await ep({
      checkPeer: (_chain, conn) => {
        checking = conn;
        return gate;
      },
    });
    serveEcho(server);
    const client = await ep({ acceptIncoming: false });
    // TLS finished, so the client may already send; the server holds the data until checkPeer
    // passes, and must then read it without waiting for another packet.
    const conn = await client.connect(server.address);
    const s = await conn.openStream();
    const back = s.readAll();
    await s.end(new TextEncoder().encode("early"));
    await until(
      () => checking !== null && [...checking.native.readable()].length > 0,
      "the early data is in quiche while the server still checks the peer",
    );
    pass();
    expect(new TextDecoder().decode(await back)).toBe("early");
  });

  test("bad TLS material fails at bind with a message naming it", async () => {
    const err = await Endpoint.bind({ host: "127.0.0.1", tls: { ca: "nope", cert: "x", key: "y" } })
      .catch((e) => e);
    expect(err.message).toContain("cannot load TLS material");
    const err2 = await Endpoint.bind({ host: "127.0.0.1", tls: { ca: (await ca()).pem } }).catch((
      e,
    ) => e);
    expect(err2.message).toContain("required for an endpoint that accepts connections");
  });

  test("binding a port in use fails with the address in the message", async () => {
    const a = await ep();
    const err = await endpoint({ port: a.address.port }).catch((e) => e);
    expect(err.message).toContain(`127.0.0.1:${a.address.port}`);
  });

  test("retry can be turned off", async () => {
    const server = await ep({ retry: false });
    const client = await ep({ acceptIncoming: false });
    serveEcho(server);
    const conn = await client.connect(server.address);
    expect(await roundTrip(conn)).toBe("ping");
    expect(server.stats.retriesSent).toBe(0);
  });

  test("IPv6 loopback", async () => {
    const server = await ep({ host: "::1" });
    const client = await ep({ host: "::1", acceptIncoming: false });
    serveEcho(server);
    const conn = await client.connect({ host: "::1", port: server.address.port });
    expect(await roundTrip(conn)).toBe("ping");
  });

  test("the node:dgram socket adapter works too", async () => {
    const { openNodeUdpSocket } = await import("../../lib/quic/mod.ts");
    const server = await ep({ socketFactory: openNodeUdpSocket });
    const client = await ep({ acceptIncoming: false, socketFactory: openNodeUdpSocket });
    serveEcho(server);
    const conn = await client.connect(server.address);
    expect(await roundTrip(conn)).toBe("ping");
  });
});
