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
 * overlay: { k: 8, shortcuts: 128 }
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
 * # the admin HTTP listener: /metrics, /healthz, /readyz, the topology page (docs/operations.md);
 * # default 127.0.0.1 on the QUIC port + 5000; `off` turns it off
 * admin: { listen: 127.0.0.1:9433 }
 * # how `macula node up` logs on stderr
 * log: { level: info, format: json }
 * # spans of publishes and calls, exported over OTLP/HTTP (docs/tracing.md)
 * trace: { otlp: http://127.0.0.1:4318/v1/traces }
 * ```
 *
 * Relative paths in a file (data_dir, tls.*, dev_ca_dir) are relative to the file's folder
 * (`relativeTo`), as systemd and containers need; on the command line, to the working directory.
 *
 * The defaults, with the reason for each, are in defaults.ts.
 */
import { dirname, isAbsolute, resolve } from "node:path";
import { parse, YAMLParseError } from "yaml";
import { realmProblem } from "../identity/mod.ts";
import type { MembershipConfig } from "../mesh/mod.ts";
import { MAX_PAYLOAD_LIMIT } from "../messaging/mod.ts";
import { formatUrl, parseUrl, UrlError } from "../peer/mod.ts";
import { parsePermissions, type PermissionsConfig, PolicyError } from "../policy/mod.ts";
import { type LogFormat, logFormatProblem, type LogLevel, logLevelProblem } from "../util/mod.ts";
import { ADMIN_PORT_OFFSET, DEFAULTS } from "./defaults.ts";
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
  /**
   * The overlay: `k` long-lived routes to neighbours chosen from membership (docs/overlay.md),
   * and at most `shortcuts` direct links to far nodes this node's clients keep sending to, each
   * only while used (docs/routing.md, "Shortcuts"; 0: none).
   */
  overlay: { k: number; shortcuts: number };
  /**
   * The DHT's mode (docs/dht.md, "Client mode"): `auto` finds out whether other nodes can dial
   * this one at its address and runs as a client (in no other node's table) when they cannot;
   * `server` or `client` fixes it.
   */
  dht: { mode: DhtModeSetting };
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
  /** The admin HTTP listener (docs/operations.md), or null: off. */
  admin: { host: string; port: number } | null;
  /** How `macula node up` logs (a node started from code is handed its `log`). */
  log: { level: LogLevel; format: LogFormat };
  /** OTLP/HTTP export of spans (docs/tracing.md), or null: no tracing. */
  trace: { otlp: string } | null;
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

/** `dht.mode` values. */
export const DHT_MODES = ["auto", "server", "client"] as const;
export type DhtModeSetting = (typeof DHT_MODES)[number];

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
    "dht",
    "tags",
    "relay",
    "membership",
    "permissions",
    "admin",
    "log",
    "trace",
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
    const ov = object(top.overlay, "overlay", ["k", "shortcuts"]);
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
    if (ov.shortcuts !== undefined) {
      c.overlay.shortcuts = int(ov.shortcuts, "overlay.shortcuts", 0, 1024);
    }
  }
  if (top.dht !== undefined) {
    const dh = object(top.dht, "dht", ["mode"]);
    if (dh.mode !== undefined) {
      if (!DHT_MODES.includes(dh.mode as DhtModeSetting)) {
        fail("dht.mode", `must be one of ${DHT_MODES.join(", ")}`, dh.mode);
      }
      c.dht.mode = dh.mode as DhtModeSetting;
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
  if (top.admin === undefined) {
    // On, at the QUIC port + 5000 (a free port when the QUIC port is one).
    const p = c.listen.port;
    c.admin = {
      host: "127.0.0.1",
      port: p === 0 || p + ADMIN_PORT_OFFSET > 65535 ? 0 : p + ADMIN_PORT_OFFSET,
    };
  } else if (top.admin !== null) {
    const a = object(top.admin, "admin", ["listen"]);
    c.admin = a.listen === undefined ? { host: "127.0.0.1", port: 0 } : adminListen(a.listen);
  } else {
    c.admin = null;
  }
  if (top.log !== undefined) {
    const l = object(top.log, "log", ["level", "format"]);
    if (l.level !== undefined) {
      const p = logLevelProblem(l.level);
      if (p) fail("log.level", p, l.level);
      c.log.level = l.level as LogLevel;
    }
    if (l.format !== undefined) {
      const p = logFormatProblem(l.format);
      if (p) fail("log.format", p, l.format);
      c.log.format = l.format as LogFormat;
    }
  }
  if (top.trace !== undefined && top.trace !== null) {
    const t = object(top.trace, "trace", ["otlp"]);
    if (t.otlp === undefined) throw new ConfigError("trace.otlp: missing (the collector's URL)");
    c.trace = { otlp: otlpUrl(t.otlp) };
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

/** `admin.listen`: `host:port`, `:port`, a port, or `off`. */
export function adminListen(
  v: unknown,
  path = "admin.listen",
): { host: string; port: number } | null {
  if (v === "off" || v === false) return null;
  if (typeof v === "number") return { host: "127.0.0.1", port: int(v, path, 0, 65535) };
  const text = str(v, path);
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    fail(path, "must be host:port (e.g. 127.0.0.1:9433, [::1]:9433), a port, or off", v);
  }
  return { host: m[1] ?? (m[2] || "127.0.0.1"), port };
}

/** `trace.otlp`: an http(s) URL. */
function otlpUrl(v: unknown): string {
  const text = str(v, "trace.otlp");
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    fail(
      "trace.otlp",
      "must be an http:// or https:// URL, e.g. http://127.0.0.1:4318/v1/traces",
      v,
    );
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    fail("trace.otlp", "must be an http:// or https:// URL (OTLP/HTTP)", v);
  }
  return text;
}

/** The keys of a config file that hold paths. */
const PATH_KEYS: readonly (readonly string[])[] = [
  ["data_dir"],
  ["dev_ca_dir"],
  ["tls", "ca"],
  ["tls", "cert"],
  ["tls", "key"],
  ["tls", "crl"],
];

/**
 * A parsed config file's object with its relative paths (data_dir, dev_ca_dir, tls.*) made
 * relative to `folder` (the file's): a unit started from `/` finds `node.crt` next to its
 * config. Anything that is not a string path is left for validation to report.
 */
export function relativeTo(raw: unknown, folder: string): unknown {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return raw;
  const out = structuredClone(raw) as Obj;
  for (const keys of PATH_KEYS) {
    let at: unknown = out;
    for (const k of keys.slice(0, -1)) at = (at as Obj | undefined)?.[k];
    if (typeof at !== "object" || at === null) continue;
    const leaf = keys[keys.length - 1]!;
    const v = (at as Obj)[leaf];
    if (typeof v === "string" && v.length > 0 && !isAbsolute(v)) {
      (at as Obj)[leaf] = resolve(folder, v);
    }
  }
  return out;
}

/**
 * Parses YAML text (`source` names it in errors) into a configuration. When `source` is the
 * file's path, its relative paths are taken from the file's folder.
 */
export function parseConfig(text: string, source = "config", file = false): NodeConfig {
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
    return configFrom(file ? relativeTo(raw, dirname(resolve(source))) : raw);
  } catch (e) {
    if (e instanceof ConfigError) throw new ConfigError(`${source}: ${e.message}`, { cause: e });
    throw e;
  }
}

/** A configuration given in code (`Node.start`): any part of it; defaults fill in the rest. */
export interface NodeConfigInput extends
  Partial<
    Omit<
      NodeConfig,
      "listen" | "quic" | "limits" | "relay" | "overlay" | "dht" | "membership" | "log"
    >
  > {
  listen?: Partial<NodeConfig["listen"]>;
  quic?: Partial<NodeConfig["quic"]>;
  limits?: Partial<NodeConfig["limits"]>;
  overlay?: Partial<NodeConfig["overlay"]>;
  dht?: Partial<NodeConfig["dht"]>;
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
    dht: pick(d.dht, o.dht),
    tags: o.tags ?? d.tags,
    relay: pick(d.relay, o.relay),
    membership: pick(d.membership, o.membership),
    permissions: o.permissions ?? d.permissions,
    admin: o.admin ?? d.admin,
    log: d.log, // a node started from code is handed its Log (NodeStartOptions.log)
    trace: o.trace ?? d.trace,
  };
}

const snake = (k: string) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const snakeKeys = (o: object) =>
  Object.fromEntries(Object.entries(o).map(([k, v]) => [snake(k), v]));

/**
 * A configuration in the file's own form (snake_case keys, seeds as URLs): what
 * `macula node up --check` prints, and what `parseConfig` reads back to the same configuration.
 */
export function configToFile(c: NodeConfig): Record<string, unknown> {
  const hostPort = (a: { host: string; port: number }) =>
    a.host.includes(":") ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
  return {
    realm: c.realm,
    data_dir: c.dataDir,
    listen: c.listen,
    join: c.join.map((s) => formatUrl(s.host, s.port)),
    tls: c.tls,
    quic: snakeKeys(c.quic),
    limits: snakeKeys(c.limits),
    dev_ca_dir: c.devCaDir ?? undefined,
    dev_ca_create: c.devCaCreate,
    advertise: c.advertise ?? undefined,
    overlay: c.overlay,
    dht: c.dht,
    tags: c.tags,
    relay: snakeKeys(c.relay),
    membership: snakeKeys(c.membership),
    permissions: {
      default: c.permissions.default,
      operator_group: c.permissions.operatorGroup,
      groups: c.permissions.groups,
    },
    admin: { listen: c.admin ? hostPort(c.admin) : "off" },
    log: c.log,
    trace: c.trace,
  };
}

/**
 * A commented sample configuration (`macula config init`): every section with its default
 * value, so that the file as written runs exactly as no file does (a test holds it to that).
 */
export function sampleConfig(): string {
  const d = DEFAULTS;
  const m = d.membership;
  return `# Macula node configuration (YAML). Every value shown is the default: edit what you need.
# Relative paths are relative to this file's folder. Check it with:
#   macula node up --config <this file> --check
# The guide: macula docs operations (and macula docs cli for every command).

# The realm (tenant) this node belongs to. "dev" makes its own CA under data_dir; any other
# realm needs tls (below) with certificates from its CA: macula certs issue --realm <realm>.
realm: ${d.realm}

# Keys, certificates and state (the lock file macula.lock keeps a second node out).
data_dir: ${d.dataDir}

# The UDP address QUIC listens on.
listen: { host: ${d.listen.host}, port: ${d.listen.port} }

# Seed nodes to join the mesh through, e.g. [quic://10.0.0.2:4433, quic://seed.example:4433].
join: []

# Certificates (required outside the dev realm): the realm CA, this node's certificate and key,
# and optionally the CRL (macula certs revoke; reloaded on SIGHUP and when the file changes).
# tls: { ca: ca.pem, cert: node.crt, key: node.key, crl: crl.pem }

# Where other nodes reach this one (default: the listen address; set it behind a NAT or on a
# host with several addresses).
# advertise: quic://203.0.113.7:4433

# Roles announced to the realm's members (reloaded on SIGHUP).
tags: []

quic:
  idle_timeout_ms: ${d.quic.idleTimeoutMs}   # a peer silent this long is gone
  keep_alive_ms: ${d.quic.keepAliveMs}      # keeps NAT mappings open

# Per-client bounds (a client past them is refused, told why).
limits:
  max_payload: ${d.limits.maxPayload}           # largest message or call payload, bytes
  max_subscriptions: ${d.limits.maxSubscriptions}
  max_procedures: ${d.limits.maxProcedures}
  max_pending_calls: ${d.limits.maxPendingCalls}
  max_call_timeout_ms: ${d.limits.maxCallTimeoutMs}
  max_unread_bytes: ${d.limits.maxUnreadBytes}      # replies queued to a caller that does not read
  max_queued_bytes: ${d.limits.maxQueuedBytes}    # all links together, before the largest are shed

# Long-lived routes kept to neighbours chosen from membership (macula docs overlay), and direct
# shortcuts to far nodes this node's clients keep sending to, while used (macula docs routing).
overlay: { k: ${d.overlay.k}, shortcuts: ${d.overlay.shortcuts} }

# The DHT: auto runs it as a client (in no other node's table) when other nodes cannot dial this
# one at its address; server or client fixes it (macula docs dht).
dht: { mode: ${d.dht.mode} }

# Relaying for peers that cannot reach each other (macula docs nat-traversal).
relay:
  enabled: ${d.relay.enabled}
  max_sessions: ${d.relay.maxSessions}
  sessions_per_peer: ${d.relay.sessionsPerPeer}
  bytes_per_second: ${d.relay.bytesPerSecond}
  burst_bytes: ${d.relay.burstBytes}
  upgrade_after_ms: ${d.relay.upgradeAfterMs}     # first try to move a relayed session to a direct path

# SWIM + Lifeguard failure detection (macula docs membership, "Tuning"; more keys there).
membership:
  probe_interval_ms: ${m.probeIntervalMs}
  probe_timeout_ms: ${m.probeTimeoutMs}
  max_sessions: ${m.maxSessions}

# What clients may do, by the groups in their certificates (macula docs security). Without
# rules everything is allowed; inspection is for the operator group. Reloaded on SIGHUP.
# permissions:
#   default: deny
#   groups:
#     sensors: { publish: { allow: [sensors.>] }, subscribe: { allow: [commands.>] } }

# The admin HTTP listener: /metrics (Prometheus), /healthz, /readyz and the live topology page
# at /. Default 127.0.0.1 on the QUIC port + ${ADMIN_PORT_OFFSET}; "off" turns it off. Keep it on
# loopback or a private network: it is not authenticated.
# admin: { listen: 127.0.0.1:${d.listen.port + ADMIN_PORT_OFFSET} }

# Logs on stderr: level debug, info, warn or error (reloaded on SIGHUP); format text or json.
log: { level: ${d.log.level}, format: ${d.log.format} }

# Spans of publishes and calls, exported over OTLP/HTTP (macula docs tracing).
# trace: { otlp: http://127.0.0.1:4318/v1/traces }
`;
}
