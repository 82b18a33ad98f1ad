/**
 * Layer 5, the mesh: the protocol cores that make nodes a mesh — membership (SWIM + Lifeguard),
 * the k-regular overlay and the paths over it, and the Kademlia DHT (lib/mesh/dht/mod.ts has all
 * of it; what other layers use is re-exported here by name, as its record names would clash) —
 * all sans-IO (lib/util/sansio.ts), run on
 * real time by lib/node and on virtual time by lib/sim. docs/membership.md, docs/overlay.md.
 */
export * from "./membership/mod.ts";
export * from "./overlay/mod.ts";
export * from "./routing/mod.ts";
export {
  decodeDht,
  Dht,
  DHT_DEFAULTS,
  type DhtEvent,
  type DhtMsg,
  type DhtRecord,
  type DhtSigner,
  type DhtStats,
  type DhtVerifier,
  encodeDht,
  type LookupResult,
  type WireContact,
} from "./dht/mod.ts";
export {
  type Addr,
  type Core,
  type Outgoing,
  type Output,
  randInt,
  type Rng,
  seededRng,
  shuffle,
} from "./types.ts";
