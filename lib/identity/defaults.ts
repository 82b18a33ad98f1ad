/**
 * The identity layer's defaults, in one place, each with its reason. Three kinds of CA use them:
 *
 * - `realm`: the realm CA operators run (`macula certs`, ca.ts / issue.ts / crl.ts);
 * - `devRealm`: the CA and certificates a node makes for itself on disk when no `tls` is
 *   configured (lib/node/credentials.ts);
 * - `devCa`: the in-memory CA of devca.ts (`macula demo`, tests, benchmarks).
 */
const MINUTE = 60_000;
const DAY = 86_400_000;
const YEAR = 365 * DAY;

/** Defaults of lib/identity (see the module doc); change a value here and it changes everywhere. */
export const IDENTITY_DEFAULTS = {
  /** Key algorithm of new CAs and of keys made for certificates: Ed25519, small and fast. */
  keyType: "ed25519",
  /**
   * DNS names and IP addresses of a certificate for this host: what a node on one machine is
   * dialled as (the dev realm's node certificate, and the in-memory CA's certificates).
   */
  loopback: { dns: ["localhost"], ips: ["127.0.0.1", "::1"] },
  realm: {
    /** `macula certs ca init --duration` (8760h): one year, a yearly CA rotation. */
    caLifetimeMs: YEAR,
    /** `macula certs issue/sign --duration` (2160h): 90 days, so a leaked key ages out soon. */
    certLifetimeMs: 90 * DAY,
    /**
     * Certificates start this long before they are made: a peer whose clock is a little behind
     * still accepts them.
     */
    backdateMs: 5 * MINUTE,
    /** Warn when a certificate or CA is within this long of its expiry: a month to renew it. */
    warnWithinMs: 30 * DAY,
    /** A CRL's lifetime (its nextUpdate), capped at the CA's expiry: re-sign it monthly. */
    crlLifetimeMs: 30 * DAY,
  },
  devRealm: {
    /** The dev realm's CA, made once per data directory: it should outlive any experiment. */
    caLifetimeMs: 10 * YEAR,
    /** The dev realm's node and client certificates: a year, renewed at start when short. */
    certLifetimeMs: YEAR,
    /** A dev-realm certificate with less than this left is replaced at the node's next start. */
    renewWithinMs: DAY,
  },
  devCa: {
    /** Valid from a day back: no clock a test or demo runs on is that far behind. */
    backdateMs: DAY,
    /** `makeCa`: 30 days, longer than any test or benchmark run. */
    caLifetimeMs: 30 * DAY,
    /** `issue`: 7 days, within the CA's lifetime and longer than any run. */
    certLifetimeMs: 7 * DAY,
  },
} as const;
