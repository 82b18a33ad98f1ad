/**
 * The request that carries a CRL between peers (served by lib/node/revocation.ts, sent by nodes
 * to their routes and by `macula certs revoke --publish` through a client).
 */
import { defineRequest } from "../peer/mod.ts";

/** Hands a CRL (DER or PEM bytes) to a node; answers whether it took it. */
export const CRL_PUSH = defineRequest<Uint8Array, { accepted: boolean; reason?: string }>(
  "crl.push",
  "bytes",
  [
    { name: "accepted", kind: "bool", max: 1, want: "true or false" },
    { name: "reason", kind: "str", max: 512, optional: true },
  ],
  // A CRL is self-authenticating (only the realm CA can make one that is taken): anyone may
  // hand one over, `macula certs revoke --publish` with any certificate of the realm.
  "anyone",
);

/** The largest CRL taken: about 20,000 revoked serials. */
export const MAX_CRL_BYTES = 1024 * 1024;
