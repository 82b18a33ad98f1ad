/**
 * A peer made by hand: its own QUIC endpoint on 127.0.0.1 with a new certificate from a node's
 * dev CA, for tests that send a node what the client library and real nodes never would.
 */
import { type Credentials, issueCert, loadCa, Verifier } from "../../lib/identity/mod.ts";
import { PeerSession, type SessionOptions } from "../../lib/peer/mod.ts";
import { QuicEndpoint } from "../../lib/quic/mod.ts";

/** Credentials of a new certificate from the CA in `caDir` (an hour's validity). */
export async function issueCreds(
  caDir: string,
  name: string,
  o: { role?: "node" | "client"; groups?: string[] } = {},
): Promise<Credentials> {
  const ca = await loadCa(caDir);
  const c = await issueCert({
    ca,
    name,
    role: o.role ?? "client",
    groups: o.groups ?? [],
    durationMs: 3_600_000,
  });
  return { ca: ca.pem, cert: c.pem, key: c.keyPem! };
}

/** A hand-made peer: `session` dials a node's port as this certificate. Close `endpoint` after. */
export interface RawPeer {
  readonly endpoint: QuicEndpoint;
  readonly creds: Credentials;
  /** The node id of the certificate (what a HELLO must name). */
  readonly nodeId: string;
  session(port: number, o?: Omit<SessionOptions, "self">): Promise<PeerSession>;
}

/** A peer with credentials `creds` (or a new certificate `name` from `caDir`). */
export async function rawPeer(
  caDir: string,
  name: string,
  o: { role?: "node" | "client"; groups?: string[]; creds?: Credentials } = {},
): Promise<RawPeer> {
  const creds = o.creds ?? await issueCreds(caDir, name, o);
  const verifier = await Verifier.create({ ca: creds.ca });
  const me = await verifier.verify(creds.cert);
  const endpoint = await QuicEndpoint.bind({
    host: "127.0.0.1",
    port: 0,
    tls: creds,
    checkPeer: verifier.checkPeer(),
  });
  return {
    endpoint,
    creds,
    nodeId: me.nodeId,
    session: async (port, so = {}) =>
      await PeerSession.dial(await endpoint.connect({ host: "127.0.0.1", port }), {
        ...so,
        self: { nodeId: me.nodeId, realm: me.realm },
      }),
  };
}
