/**
 * Macula: mesh networking over QUIC.
 *
 * Today the library exposes its QUIC engine (`lib/quic`): endpoints that dial and accept over one
 * UDP socket, mutual TLS, streams with backpressure, datagrams and migration. The mesh API
 * (`connect`, `Node`) builds on it in later releases.
 *
 * @example Two endpoints exchanging a message
 * ```ts
 * import { QuicEndpoint } from "macula";
 * const tls = { ca: caPem, cert: certPem, key: keyPem };
 * const server = await QuicEndpoint.bind({ host: "127.0.0.1", tls });
 * const client = await QuicEndpoint.bind({ host: "127.0.0.1", tls, acceptIncoming: false });
 * const conn = await client.connect(server.address);
 * const stream = await conn.openStream();
 * await stream.end(new TextEncoder().encode("hello"));
 * ```
 * @module
 */
export * from "./lib/quic/mod.ts";
export { VERSION } from "./lib/version.ts";
