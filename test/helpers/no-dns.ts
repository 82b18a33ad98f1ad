/**
 * Name lookups for tests, without a name server: `localhost` is 127.0.0.1 and every other name
 * does not exist (ENOTFOUND), so a test of "a name that does not resolve" sends no query off
 * this machine (an IP address is itself). Import it first in a test file; it replaces
 * `node:dns/promises` for the whole `bun test` process from then on, which only guards the rule
 * that tests never reach another host.
 */
import { mock } from "bun:test";
import { isIP } from "node:net";

type Found = { address: string; family: number };

function lookup(host: string, o: { all?: boolean; family?: number } = {}) {
  return Promise.resolve().then(() => answer(host, o));
}

function answer(host: string, o: { all?: boolean; family?: number }): Found | Found[] {
  if (isIP(host) !== 0) {
    const one = { address: host, family: isIP(host) };
    return o.all ? [one] : one;
  }
  if (host !== "localhost") {
    throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), {
      code: "ENOTFOUND",
      hostname: host,
    });
  }
  const found: Found[] = o.family === 6 ? [] : [{ address: "127.0.0.1", family: 4 }];
  if (found.length === 0) {
    throw Object.assign(new Error(`getaddrinfo ENODATA ${host}`), { code: "ENODATA" });
  }
  return o.all ? found : found[0]!;
}

mock.module("node:dns/promises", () => ({ lookup, default: { lookup } }));
