/**
 * `macula netcheck` — which NAT is this host behind? Asks STUN servers for the public address
 * and round trip, and runs RFC 5780 behaviour discovery (mapping, filtering, hairpinning)
 * against the first that supports it. lib/nat/netcheck.ts does the work.
 */
import { Command } from "@commander-js/extra-typings";
import process from "node:process";
import {
  type NetcheckReport,
  openRawSocket,
  runNetcheck,
  type Verdict,
} from "../../lib/nat/mod.ts";
import { CliFailure, FAILED, guarded, intArg, listenOf, withListen } from "./shared.ts";

/** Where probes are sent from by default: any address, a free port. */
const LOCAL = { host: "0.0.0.0", port: 0 };
import { hostPortArg, resolveHost } from "./stun.ts";

/** STUN servers asked when no --stun is given (not RFC 5780 servers: public address only). */
export const DEFAULT_STUN_SERVERS = ["stun.cloudflare.com:3478", "stun.l.google.com:19302"];

type HostPort = { host: string; port: number };
const hp = (
  a: HostPort,
) => (a.host.includes(":") ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`);

/** The verdict, then why on the next line. */
function verdictText(v: Verdict): string {
  const what = v.behaviour !== "unknown"
    ? v.behaviour
    : v.possible.length === 0 || v.possible.length === 3
    ? "unknown"
    : v.possible.join(" or ");
  return `${what}\n${" ".repeat(22)}(${v.note})`;
}

const yesNo = (b: boolean | null, unknown: string) => (b === null ? unknown : b ? "yes" : "no");

/** The people-readable report (tailscale netcheck's shape). */
export function reportText(r: NetcheckReport): string {
  const lines = [
    `Report (${(r.durationMs / 1000).toFixed(1)} s, from local ${hp(r.local)}):`,
    `  * UDP:              ${r.mapped ? "yes" : "no STUN server answered"}`,
    `  * public address:   ${r.mapped ? hp(r.mapped) : "unknown"}`,
    `  * behind a NAT:     ${yesNo(r.nat, "unknown")}`,
    `  * mapping:          ${verdictText(r.mapping)}`,
    `  * filtering:        ${verdictText(r.filtering)}`,
    `  * hairpinning:      ${yesNo(r.hairpinning, "not tested")}`,
    `  * varies by server: ${
      yesNo(r.mappingVariesByServer, "not known (needs answers from two server IPs)")
    }`,
    `  * RFC 5780 server:  ${r.behaviourServer ?? "none"}`,
    `  * STUN servers:`,
    ...r.servers.map((s) => {
      const rtt = s.rttMs === null ? "" : `${s.rttMs.toFixed(1)} ms`;
      const what = s.mapped
        ? `sees ${hp(s.mapped)}${s.otherAddress ? `, other address ${hp(s.otherAddress)}` : ""}`
        : s.error;
      return `      - ${s.server.padEnd(24)} ${rtt.padStart(9)}  ${what}`;
    }),
  ];
  return lines.join("\n");
}

/** Builds `macula netcheck`. */
export function netcheckCommand() {
  return withListen(
    new Command("netcheck"),
    "local address to send from (a node's port tests its mapping)",
    LOCAL,
  )
    .description("report NAT type and reachability")
    .option(
      "--stun <host:port>",
      "STUN server to ask (repeatable; default: public servers)",
      (v: string, prev: HostPort[] | undefined) => [...(prev ?? []), hostPortArg(v)],
    )
    .option(
      "--rto <ms>",
      "first retransmission timeout; a probe waits up to 7x it",
      intArg(10, 10_000),
      500,
    )
    .option("--no-hairpin", "skip the hairpinning test")
    .option("--json", "print the report as one JSON object")
    .addHelpText(
      "after",
      `
Asks every STUN server for this host's public address (and the round trip), then runs the
RFC 5780 tests against the first server that advertises an OTHER-ADDRESS ('macula stun serve
--alt-port', with --alt-host for the change-IP tests):
  mapping    does the NAT keep the same public port for every destination (endpoint-
             independent), per destination IP (address-dependent), or per IP and port?
  filtering  does it let in packets from anyone once mapped (endpoint-independent), only from
             IPs we sent to (address-dependent), or only from the exact IP and port?
  hairpin    can we reach our own public address from inside?
What a server cannot test (one IP, one port) is reported as such with the behaviours still
possible, never guessed. Hole punching works when mapping is endpoint-independent.
Guide: macula docs nat-traversal

Examples:
  $ macula netcheck
  $ macula netcheck --stun 198.51.100.1:3478
  $ macula netcheck --stun 127.0.0.1:3478 --json | jq .mapping.behaviour

Exit codes: 0 report printed, 1 no STUN server answered, 2 usage error.`,
    )
    .action(guarded("macula netcheck", async (o) => {
      const local = listenOf(o, LOCAL);
      const v6 = local.host.includes(":");
      const wanted = o.stun ?? DEFAULT_STUN_SERVERS.map(hostPortArg);
      const servers: HostPort[] = [];
      for (const s of wanted) servers.push({ host: await resolveHost(s.host, v6), port: s.port });
      const sock = await openRawSocket(local.host, local.port).catch((e: Error) => {
        throw new CliFailure(e.message);
      });
      let r: NetcheckReport;
      try {
        r = await runNetcheck(sock, { servers, rt: { rtoMs: o.rto }, noHairpin: !o.hairpin });
      } finally {
        sock.close();
      }
      // Name the servers as given (host names), not as resolved.
      r.servers.forEach((s, i) => (s.server = hp(wanted[i]!)));
      const chosen = servers.findIndex((s) => hp(s) === r.behaviourServer);
      if (chosen >= 0) r.behaviourServer = hp(wanted[chosen]!);
      process.stdout.write(o.json ? `${JSON.stringify(r)}\n` : `${reportText(r)}\n`);
      if (!r.mapped) {
        throw new CliFailure(
          `no STUN server answered (${r.servers.map((s) => s.server).join(", ")}): is UDP ` +
            `blocked, or are the servers down?`,
          FAILED,
        );
      }
    }));
}
