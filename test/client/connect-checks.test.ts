/**
 * What `connect()` checks and resolves before and while it dials: a host name in the URL is
 * resolved (a client reaches a node at `quic://localhost:<port>`), a name that does not resolve
 * fails in plain words, and credentials whose key is not the certificate's, or is not a key at
 * all, fail locally naming the file (not as a TLS alert from the node). Nodes on 127.0.0.1.
 */
import "../helpers/no-dns.ts"; // no query leaves this machine: nohost.invalid fails locally
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ClientError, connect } from "../../lib/client/client.ts";
import { makeCa, tlsFor } from "../../lib/identity/devca.ts";
import { Node } from "../../lib/node/node.ts";

const dir = mkdtempSync(join(tmpdir(), "macula-connect-checks-"));
let node: Node;

beforeAll(async () => {
  node = await Node.start({ dataDir: join(dir, "n"), listen: { host: "127.0.0.1", port: 0 } });
});
afterAll(async () => {
  await node.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** A copy of the node's client credentials, with `change` applied to it. */
function credsCopy(name: string, change: (d: string) => void): string {
  const d = join(dir, name);
  cpSync(node.credsDir!, d, { recursive: true });
  change(d);
  return d;
}

async function errorOf(p: Promise<unknown>): Promise<ClientError> {
  const e = await p.then(() => null, (e) => e);
  if (!(e instanceof ClientError)) throw new Error(`expected a ClientError, got ${e}`);
  return e;
}

describe("connect: host names", () => {
  test("a client connects with quic://localhost:<port> to a node on 127.0.0.1", async () => {
    const c = await connect({
      url: `quic://localhost:${node.endpoint.address.port}`,
      creds: node.credsDir!,
    });
    try {
      expect(c.url).toBe(`quic://localhost:${node.endpoint.address.port}`);
      await c.flush();
      expect(c.status).toBe("connected");
      expect(c.nodeId).toBe(node.nodeId);
    } finally {
      await c.close();
    }
  });

  test("a name that does not resolve: `cannot resolve <host>`, in plain words", async () => {
    const e = await errorOf(
      connect({
        url: "quic://nohost.invalid:4433",
        creds: node.credsDir!,
        connectTimeoutMs: 20_000,
      }),
    );
    expect(e.code).toBe("connect");
    expect(e.message).toStartWith(
      "cannot connect to quic://nohost.invalid:4433: cannot resolve nohost.invalid: ",
    );
    expect(e.message).not.toContain("socket address");
  }, 30_000);
});

describe("connect: credentials are checked before dialing", () => {
  test("a key.pem that is not cert.pem's key is named, before the node is asked", async () => {
    const other = await tlsFor(await makeCa("ed25519", "other"));
    const d = credsCopy("mismatch", (d) => writeFileSync(join(d, "key.pem"), other.key));
    const accepted = node.endpoint.stats.connectionsAccepted;
    const e = await errorOf(connect({ url: node.url, creds: d }));
    expect(e.code).toBe("credentials");
    expect(e.message).toBe(
      `credentials: ${join(d, "key.pem")} is not the key of ${join(d, "cert.pem")} ` +
        "(use the key the certificate was issued for)",
    );
    expect(node.endpoint.stats.connectionsAccepted).toBe(accepted);
  });

  test("a garbage key.pem: the file is named and said not to be a PEM private key", async () => {
    const d = credsCopy("garbage-key", (d) => writeFileSync(join(d, "key.pem"), "not a key\n"));
    const e = await errorOf(connect({ url: node.url, creds: d }));
    expect(e.code).toBe("credentials");
    expect(e.message).toBe(`credentials: ${join(d, "key.pem")} is not a PEM private key`);
  });

  test("a garbage cert.pem: the file is named", async () => {
    const d = credsCopy("garbage-cert", (d) => writeFileSync(join(d, "cert.pem"), "nope\n"));
    const e = await errorOf(connect({ url: node.url, creds: d }));
    expect(e.code).toBe("credentials");
    expect(e.message).toBe(`credentials: ${join(d, "cert.pem")} is not a PEM certificate`);
  });

  test("in-memory credentials whose key is another's: said without file names", async () => {
    const cd = node.credsDir!;
    const read = (f: string) => readFileSync(join(cd, f), "utf8");
    const other = await tlsFor(await makeCa("ed25519", "other"));
    const e = await errorOf(
      connect({
        url: node.url,
        creds: { ca: read("ca.pem"), cert: read("cert.pem"), key: other.key },
      }),
    );
    expect(e.code).toBe("credentials");
    expect(e.message).toBe(
      "credentials: the key is not the key of the certificate " +
        "(use the key the certificate was issued for)",
    );
  });
});
