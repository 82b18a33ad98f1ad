/**
 * Revocation and expiry over real QUIC on 127.0.0.1 (docs/security.md): a CRL handed to one node
 * spreads to the mesh; a revoked client is dropped from its live session, with the reason, and
 * refused on a new one — also by a node that learnt of the CRL only through the mesh, and after
 * that node restarts; an old CRL replayed changes nothing; a session ends when its certificate
 * expires; a node refuses to start on a CRL it cannot use; `macula certs revoke --publish` does
 * it all from the command line.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Client, type ClientStatus, connect } from "../../lib/client/client.ts";
import { type Credentials, initCa, issueCert, loadCa, revoke } from "../../lib/identity/mod.ts";
import { Node } from "../../lib/node/node.ts";
import { type Mesh, mesh } from "../helpers/mesh.ts";
import { until } from "../helpers/quic.ts";
import { run } from "../helpers/run.ts";

const DAY = 86_400_000;
const MAIN = fileURLToPath(new URL("../../cli/main.ts", import.meta.url));
let m: Mesh;
const clients: Client[] = [];

beforeAll(async () => {
  m = await mesh(3);
});
afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  await m.close();
});

async function clientCreds(name: string, durationMs = 3_600_000) {
  const ca = await loadCa(m.nodes[0]!.caDir!);
  const c = await issueCert({ ca, name, role: "client", durationMs });
  const creds: Credentials = { ca: ca.pem, cert: c.pem, key: c.keyPem! };
  return { ca, creds, serial: c.serial, pem: c.pem };
}

/** Connects, recording status changes; resolves `ended` with the detail of the first loss. */
async function watched(url: string, creds: Credentials) {
  let ended!: (why: string) => void;
  const lost = new Promise<string>((r) => (ended = r));
  const seen: [ClientStatus, string][] = [];
  const c = await connect({
    url,
    creds,
    reconnect: false,
    onStatus: (s, why) => {
      seen.push([s, why]);
      if (s === "closed") ended(why);
    },
  });
  clients.push(c);
  return { c, lost, seen };
}

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error("it was allowed");
}

describe("revocation through the mesh", () => {
  test("a CRL handed to node 0 closes a revoked client on node 2 and keeps it out, across a restart", async () => {
    const victim = await clientCreds("victim");
    const live = await watched(m.nodes[2]!.url, victim.creds);
    live.c.subscribe("x.>");
    await live.c.flush();
    // The operator revokes it and hands the CRL to node 0 only.
    const crlPath = join(m.dir, "crl.pem");
    await revoke({ ca: victim.ca, serials: [victim.serial], crlPath });
    const op = await connect({ url: m.nodes[0]!.url, creds: m.nodes[0]!.credsDir! });
    clients.push(op);
    expect(await op.pushCrl(readFileSync(crlPath, "utf8"))).toEqual({ accepted: true });
    // Node 2 hears of it through the mesh and drops the session, saying why.
    expect(await live.lost).toContain("certificate revoked by the realm CRL");
    const n2 = m.nodes[2]!;
    expect(n2.snapshot().crl.closedRevoked).toBe(1);
    expect(n2.snapshot().crl.held[0]!.revoked).toBe(1);
    // A new session is refused at the handshake.
    expect(await refusal(connect({ url: n2.url, creds: victim.creds, reconnect: false })))
      .toMatch(/revoked/);
    // The same CRL again is not newer: nothing changes, the answer says so.
    expect(await op.pushCrl(readFileSync(crlPath, "utf8"))).toEqual({
      accepted: false,
      reason: "not newer than the CRL held (number 1, held 1)",
    });
    // Node 2 restarts on its data directory: it still refuses the client.
    const port = n2.endpoint.address.port;
    await n2.stop();
    const again = await m.add({ dataDir: n2.dataDir, listen: { host: "127.0.0.1", port } });
    expect(again.snapshot().crl.held[0]!.revoked).toBe(1);
    expect(await refusal(connect({ url: again.url, creds: victim.creds, reconnect: false })))
      .toMatch(/revoked/);
  });

  test("a CRL not signed by the realm CA is refused and counted", async () => {
    const dir = join(m.dir, "other-ca");
    const other = await initCa({ realm: "dev", outDir: dir, durationMs: 86_400_000 });
    const crlPath = join(dir, "crl.pem");
    await revoke({ ca: other.ca, serials: ["01"], crlPath });
    const op = await connect({ url: m.nodes[1]!.url, creds: m.nodes[0]!.credsDir! });
    clients.push(op);
    const before = m.nodes[1]!.snapshot().crl.refused;
    expect(await op.pushCrl(readFileSync(crlPath, "utf8"))).toEqual({
      accepted: false,
      reason: "the CRL is not signed by the realm CA",
    });
    expect(m.nodes[1]!.snapshot().crl.refused).toBe(before + 1);
  });
});

describe("expiry", () => {
  test("a session ends when its certificate expires, with the reason", async () => {
    const short = await clientCreds("short-lived", 3000);
    const live = await watched(m.nodes[1]!.url, short.creds);
    expect(await live.lost).toContain("certificate expired");
    expect(m.nodes[1]!.snapshot().crl.closedExpired).toBeGreaterThanOrEqual(1);
  }, 20_000);
});

describe("a node's CRL at start", () => {
  test("tls.crl that cannot be read, or is not the realm CA's, stops the start with the path", async () => {
    const dir = join(m.dir, "acme");
    const { ca } = await initCa({ realm: "acme", outDir: join(dir, "ca"), durationMs: 86_400_000 });
    mkdirSync(join(dir, "n"), { recursive: true });
    const n = await issueCert({
      ca,
      name: "n",
      role: "node",
      durationMs: 86_400_000,
      outDir: join(dir, "n"),
    });
    const tls = { ca: join(dir, "ca", "ca.pem"), cert: n.certPath!, key: n.keyPath!, crl: "" };
    const start = (crl: string) =>
      refusal(Node.start({
        realm: "acme",
        dataDir: join(dir, "data"),
        listen: { host: "127.0.0.1", port: 0 },
        tls: { ...tls, crl },
      }));
    expect(await start(join(dir, "missing.pem"))).toBe(
      `tls.crl: cannot read ${join(dir, "missing.pem")}: no such file`,
    );
    writeFileSync(join(dir, "junk.pem"), "not a CRL\n");
    expect(await start(join(dir, "junk.pem"))).toStartWith(
      `tls.crl: ${join(dir, "junk.pem")}: cannot parse the CRL`,
    );
  });
});

describe("macula certs revoke --publish", () => {
  test("revokes, hands the CRL to a node, and the mesh drops the client", async () => {
    const victim = await clientCreds("cli-victim");
    const certFile = join(m.dir, "cli-victim.crt");
    writeFileSync(certFile, victim.pem);
    const live = await watched(m.nodes[1]!.url, victim.creds);
    const r = await run([
      process.execPath,
      MAIN,
      "certs",
      "revoke",
      "--ca-dir",
      m.nodes[0]!.caDir!,
      "--crl",
      join(m.dir, "crl.pem"),
      "--cert",
      certFile,
      "--publish",
      m.nodes[2]!.url,
      "--creds",
      m.nodes[0]!.credsDir!,
    ]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`published to ${m.nodes[2]!.url}: it spreads to the mesh`);
    expect(await live.lost).toContain("certificate revoked by the realm CRL");
  });
});

describe("a CRL file that changes", () => {
  test("dev realm: the dev CA's crl.pem, once written, is taken by every node and drops the client", async () => {
    const victim = await clientCreds("dev-victim");
    const live = await watched(m.nodes[1]!.url, victim.creds);
    // As `macula certs revoke --ca-dir <dev CA>` would leave it (numbered after the CRLs above).
    const crlPath = join(m.dir, "crl.pem");
    const r = await revoke({ ca: victim.ca, serials: [victim.serial], crlPath });
    copyFileSync(crlPath, join(m.nodes[0]!.caDir!, "crl.pem"));
    expect(await live.lost).toContain("certificate revoked by the realm CRL");
    for (const n of m.nodes.filter((x) => x.running)) {
      await until(() => n.snapshot().crl.held[0]?.number === r.number, "the CRL on every node");
    }
  });
});

describe("rotation: a node trusting old and new CA (same name, as 'ca init' makes them)", () => {
  test("clients of both CAs connect; a tls.crl rewritten while running drops one; each CA's CRL is kept across a restart", async () => {
    const dir = join(m.dir, "rotation");
    const old = (await initCa({ realm: "acme", outDir: join(dir, "old"), durationMs: 30 * DAY }))
      .ca;
    const neu = (await initCa({ realm: "acme", outDir: join(dir, "new"), durationMs: 60 * DAY }))
      .ca;
    expect(old.cert.subject).toBe(neu.cert.subject);
    const bundle = join(dir, "bundle.pem");
    writeFileSync(bundle, `${old.pem}\n${neu.pem}\n`);
    mkdirSync(join(dir, "n"), { recursive: true });
    const n = await issueCert({
      ca: neu,
      name: "n",
      role: "node",
      durationMs: DAY,
      outDir: join(dir, "n"),
    });
    const crlOld = join(dir, "old", "crl.pem");
    const crlNew = join(dir, "new", "crl.pem");
    const a = await issueCert({ ca: old, name: "a", role: "client", durationMs: DAY });
    const b = await issueCert({ ca: neu, name: "b", role: "client", durationMs: DAY });
    // The CRL file starts as the old CA's (revoking some other serial).
    await revoke({ ca: old, serials: ["0abc"], crlPath: crlOld });
    const tlsCrl = join(dir, "tls-crl.pem");
    copyFileSync(crlOld, tlsCrl);
    const start = (port = 0) =>
      Node.start({
        realm: "acme",
        dataDir: join(dir, "data"),
        listen: { host: "127.0.0.1", port },
        tls: { ca: bundle, cert: n.certPath!, key: n.keyPath!, crl: tlsCrl },
      });
    let node = await start();
    const credsOf = (c: { pem: string; keyPem?: string }) => ({
      ca: readFileSync(bundle, "utf8"),
      cert: c.pem,
      key: c.keyPem!,
    });
    const liveA = await watched(node.url, credsOf(a));
    const liveB = await watched(node.url, credsOf(b));
    // The operator revokes A with the old CA and rewrites the node's tls.crl: it is reloaded.
    await revoke({ ca: old, certs: [a.pem], crlPath: crlOld });
    copyFileSync(crlOld, tlsCrl);
    expect(await liveA.lost).toContain("certificate revoked by the realm CRL");
    expect(liveB.c.status).toBe("connected");
    // The new CA's CRL (revoking B) arrives by a push: held beside the old CA's, not over it.
    await revoke({ ca: neu, certs: [b.pem], crlPath: crlNew });
    const op = await connect({
      url: node.url,
      creds: credsOf(await issueCert({ ca: neu, name: "op", role: "client", durationMs: DAY })),
    });
    clients.push(op);
    expect(await op.pushCrl(readFileSync(crlNew, "utf8"))).toEqual({ accepted: true });
    expect(await liveB.lost).toContain("certificate revoked by the realm CRL");
    // And a newer CRL of the old CA, by a push too: the file's is now the older one.
    await revoke({ ca: old, serials: ["0def"], crlPath: crlOld });
    expect(await op.pushCrl(readFileSync(crlOld, "utf8"))).toEqual({ accepted: true });
    await op.close();
    expect(node.snapshot().crl.held.map((h) => h.number).sort()).toEqual(["1", "3"]);
    // Restarted on its data directory: both CAs' CRLs are back (kept there), not the file's.
    const port = node.endpoint.address.port;
    await node.stop();
    node = await start(port);
    try {
      expect(node.snapshot().crl.held.map((h) => h.number).sort()).toEqual(["1", "3"]);
      for (const c of [a, b]) {
        expect(await refusal(connect({ url: node.url, creds: credsOf(c), reconnect: false })))
          .toMatch(/revoked/);
      }
    } finally {
      await node.stop();
    }
  });
});

describe("macula node up", () => {
  test("exits 1 naming tls.crl when the file is missing", async () => {
    const dir = join(m.dir, "cli-crl");
    const { ca } = await initCa({ realm: "acme", outDir: join(dir, "ca"), durationMs: DAY });
    mkdirSync(join(dir, "n"), { recursive: true });
    const n = await issueCert({
      ca,
      name: "n",
      role: "node",
      durationMs: DAY,
      outDir: join(dir, "n"),
    });
    const missing = join(dir, "nope.pem");
    const cfg = join(dir, "node.yaml");
    writeFileSync(
      cfg,
      `realm: acme\ndata_dir: ${join(dir, "data")}\nlisten: { host: 127.0.0.1, port: 0 }\n` +
        `tls: { ca: ${
          join(dir, "ca", "ca.pem")
        }, cert: ${n.certPath}, key: ${n.keyPath}, crl: ${missing} }\n`,
    );
    const r = await run([process.execPath, MAIN, "node", "up", "-f", cfg]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`tls.crl: cannot read ${missing}: no such file`);
    expect(r.stderr).not.toContain("    at ");
  });
});
