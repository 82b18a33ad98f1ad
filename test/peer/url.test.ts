/** `quic://host:port` parsing: what is accepted, how it is normalized, and every error. */
import { describe, expect, test } from "bun:test";
import { DEFAULT_PORT, formatUrl, parseUrl, UrlError } from "../../lib/peer/url.ts";

describe("parseUrl", () => {
  test.each(
    [
      ["quic://127.0.0.1:4433", "127.0.0.1", 4433, "quic://127.0.0.1:4433"],
      ["quic://127.0.0.1", "127.0.0.1", DEFAULT_PORT, "quic://127.0.0.1:4433"],
      ["quic://localhost:1", "localhost", 1, "quic://localhost:1"],
      ["quic://edge-1.acme.example:65535", "edge-1.acme.example", 65535, null],
      [
        "QUIC://Edge-1.ACME.example:7000",
        "edge-1.acme.example",
        7000,
        "quic://edge-1.acme.example:7000",
      ],
      ["quic://node_7.local:04433", "node_7.local", 4433, "quic://node_7.local:4433"],
      ["quic://[::1]:4433", "::1", 4433, "quic://[::1]:4433"],
      ["quic://[::1]", "::1", 4433, "quic://[::1]:4433"],
      ["quic://[2001:DB8::7]:9", "2001:db8::7", 9, "quic://[2001:db8::7]:9"],
      ["quic://[::ffff:10.0.0.1]:5", "::ffff:10.0.0.1", 5, null],
    ] as const,
  )("%s", (input, host, port, url) => {
    expect(parseUrl(input)).toEqual({ host, port, url: url ?? input });
  });

  const errors: [string, string][] = [
    ["", "is empty"],
    ["   ", "is empty"],
    [" quic://x:1", "has leading or trailing spaces"],
    ["x:1", "scheme must be quic://"],
    ["127.0.0.1:4433", "scheme must be quic://"],
    ["http://x:1", "scheme must be quic://"],
    ["quics://x:1", "scheme must be quic://"],
    ["quic:x:1", "scheme must be quic://"],
    ["quic://x:1/", 'must not have a path, query or fragment (got "/")'],
    ["quic://x:1/realm", "must not have a path"],
    ["quic://x?a=1", "must not have a path"],
    ["quic://x#f", "must not have a path"],
    ["quic://user@x:1", "must not contain user info"],
    ["quic://user:pw@x:1", "must not contain user info"],
    ["quic://", "host is empty"],
    ["quic://:4433", "host is empty"],
    ["quic://[]:4433", "host is empty"],
    ["quic://[::1", "missing its closing ']'"],
    ["quic://[::1]4433", 'unexpected "4433" after the IPv6 address'],
    ["quic://[nope]:1", '"nope" is not a valid IPv6 address'],
    ["quic://[127.0.0.1]:1", "is not a valid IPv6 address"],
    ["quic://::1:4433", "an IPv6 address must be in brackets"],
    ["quic://x:", "port is empty"],
    ["quic://x:http", 'port "http" is not a number'],
    ["quic://x:-1", 'port "-1" is not a number'],
    ["quic://x:0", "port 0 is out of range (1-65535)"],
    ["quic://x:65536", "port 65536 is out of range (1-65535)"],
    ["quic://x:99999999999", "out of range"],
    ["quic://256.1.1.1:1", 'host "256.1.1.1" is not a valid IPv4 address'],
    ["quic://1.2.3:1", "is not a valid IPv4 address"],
    ["quic://bad host:1", "is not a valid host name"],
    ["quic://-x:1", "is not a valid host name"],
    ["quic://a..b:1", "is not a valid host name"],
    ["quic://x.:1", "is not a valid host name"],
    [`quic://${"a".repeat(64)}:1`, "is not a valid host name"],
    [`quic://${"a.".repeat(127)}a:1`, "longer than 253 characters"],
  ];
  test.each(errors)("rejects %p: %s", (input, problem) => {
    let error: unknown;
    try {
      parseUrl(input, "--server");
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(UrlError);
    const message = (error as Error).message;
    expect(message).toStartWith(`--server ${JSON.stringify(input)}: `);
    expect(message).toContain(problem);
  });

  test("the message names what was parsed, defaulting to url", () => {
    expect(() => parseUrl("http://x:1", "--server")).toThrow(
      '--server "http://x:1": scheme must be quic://',
    );
    expect(() => parseUrl("http://x:1", "MACULA_URL")).toThrow('MACULA_URL "http://x:1": ');
    expect(() => parseUrl("http://x:1")).toThrow('url "http://x:1": ');
  });

  test("the normalized url parses to itself", () => {
    for (const s of ["quic://Host", "quic://[::1]", "quic://10.0.0.1:09"]) {
      const { url } = parseUrl(s);
      expect(parseUrl(url).url).toBe(url);
    }
  });
});

describe("formatUrl", () => {
  test("brackets IPv6 hosts, whether or not they come bracketed", () => {
    expect(formatUrl("127.0.0.1", 4433)).toBe("quic://127.0.0.1:4433");
    expect(formatUrl("edge-1", 1)).toBe("quic://edge-1:1");
    expect(formatUrl("::1", 7000)).toBe("quic://[::1]:7000");
    expect(formatUrl("[::1]", 7000)).toBe("quic://[::1]:7000");
  });
});
