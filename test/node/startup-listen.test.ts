/** The listen-address check of `Node.start`: each bind failure said in words, with what to do. */
import { describe, expect, test } from "bun:test";
import dgram from "node:dgram";
import { checkListen } from "../../lib/node/startup.ts";
import { bindProblem } from "../../lib/quic/mod.ts";
import { NodeError } from "../../lib/node/errors.ts";

const errno = (code: string) => Object.assign(new Error(`bind ${code}`), { code });

describe("bindProblem", () => {
  test.each([
    ["EADDRINUSE", "the port is in use (another node or program has it; choose another"],
    ["EADDRNOTAVAIL", "10.9.9.9 is not an address of this machine"],
    ["EACCES", "permission denied (ports below 1024 need privileges)"],
    ["ENOTFOUND", "10.9.9.9 is not a host name this machine can resolve"],
  ])("%s", (code, said) => {
    const text = bindProblem("10.9.9.9", 4433, errno(code));
    expect(text).toStartWith(`cannot listen on udp 10.9.9.9:4433: ${said}`);
    expect(text).not.toContain(code);
  });

  test("an IPv6 host is bracketed", () => {
    expect(bindProblem("::1", 7, errno("EADDRINUSE"))).toStartWith(
      "cannot listen on udp [::1]:7:",
    );
  });
});

describe("checkListen", () => {
  test("a port in use on 127.0.0.1 is a NodeError naming it; a free one passes", async () => {
    const busy = dgram.createSocket("udp4");
    await new Promise<void>((r) => busy.bind(0, "127.0.0.1", () => r()));
    const port = busy.address().port;
    try {
      const err = await checkListen("127.0.0.1", port).then(() => null, (e) => e);
      expect(err).toBeInstanceOf(NodeError);
      expect((err as Error).message).toContain(`127.0.0.1:${port}: the port is in use`);
    } finally {
      busy.close();
    }
    await checkListen("127.0.0.1", 0);
  });
});
