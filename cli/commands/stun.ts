/**
 * `macula stun` — run a STUN server (RFC 8489, with RFC 5780's alternate address and port), or
 * ask one for this host's public address. lib/nat does the work; docs/nat-traversal.md.
 */
import { Command, InvalidArgumentError, Option } from "@commander-js/extra-typings";
import { lookup } from "node:dns/promises";
import process from "node:process";
import {
  openRawSocket,
  type OwnedRawSocket,
  parseIp,
  StunClient,
  StunServer,
} from "../../lib/nat/mod.ts";
import {
  CliFailure,
  FAILED,
  guarded,
  intArg,
  listenOf,
  parseListen,
  untilSignal,
  usage,
  withListen,
} from "./shared.ts";

/** The IANA STUN port. */
export const STUN_PORT = 3478;

/** Where `stun serve` listens by default. */
const SERVE_AT = { host: "0.0.0.0", port: STUN_PORT };

/** `host:port`, `[v6]:port` or `host` (port 3478). */
export function hostPortArg(v: string): { host: string; port: number } {
  const s = v.trim();
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(s) ?? /^([^:]+)(?::(\d+))?$/.exec(s);
  const bare = m === null && parseIp(s) !== null ? [s, s, undefined] : m;
  if (!bare || bare[1] === "") {
    throw new InvalidArgumentError("give host:port, [IPv6]:port or a host (port 3478)");
  }
  const port = bare[2] === undefined ? STUN_PORT : Number(bare[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new InvalidArgumentError(`port ${bare[2]} is not from 1 to 65535`);
  }
  return { host: bare[1]!, port };
}

/** Resolves a host name to one IP of the family the local socket speaks. */
export async function resolveHost(host: string, ipv6: boolean): Promise<string> {
  if (parseIp(host)) return host;
  try {
    return (await lookup(host, { family: ipv6 ? 6 : 4 })).address;
  } catch (e) {
    throw new CliFailure(`cannot resolve ${host}: ${(e as Error).message}`, FAILED);
  }
}

const hostPort = (a: { host: string; port: number }) =>
  a.host.includes(":") ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;

function serveCommand() {
  return withListen(
    new Command("serve")
      .description("answer STUN Binding requests (and RFC 5780 CHANGE-REQUEST with --alt-port)"),
    "UDP address to listen on",
    SERVE_AT,
  )
    .option(
      "--alt-port <n>",
      "second UDP port (RFC 5780 change-port tests); 0 = a free port",
      intArg(0, 65535),
    )
    .option("--alt-host <ip>", "second IP, needs --alt-port (RFC 5780 change-IP tests)")
    .option("--software <text>", "SOFTWARE attribute of the answers", "macula")
    .option("--ready-json", "print one JSON line {ready,host,port,altHost,altPort} once listening")
    .addHelpText(
      "after",
      `
A STUN server tells each client the address and port its packets came from (its public
address behind a NAT). With --alt-port it also answers "reply from your other port" requests,
and with --alt-host as well "reply from your other IP": the RFC 5780 tests 'macula netcheck'
runs to classify a NAT's mapping and filtering. Each alternate is a real socket: --alt-host
must be an address of this machine. Counters are printed on stderr when it stops.

A node's own STUN server shares the node's QUIC port instead (macula docs nat-traversal).

Examples:
  $ macula stun serve                                    0.0.0.0:3478
  $ macula stun serve --port 3478 --alt-port 3479        change-port tests
  $ macula stun serve --listen 198.51.100.1:3478 --alt-host 198.51.100.2 --alt-port 3479
  $ macula stun serve --listen 127.0.0.1:0 --alt-port 0 --ready-json

Exit codes: 0 stopped by SIGINT/SIGTERM, 1 cannot listen, 2 usage error.`,
    )
    .action(guarded("macula stun serve", async (o) => {
      const { host, port: wantedPort } = listenOf(o, SERVE_AT);
      if (o.altHost !== undefined) {
        if (!parseIp(o.altHost)) throw usage(`--alt-host ${o.altHost}: give an IP address`);
        if (o.altPort === undefined) {
          throw usage("--alt-host needs --alt-port (RFC 5780 uses the other IP on both ports)");
        }
        if (o.altHost === host) throw usage("--alt-host must differ from the --listen host");
      }
      if (o.altPort !== undefined && o.altPort !== 0 && o.altPort === wantedPort) {
        throw usage("--alt-port must differ from the --listen port");
      }
      const sockets: OwnedRawSocket[] = [];
      const open = async (host: string, port: number) => {
        try {
          const s = await openRawSocket(host, port);
          sockets.push(s);
          return s;
        } catch (e) {
          sockets.forEach((s) => s.close());
          throw new CliFailure((e as Error).message);
        }
      };
      const primary = await open(host, wantedPort);
      const altPort = o.altPort !== undefined ? await open(host, o.altPort) : undefined;
      const altIp = o.altHost !== undefined
        ? await open(o.altHost, primary.address.port)
        : undefined;
      const altIpPort = o.altHost !== undefined && altPort
        ? await open(o.altHost, altPort.address.port)
        : undefined;
      const server = new StunServer({
        primary,
        software: o.software,
        ...(altPort ? { altPort } : {}),
        ...(altIp ? { altIp } : {}),
        ...(altIpPort ? { altIpPort } : {}),
      });
      const stop = untilSignal();
      const port = primary.address.port;
      if (o.readyJson) {
        process.stdout.write(`${
          JSON.stringify({
            ready: true,
            host,
            port,
            altHost: o.altHost ?? null,
            altPort: altPort?.address.port ?? null,
          })
        }\n`);
      } else {
        const a = server.addresses();
        process.stdout.write(
          [
            `macula stun: listening on udp ${hostPort(a.primary!)}`,
            ...(a.altPort ? [`  alternate port: ${hostPort(a.altPort)} (change-port tests)`] : []),
            ...(a.altIp
              ? [`  alternate IP:   ${hostPort(a.altIp)}, ${hostPort(a.altIpPort!)}`]
              : []),
            `  try it:         macula netcheck --stun ${
              hostPort({ host: host === "0.0.0.0" ? "127.0.0.1" : host, port })
            }`,
          ].join("\n") + "\n",
        );
      }
      const sig = await stop.done;
      server.close();
      sockets.forEach((s) => s.close());
      const st = server.stats;
      process.stderr.write(
        `macula stun: ${sig}: stopped after ${st.requests} answers, ${st.errors} errors, ` +
          `${st.ignored} packets ignored (${st.malformed} malformed)\n`,
      );
    }));
}

function queryCommand() {
  return new Command("query")
    .description("ask a STUN server for this host's public address and the round trip")
    .argument("<server>", "STUN server, host:port (port 3478 when omitted)", hostPortArg)
    .addOption(
      new Option("-l, --listen <host:port>", "local address to send from (default 0.0.0.0:0)")
        .argParser(parseListen),
    )
    .option(
      "--rto <ms>",
      "first retransmission timeout (doubles each time)",
      intArg(10, 10_000),
      500,
    )
    .option("--json", "print {server,rttMs,mapped,responseOrigin,otherAddress,software}")
    .addHelpText(
      "after",
      `
Examples:
  $ macula stun query stun.example.net
  $ macula stun query 127.0.0.1:3478 --json

Exit codes: 0 answered, 1 no answer (or an error answer), 2 usage error.`,
    )
    .action(guarded("macula stun query", async (server, o) => {
      const local = listenOf(o, { host: "0.0.0.0", port: 0 });
      const host = await resolveHost(server.host, local.host.includes(":"));
      const sock = await openRawSocket(local.host, local.port).catch((e: Error) => {
        throw new CliFailure(e.message);
      });
      const client = new StunClient(sock);
      try {
        const r = await client.binding({ host, port: server.port }, { rt: { rtoMs: o.rto } });
        const name = hostPort(server);
        if (!r) throw new CliFailure(`no answer from ${name}`);
        if (r.msg.cls === "error") {
          const e = r.msg.errorCode;
          throw new CliFailure(`${name} answered with an error: ${e?.code} ${e?.reason}`);
        }
        const m = r.msg.xorMappedAddress ?? r.msg.mappedAddress;
        if (!m) throw new CliFailure(`${name} answered without a mapped address`);
        const plain = (a?: { host: string; port: number }) =>
          a ? { host: a.host, port: a.port } : null;
        if (o.json) {
          process.stdout.write(`${
            JSON.stringify({
              server: name,
              rttMs: r.rttMs,
              mapped: plain(m),
              responseOrigin: plain(r.msg.responseOrigin),
              otherAddress: plain(r.msg.otherAddress),
              software: r.msg.software ?? null,
            })
          }\n`);
        } else {
          process.stdout.write(
            `${hostPort(m)}  (from ${name} in ${r.rttMs} ms${
              r.msg.software ? `, server ${r.msg.software}` : ""
            })\n`,
          );
        }
      } finally {
        client.close();
        sock.close();
      }
    }));
}

/** Builds `macula stun`. */
export function stunCommand(): Command {
  return new Command("stun")
    .description("run or query a STUN server")
    .addCommand(serveCommand())
    .addCommand(queryCommand())
    .addHelpText(
      "after",
      `
Examples:
  $ macula stun serve --port 3478 --alt-port 3479
  $ macula stun query 127.0.0.1:3478

Guide: macula docs nat-traversal`,
    );
}
