import { describe, expect, test } from "bun:test";
import { ConfigError, DEFAULTS, parseConfig, parseSeed } from "../../lib/node/config.ts";

const err = (text: string) => {
  try {
    parseConfig(text, "node.yaml");
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error("expected a ConfigError");
};

describe("node configuration", () => {
  test("empty means the embedded defaults: dev realm, port 4433, admin on 127.0.0.1:9433", () => {
    // A node started from code has no admin listener (DEFAULTS.admin); a config file has one.
    expect(DEFAULTS.admin).toBeNull();
    expect(parseConfig("")).toEqual({ ...DEFAULTS, admin: { host: "127.0.0.1", port: 9433 } });
    expect(parseConfig("{}").listen).toEqual({ host: "0.0.0.0", port: 4433 });
  });

  test("a full file", () => {
    const c = parseConfig(`
realm: com.acme.prod   # comments are fine
data_dir: /var/lib/macula
listen: { host: "::", port: 0 }
join: [quic://10.0.0.2:4433, "quic://[::1]:5000"]
tls: { ca: ca.pem, cert: node.crt, key: node.key, crl: crl.pem }
quic: { idle_timeout_ms: 60000, keep_alive_ms: 0 }
limits: { max_payload: 4096 }
advertise: quic://10.0.0.5
tags: [relay, gpu]
relay: { enabled: false, sessions_per_peer: 4, bytes_per_second: 65536, upgrade_after_ms: 5000 }
`);
    expect(c).toEqual({
      realm: "com.acme.prod",
      dataDir: "/var/lib/macula",
      listen: { host: "::", port: 0 },
      join: [{ host: "10.0.0.2", port: 4433 }, { host: "::1", port: 5000 }],
      tls: { ca: "ca.pem", cert: "node.crt", key: "node.key", crl: "crl.pem" },
      quic: { idleTimeoutMs: 60000, keepAliveMs: 0 },
      limits: { ...DEFAULTS.limits, maxPayload: 4096 },
      devCaDir: null,
      devCaCreate: false,
      advertise: "quic://10.0.0.5:4433",
      overlay: { k: 8, shortcuts: 128 },
      dht: { mode: "auto" },
      tags: ["relay", "gpu"],
      relay: {
        enabled: false,
        maxSessions: 1024,
        sessionsPerPeer: 4,
        bytesPerSecond: 65536,
        burstBytes: 262144,
        upgradeAfterMs: 5000,
      },
      membership: DEFAULTS.membership,
      permissions: DEFAULTS.permissions,
      admin: { host: "127.0.0.1", port: 0 }, // the QUIC port is a free one: so is the admin's
      log: { level: "info", format: "text" },
      trace: null,
    });
  });

  test("admin, log and trace", () => {
    expect(parseConfig("listen: { port: 4500 }").admin).toEqual({ host: "127.0.0.1", port: 9500 });
    expect(parseConfig("listen: { port: 65000 }").admin).toEqual({ host: "127.0.0.1", port: 0 });
    expect(parseConfig("admin: { listen: off }").admin).toBeNull();
    expect(parseConfig("admin: { listen: 0.0.0.0:8080 }").admin).toEqual({
      host: "0.0.0.0",
      port: 8080,
    });
    expect(parseConfig(`admin: { listen: "[::1]:9000" }`).admin).toEqual({
      host: "::1",
      port: 9000,
    });
    expect(parseConfig("admin: { listen: 9100 }").admin).toEqual({ host: "127.0.0.1", port: 9100 });
    expect(err("admin: { listen: nonsense }")).toBe(
      `node.yaml: admin.listen: must be host:port (e.g. 127.0.0.1:9433, [::1]:9433), a port, or off (got "nonsense")`,
    );
    expect(err("admin: { port: 1 }")).toBe("node.yaml: admin.port: unknown key (known: listen)");
    expect(parseConfig("log: { level: debug, format: json }").log).toEqual({
      level: "debug",
      format: "json",
    });
    expect(err("log: { level: loud }")).toBe(
      `node.yaml: log.level: must be one of debug, info, warn, error (got "loud")`,
    );
    expect(err("log: { format: xml }")).toBe(
      `node.yaml: log.format: must be one of text, json (got "xml")`,
    );
    expect(parseConfig("trace: { otlp: http://127.0.0.1:4318/v1/traces }").trace).toEqual({
      otlp: "http://127.0.0.1:4318/v1/traces",
    });
    expect(err("trace: { otlp: ftp://x }")).toBe(
      `node.yaml: trace.otlp: must be an http:// or https:// URL (OTLP/HTTP) (got "ftp://x")`,
    );
    expect(err("trace: {}")).toBe("node.yaml: trace.otlp: missing (the collector's URL)");
  });

  test("paths in a file are relative to its folder; absolute ones stay", () => {
    const c = parseConfig(
      `realm: acme
data_dir: state
tls: { ca: ../pki/ca.pem, cert: node.crt, key: /etc/macula/node.key, crl: crl.pem }`,
      "/etc/macula/conf/node.yaml",
      true,
    );
    expect(c.dataDir).toBe("/etc/macula/conf/state");
    expect(c.tls).toEqual({
      ca: "/etc/macula/pki/ca.pem",
      cert: "/etc/macula/conf/node.crt",
      key: "/etc/macula/node.key",
      crl: "/etc/macula/conf/crl.pem",
    });
    expect(parseConfig("dev_ca_dir: ca", "/srv/n1/node.yaml", true).devCaDir).toBe("/srv/n1/ca");
    // Without `file`, text given in code keeps its paths as they are.
    expect(parseConfig("data_dir: state").dataDir).toBe("state");
  });

  test("membership: SWIM timing and the session pool, every knob checked", () => {
    const c = parseConfig(
      "membership: { probe_interval_ms: 1000, probe_timeout_ms: 300, max_sessions: 8 }",
    );
    expect(c.membership).toEqual({
      ...DEFAULTS.membership,
      probeIntervalMs: 1000,
      probeTimeoutMs: 300,
      maxSessions: 8,
    });
    expect(DEFAULTS.membership.probeIntervalMs).toBe(500);
    expect(err("membership: { probe_interval: 5 }")).toContain(
      "node.yaml: membership.probe_interval: unknown key (known: probe_interval_ms,",
    );
    expect(err("membership: { gossip_nodes: 0 }")).toBe(
      "node.yaml: membership.gossip_nodes: must be an integer from 1 to 64 (got 0)",
    );
    expect(err("membership: { probe_timeout_ms: 500 }")).toBe(
      "node.yaml: membership.probe_timeout_ms: must be shorter than probe_interval_ms (500) (got 500)",
    );
  });

  test("dev_ca_dir: a shared development CA, only in the dev realm", () => {
    expect(parseConfig("dev_ca_dir: n1/ca").devCaDir).toBe("n1/ca");
    expect(err("realm: acme\ntls: {ca: a, cert: b, key: c}\ndev_ca_dir: x")).toBe(
      "node.yaml: dev_ca_dir: only for the dev realm (realm acme uses tls.ca from its own CA)",
    );
    expect(err("limits: {max_payload: 0}")).toBe(
      "node.yaml: limits.max_payload: must be an integer from 1 to 16777216 (got 0)",
    );
  });

  test("tags: a short list of plain words", () => {
    expect(err("tags: [ok, 'not ok']")).toBe(
      'node.yaml: tags[1]: must be 1-64 of A-Z a-z 0-9 _ . - (got "not ok")',
    );
    expect(err("tags: relay")).toBe(
      'node.yaml: tags: must be a list of at most 32 tags (got "relay")',
    );
  });

  test("relay: on by default, with quotas; a burst must hold a packet", () => {
    expect(parseConfig("realm: dev").relay.enabled).toBe(true);
    expect(err("relay: {enabled: yes}")).toBe(
      'node.yaml: relay.enabled: must be true or false (got "yes")',
    );
    expect(err("relay: {burst_bytes: 100}")).toBe(
      "node.yaml: relay.burst_bytes: must be an integer from 1500 to 1099511627776 (got 100)",
    );
    expect(err("relay: {rate: 1}")).toContain("relay.rate: unknown key (known: enabled,");
  });

  test("dht.mode: auto by default; server or client fix it; anything else is named", () => {
    expect(parseConfig("realm: dev").dht.mode).toBe("auto");
    expect(parseConfig("dht: {mode: client}").dht.mode).toBe("client");
    expect(parseConfig("dht: {mode: server}").dht.mode).toBe("server");
    expect(err("dht: {mode: public}")).toBe(
      'node.yaml: dht.mode: must be one of auto, server, client (got "public")',
    );
    expect(err("dht: {k: 20}")).toBe("node.yaml: dht.k: unknown key (known: mode)");
  });

  test("overlay.k: 2 at least, because one neighbour each splits the mesh", () => {
    expect(parseConfig("overlay: {k: 2}").overlay.k).toBe(2);
    expect(err("overlay: {k: 1}")).toBe(
      "node.yaml: overlay.k: must be 2 or more: with 1 neighbour per node the mesh splits into islands (got 1)",
    );
    expect(err("overlay: {k: 65}")).toBe(
      "node.yaml: overlay.k: must be an integer from 2 to 64 (got 65)",
    );
  });

  test("every mistake names the key and what was wrong", () => {
    expect(err("lisen: {port: 1}")).toBe(
      "node.yaml: lisen: unknown key (known: realm, data_dir, listen, join, tls, quic, limits, dev_ca_dir, dev_ca_create, advertise, overlay, dht, tags, relay, membership, permissions, admin, log, trace)",
    );
    expect(err("listen: {port: 70000}")).toBe(
      "node.yaml: listen.port: must be an integer from 0 to 65535 (got 70000)",
    );
    expect(err("listen: {port: '4433'}")).toBe(
      'node.yaml: listen.port: must be an integer from 0 to 65535 (got "4433")',
    );
    expect(err("realm: Acme")).toContain("node.yaml: realm: realm label");
    expect(err("join: [10.0.0.2:4433]")).toBe(
      'node.yaml: join[0] "10.0.0.2:4433": scheme must be quic:// (e.g. quic://127.0.0.1:4433)',
    );
    expect(err("realm: acme")).toBe(
      "node.yaml: tls: required for realm acme (only the dev realm makes its own certificates)",
    );
    expect(err("tls: {ca: a}")).toBe("node.yaml: tls.cert: missing (tls needs ca, cert and key)");
    expect(err("quic: {idle_timeout_ms: 5}")).toContain(
      "quic.idle_timeout_ms: must be an integer from 1000",
    );
    expect(err("a: 1\na: 2")).toMatch(/^node\.yaml:\d+:\d+: /);
    expect(err("listen: [1, 2]")).toBe("node.yaml: listen: must be a mapping (got a list of 2)");
    expect(err("- a\n- b\n")).toBe(
      "node.yaml: must be a mapping of keys, e.g. `realm: acme` (got a list of 2)",
    );
    expect(err(`realm: "${"x".repeat(200)}"`)).toMatch(/\(got "x{56}…\)$/); // bounded
    expect(err("\u0000\u0001ELF binary")).toBe(
      "node.yaml: not a text file (a YAML configuration is expected)",
    );
  });

  test("seeds: host and port, IPv6 in brackets", () => {
    expect(parseSeed("quic://node-1.acme:4433")).toEqual({ host: "node-1.acme", port: 4433 });
    expect(() => parseSeed("quic://h:0")).toThrow("port 0 is out of range (1-65535)");
    expect(parseSeed("quic://10.0.0.2")).toEqual({ host: "10.0.0.2", port: 4433 }); // as --server
    expect(() => parseSeed("http://h:1")).toThrow("scheme must be quic://");
  });
});
