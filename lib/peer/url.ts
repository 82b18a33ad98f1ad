/**
 * Node addresses as clients type them: `quic://host:port`.
 *
 * The host is a DNS name, an IPv4 address, or an IPv6 address in brackets
 * (`quic://[::1]:4433`); the port is 1-65535 and defaults to 4433. Nothing else is allowed:
 * no other scheme, no user info (credentials are files, see `--creds`), no path, query or
 * fragment. Every error names what was being parsed and the input, e.g.
 * `--server "http://x:1": scheme must be quic://`.
 */
import { isIPv4, isIPv6 } from "node:net";
import { UrlError } from "./errors.ts";

/** Port used when a URL names none. */
export const DEFAULT_PORT = 4433;

/** The only scheme a node address may have. */
export const SCHEME = "quic";

export { UrlError };

/** A parsed node address. `host` has no brackets; `url` is the normalized form. */
export interface NodeUrl {
  host: string;
  port: number;
  url: string;
}

const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;

/** Why `host` (lower case, no brackets) is not a DNS name or IPv4 address, or null. */
function hostProblem(host: string): string | null {
  if (host.length > 253) return "host is longer than 253 characters";
  const labels = host.split(".");
  if (labels.every((l) => /^\d+$/.test(l))) {
    return isIPv4(host) ? null : `host ${JSON.stringify(host)} is not a valid IPv4 address`;
  }
  for (const l of labels) {
    if (!LABEL.test(l)) {
      return `host ${JSON.stringify(host)} is not a valid host name ` +
        "(letters, digits, '-' and '_' in dot-separated labels of 1-63 characters)";
    }
  }
  return null;
}

/**
 * Parses `quic://host[:port]`. `what` names the input in errors (`"--server"`,
 * `"MACULA_URL"`, …). Throws {@link UrlError}.
 */
export function parseUrl(s: string, what = "url"): NodeUrl {
  const fail = (problem: string): never => {
    throw new UrlError(`${what} ${JSON.stringify(s)}: ${problem}`);
  };
  if (s.trim() === "") fail("is empty (expected quic://host:port)");
  if (s !== s.trim()) fail("has leading or trailing spaces");
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(s);
  if (!scheme) fail("scheme must be quic:// (e.g. quic://127.0.0.1:4433)");
  if (scheme![1]!.toLowerCase() !== SCHEME) fail("scheme must be quic://");
  const rest = s.slice(scheme![0].length);
  const end = rest.search(/[/?#]/);
  const authority = end < 0 ? rest : rest.slice(0, end);
  if (end >= 0) {
    fail(`must not have a path, query or fragment (got ${JSON.stringify(rest.slice(end))})`);
  }
  if (authority.includes("@")) fail("must not contain user info (credentials go in --creds)");

  let host: string;
  let portText: string | undefined;
  if (authority.startsWith("[")) {
    const close = authority.indexOf("]");
    if (close < 0) fail("IPv6 address is missing its closing ']'");
    host = authority.slice(1, close).toLowerCase();
    const after = authority.slice(close + 1);
    if (after !== "" && !after.startsWith(":")) {
      fail(`unexpected ${JSON.stringify(after)} after the IPv6 address`);
    }
    if (after !== "") portText = after.slice(1);
    if (host === "") fail("host is empty");
    if (!isIPv6(host)) fail(`${JSON.stringify(host)} is not a valid IPv6 address`);
  } else {
    const colons = authority.split(":").length - 1;
    if (colons > 1) fail("an IPv6 address must be in brackets, e.g. quic://[::1]:4433");
    const colon = authority.indexOf(":");
    host = (colon < 0 ? authority : authority.slice(0, colon)).toLowerCase();
    if (colon >= 0) portText = authority.slice(colon + 1);
    if (host === "") fail("host is empty");
    const p = hostProblem(host);
    if (p) fail(p);
  }

  let port = DEFAULT_PORT;
  if (portText !== undefined) {
    if (portText === "") fail("port is empty (leave out the ':' for the default 4433)");
    if (!/^\d+$/.test(portText)) fail(`port ${JSON.stringify(portText)} is not a number`);
    port = Number(portText);
    if (port < 1 || port > 65535) fail(`port ${portText} is out of range (1-65535)`);
  }
  return { host, port, url: formatUrl(host, port) };
}

/** Formats `quic://host:port`, bracketing an IPv6 host. */
export function formatUrl(host: string, port: number): string {
  const bare = host.replace(/^\[(.*)\]$/, "$1");
  return `${SCHEME}://${bare.includes(":") ? `[${bare}]` : bare}:${port}`;
}
