/**
 * A node's Prometheus metrics (`/metrics` of the admin listener, docs/operations.md "Metrics").
 *
 * One prom-client `Registry` per node (several nodes share a process in tests), every series
 * labelled with the node's `realm` (the registry's default label). Values are read when
 * Prometheus scrapes, from the counters the node keeps anyway (its snapshot, the QUIC endpoint's
 * stats, the DHT, the overlay, the STUN server): nothing is added to the paths messages take.
 * The one exception is the RPC latency histogram, which the router feeds as each call settles
 * (`NodeMetrics.callSettled`).
 *
 * Naming (Prometheus rules): the `macula_` prefix, then the part of the node (`quic`,
 * `membership`, `dht`, `messaging`, `relay`, `traversal`, `stun`, …), base units in the name
 * (`_bytes`, `_seconds`), `_total` on every counter, one family per measure with the kind of
 * thing in a label (`reason`, `state`, `path`, `direction`, `result`) rather than one name each.
 * Messaging follows the OpenTelemetry messaging semantic conventions translated to Prometheus
 * as the OpenTelemetry exporters do (dots become underscores, the unit becomes a suffix,
 * counters get `_total`): `messaging.client.sent.messages` is
 * `macula_messaging_client_sent_messages_total`, `messaging.client.consumed.messages` is
 * `macula_messaging_client_consumed_messages_total`, `messaging.client.operation.duration` is
 * `macula_messaging_client_operation_duration_seconds`, with the attributes `messaging.system`
 * (`macula`), `messaging.operation.name` and `messaging.operation.type` as labels
 * `messaging_system`, `messaging_operation_name`, `messaging_operation_type`.
 *
 * Labels whose values come from peers (refused request methods, peer refusal causes, malformed
 * frames) are bounded: at most `MAX_LABEL_VALUES` values per family, the rest summed as `other`.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { OverlaySnapshot } from "../mesh/mod.ts";
import { isRpcErrorCode } from "../messaging/mod.ts";
import type { StunServerStats } from "../nat/mod.ts";
import type { EndpointStats, EndpointTraffic } from "../quic/mod.ts";
import type { AdminNode, DhtView, SnapshotView } from "./view.ts";

/** Values of one label family taken from peers' input, at most (the rest: `other`). */
export const MAX_LABEL_VALUES = 32;

/**
 * Buckets of the RPC latency histogram, in seconds: 0.5 ms (a call inside one process) to 30 s
 * (past the longest default deadline), about ×2–2.5 apart.
 */
export const CALL_BUCKETS: readonly number[] = [
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
];

/** Everything one scrape reads of the node, read once per scrape. */
export interface Reading {
  snapshot: SnapshotView;
  endpoint: EndpointStats;
  traffic: EndpointTraffic;
  /** Smoothed RTTs of the open QUIC connections, in milliseconds. */
  rttsMs: number[];
  dht: DhtView;
  overlay: OverlaySnapshot;
  stun: StunServerStats;
  punchProbesSeen: number;
}

/** One series: its labels and value. */
type Sample = readonly [labels: Record<string, string>, value: number];

/** A metric read at scrape time. */
export interface MetricDef {
  name: string;
  help: string;
  type: "counter" | "gauge";
  labels?: readonly string[];
  read(r: Reading): number | readonly Sample[];
}

/** The OpenTelemetry messaging attributes of one operation, as Prometheus labels. */
function op(name: string, type: string): Record<string, string> {
  return {
    messaging_system: "macula",
    messaging_operation_name: name,
    messaging_operation_type: type,
  };
}
const MESSAGING_LABELS = [
  "messaging_system",
  "messaging_operation_name",
  "messaging_operation_type",
] as const;

/** `record`'s entries as samples of label `label`, bounded (the rest summed as `other`). */
export function bounded(
  label: string,
  record: Readonly<Record<string, number>>,
  max = MAX_LABEL_VALUES,
): Sample[] {
  const keys = Object.keys(record).sort();
  // All of them when they fit; else the first `max - 1` by name and `other` for the rest.
  const kept = keys.length <= max ? keys.length : max - 1;
  const out: Sample[] = keys.slice(0, kept).map((k) => [{ [label]: k.slice(0, 64) }, record[k]!]);
  if (kept < keys.length) {
    out.push([{ [label]: "other" }, keys.slice(kept).reduce((a, k) => a + record[k]!, 0)]);
  }
  return out;
}

/** Samples of one label from a fixed list of (value, number) pairs. */
function by(label: string, pairs: readonly (readonly [string, number])[]): Sample[] {
  return pairs.map(([k, v]) => [{ [label]: k }, v]);
}

/** How many `rows` there are of each combination of two labels' values. */
function tally<T>(
  rows: Iterable<T>,
  labels: readonly [string, string],
  of: (x: T) => readonly [unknown, unknown],
): Sample[] {
  const n = new Map<string, number>();
  for (const x of rows) {
    const [a, b] = of(x);
    const k = `${a}\u0000${b}`;
    n.set(k, (n.get(k) ?? 0) + 1);
  }
  return [...n].map(([k, v]) => {
    const [a, b] = k.split("\u0000");
    return [{ [labels[0]]: a!, [labels[1]]: b! }, v] as const;
  });
}

const counter = (
  name: string,
  help: string,
  read: MetricDef["read"],
  labels?: readonly string[],
): MetricDef => ({ name, help, type: "counter", read, labels });
const gauge = (
  name: string,
  help: string,
  read: MetricDef["read"],
  labels?: readonly string[],
): MetricDef => ({ name, help, type: "gauge", read, labels });

const ms = (x: number) => x / 1000;

/** Every metric read at scrape time (the histogram and `macula_node_info` are apart). */
export const METRICS: readonly MetricDef[] = [
  // ------------------------------------------------------------------ node
  gauge(
    "macula_node_uptime_seconds",
    "Time since the node started.",
    (r) => ms(r.snapshot.uptimeMs ?? 0),
  ),
  gauge("macula_node_clients", "Clients attached to this node now.", (r) => r.snapshot.clients),

  // ------------------------------------------------------------------ QUIC endpoint
  counter(
    "macula_quic_received_packets_total",
    "UDP datagrams received on the node's QUIC socket (QUIC, STUN, probes, relayed).",
    (r) => r.endpoint.packetsReceived,
  ),
  counter(
    "macula_quic_sent_packets_total",
    "UDP datagrams sent from the node's QUIC socket.",
    (r) => r.endpoint.packetsSent,
  ),
  counter(
    "macula_quic_dropped_packets_total",
    "Datagrams dropped by the endpoint, by reason.",
    (r) =>
      by("reason", [
        ["invalid", r.endpoint.droppedInvalid],
        ["unknown_connection", r.endpoint.droppedUnknownConnection],
        ["not_quic", r.endpoint.droppedNotQuic],
        ["refused", r.endpoint.droppedRefused],
        ["bad_token", r.endpoint.droppedBadToken],
        ["per_source", r.endpoint.droppedPerSource],
        ["socket_send", r.endpoint.socketSendDropped],
      ]),
    ["reason"],
  ),
  counter(
    "macula_quic_sent_bytes_total",
    "UDP payload bytes QUIC sent, over every connection.",
    (r) => r.traffic.bytesSent,
  ),
  counter(
    "macula_quic_received_bytes_total",
    "UDP payload bytes QUIC received, over every connection.",
    (r) => r.traffic.bytesReceived,
  ),
  counter(
    "macula_quic_lost_packets_total",
    "Packets QUIC declared lost, over every connection.",
    (r) => r.traffic.packetsLost,
  ),
  counter(
    "macula_quic_lost_bytes_total",
    "Bytes QUIC declared lost, over every connection.",
    (r) => r.traffic.bytesLost,
  ),
  counter(
    "macula_quic_retransmitted_packets_total",
    "Packets QUIC retransmitted, over every connection.",
    (r) => r.traffic.packetsRetransmitted,
  ),
  counter(
    "macula_quic_retries_sent_total",
    "Stateless retries sent (address validation of new connections).",
    (r) => r.endpoint.retriesSent,
  ),
  counter(
    "macula_quic_version_negotiations_sent_total",
    "Version negotiation packets sent.",
    (r) => r.endpoint.versionNegotiationsSent,
  ),
  counter(
    "macula_quic_connections_total",
    "Connections that completed their handshake, by direction.",
    (r) =>
      by("direction", [
        ["accepted", r.endpoint.connectionsAccepted],
        ["dialed", r.endpoint.connectionsDialed],
      ]),
    ["direction"],
  ),
  counter(
    "macula_quic_handshakes_failed_total",
    "Handshakes that did not finish, by reason: refused or silent (failed), or timed out.",
    (r) =>
      by("reason", [
        ["failed", r.endpoint.handshakesFailed],
        ["timed_out", r.endpoint.handshakesTimedOut],
      ]),
    ["reason"],
  ),
  gauge(
    "macula_quic_handshakes_in_flight",
    "Handshakes under way now.",
    (r) => r.endpoint.handshakesInFlight,
  ),
  gauge(
    "macula_quic_connections",
    "QUIC connections open now (any state).",
    (r) => r.endpoint.connections,
  ),
  gauge(
    "macula_quic_sockets_retiring",
    "Sockets left by a rebind, still open for packets in flight.",
    (r) => r.endpoint.socketsRetiring,
  ),
  gauge(
    "macula_quic_rtt_seconds",
    "Smoothed RTT over the open QUIC connections: min, mean and max.",
    (r) => {
      const v = r.rttsMs;
      if (v.length === 0) return [];
      const sum = v.reduce((a, b) => a + b, 0);
      return by("stat", [
        ["min", ms(Math.min(...v))],
        ["mean", ms(sum / v.length)],
        ["max", ms(Math.max(...v))],
      ]);
    },
    ["stat"],
  ),

  // ------------------------------------------------------------------ sessions and routes
  gauge(
    "macula_sessions",
    "Open sessions by path (direct, punched, relayed) and role (route, client, session).",
    (r) => tally(r.snapshot.peers, ["path", "role"], (p) => [p.path, p.role]),
    ["path", "role"],
  ),
  gauge(
    "macula_routes",
    "Routes to peer nodes by path (direct, punched, relayed).",
    (r) => {
      const n: Record<string, number> = { direct: 0, punched: 0, relayed: 0 };
      for (const x of r.snapshot.routes) n[x.path] = (n[x.path] ?? 0) + 1;
      return by("path", Object.entries(n));
    },
    ["path"],
  ),
  gauge(
    "macula_route_rtt_seconds",
    "Smoothed RTT of each route, by peer node id, path and relay (routes are few: the overlay's).",
    (r) =>
      r.snapshot.routes.map((x) => [
        { peer: x.nodeId, path: x.path, via: x.via ?? "" },
        ms(x.rttMs),
      ]),
    ["peer", "path", "via"],
  ),
  counter(
    "macula_routes_retired_total",
    "Routes this node let go: clean (both ends drained) or cut (at the bound).",
    (r) => by("how", [["clean", r.snapshot.retired.clean], ["cut", r.snapshot.retired.cut]]),
    ["how"],
  ),
  gauge(
    "macula_routes_draining",
    "Routes being let go whose calls are still in flight.",
    (r) => r.snapshot.retired.draining,
  ),
  gauge(
    "macula_shortcuts_open",
    "Shortcuts attached now: direct links to far nodes, this node's and its peers'.",
    (r) => r.snapshot.shortcuts.open,
  ),
  counter(
    "macula_shortcuts_total",
    "Shortcuts by event: opened (taken into use), closed (let go: idle, a route came up, or " +
      "room for a busier one, or slower than the path), dial_failed (no direct or punched " +
      "session), refused (a peer's past this node's bound); held (this node's messages that " +
      "waited while the way to their node changed, so that none overtakes one sent before), " +
      "hold_overflow (sent before their time: the hold was full).",
    (r) =>
      by("event", [
        ["opened", r.snapshot.router.shortcutsOpened],
        ["closed", r.snapshot.router.shortcutsClosed],
        ["held", r.snapshot.router.shortcutHeld],
        ["hold_overflow", r.snapshot.router.shortcutHoldOverflow],
        ["dialed", r.snapshot.shortcuts.dialed],
        ["dial_failed", r.snapshot.shortcuts.failed],
        ["refused", r.snapshot.shortcuts.refused],
      ]),
    ["event"],
  ),
  counter(
    "macula_sessions_closed_total",
    "Sessions this node closed, by reason: request_flood, backed_up, revoked, expired.",
    (r) =>
      by("reason", [
        ["request_flood", r.snapshot.refused.requestFloods],
        ["backed_up", r.snapshot.dropped.closedBackedUp],
        ["revoked", r.snapshot.crl.closedRevoked],
        ["expired", r.snapshot.crl.closedExpired],
      ]),
    ["reason"],
  ),

  // ------------------------------------------------------------------ refusals
  counter(
    "macula_refused_peers_total",
    "Peers refused at the handshake, by cause (unknown-ca, wrong-realm, revoked, expired, …).",
    (r) => bounded("cause", r.snapshot.refused.peers),
    ["cause"],
  ),
  counter(
    "macula_refused_sessions_total",
    "Connections whose session handshake failed after TLS.",
    (r) => r.snapshot.refused.sessions,
  ),
  counter(
    "macula_refused_requests_total",
    "Requests refused by the access check, by method.",
    (r) => bounded("method", r.snapshot.refused.requests),
    ["method"],
  ),
  counter(
    "macula_refused_frames_total",
    "Sessions closed for a malformed or misplaced bus frame, by frame.",
    (r) => bounded("frame", r.snapshot.refused.frames),
    ["frame"],
  ),
  counter(
    "macula_refused_channels_total",
    "Sessions closed for opening a channel of nodes without being one.",
    (r) => r.snapshot.refused.channels,
  ),
  gauge(
    "macula_held_down_certificates",
    "Client certificates held down now after misbehaving.",
    (r) => r.snapshot.refused.heldDown.held,
  ),
  counter(
    "macula_held_down_strikes_total",
    "Strikes against client certificates (sessions closed for misbehaving).",
    (r) => r.snapshot.refused.heldDown.strikes,
  ),
  counter(
    "macula_held_down_refused_total",
    "Sessions refused because their certificate was held down.",
    (r) => r.snapshot.refused.heldDown.refused,
  ),
  counter(
    "macula_crl_received_total",
    "CRLs received (file or peers), by result: accepted, stale, refused.",
    (r) =>
      by("result", [
        ["accepted", r.snapshot.crl.accepted],
        ["stale", r.snapshot.crl.stale],
        ["refused", r.snapshot.crl.refused],
      ]),
    ["result"],
  ),
  gauge(
    "macula_crl_revoked_certificates",
    "Certificates revoked by the CRL held, per issuing CA.",
    (r) =>
      r.snapshot.crl.held.slice(0, MAX_LABEL_VALUES).map((c) => [{ issuer: c.issuer }, c.revoked]),
    ["issuer"],
  ),

  // ------------------------------------------------------------------ membership
  gauge(
    "macula_membership_members",
    "Members of the realm this node knows, by state (itself included).",
    (r) => by("state", Object.entries(r.snapshot.members)),
    ["state"],
  ),
  counter(
    "macula_membership_messages_total",
    "Membership messages by transport (datagram, stream) and direction (in, out).",
    (r) => {
      const m = r.snapshot.membership;
      return [
        [{ transport: "datagram", direction: "in" }, m.datagramsIn],
        [{ transport: "datagram", direction: "out" }, m.datagramsOut],
        [{ transport: "stream", direction: "in" }, m.streamsIn],
        [{ transport: "stream", direction: "out" }, m.streamsOut],
      ];
    },
    ["transport", "direction"],
  ),
  counter(
    "macula_membership_probes_total",
    "Direct probes sent.",
    (r) => r.snapshot.membership.probes,
  ),
  counter(
    "macula_membership_probes_failed_total",
    "Probes that got no ack in time.",
    (r) => r.snapshot.membership.probesFailed,
  ),
  counter(
    "macula_membership_indirect_probes_total",
    "Indirect probes (ping-req) sent.",
    (r) => r.snapshot.membership.indirectProbes,
  ),
  counter(
    "macula_membership_suspicions_total",
    "Members this node came to suspect.",
    (r) => r.snapshot.membership.suspicions,
  ),
  counter(
    "macula_membership_refutations_total",
    "Suspicions of this node it refuted (a higher incarnation).",
    (r) => r.snapshot.membership.refutations,
  ),
  counter(
    "macula_membership_refutations_deferred_total",
    "Refutations held back to keep the interval between two.",
    (r) => r.snapshot.membership.refutationsDeferred,
  ),
  counter(
    "macula_membership_settle_syncs_total",
    "Digest syncs sent once the view settled after a join or a new member.",
    (r) => r.snapshot.membership.settleSyncs,
  ),
  counter(
    "macula_membership_pulls_total",
    "Digest syncs asked of a member this node did not know when it spoke.",
    (r) => r.snapshot.membership.pulls,
  ),
  counter(
    "macula_membership_pulls_held_back_total",
    "Such syncs held back by their rate limits (10 s per member, 1 s in all).",
    (r) => r.snapshot.membership.pullsHeldBack,
  ),
  counter(
    "macula_membership_deaths_total",
    "Members this node declared dead.",
    (r) => r.snapshot.membership.deaths,
  ),
  counter(
    "macula_membership_records_total",
    "Signed records of other members taken.",
    (r) => r.snapshot.membership.records,
  ),
  counter(
    "macula_membership_forgotten_total",
    "Dead and left members forgotten to make room.",
    (r) => r.snapshot.membership.forgotten,
  ),
  counter(
    "macula_membership_dropped_total",
    "Membership messages, records and claims refused, by reason.",
    (r) => {
      const m = r.snapshot.membership;
      return by("reason", [
        ["malformed", m.malformed],
        ["forged", m.forged],
        ["forged_record", m.forgedRecords],
        ["uncertified", m.uncertified],
        ["other_realm", m.droppedOtherRealm],
        ["bound", m.refusedByBound],
        ["stale_claim", m.staleClaims],
        ["claim_ahead", m.claimsAhead],
        ["unknown_accuser", m.claimsUnknownAccuser],
        ["ping_req_unknown", m.refusedPingReqs],
        ["ack_unasked", m.refusedAcks],
        ["unsent", m.unsent],
      ]);
    },
    ["reason"],
  ),
  counter(
    "macula_membership_sessions_closed_total",
    "Sessions membership closed, by reason: forged (too many forged messages), pool (trimmed).",
    (r) =>
      by("reason", [
        ["forged", r.snapshot.membership.sessionsClosedForged],
        ["pool", r.snapshot.membership.sessionsClosedByPool],
      ]),
    ["reason"],
  ),
  counter(
    "macula_membership_signatures_total",
    "Record signatures checked and made.",
    (r) =>
      by("operation", [
        ["checked", r.snapshot.membership.signaturesChecked],
        ["made", r.snapshot.membership.signaturesMade],
      ]),
    ["operation"],
  ),
  counter(
    "macula_membership_certificates_checked_total",
    "Member certificates checked (each new member's once).",
    (r) => r.snapshot.membership.certificatesChecked,
  ),
  counter(
    "macula_membership_handler_failures_total",
    "Failures caught in membership's receive path, sends, timer or handlers.",
    (r) => r.snapshot.membership.handlerFailures,
  ),
  gauge(
    "macula_membership_incarnation",
    "This node's own incarnation number.",
    (r) => r.snapshot.membership.incarnation,
  ),
  gauge(
    "macula_membership_awareness",
    "Lifeguard's local health multiplier (0: healthy).",
    (r) => r.snapshot.membership.awareness,
  ),
  gauge(
    "macula_membership_directory_entries",
    "Members held in the directory (any state).",
    (r) => r.snapshot.membership.directory,
  ),

  // ------------------------------------------------------------------ overlay
  gauge("macula_overlay_degree_target", "Routes the overlay aims for (k).", (r) => r.overlay.k),
  gauge("macula_overlay_members", "Members the overlay chooses among.", (r) => r.overlay.members),
  gauge(
    "macula_overlay_neighbours",
    "Neighbours the overlay chose, by role, and whether a route to each is up.",
    (r) => tally(r.overlay.neighbours, ["role", "linked"], (x) => [x.role, x.linked]),
    ["role", "linked"],
  ),
  gauge(
    "macula_overlay_connecting",
    "Routes the overlay is opening now.",
    (r) => r.overlay.connecting,
  ),
  gauge(
    "macula_overlay_avoided",
    "Members the overlay avoids for a while (a route to them failed).",
    (r) => r.overlay.avoided,
  ),

  // ------------------------------------------------------------------ DHT
  counter(
    "macula_dht_requests_total",
    "DHT requests by direction (in: answered, out: sent).",
    (r) =>
      by("direction", [
        ["in", r.dht.core.stats.requestsIn],
        ["out", r.dht.core.stats.requestsOut],
      ]),
    ["direction"],
  ),
  counter(
    "macula_dht_answers_total",
    "Answers to this node's DHT requests.",
    (r) => r.dht.core.stats.answersIn,
  ),
  counter(
    "macula_dht_timeouts_total",
    "DHT requests that got no answer in time.",
    (r) => r.dht.core.stats.timeouts,
  ),
  counter(
    "macula_dht_refused_total",
    "DHT messages refused, by reason.",
    (r) =>
      by("reason", [
        ["limited", r.dht.core.stats.limited],
        ["other_realm", r.dht.core.stats.otherRealm],
        ["malformed", r.dht.core.stats.malformed],
        ["forged", r.dht.stats.forged],
        ["malformed_answer", r.dht.stats.malformedAnswers],
      ]),
    ["reason"],
  ),
  counter(
    "macula_dht_refused_records_total",
    "DHT records refused on store or read, by reason.",
    (r) => bounded("reason", r.dht.core.stats.refusedRecords),
    ["reason"],
  ),
  counter(
    "macula_dht_bad_records_read_total",
    "Records in answers that failed their check.",
    (r) => r.dht.core.stats.badRecordsRead,
  ),
  counter("macula_dht_lookups_total", "DHT lookups started.", (r) => r.dht.core.stats.lookups),
  counter("macula_dht_refreshes_total", "Bucket refreshes.", (r) => r.dht.core.stats.refreshes),
  counter(
    "macula_dht_republishes_total",
    "Own records republished.",
    (r) => r.dht.core.stats.republishes,
  ),
  counter(
    "macula_dht_left_as_clients_total",
    "Contacts taken out of the table because they now speak in client mode.",
    (r) => r.dht.core.stats.leftAsClients,
  ),
  gauge(
    "macula_dht_client_mode",
    "1 while this node runs its DHT in client mode (others cannot dial it), else 0.",
    (r) => r.dht.core.mode === "client" ? 1 : 0,
  ),
  counter(
    "macula_dht_expired_records_total",
    "Held records that expired.",
    (r) => r.dht.core.stats.expired,
  ),
  counter(
    "macula_dht_unsent_total",
    "DHT queries not sent (no alive member, no session).",
    (r) => r.dht.stats.unsent,
  ),
  counter(
    "macula_dht_handler_failures_total",
    "Failures caught in the DHT's handlers.",
    (r) => r.dht.stats.handlerFailures,
  ),
  counter("macula_dht_bootstraps_total", "DHT bootstraps.", (r) => r.dht.stats.bootstraps),
  gauge("macula_dht_contacts", "Contacts in the routing table.", (r) => r.dht.core.table.size),
  gauge("macula_dht_records_held", "Records held for others.", (r) => r.dht.core.store.size),
  gauge(
    "macula_dht_records_published",
    "This node's own records.",
    (r) => r.dht.core.published().length,
  ),
  gauge("macula_dht_lookups_running", "DHT lookups under way.", (r) => r.dht.core.running),

  // ------------------------------------------------------------------ messaging (OTel names)
  counter(
    "macula_messaging_client_sent_messages_total",
    "Messages sent, by operation: publish (taken from this node's clients), forward (to a " +
      "peer node), call (requests taken), reply (replies passed back).",
    (r) => {
      const s = r.snapshot.router;
      return [
        [op("publish", "send"), s.published],
        [op("forward", "send"), s.forwarded],
        [op("shortcut", "send"), s.viaShortcut],
        [op("call", "send"), s.calls],
        [op("reply", "send"), s.replies],
      ];
    },
    MESSAGING_LABELS,
  ),
  counter(
    "macula_messaging_client_consumed_messages_total",
    "Messages delivered to subscribers on this node (operation deliver).",
    (r) => [[op("deliver", "receive"), r.snapshot.router.delivered]],
    MESSAGING_LABELS,
  ),
  counter(
    "macula_messaging_rpc_failures_total",
    "Calls answered with a failure (no provider, timeout, refused, …).",
    (r) => r.snapshot.router.failures,
  ),
  counter(
    "macula_messaging_dropped_messages_total",
    "Messages not delivered, by reason: no_subscriber (published to nobody), no_route, " +
      "hop_limit, backed_up (a client link), forward_backed_up (a route), shed (the node's " +
      "budget), lost_in_route (a route died).",
    (r) => {
      const s = r.snapshot.router;
      const d = r.snapshot.dropped;
      return by("reason", [
        ["no_subscriber", s.unrouted],
        ["no_route", s.noRoute],
        ["hop_limit", s.hopLimit],
        ["backed_up", d.messages],
        ["forward_backed_up", d.forwards],
        ["shed", d.shed],
        ["lost_in_route", d.lostInRoute ?? 0],
      ]);
    },
    ["reason"],
  ),
  counter(
    "macula_messaging_refused_operations_total",
    "Bus operations refused, by reason: denied (permissions), limited (a link's limit), " +
      "protocol_error.",
    (r) => {
      const s = r.snapshot.router;
      return by("reason", [
        ["denied", s.denied],
        ["limited", s.limited],
        ["protocol_error", s.protocolErrors],
      ]);
    },
    ["reason"],
  ),
  counter(
    "macula_messaging_interest_records_total",
    "Interest records taken (new versions).",
    (r) => r.snapshot.router.records,
  ),
  counter(
    "macula_messaging_interest_frames_total",
    "INTEREST frames by direction.",
    (r) =>
      by("direction", [
        ["in", r.snapshot.router.interestIn],
        ["out", r.snapshot.router.interestOut],
      ]),
    ["direction"],
  ),
  counter(
    "macula_messaging_interest_refused_records_total",
    "Interest records refused: forged (bad signature), not_member (or past the bound).",
    (r) =>
      by("reason", [
        ["forged", r.snapshot.router.forgedRecords],
        ["not_member", r.snapshot.router.refusedRecords],
      ]),
    ["reason"],
  ),
  counter(
    "macula_messaging_interest_overflow_total",
    "Own subscriptions or procedures left out of this node's interest record.",
    (r) => r.snapshot.router.interestOverflow,
  ),
  counter(
    "macula_messaging_bad_trace_context_total",
    "traceparent/tracestate values that were not W3C trace context (dropped).",
    (r) => r.snapshot.router.badTraceContext,
  ),
  gauge(
    "macula_messaging_subscriptions",
    "Subscriptions of this node's clients.",
    (r) => r.snapshot.subscriptions,
  ),
  gauge(
    "macula_messaging_remote_interest",
    "Subscriptions and procedures of other nodes this node routes to.",
    (r) => r.snapshot.remoteInterest,
  ),
  gauge(
    "macula_messaging_procedures",
    "Procedures served by this node's clients.",
    (r) => r.snapshot.procedures.length,
  ),
  gauge(
    "macula_messaging_pending_calls",
    "Calls in flight through this node.",
    (r) => r.snapshot.pendingCalls,
  ),

  // ------------------------------------------------------------------ relay
  gauge("macula_relay_enabled", "1 when this node is a relay.", (r) => r.snapshot.relay ? 1 : 0),
  counter(
    "macula_relay_allocations_total",
    "Relayed sessions set up.",
    (r) => r.snapshot.relay?.allocations ?? 0,
  ),
  counter(
    "macula_relay_refused_total",
    "Relay requests refused (limits).",
    (r) => r.snapshot.relay?.refused ?? 0,
  ),
  counter("macula_relay_packets_total", "Packets relayed.", (r) => r.snapshot.relay?.packets ?? 0),
  counter("macula_relay_bytes_total", "Bytes relayed.", (r) => r.snapshot.relay?.bytes ?? 0),
  counter(
    "macula_relay_dropped_packets_total",
    "Packets the relay dropped, by reason: wrong_source, rate, gone.",
    (r) => {
      const x = r.snapshot.relay;
      return by("reason", [
        ["wrong_source", x?.droppedWrongSource ?? 0],
        ["rate", x?.droppedRate ?? 0],
        ["gone", x?.droppedGone ?? 0],
      ]);
    },
    ["reason"],
  ),
  gauge(
    "macula_relay_sessions",
    "Relayed sessions this relay carries now.",
    (r) => r.snapshot.relay?.sessions.length ?? 0,
  ),

  // ------------------------------------------------------------------ traversal
  counter(
    "macula_traversal_introductions_total",
    "Introductions made as a rendezvous.",
    (r) => r.snapshot.traversal.introductions,
  ),
  counter(
    "macula_traversal_punch_requests_total",
    "Hole-punch requests taken.",
    (r) => r.snapshot.traversal.punchRequests,
  ),
  counter(
    "macula_traversal_punches_total",
    "Hole punches by result.",
    (r) =>
      by("result", [
        ["ok", r.snapshot.traversal.punchedOk],
        ["failed", r.snapshot.traversal.punchFailed],
      ]),
    ["result"],
  ),
  counter(
    "macula_traversal_dialbacks_total",
    "Dial-backs made.",
    (r) => r.snapshot.traversal.dialbacks,
  ),
  counter(
    "macula_traversal_reach_checks_total",
    "Reachability checks made for peers (dialed back at their address), by result.",
    (r) =>
      by("result", [
        ["reached", r.snapshot.traversal.reachChecks.reached],
        ["unreached", r.snapshot.traversal.reachChecks.unreached],
      ]),
    ["result"],
  ),
  counter(
    "macula_traversal_relayed_sessions_total",
    "Sessions opened through a relay.",
    (r) => r.snapshot.traversal.relayedSessions,
  ),
  counter(
    "macula_traversal_upgrades_total",
    "Relayed sessions upgraded to a direct path, by result.",
    (r) =>
      by("result", [
        ["ok", r.snapshot.traversal.upgraded],
        ["failed", r.snapshot.traversal.upgradeFailed],
      ]),
    ["result"],
  ),
  counter(
    "macula_traversal_relay_packets_unknown_total",
    "Relayed packets for neither this node's relay nor its tunnels.",
    (r) => r.snapshot.traversal.relayPacketsUnknown,
  ),
  counter(
    "macula_traversal_refused_total",
    "Punch, dial-back and introduction requests refused.",
    (r) => r.snapshot.traversal.refused,
  ),
  counter(
    "macula_traversal_punch_probes_received_total",
    "Hole-punching probes received.",
    (r) => r.punchProbesSeen,
  ),
  gauge(
    "macula_traversal_tunnels",
    "This node's ends of relayed sessions.",
    (r) => r.snapshot.traversal.tunnels,
  ),

  // ------------------------------------------------------------------ STUN
  counter(
    "macula_stun_requests_total",
    "STUN Binding requests answered with success.",
    (r) => r.stun.requests,
  ),
  counter("macula_stun_errors_total", "STUN error responses sent.", (r) => r.stun.errors),
  counter(
    "macula_stun_ignored_packets_total",
    "Packets the STUN server ignored, by reason: malformed, other (not a request).",
    (r) =>
      by("reason", [
        ["malformed", r.stun.malformed],
        ["other", Math.max(0, r.stun.ignored - r.stun.malformed)],
      ]),
    ["reason"],
  ),
  counter(
    "macula_stun_responses_total",
    "STUN answers by the address that sent them (RFC 5780 slots).",
    (r) =>
      by("from", [
        ["primary", r.stun.sentFrom.primary],
        ["alt_port", r.stun.sentFrom.altPort],
        ["alt_ip", r.stun.sentFrom.altIp],
        ["alt_ip_port", r.stun.sentFrom.altIpPort],
      ]),
    ["from"],
  ),

  // ------------------------------------------------------------------ tracing
  counter(
    "macula_tracing_spans_total",
    "Spans by result: exported (the collector took them), dropped.",
    (r) => {
      const t = r.snapshot.tracing;
      if (!t) return [];
      return by("result", [["exported", t.exported], ["dropped", t.dropped]]);
    },
    ["result"],
  ),
  gauge(
    "macula_tracing_spans_pending",
    "Spans queued or in an export now.",
    (r) => r.snapshot.tracing ? [[{}, r.snapshot.tracing.pending]] : [],
  ),
  counter(
    "macula_tracing_failed_exports_total",
    "Span exports that failed.",
    (r) => r.snapshot.tracing ? [[{}, r.snapshot.tracing.failedExports]] : [],
  ),
];

/** Reads everything one scrape needs from `node`. */
export function readNode(node: AdminNode): Reading {
  const rttsMs: number[] = [];
  for (const c of node.endpoint.connections) {
    if (!c.isOpen) continue;
    try {
      rttsMs.push(c.stats().rttMs);
    } catch {
      // a connection torn down between the list and the read
    }
  }
  return {
    snapshot: node.snapshot(),
    endpoint: node.endpoint.stats,
    traffic: node.endpoint.traffic,
    rttsMs,
    dht: node.dht,
    overlay: node.overlay.snapshot(),
    stun: node.stun.stats,
    punchProbesSeen: node.punchProbesSeen,
  };
}

const finite = (v: number) => (Number.isFinite(v) ? v : 0);

/** A node's metrics: its own registry, read at scrape time; the RPC latency histogram. */
export class NodeMetrics {
  /** The node's registry (`realm` on every series). */
  readonly registry: Registry;
  readonly #calls: Histogram<string>;
  #reading: Reading | null = null;

  constructor(readonly node: AdminNode) {
    const registry = new Registry();
    registry.setDefaultLabels({ realm: node.realm });
    this.registry = registry;
    const read = () => this.#reading ?? readNode(node);
    for (const d of METRICS) {
      const labelNames = [...(d.labels ?? [])];
      if (d.type === "counter") {
        new Counter({
          name: d.name,
          help: d.help,
          labelNames,
          registers: [registry],
          collect() {
            this.reset();
            const v = d.read(read());
            if (typeof v === "number") this.inc(Math.max(0, finite(v)));
            else for (const [l, x] of v) this.inc(l, Math.max(0, finite(x)));
          },
        });
      } else {
        new Gauge({
          name: d.name,
          help: d.help,
          labelNames,
          registers: [registry],
          collect() {
            this.reset();
            const v = d.read(read());
            if (typeof v === "number") this.set(finite(v));
            else for (const [l, x] of v) this.set(l, finite(x));
          },
        });
      }
    }
    new Gauge({
      name: "macula_node_info",
      help: "This node: its id, version and address (value 1).",
      labelNames: ["node_id", "version", "url"],
      registers: [registry],
      collect() {
        this.reset();
        const s = read().snapshot;
        this.set({ node_id: s.nodeId, version: s.version ?? "", url: s.url }, 1);
      },
    });
    this.#calls = new Histogram({
      name: "macula_messaging_client_operation_duration_seconds",
      help: "Calls made by this node's clients, from the call to its answer, by outcome (ok, " +
        "or the error code: timeout, no_provider, …; OpenTelemetry's error.type).",
      labelNames: [...MESSAGING_LABELS, "outcome"],
      buckets: [...CALL_BUCKETS],
      registers: [registry],
    });
  }

  /**
   * One call of a client of this node settled: `outcome` is "ok" or an RPC error code
   * (`timeout`, `no_provider`, …; anything else counts as `other`), `seconds` how long it took.
   * The router calls it (`router.observer`).
   */
  callSettled(outcome: string, seconds: number): void {
    const o = outcome === "ok" || isRpcErrorCode(outcome) ? outcome : "other";
    const s = Number.isFinite(seconds) && seconds > 0 ? seconds : 0;
    this.#calls.observe({ ...op("call", "send"), outcome: o }, s);
  }

  /** The Prometheus text exposition of every metric, the node read once for all of them. */
  async text(): Promise<string> {
    this.#reading = readNode(this.node);
    try {
      return await this.registry.metrics();
    } finally {
      this.#reading = null;
    }
  }

  /** The content type of `text()`. */
  get contentType(): string {
    return this.registry.contentType;
  }
}
