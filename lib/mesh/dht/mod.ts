/** Kademlia, sans-IO: the table, the records and the core (docs/dht.md). */
export {
  Dht,
  DHT_DEFAULTS,
  type DhtConfig,
  type DhtEvent,
  type DhtMsg,
  type DhtOptions,
  type DhtStats,
  type LookupResult,
  type WireContact,
} from "./dht.ts";
export {
  check as checkRecord,
  DHT_DOMAIN,
  type DhtRecord,
  type DhtSigner,
  type DhtVerifier,
  RECORD_LIMITS,
  recordBytes,
  RecordStore,
  type Refusal,
} from "./records.ts";
export { commonPrefix, type Contact, randomIdInBucket, RoutingTable } from "./table.ts";
export { decodeDht, DHT_FRAMES, dhtCodec, encodeDht, MAX_CONTACTS } from "./wire.ts";
