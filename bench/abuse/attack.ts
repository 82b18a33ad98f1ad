/**
 * One attacker for bench/abuse, in its own process so its CPU is not the victim's:
 * `bun bench/abuse/attack.ts <kind> <port> <creds-dir> <node-creds-dir> <node-id>`. It attacks the
 * node on 127.0.0.1:<port> until SIGTERM (or 120 s), with a valid certificate of the realm of its
 * own (a client's from <creds-dir>; a node's from <node-creds-dir> for `punch` and `gossip`). It prints `{"ready":true,"port":<port>}` once the attack is set up,
 * and one JSON line on stderr of what it did when it stops. Kinds: see `ATTACKS`.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { type Credentials, CREDS_FILES, Verifier } from "../../lib/identity/mod.ts";
import { busCodec } from "../../lib/messaging/mod.ts";
import { PeerSession } from "../../lib/peer/mod.ts";
import {
  openUdpSocket,
  type QuicConnection,
  QuicEndpoint,
  type UdpSocketFactory,
} from "../../lib/quic/mod.ts";
import { ATTACKS } from "./attacks.ts";
import { exportSpki, generateKeyPair } from "../../lib/identity/keys.ts";
import { nodeIdFromSpki, nodeIdText } from "../../lib/identity/mod.ts";
import {
  MAX_INCARNATION,
  membershipCodec,
  recordBytes,
  U_ALIVE,
  U_DEAD,
} from "../../lib/mesh/mod.ts";

const [kind, portText, credsDir, nodeCredsDir, nodeId] = process.argv.slice(2);
if (!kind || !(kind in ATTACKS) || !portText || !credsDir || !nodeCredsDir || !nodeId) {
  process.stderr.write(
    `usage: attack.ts <${
      Object.keys(ATTACKS).join("|")
    }> <port> <creds-dir> <node-creds-dir> <node-id>\n`,
  );
  process.exit(2);
}
const port = Number(portText);
const target = { host: "127.0.0.1", port };
const read = (dir: string): Credentials => ({
  ca: readFileSync(join(dir, CREDS_FILES.ca), "utf8"),
  cert: readFileSync(join(dir, CREDS_FILES.cert), "utf8"),
  key: readFileSync(join(dir, CREDS_FILES.key), "utf8"),
});
const creds = read(kind === "punch" || kind === "gossip" ? nodeCredsDir : credsDir);
let stopping = false;
const count = { actions: 0, refused: 0, sessions: 0, heldDown: 0 };
const stop = () => (stopping = true);
process.on("SIGTERM", stop);
setTimeout(stop, 120_000).unref();

const verifier = await Verifier.create({ ca: creds.ca });
const me = await verifier.verify(creds.cert);
const deaf: UdpSocketFactory = (o) => openUdpSocket({ ...o, onPacket: () => {} });

async function endpoint(o: { deaf?: boolean } = {}): Promise<QuicEndpoint> {
  return await QuicEndpoint.bind({
    host: "127.0.0.1",
    port: 0,
    tls: creds,
    checkPeer: verifier.checkPeer(),
    acceptIncoming: false,
    ...(o.deaf ? { socketFactory: deaf } : {}),
  });
}

/**
 * A session whose incoming channel is never read. A node that closed one for misbehaving holds
 * the certificate down for a while: the refusals are counted (`heldDown`) and it tries again.
 */
async function session(ep: QuicEndpoint): Promise<PeerSession> {
  for (let i = 0;; i++) {
    let conn: QuicConnection | null = null;
    try {
      conn = await ep.connect(target);
      const s = await PeerSession.dial(conn, {
        self: { nodeId: me.nodeId, realm: me.realm },
        onChannel: () => {},
      });
      count.sessions++;
      return s;
    } catch (e) {
      const why = conn ? (await conn.closed).reason : (e as Error).message;
      // 120 s at most, as the attack.
      if (stopping || i >= 1200 || !/held down/.test(why)) throw e;
      count.heldDown++;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

const frame = (name: string, fields: Record<string, unknown>) => busCodec.encode(name, fields);
const ready = () => process.stdout.write(`${JSON.stringify({ ready: true, port })}\n`);

async function run(): Promise<void> {
  const ep = await endpoint();
  try {
    switch (kind) {
      case "slow-consumer": {
        for (let i = 0; i < 8; i++) {
          const s = await session(ep);
          const ch = await s.openChannel("client");
          await ch.write(frame("SUB", { sid: 1, pattern: "victim.>" }));
        }
        ready();
        while (!stopping) await new Promise((r) => setTimeout(r, 100));
        return;
      }
      case "deaf-caller": {
        ready();
        while (!stopping) {
          const s = await session(ep);
          const ch = await s.openChannel("client");
          for (let id = 1; !stopping && !s.conn.closeInfo; id++) {
            const f = frame("CALL", {
              id,
              proc: "abuse.big",
              payload: new Uint8Array(0),
              timeout_ms: 60_000,
            });
            await ch.write(f).catch(() => {});
            count.actions++;
            if (id % 64 === 0) await new Promise((r) => setImmediate(r));
          }
          count.refused++; // the node closed it
        }
        return;
      }
      case "sub-churn": {
        let s = await session(ep);
        let ch = await s.openChannel("client");
        ready();
        for (let i = 1; !stopping; i++) {
          if (s.conn.closeInfo || s.closing) {
            count.refused++; // the node closed it: again, once the hold-down lets it
            s = await session(ep);
            ch = await s.openChannel("client");
          }
          await ch.write(frame("SUB", { sid: i, pattern: `churn.${i}.>` })).catch(() => {});
          if (i > 5000) await ch.write(frame("UNSUB", { sid: i - 5000 })).catch(() => {});
          count.actions++;
          if (i % 256 === 0) await new Promise((r) => setImmediate(r));
        }
        return;
      }
      case "malformed": {
        ready();
        while (!stopping) {
          const s = await session(ep);
          const ch = await s.openChannel("client").catch(() => null);
          if (ch) await ch.write(busCodec.encodeRaw([35, 42, new Uint8Array(0)])).catch(() => {});
          await s.closed;
          count.actions++;
        }
        return;
      }
      case "big-frames": {
        const chans = [];
        for (let i = 0; i < 16; i++) chans.push(await (await session(ep)).openChannel("client"));
        const header = new Uint8Array(4);
        new DataView(header.buffer).setUint32(0, 16 * 1024 * 1024);
        for (const ch of chans) await ch.write(header);
        ready();
        const chunk = new Uint8Array(4096);
        while (!stopping) {
          for (const ch of chans) await ch.write(chunk).catch(() => {});
          count.actions++;
          await new Promise((r) => setTimeout(r, 10));
        }
        return;
      }
      case "handshakes": {
        ready();
        const eps: QuicEndpoint[] = [];
        while (!stopping) {
          const d = await endpoint({ deaf: true });
          eps.push(d);
          void d.connect(target).catch(() => {});
          count.actions++;
          if (eps.length > 200) await eps.shift()!.close();
          await new Promise((r) => setTimeout(r, 5));
        }
        await Promise.all(eps.map((e) => e.close()));
        return;
      }
      case "gossip": {
        // 64 made-up members, each with its own key and a true signature over its record.
        const meta = { realm: me.realm, tags: [], version: "x" };
        const fakes: Record<string, unknown>[] = [];
        for (let i = 0; i < 64; i++) {
          const kp = await generateKeyPair("ed25519");
          const key = await exportSpki(kp.publicKey);
          const id = nodeIdText(nodeIdFromSpki(key));
          const addr = `quic://127.0.0.1:${20_000 + i}`;
          const bytes = recordBytes(U_ALIVE, id, 0, addr, meta) as Uint8Array<ArrayBuffer>;
          const sig = new Uint8Array(
            await crypto.subtle.sign({ name: "Ed25519" }, kp.privateKey, bytes),
          );
          fakes.push({ kind: U_ALIVE, id, inc: 0, from: null, addr, ...meta, key, sig });
        }
        const lie = (inc: number) =>
          membershipCodec.encodeBody("gossip", {
            realm: me.realm,
            from: me.nodeId,
            addr: "quic://127.0.0.1:9",
            updates: [{ kind: U_DEAD, id: nodeId, inc, from: me.nodeId }, ...fakes],
          });
        let s = await session(ep);
        ready();
        for (let i = 0; !stopping; i++) {
          if (s.conn.closeInfo || s.closing) s = await session(ep);
          await s.request("membership.msg", lie(i % 2 ? MAX_INCARNATION : 0), { timeoutMs: 2000 })
            .catch(() => {
              count.refused++;
            });
          count.actions++;
          await new Promise((r) => setTimeout(r, 5));
        }
        return;
      }
      case "punch": {
        let s = await session(ep);
        const body = (p: number) =>
          new TextEncoder().encode(JSON.stringify({ peer: nodeId, host: "127.0.0.1", port: p }));
        ready();
        for (let i = 0; !stopping; i++) {
          if (s.conn.closeInfo || s.closing) s = await session(ep); // the node closed it: again
          await s.request("nat.punch", body(9 + (i % 50)), { timeoutMs: 2000 }).catch(() => {
            count.refused++;
          });
          count.actions++;
          if (i % 64 === 0) await new Promise((r) => setImmediate(r));
        }
        return;
      }
    }
  } finally {
    await ep.close().catch(() => {});
  }
}

await run().catch((e) => {
  // Stopping while refused (held down) ends the attack; anything else is worth saying.
  if (!stopping) process.stderr.write(`attack ${kind}: ${(e as Error).message}\n`);
});
// The summary goes to stderr: stdout is the ready line only (bench/lib/spawn.ts keeps no more).
process.stderr.write(`${JSON.stringify({ attack: kind, ...count })}\n`);
process.exit(0);
