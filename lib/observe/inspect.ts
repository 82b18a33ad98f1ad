/**
 * Inspection (`macula inspect`): the requests a client makes of its node to see what it knows.
 * Each answer is a JSON document for people and scripts (`--json | jq`), built by the node
 * (lib/node/snapshot.ts) from the plain snapshots its layers expose. Operators only: nodes, and
 * clients in the operator group (docs/security.md).
 */
import { defineRequest } from "../peer/mod.ts";

/** The realm's members as the node sees them (`macula inspect members`). */
export const INSPECT_MEMBERS = defineRequest<Record<never, never>, unknown>(
  "inspect.members",
  [],
  "document",
  "operators",
);
/** The node's own state: sessions, routes, relay, traversal, router (`macula inspect node`). */
export const INSPECT_NODE = defineRequest<Record<never, never>, unknown>(
  "inspect.node",
  [],
  "document",
  "operators",
);
/**
 * What the node knows of who subscribes to and serves what, mesh-wide: its own interest record
 * and every origin's it holds, with the path to it (`macula inspect interest`).
 */
export const INSPECT_INTEREST = defineRequest<Record<never, never>, unknown>(
  "inspect.interest",
  [],
  "document",
  "operators",
);
/** The node's DHT: its table by bucket, records held and published (`macula inspect dht`). */
export const INSPECT_DHT = defineRequest<Record<never, never>, unknown>(
  "inspect.dht",
  [],
  "document",
  "operators",
);
