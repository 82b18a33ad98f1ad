/**
 * A hostile member on real nodes (QUIC on 127.0.0.1): a session with a valid node certificate of
 * the realm (`issue()` with the test nodes' dev CA) sends what once subverted membership — a
 * `dead` at incarnation 0xffffffff, an `alive` moving a member to its own address, an id that is
 * not a node id, 20,000 made-up members in one message, a `ping-req` toward nobody — over the
 * `membership.msg` request and datagrams. The honest nodes keep their views and keep detecting
 * failures: a member that stops is still declared dead everywhere. Every wait is bounded.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createPrivateKey, createPublicKey } from "node:crypto";
import {
  type DevCa,
  issue,
  loadCa,
  nodeIdFromSpki,
  nodeIdText,
  Verifier,
} from "../../lib/identity/mod.ts";
import { exportSpki, generateKeyPair } from "../../lib/identity/keys.ts";
import {
  MAX_INCARNATION,
  membershipCodec,
  recordBytes,
  U_ALIVE,
  U_DEAD,
} from "../../lib/mesh/mod.ts";
import type { Node } from "../../lib/node/node.ts";
import { MEMBERSHIP_MSG } from "../../lib/node/membership.ts";
import { ask, PeerSession } from "../../lib/peer/mod.ts";
import { QuicEndpoint } from "../../lib/quic/mod.ts";
import { type Mesh, mesh } from "../helpers/mesh.ts";
import { until } from "../helpers/quic.ts";

const REALM = "dev";
let m: Mesh;
let ep: QuicEndpoint;
let session: PeerSession;
let hostile: { id: string; priv: CryptoKey; spki: Uint8Array };

const stateAt = (n: Node, id: string) => n.membership.core.members().find((x) => x.id === id);

beforeAll(async () => {
  m = await mesh(5);
  await Promise.all(m.nodes.map((n) => n.waitForMembers(5, 30_000)));
  const ca = await loadCa(m.nodes[0]!.caDir!);
  const dev: DevCa = {
    type: ca.type,
    cert: ca.cert,
    keys: { privateKey: ca.privateKey } as CryptoKeyPair,
    pem: ca.pem,
    realm: REALM,
  };
  const cert = await issue(dev, { name: "hostile", realm: REALM });
  const spki = new Uint8Array(
    createPublicKey(createPrivateKey(cert.key)).export({ type: "spki", format: "der" }),
  );
  const priv = await crypto.subtle.importKey(
    "pkcs8",
    createPrivateKey(cert.key).export({ type: "pkcs8", format: "der" }),
    { name: "Ed25519" },
    false,
    ["sign"],
  );
  hostile = { id: nodeIdText(nodeIdFromSpki(spki)), priv, spki };
  const verifier = await Verifier.create({ ca: ca.pem });
  ep = await QuicEndpoint.bind({
    host: "127.0.0.1",
    tls: { ca: ca.pem, cert: cert.cert, key: cert.key },
    checkPeer: verifier.checkPeer(),
  });
  const conn = await ep.connect(m.nodes[1]!.endpoint.address);
  session = await PeerSession.dial(conn, { self: { nodeId: hostile.id, realm: REALM } });
}, 60_000);

afterAll(async () => {
  await ep?.close();
  await m?.close();
});

async function sign(
  id: string,
  inc: number,
  addr: string,
  by: CryptoKey,
  key: Uint8Array,
): Promise<Record<string, unknown>> {
  const meta = { realm: REALM, tags: [], version: "x" };
  const bytes = recordBytes(U_ALIVE, id, inc, addr, meta) as Uint8Array<ArrayBuffer>;
  const sig = new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, by, bytes));
  return {
    kind: U_ALIVE,
    id,
    inc,
    from: null,
    addr,
    realm: REALM,
    tags: [],
    version: "x",
    key,
    sig,
  };
}

const here = () => `quic://127.0.0.1:${ep.address.port}`;
const gossip = (updates: unknown[]) =>
  membershipCodec.encodeBody("gossip", { realm: REALM, from: hostile.id, addr: here(), updates });
const send = (bytes: Uint8Array) => ask(session, MEMBERSHIP_MSG, bytes, { timeoutMs: 10_000 });

describe("a hostile member, on real nodes", () => {
  test(
    "its lies are refused and counted; the views stay whole; failure detection goes on",
    async () => {
      const target = m.nodes[1]!;
      const [claimed, moved, crashed] = [m.nodes[2]!, m.nodes[3]!, m.nodes[4]!];
      const movedAddr = moved.url;
      // 1. "claimed is dead, at the last incarnation": as a datagram, and as a request.
      const dead = gossip([{
        kind: U_DEAD,
        id: claimed.nodeId,
        inc: MAX_INCARNATION,
        from: hostile.id,
      }]);
      session.conn.sendDatagram(dead);
      await send(dead);
      // 2. "moved is alive at my address", signed with its own key (it has no other).
      await send(gossip([await sign(moved.nodeId, 1_000, here(), hostile.priv, hostile.spki)]));
      // 3. An id that is not a node id (it once threw in the overlay and stopped every loop).
      const bad = membershipCodec.encodeRaw([7, REALM, hostile.id, here(), [[
        U_DEAD,
        "node-1",
        0,
        hostile.id,
      ]]])
        .subarray(4);
      session.conn.sendDatagram(bad);
      await send(bad);
      // 4. 20,000 members made up for the occasion, each with a key and a true signature.
      const fakes: Record<string, unknown>[] = [];
      for (let i = 0; i < 20_000; i++) {
        const kp = await generateKeyPair("ed25519");
        const spki = await exportSpki(kp.publicKey);
        fakes.push(
          await sign(
            nodeIdText(nodeIdFromSpki(spki)),
            0,
            `quic://127.0.0.1:${1 + i}`,
            kp.privateKey,
            spki,
          ),
        );
      }
      await send(membershipCodec.encodeBody("sync", {
        realm: REALM,
        from: hostile.id,
        addr: here(),
        flags: 0,
        digest1: 0,
        digest2: 0,
        updates: fakes,
      }));
      // 5. A ping-req toward a member nobody knows.
      await send(membershipCodec.encodeBody("ping-req", {
        realm: REALM,
        from: hostile.id,
        addr: here(),
        seq: 1,
        target: nodeIdText(new Uint8Array(32).fill(1)),
        updates: [],
      }));

      // The 64 it may introduce had keys and true signatures, but no certificate of the realm
      // (asked of the liar, which has none to give).
      await until(
        () => target.snapshot().membership.uncertified === 64,
        "the made-up members refused",
      );
      const c = target.snapshot().membership;
      expect(c.claimsAhead).toBeGreaterThanOrEqual(1);
      expect(c.forgedRecords).toBe(1);
      expect(c.malformed).toBe(2);
      expect(c.refusedByBound).toBe(20_000 - 64);
      expect(c.signaturesChecked).toBeLessThanOrEqual(64 + 10);
      expect(c.refusedPingReqs).toBe(1);
      expect(c.handlerFailures).toBe(0);
      for (const n of m.nodes) {
        expect(stateAt(n, claimed.nodeId)?.state).not.toBe("dead");
        if (n !== moved) expect(stateAt(n, moved.nodeId)?.addr).toBe(movedAddr);
        // None of the made-up members is in any view.
        expect(n.membership.core.table.known).toBe(5);
      }

      // Failure detection goes on: a node that stops without a goodbye is declared dead everywhere,
      // and the member the liar called dead is alive everywhere.
      const honest = m.nodes.slice(0, 4);
      await crashed.endpoint.close("crash");
      await until(
        () => honest.every((n) => stateAt(n, crashed.nodeId)?.state === "dead"),
        "every honest node declares the stopped node dead",
        60_000,
      );
      for (const n of honest) {
        expect(stateAt(n, claimed.nodeId)?.state).toBe("alive");
        expect(stateAt(n, moved.nodeId)?.addr).toBe(movedAddr);
        expect(n.running).toBe(true);
      }
    },
    120_000,
  );
});
