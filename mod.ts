/**
 * Macula: mesh networking over QUIC.
 *
 * Today the library exposes its QUIC engine (`lib/quic`): endpoints that dial and accept over one
 * UDP socket, mutual TLS, streams with backpressure, datagrams and migration; and peer identity
 * (`lib/identity`): realm names, node ids, and a `Verifier` that turns a peer's certificate chain
 * into `{ nodeId, realm, groups, notAfter }`. The mesh API (`connect`, `Node`) builds on them in
 * later releases.
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
export {
  checkRealm,
  nodeIdFromSpki,
  nodeIdText,
  parseMaculaUri,
  realmProblem,
  realmTag,
} from "./lib/identity/names.ts";
export { IdentityError, type PeerIdentity, Verifier } from "./lib/identity/verify.ts";
export { VERSION } from "./lib/version.ts";
