/**
 * `macula node up` — run a mesh node in the foreground: configuration from flags over a YAML
 * file over embedded defaults (lib/node/config.ts), logs on stderr, and a graceful drain on
 * SIGINT/SIGTERM. docs/cli.md is the guide.
 */
import { Command, InvalidArgumentError, Option } from "@commander-js/extra-typings";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import process from "node:process";
import { parse, stringify } from "yaml";
import { CREDS_FILES, fileProblem, realmProblem } from "../../lib/identity/mod.ts";
import {
  adminListen,
  checkNode,
  ConfigError,
  configFrom,
  configToFile,
  DEFAULTS,
  Node,
  type NodeConfig,
  NodeError,
  parseConfig,
  parseSeed,
  relativeTo,
  StartError,
} from "../../lib/node/mod.ts";
import {
  LOG_FORMATS,
  LOG_LEVELS,
  type LogFormat,
  logFormatProblem,
  Logger,
  type LogLevel,
  logLevelProblem,
} from "../../lib/util/mod.ts";
import { guarded, intArg, parseListen, STOP_GRACE_MS, usage } from "./shared.ts";

const line = (s: string) => process.stdout.write(`${s}\n`);

function realmArg(v: string): string {
  const p = realmProblem(v);
  if (p) throw new InvalidArgumentError(`invalid realm ${JSON.stringify(v)}: ${p}`);
  return v;
}

function seedArg(v: string, prev: string[] = []): string[] {
  try {
    parseSeed(v, "--join");
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
  return [...prev, v];
}

interface UpFlags {
  config?: string;
  dataDir?: string;
  listen?: { host?: string; port?: number };
  port?: number;
  join?: string[];
  realm?: string;
  /** A credentials directory for tls (ca.pem, cert.pem, key.pem). */
  creds?: string;
  devCaDir?: string;
  createDevCa?: boolean;
  /** False with --no-relay. */
  relay?: boolean;
  advertise?: string;
  logLevel?: LogLevel;
  logFormat?: LogFormat;
  /** `host:port`, a port, or `off`. */
  admin?: string;
}

function choiceArg(problem: (v: unknown) => string | null) {
  return <T extends string>(v: string): T => {
    const p = problem(v);
    if (p) throw new InvalidArgumentError(`${JSON.stringify(v)}: ${p}`);
    return v as T;
  };
}

function adminArg(v: string): string {
  try {
    adminListen(/^\d+$/.test(v) ? Number(v) : v, "--admin");
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
  return v;
}

/** Reads the file (if any) and lays the flags over it. Throws ConfigError naming the key. */
export function nodeConfig(flags: UpFlags): NodeConfig {
  let raw: Record<string, unknown> = {};
  // The file's own mistakes are named with its line and key; one that the flags make good
  // (a realm's tls left to --creds) is not one.
  let fileMistake: ConfigError | undefined;
  if (flags.config !== undefined) {
    let text: string;
    try {
      text = readFileSync(flags.config, "utf8");
    } catch (e) {
      throw new ConfigError(
        `--config ${flags.config}: cannot read it: ${fileProblem(e)}`,
      );
    }
    try {
      parseConfig(text, flags.config, true);
    } catch (e) {
      if (!(e instanceof ConfigError) || /:\d+:\d+: /.test(e.message)) throw e; // not YAML
      fileMistake = e;
    }
    // Paths in the file are the file's folder's; those of flags, the working directory's.
    raw = relativeTo(parse(text) ?? {}, dirname(resolve(flags.config))) as Record<string, unknown>;
  }
  const merged: Record<string, unknown> = { ...raw };
  if (flags.realm !== undefined) merged.realm = flags.realm;
  if (flags.dataDir !== undefined) merged.data_dir = flags.dataDir;
  if (flags.listen !== undefined || flags.port !== undefined) {
    merged.listen = {
      ...(raw.listen as Record<string, unknown> | undefined),
      ...flags.listen,
      ...(flags.port !== undefined ? { port: flags.port } : {}),
    };
  }
  if (flags.join !== undefined) merged.join = flags.join;
  if (flags.advertise !== undefined) merged.advertise = flags.advertise;
  if (flags.creds !== undefined) {
    merged.tls = {
      ...(raw.tls as Record<string, unknown> | undefined),
      ca: join(flags.creds, CREDS_FILES.ca),
      cert: join(flags.creds, CREDS_FILES.cert),
      key: join(flags.creds, CREDS_FILES.key),
    };
  }
  if (flags.devCaDir !== undefined) merged.dev_ca_dir = flags.devCaDir;
  if (flags.createDevCa) merged.dev_ca_create = true;
  if (flags.relay === false) {
    merged.relay = { ...(raw.relay as Record<string, unknown> | undefined), enabled: false };
  }
  if (flags.logLevel !== undefined || flags.logFormat !== undefined) {
    merged.log = {
      ...(raw.log as Record<string, unknown> | undefined),
      ...(flags.logLevel !== undefined ? { level: flags.logLevel } : {}),
      ...(flags.logFormat !== undefined ? { format: flags.logFormat } : {}),
    };
  }
  if (flags.admin !== undefined) {
    merged.admin = { listen: /^\d+$/.test(flags.admin) ? Number(flags.admin) : flags.admin };
  }
  try {
    return configFrom(merged);
  } catch (e) {
    if (fileMistake) throw fileMistake;
    if (e instanceof ConfigError) {
      const from = flags.config !== undefined ? `${flags.config} with the flags` : "the flags";
      throw new ConfigError(`${from}: ${e.message}`);
    }
    throw e;
  }
}

/** Shell-quotes a path for the printed example commands when it needs it. */
function q(s: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

function banner(node: Node, listen: NodeConfig["listen"]): void {
  line(`macula node ${node.nodeId} is up`);
  line(`  realm    ${node.realm}`);
  line(`  url      ${node.url}   (udp ${listen.host}:${node.endpoint.address.port})`);
  line(`  data     ${resolve(node.dataDir)}`);
  line(
    `  admin    ${
      node.adminUrl ? `${node.adminUrl}  (/metrics, /healthz, /readyz, topology page at /)` : "off"
    }`,
  );
  const seeds = node.config.join.map((s) =>
    s.host.includes(":") ? `quic://[${s.host}]:${s.port}` : `quic://${s.host}:${s.port}`
  );
  line(`  join     ${seeds.length > 0 ? seeds.join(", ") : "-"}`);
  const r = node.config.relay;
  line(
    `  relay    ${
      r.enabled ? `on (${r.sessionsPerPeer} sessions and ${r.bytesPerSecond} B/s per peer)` : "off"
    }`,
  );
  if (node.credsDir !== null && node.caDir !== null) {
    const creds = q(node.credsDir);
    const next = node.endpoint.address.port === 4433 ? "4434" : "0";
    line(``);
    line(`dev realm: client credentials are in ${node.credsDir}`);
    line(`  $ macula sub '>' --server ${node.url} --creds ${creds}`);
    line(`  $ macula pub hello.world hi --server ${node.url} --creds ${creds}`);
    line(`a second local node joins this one with:`);
    line(
      `  $ macula node up --data-dir macula-data-2 --port ${next} --dev-ca-dir ${
        q(node.caDir)
      } --join ${node.url}`,
    );
  }
  line(``);
  line(`Ctrl-C (or SIGTERM) drains the node and stops it.`);
}

function upCommand() {
  return new Command("up")
    .description("start a node in the foreground (Ctrl-C drains and stops it)")
    .option("-f, --config <file>", "YAML configuration file (flags override it)")
    .option("-d, --data-dir <dir>", `keys, certificates and state (default ${DEFAULTS.dataDir})`)
    .addOption(
      new Option("-l, --listen <host:port>", "UDP address to listen on (default 0.0.0.0:4433)")
        .argParser(parseListen)
        .conflicts("port"),
    )
    .option(
      "-p, --port <n>",
      "UDP port to listen on (host: from --config, else 0.0.0.0); 0 = a free port",
      intArg(0, 65535),
    )
    .option("-j, --join <url>", "seed node quic://host:port to connect to (repeatable)", seedArg)
    .option(
      "--advertise <url>",
      "where other nodes reach this one, quic://host:port (default: the listen address)",
      (v: string) => seedArg(v, [])[0]!,
    )
    .option(
      "--realm <realm>",
      "realm (default dev: a development CA made under the data dir)",
      realmArg,
    )
    .option(
      "--creds <dir>",
      "the node's credentials: <dir>/ca.pem, cert.pem, key.pem (certs issue --creds-dir); sets tls",
    )
    .option(
      "--dev-ca-dir <dir>",
      "dev realm: use the CA in this directory (share it between local nodes); it must exist",
    )
    .option("--create-dev-ca", "dev realm: make a CA in --dev-ca-dir when there is none")
    .option("--no-relay", "do not relay for other nodes (relay.enabled: false)")
    .option(
      "--admin <host:port|off>",
      "admin HTTP listener: /metrics, /healthz, /readyz, topology page (default 127.0.0.1, QUIC port + 5000)",
      adminArg,
    )
    .option(
      "--log-level <level>",
      `log ${LOG_LEVELS.join(", ")} and above (default info)`,
      choiceArg(logLevelProblem)<LogLevel>,
    )
    .option(
      "--log-format <format>",
      `${LOG_FORMATS.join(" or ")}: JSON lines carry time, level, node, realm, event and fields`,
      choiceArg(logFormatProblem)<LogFormat>,
    )
    .option(
      "--check",
      "validate the configuration and credentials, print the effective configuration, exit 0 or 2",
    )
    .option(
      "--ready-json",
      "print one JSON line {ready,nodeId,realm,url,port,admin,dataDir,credsDir,caDir} instead of the banner",
    )
    .addHelpText(
      "after",
      `
Configuration: flags, over the --config file, over the defaults (dev realm, ./macula-data,
0.0.0.0:4433). Unknown or invalid keys are errors naming the key. The file:
  realm: acme
  data_dir: /var/lib/macula
  listen: { host: 0.0.0.0, port: 4433 }
  join: [quic://10.0.0.2:4433]
  tls: { ca: ca.pem, cert: node.crt, key: node.key }      # required outside the dev realm
  quic: { idle_timeout_ms: 30000, keep_alive_ms: 10000 }
  limits: { max_payload: 1048576, max_subscriptions: 10000, max_pending_calls: 1000 }
                                          # per client; also max_procedures, max_call_timeout_ms
  dev_ca_dir: ./n1/ca                                     # dev realm only
  advertise: quic://203.0.113.7:4433      # where other nodes reach this one (default: listen)
  overlay: { k: 8, shortcuts: 128 }       # routes to neighbours; direct links while used
  tags: [gpu]                             # announced to the realm's members
  relay: { enabled: true, sessions_per_peer: 16, bytes_per_second: 1048576 }
                                          # relaying for peers that cannot reach each other
                                          # (macula docs nat-traversal has every relay key)
  membership: { probe_interval_ms: 500, max_sessions: 64 }
                                          # SWIM timing and the session pool
                                          # (macula docs membership has every membership key)
  permissions:                            # what clients may do, by certificate group
    default: deny                         # (default allow; macula docs security has the rules)
    groups: { sensors: { publish: { allow: [sensors.>] } } }
  admin: { listen: 127.0.0.1:9433 }       # /metrics, /healthz, /readyz, topology page; or off
  log: { level: info, format: json }      # also --log-level, --log-format
  trace: { otlp: http://127.0.0.1:4318/v1/traces }   # spans over OTLP/HTTP (macula docs tracing)
(macula config init writes a commented sample; macula docs operations is the guide.)

In the dev realm the node makes its own CA, node certificate and client credentials under the
data directory on first start, and prints how to connect. The banner (or --ready-json line)
goes to stdout once the node listens; log lines go to stderr with a timestamp.
SIGHUP reads the configuration again and applies the log level, the tags (announced to the
realm), the permissions (what they no longer allow is withdrawn from the clients, told why) and
the CRL; it says what it reloaded, and other changed keys need a restart (it names them). A
file with a mistake is refused, named, and the running configuration kept.

Relative paths in a --config file (data_dir, tls.*, dev_ca_dir) are relative to the file's
folder; on the command line, to the working directory.

Logs go to stderr: text lines "<time> <LEVEL> <text>", or with --log-format json one object per
line {time, level, realm, node, event, msg, …fields}. A warning repeated for the same cause
(a refused peer, a silent seed) is written once per 10 s, then summed up with its count.

Examples:
  $ macula node up
  $ macula node up --port 0 --data-dir /tmp/n1 --ready-json
  $ macula node up --data-dir n2 --port 4434 --dev-ca-dir macula-data/ca \\
      --join quic://127.0.0.1:4433
  $ macula node up --config /etc/macula/node.yaml --listen 10.0.0.7:4433
  $ macula node up --config /etc/macula/node.yaml --check     validate, print the effective config
  $ macula node up --log-format json --log-level debug 2> node.log

Before anything is bound the node checks itself: its key is its certificate's, which chains to
tls.ca, is for this realm, is a node's (--role node) and has not expired (a warning within 30
days of its end); the data directory is not in use by another node (lock file macula.lock);
with --join, its node id is not alive at another address in the mesh; a --dev-ca-dir holds a
CA already (--create-dev-ca makes one there). A failure names what is wrong, exits 2, and
leaves nothing written.

Ctrl-C (or SIGTERM) drains the node: its routes and clients are told goodbye, within a second
(a drain that takes longer is cut); a second Ctrl-C ends it at once.

Exit codes: 0 stopped by SIGINT/SIGTERM (or --check found nothing wrong), 1 failed while
running (port in use, unreadable certificates), 2 usage or configuration error, or a start-up
check (or --check) failed.`,
    )
    .action(guarded("macula node up", async (opts) => {
      let config: NodeConfig;
      try {
        config = nodeConfig(opts);
      } catch (e) {
        if (e instanceof ConfigError) throw usage(e.message);
        throw e;
      }
      if (opts.check) {
        let lines: string[];
        try {
          lines = await checkNode(config);
        } catch (e) {
          if (e instanceof StartError || e instanceof NodeError) throw usage(e.message);
          throw e;
        }
        for (const l of lines) process.stderr.write(`${l}\n`);
        process.stderr.write("configuration ok; the effective configuration:\n");
        process.stdout.write(stringify(configToFile(config)));
        return;
      }
      const logger = new Logger({
        level: config.log.level,
        format: config.log.format,
        write: (l) => process.stderr.write(l),
        context: { realm: config.realm },
      });
      const log = (l: string) => logger.info("node.event", l);
      let node: Node;
      try {
        node = await Node.start({ ...config, log: logger });
      } catch (e) {
        // The identity or the data directory is not fit to run: exit 2, nothing was written.
        if (e instanceof StartError) throw usage(e.message);
        throw e;
      }
      logger.setContext({ node: node.nodeId });
      const stopped = new Promise<void>((r) => node.stopOnSignals(r));
      // Ctrl-C ends the node within a second: a drain that takes longer (peers slow to answer
      // the goodbye) is cut. A second Ctrl-C ends it at once (the handlers are gone by then).
      for (const sig of ["SIGINT", "SIGTERM"] as const) {
        process.once(sig, () => {
          setTimeout(() => {
            log(`${sig}: did not drain within ${STOP_GRACE_MS} ms; exiting`);
            process.exit(0);
          }, STOP_GRACE_MS).unref();
        });
      }
      // SIGHUP: read the configuration again and apply what can change while running.
      process.on("SIGHUP", () => {
        let fresh: NodeConfig;
        try {
          fresh = nodeConfig(opts);
        } catch (e) {
          logger.warn(
            "reload.refused",
            `SIGHUP: ${(e as Error).message} (keeping the running configuration)`,
          );
          return;
        }
        if (fresh.log.level !== logger.level) {
          log(`SIGHUP: log level ${logger.level} → ${fresh.log.level}`);
          logger.level = fresh.log.level;
        }
        if (fresh.log.format !== logger.format) {
          log(`SIGHUP: log.format changed, needs a restart (still ${logger.format})`);
        }
        node.reload(fresh).then(
          (lines) => lines.forEach((l) => logger.info("reload", `SIGHUP: ${l}`)),
          (e) => logger.warn("reload.failed", `SIGHUP: ${(e as Error).message}`),
        );
      });
      if (opts.readyJson) {
        line(JSON.stringify({
          ready: true,
          nodeId: node.nodeId,
          realm: node.realm,
          url: node.url,
          port: node.endpoint.address.port,
          admin: node.adminUrl,
          dataDir: resolve(node.dataDir),
          credsDir: node.credsDir,
          caDir: node.caDir,
        }));
      } else {
        banner(node, config.listen);
      }
      await stopped;
    }));
}

/** Builds the `node` command group. */
export function nodeCommand() {
  return new Command("node")
    .description("run a mesh node")
    .addCommand(upCommand())
    .addHelpText(
      "after",
      `
Examples:
  $ macula node up                      a dev-realm node on 0.0.0.0:4433, data in ./macula-data
  $ macula node up --config node.yaml

Guide: macula docs cli`,
    );
}
