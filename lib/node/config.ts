/**
 * Node configuration: a YAML file (`yaml`, YAML 1.2) and flags over embedded defaults. Every
 * problem is reported with the path of the offending key; unknown keys are errors (a typo must
 * not silently fall back to a default).
 *
 * ```yaml
 * realm: acme
 * data_dir: /var/lib/macula
 * listen: { host: 0.0.0.0, port: 4433 }
 * join: [quic://10.0.0.2:4433]
 * tls: { ca: ca.pem, cert: node.crt, key: node.key, crl: crl.pem }
 * quic: { idle_timeout_ms: 30000, keep_alive_ms: 10000 }
 * limits: { max_payload: 1048576, max_subscriptions: 10000, max_procedures: 1000,
 *           max_pending_calls: 1000, max_call_timeout_ms: 300000,
 *           max_unread_bytes: 1048576, max_queued_bytes: 536870912 }
 * # dev realm only: the CA directory to use (default <data_dir>/ca), so several local
 * # nodes share one development CA
 * dev_ca_dir: ./n1/ca
 * # where other nodes reach this one (default: the listen address)
 * advertise: quic://10.0.0.5:4433
 * # routes kept to neighbours chosen from membership (default 8)
 * overlay: { k: 8 }
 * # roles this node announces to the realm's members
 * tags: [gpu]
 * # relaying for peers that cannot reach each other (docs/nat-traversal.md); on by default
 * relay: { enabled: true, max_sessions: 1024, sessions_per_peer: 16,
 *          bytes_per_second: 1048576, burst_bytes: 262144, upgrade_after_ms: 30000 }
 * # SWIM + Lifeguard timing and the membership session pool (docs/membership.md, "Tuning")
 * membership: { probe_interval_ms: 500, probe_timeout_ms: 200, max_sessions: 64 }
 * # what clients may do, by certificate group (docs/security.md, "Permissions")
 * permissions:
 *   default: deny
 *   groups:
 *     sensors: { publish: { allow: [sensors.>] }, subscribe: { allow: [commands.>] } }
 * ```
 *
 * The defaults, with the reason for each, are in defaults.ts.
 */
import { parse, YAMLParseError } from "yaml";
import { realmProblem } from "../identity/mod.ts";
import type { MembershipConfig } from "../mesh/mod.ts";
import { MAX_PAYLOAD_LIMIT } from "../messaging/mod.ts";
import { formatUrl, parseUrl, UrlError } from "../peer/mod.ts";
import { parsePermissions, type PermissionsConfig, PolicyError } from "../policy/mod.ts";
import { DEFAULTS } from "./defaults.ts";
import { ConfigError } from "./errors.ts";

export { ConfigError, DEFAULTS };

/** A node's configuration, defaults filled in. */
export interface NodeConfig {
  /** Realm; default `dev` (a development realm with a CA made under `data_dir`). */
  realm: string;
  /** Where keys, certificates and state live. Default `./macula-data`. */
  dataDir: string;
  listen: { host: string; port: number };
  /** Seed nodes to connect to, as `quic://host:port`. */
  join: { host: string; port: number }[];
  /** Certificate files; absent in a dev realm, where the node makes its own. */
  tls: { ca: string; cert: string; key: string; crl?: string } | null;
  quic: { idleTimeoutMs: number; keepAliveMs: number };
  /** Largest message or call payload this node accepts. Default 1 MiB. */
  limits: {
    maxPayload: number;
    /** Per client: subscriptions, procedures served, calls in flight; the longest call deadline. */
    maxSubscriptions: number;
    maxProcedures: number;
    maxPendingCalls: number;
    maxCallTimeoutMs: number;
    /** Bytes queued to a caller past which its new calls fail: it does not read its replies. */
    maxUnreadBytes: number;
    /** Bytes queued to all links together before the largest queues are shed. */
    maxQueuedBytes: number;
  };
  /** Dev realm: the CA directory (default `<dataDir>/ca`). Must be null outside the dev realm. */
  devCaDir: string | null;
  /** Dev realm: make a CA in `devCaDir` when there is none (else a missing one is an error). */
  devCaCreate: boolean;
  /**
   * The address other nodes reach this one at (`quic://host:port`); default: the listen address
   * (127.0.0.1 when listening on all interfaces, fine on one host; set it on a real network).
   */
  advertise: string | null;
  /** The overlay: `k` long-lived routes to neighbours chosen from membership (docs/overlay.md). */
  overlay: { k: number };
  /** Roles/tags this node announces in its membership metadata, e.g. `[gpu]`. */
  tags: string[];
  /**
   * Relaying QUIC packets for peers that cannot reach each other (docs/nat-traversal.md): whether
   * this node relays, its quotas, and how soon a relayed session of this node first tries to move
   * to a direct path (then at doubling intervals, up to 16 times that).
   */
  relay: {
    enabled: boolean;
    maxSessions: number;
    sessionsPerPeer: number;
    bytesPerSecond: number;
    burstBytes: number;
    upgradeAfterMs: number;
  };
  /**
   * Membership (docs/membership.md): the SWIM + Lifeguard timing of lib/mesh, and how many
   * sessions the node keeps open for membership traffic.
   */
  membership: MembershipConfig & { maxSessions: number };
  /** What clients may do, by the groups of their certificates (docs/security.md). */
  permissions: PermissionsConfig;
}

/** Config keys of `membership:`, their field and range. */
const MEMBERSHIP_KEYS: Record<string, [keyof NodeConfig["membership"], number, number]> = {
  probe_interval_ms: ["probeIntervalMs", 10, 60_000],
  probe_timeout_ms: ["probeTimeoutMs", 5, 60_000],
  indirect_checks: ["indirectChecks", 0, 16],
  gossip_interval_ms: ["gossipIntervalMs", 10, 60_000],
  gossip_nodes: ["gossipNodes", 1, 64],
  retransmit_mult: ["retransmitMult", 1, 64],
  suspicion_mult: ["suspicionMult", 1, 64],
  suspicion_max_timeout_mult: ["suspicionMaxTimeoutMult", 1, 64],
  awareness_max: ["awarenessMax", 1, 64],
  sync_interval_ms: ["syncIntervalMs", 0, 3_600_000],
  max_packet_bytes: ["maxPacketBytes", 512, 65_000],
  join_retry_ms: ["joinRetryMs", 10, 600_000],
  reconnect_interval_ms: ["reconnectIntervalMs", 0, 3_600_000],
  // Bounds against a hostile member (docs/membership.md, "What a member can and cannot make
  // others believe").
  max_members: ["maxMembers", 16, 1_000_000],
  max_new_per_message: ["maxNewPerMessage", 1, 100_000],
  new_members_per_source: ["newMembersPerSource", 1, 1_000_000],
  refute_interval_ms: ["refuteIntervalMs", 0, 10_000],
  max_sessions: ["maxSessions", 1, 65_535],
};

type Obj = Record<string, unknown>;

/** What was found instead, shortly: a value's kind, and its start when it is text. */
function shown(got: unknown): string {
  if (Array.isArray(got)) return `a list of ${got.length}`;
  const text = JSON.stringify(got) ?? String(got);
  return text.length > 60 ? `${text.slice(0, 57)}…` : text;
}

function fail(path: string, what: string, got: unknown): never {
  throw new ConfigError(`${path ? `${path}: ` : ""}${what} (got ${shown(got)})`);
}

function object(v: unknown, path: string, keys: readonly string[]): Obj {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    fail(path, path ? "must be a mapping" : "must be a mapping of keys, e.g. `realm: acme`", v);
  }
  for (const k of Object.keys(v)) {
    if (!keys.includes(k)) {
      throw new ConfigError(
        `${path ? `${path}.` : ""}${k}: unknown key (known: ${keys.join(", ")})`,
      );
    }
  }
  return v as Obj;
}

function str(v: unknown, path: string): string {
  if (typeof v !== "string" || v.length === 0) fail(path, "must be a non-empty string", v);
  return v;
}

function int(v: unknown, path: string, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    fail(path, `must be an integer from ${min} to ${max}`, v);
  }
  return v;
}

/** Parses `quic://host[:port]` (IPv6 in brackets, port 4433 when left out), like `--server`. */
export function parseSeed(v: unknown, path = "join"): { host: string; port: number } {
  const text = str(v, path);
  try {
    const { host, port } = parseUrl(text, path);
    return { host, port };
  } catch (e) {
    if (e instanceof UrlError) throw new ConfigError(e.message, { cause: e });
    throw e;
  }
}

/** Validates a parsed configuration object and fills in defaults. */
export function configFrom(raw: unknown): NodeConfig {
  const top = object(raw ?? {}, "", [
    "realm",
    "data_dir",
    "listen",
    "join",
    "tls",
    "quic",
    "limits",
    "dev_ca_dir",
    "dev_ca_create",
    "advertise",
    "overlay",
    "tags",
    "relay",
    "membership",
    "permissions",
  ]);
  const c: NodeConfig = structuredClone(DEFAULTS);
  if (top.realm !== undefined) {
    const r = str(top.realm, "realm");
    const p = realmProblem(r);
    if (p) fail("realm", p, r);
    c.realm = r;
  }
  if (top.data_dir !== undefined) c.dataDir = str(top.data_dir, "data_dir");
  if (top.listen !== undefined) {
    const l = object(top.listen, "listen", ["host", "port"]);
    if (l.host !== undefined) c.listen.host = str(l.host, "listen.host");
    if (l.port !== undefined) c.listen.port = int(l.port, "listen.port", 0, 65535);
  }
  if (top.join !== undefined) {
    if (!Array.isArray(top.join)) fail("join", "must be a list of quic://host:port", top.join);
    c.join = top.join.map((s, i) => parseSeed(s, `join[${i}]`));
  }
  if (top.tls !== undefined && top.tls !== null) {
    const t = object(top.tls, "tls", ["ca", "cert", "key", "crl"]);
    for (const k of ["ca", "cert", "key"] as const) {
      if (t[k] === undefined) {
        throw new ConfigError(`tls.${k}: missing (tls needs ca, cert and key)`);
      }
    }
    c.tls = { ca: str(t.ca, "tls.ca"), cert: str(t.cert, "tls.cert"), key: str(t.key, "tls.key") };
    if (t.crl !== undefined) c.tls.crl = str(t.crl, "tls.crl");
  }
  if (top.quic !== undefined) {
    const q = object(top.quic, "quic", ["idle_timeout_ms", "keep_alive_ms"]);
    if (q.idle_timeout_ms !== undefined) {
      c.quic.idleTimeoutMs = int(q.idle_timeout_ms, "quic.idle_timeout_ms", 1000, 3_600_000);
    }
    if (q.keep_alive_ms !== undefined) {
      c.quic.keepAliveMs = int(q.keep_alive_ms, "quic.keep_alive_ms", 0, 3_600_000);
    }
  }
  if (top.limits !== undefined) {
    const l = object(top.limits, "limits", [
      "max_payload",
      "max_subscriptions",
      "max_procedures",
      "max_pending_calls",
      "max_call_timeout_ms",
      "max_unread_bytes",
      "max_queued_bytes",
    ]);
    if (l.max_payload !== undefined) {
      c.limits.maxPayload = int(l.max_payload, "limits.max_payload", 1, MAX_PAYLOAD_LIMIT);
    }
    const n = (k: string, min: number, max: number) => int(l[k], `limits.${k}`, min, max);
    if (l.max_subscriptions !== undefined) {
      c.limits.maxSubscriptions = n("max_subscriptions", 1, 10_000_000);
    }
    if (l.max_procedures !== undefined) c.limits.maxProcedures = n("max_procedures", 1, 1_000_000);
    if (l.max_pending_calls !== undefined) {
      c.limits.maxPendingCalls = n("max_pending_calls", 1, 1_000_000);
    }
    if (l.max_queued_bytes !== undefined) {
      c.limits.maxQueuedBytes = n("max_queued_bytes", 1024 * 1024, 2 ** 40);
    }
    if (l.max_unread_bytes !== undefined) {
      c.limits.maxUnreadBytes = n("max_unread_bytes", 64 * 1024, 2 ** 40);
    }
    if (l.max_call_timeout_ms !== undefined) {
      c.limits.maxCallTimeoutMs = n("max_call_timeout_ms", 1, 86_400_000);
    }
  }
  if (top.dev_ca_dir !== undefined) c.devCaDir = str(top.dev_ca_dir, "dev_ca_dir");
  if (top.dev_ca_create !== undefined) {
    if (typeof top.dev_ca_create !== "boolean") {
      fail("dev_ca_create", "must be true or false", top.dev_ca_create);
    }
    c.devCaCreate = top.dev_ca_create;
  }
  if (top.tags !== undefined) {
    if (!Array.isArray(top.tags) || top.tags.length > 32) {
      fail("tags", "must be a list of at most 32 tags", top.tags);
    }
    c.tags = top.tags.map((t, i) => {
      const v = str(t, `tags[${i}]`);
      if (!/^[A-Za-z0-9_.-]{1,64}$/.test(v)) {
        fail(`tags[${i}]`, "must be 1-64 of A-Z a-z 0-9 _ . -", v);
      }
      return v;
    });
  }
  if (top.overlay !== undefined) {
    const ov = object(top.overlay, "overlay", ["k"]);
    if (ov.k !== undefined) {
      // One neighbour each splits any mesh past a handful of nodes (docs/overlay.md).
      if (ov.k === 1) {
        fail(
          "overlay.k",
          "must be 2 or more: with 1 neighbour per node the mesh splits into islands",
          1,
        );
      }
      c.overlay.k = int(ov.k, "overlay.k", 2, 64);
    }
  }
  if (top.relay !== undefined) {
    const r = object(top.relay, "relay", [
      "enabled",
      "max_sessions",
      "sessions_per_peer",
      "bytes_per_second",
      "burst_bytes",
      "upgrade_after_ms",
    ]);
    if (r.enabled !== undefined) {
      if (typeof r.enabled !== "boolean") fail("relay.enabled", "must be true or false", r.enabled);
      c.relay.enabled = r.enabled;
    }
    const n = (k: string, min: number, max: number) => int(r[k], `relay.${k}`, min, max);
    if (r.max_sessions !== undefined) c.relay.maxSessions = n("max_sessions", 1, 65_535);
    if (r.sessions_per_peer !== undefined) {
      c.relay.sessionsPerPeer = n("sessions_per_peer", 1, 65_535);
    }
    if (r.bytes_per_second !== undefined) {
      c.relay.bytesPerSecond = n("bytes_per_second", 1024, 2 ** 40);
    }
    // A burst must hold at least one whole packet, or nothing ever passes.
    if (r.burst_bytes !== undefined) c.relay.burstBytes = n("burst_bytes", 1500, 2 ** 40);
    if (r.upgrade_after_ms !== undefined) {
      c.relay.upgradeAfterMs = n("upgrade_after_ms", 100, 3_600_000);
    }
  }
  if (top.membership !== undefined) {
    const m = object(top.membership, "membership", Object.keys(MEMBERSHIP_KEYS));
    for (const [key, [field, min, max]] of Object.entries(MEMBERSHIP_KEYS)) {
      if (m[key] !== undefined) c.membership[field] = int(m[key], `membership.${key}`, min, max);
    }
    if (c.membership.probeTimeoutMs >= c.membership.probeIntervalMs) {
      fail(
        "membership.probe_timeout_ms",
        `must be shorter than probe_interval_ms (${c.membership.probeIntervalMs})`,
        c.membership.probeTimeoutMs,
      );
    }
  }
  if (top.permissions !== undefined && top.permissions !== null) {
    try {
      c.permissions = parsePermissions(top.permissions);
    } catch (e) {
      if (e instanceof PolicyError) throw new ConfigError(e.message, { cause: e });
      throw e;
    }
  }
  if (top.advertise !== undefined) {
    const a = parseSeed(top.advertise, "advertise");
    c.advertise = formatUrl(a.host, a.port);
  }
  if (c.devCaDir !== null && c.realm !== "dev") {
    throw new ConfigError(
      `dev_ca_dir: only for the dev realm (realm ${c.realm} uses tls.ca from its own CA)`,
    );
  }
  if (c.realm !== "dev" && c.tls === null) {
    throw new ConfigError(
      `tls: required for realm ${c.realm} (only the dev realm makes its own certificates)`,
    );
  }
  return c;
}

/** Parses YAML text (`source` names it in errors) into a configuration. */
export function parseConfig(text: string, source = "config"): NodeConfig {
  if (text.includes("\u0000") || text.includes("\ufffd")) {
    throw new ConfigError(`${source}: not a text file (a YAML configuration is expected)`);
  }
  let raw: unknown;
  try {
    raw = parse(text, { uniqueKeys: true, strict: true });
  } catch (e) {
    if (e instanceof YAMLParseError) {
      const at = e.linePos?.[0];
      const what = e.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "");
      // The line and a caret under the column, as compilers show it.
      const excerpt = at === undefined ? "" : (() => {
        const n = String(at.line);
        const shown = (text.split("\n")[at.line - 1] ?? "").slice(0, 200);
        return `\n  ${n} | ${shown}\n  ${" ".repeat(n.length)} | ${" ".repeat(at.col - 1)}^`;
      })();
      throw new ConfigError(
        `${source}${at ? `:${at.line}:${at.col}` : ""}: ${what}${excerpt}`,
        { cause: e },
      );
    }
    throw e;
  }
  try {
    return configFrom(raw);
  } catch (e) {
    if (e instanceof ConfigError) throw new ConfigError(`${source}: ${e.message}`, { cause: e });
    throw e;
  }
}

/** A configuration given in code (`Node.start`): any part of it; defaults fill in the rest. */
export interface NodeConfigInput
  extends
    Partial<Omit<NodeConfig, "listen" | "quic" | "limits" | "relay" | "overlay" | "membership">> {
  listen?: Partial<NodeConfig["listen"]>;
  quic?: Partial<NodeConfig["quic"]>;
  limits?: Partial<NodeConfig["limits"]>;
  overlay?: Partial<NodeConfig["overlay"]>;
  relay?: Partial<NodeConfig["relay"]>;
  membership?: Partial<NodeConfig["membership"]>;
}

/** `o` over the defaults (nested sections merged key by key; undefined means "the default"). */
export function withDefaults(o: NodeConfigInput): NodeConfig {
  const d = structuredClone(DEFAULTS);
  const pick = <T extends object>(base: T, over: Partial<T> | undefined): T => ({
    ...base,
    ...Object.fromEntries(Object.entries(over ?? {}).filter(([, v]) => v !== undefined)),
  });
  return {
    realm: o.realm ?? d.realm,
    dataDir: o.dataDir ?? d.dataDir,
    listen: pick(d.listen, o.listen),
    join: o.join ?? d.join,
    tls: o.tls ?? d.tls,
    quic: pick(d.quic, o.quic),
    limits: pick(d.limits, o.limits),
    devCaDir: o.devCaDir ?? d.devCaDir,
    devCaCreate: o.devCaCreate ?? d.devCaCreate,
    advertise: o.advertise ?? d.advertise,
    overlay: pick(d.overlay, o.overlay),
    tags: o.tags ?? d.tags,
    relay: pick(d.relay, o.relay),
    membership: pick(d.membership, o.membership),
    permissions: o.permissions ?? d.permissions,
  };
}
