/**
 * The requests of NAT traversal, between nodes and from a client to its node, each declared once
 * with the fields it carries (lib/peer/requests.ts: one registry, one field checker). Who sends
 * what is described in lib/nat/traversal.ts and docs/nat-traversal.md.
 */
import { isIP } from "node:net";
import { isNodeIdText } from "../identity/mod.ts";
import { defineRequest } from "../peer/mod.ts";
import { TUNNEL_HOST } from "../quic/mod.ts";
import type { FieldSpec } from "../wire/mod.ts";

/** A node id, in text. */
const nodeId = (name: string, optional = false): FieldSpec => ({
  name,
  kind: "str",
  max: 52,
  valid: isNodeIdText,
  want: "a node id",
  optional,
});
/** An IP address that is not a relay tunnel's (a peer's public address, as seen). */
const host = (name = "host"): FieldSpec => ({
  name,
  kind: "str",
  max: 64,
  valid: (v: string) => isIP(v) !== 0 && v !== TUNNEL_HOST,
  want: "an IP address",
});
const port: FieldSpec = {
  name: "port",
  kind: "uint",
  max: 65535,
  valid: (v: number) => v >= 1,
  want: "a port 1-65535",
};
const token = (name = "token"): FieldSpec => ({
  name,
  kind: "str",
  max: 32,
  valid: (v: string) => /^[0-9a-f]{32}$/.test(v),
  want: "32 hex digits",
});
const ok: FieldSpec = { name: "ok", kind: "bool", max: 1, want: "true" };
const flag = (name: string): FieldSpec => ({
  name,
  kind: "bool",
  max: 1,
  optional: true,
  want: "true or false",
});

type Ok = { ok: boolean };
type Empty = Record<never, never>;
/** An address as a peer saw it. */
export type HostPortBody = { host: string; port: number };

/** Any node: "are you there?" — the answer names the node. */
export const PING = defineRequest<Empty, { node: string }>("ping", [], [nodeId("node")]);
/** The address the asker's packets come from, as this node sees it. */
export const NAT_OBSERVED = defineRequest<Empty, HostPortBody>("nat.observed", [], [
  {
    name: "host",
    kind: "str",
    max: 64,
    valid: (v: string) => isIP(v) !== 0,
    want: "an IP address",
  },
  port,
]);
/** To a rendezvous: introduce me to `target` (it probes towards me); answers its address. */
export const NAT_INTRODUCE = defineRequest<{ target: string }, HostPortBody>(
  "nat.introduce",
  [nodeId("target")],
  [host(), port],
);
/** From a rendezvous to the target: `peer` at host:port is about to dial you; send probes there. */
export const NAT_PUNCH = defineRequest<{ peer: string } & HostPortBody, Ok>(
  "nat.punch",
  [nodeId("peer"), host(), port],
  [ok],
);
/** The dialer of a punched session tells the other side it was punched. */
export const NAT_PUNCHED = defineRequest<Empty, Ok>("nat.punched", [], [ok]);
/** To a rendezvous: my punch to `target` failed; have it dial me instead. */
export const NAT_DIALBACK = defineRequest<{ target: string }, Ok>(
  "nat.dialback",
  [nodeId("target")],
  [ok],
);
/**
 * To a peer node: dial me back, on a new connection, at the address my membership record gives;
 * `ok` says whether that worked (docs/dht.md, "Client mode": whether others can dial this node).
 */
export const NAT_REACHABLE = defineRequest<Empty, Ok>("nat.reachable", [], [ok]);
/** From a rendezvous to the target: dial `peer` at host:port (probes first). */
export const NAT_DIAL = defineRequest<{ peer: string } & HostPortBody, Ok>(
  "nat.dial",
  [nodeId("peer"), host(), port],
  [ok],
);
/** To the dialer of a relayed session: move it to a direct path; answers the rendezvous used. */
export const NAT_UPGRADE = defineRequest<Empty, { via?: string }>("nat.upgrade", [], [
  nodeId("via", true),
]);
/** To a relay: allocate a relayed session to `target`; answers the asker's token. */
export const RELAY_OPEN = defineRequest<{ target: string }, { token: string }>(
  "relay.open",
  [nodeId("target")],
  [token()],
  "operators",
);
/** From a relay to the target: a relayed session from `peer` comes with `token`. */
export const RELAY_ACCEPT = defineRequest<{ peer: string; token: string }, Ok>(
  "relay.accept",
  [nodeId("peer"), token()],
  [ok],
);
/**
 * From a client to its node: reach `target` and ping it once; answers how (a `ReachResult`, shown
 * by `macula ping`).
 */
export const NAT_PING = defineRequest<
  { target: string; relayOnly?: boolean; upgrade?: boolean },
  unknown
>("nat.ping", [nodeId("target"), flag("relayOnly"), flag("upgrade")], "document", "operators");
