/**
 * The NAT lab (test/helpers/natlab.ts) behaves like the NATs it claims to be: the address the
 * internet sees, mapping (same port for every destination, or a new one), filtering (who may
 * send to a mapping), clean teardown, and UDP hole punching between two NATs.
 *
 * Needs root, `ip` and `iptables` (.ci/run installs them). Without them every test here fails
 * with a message naming what is missing: the lab is part of the suite, never skipped silently.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { createLab, type Host, type Lab, which } from "../helpers/natlab.ts";
import { run } from "../helpers/run.ts";

/**
 * UDP echo server: binds every ip:port given on the command line, prints "ready". On "echo" it
 * answers `seen <ip:port>` (the source it saw); on "poke" it also sends `poke <its ip:port>` to
 * that source from every other socket (another port, another address). Sends are retried on
 * error (see the comment inside).
 */
const ECHO = `
import dgram from "node:dgram";
const binds = process.argv.slice(2);
const socks = await Promise.all(binds.map((b) => new Promise((ok, fail) => {
  const i = b.lastIndexOf(":");
  const s = dgram.createSocket("udp4");
  s.once("error", fail);
  s.bind(Number(b.slice(i + 1)), b.slice(0, i), () => ok({ s, name: b }));
})));
// Bun 1.4: an ICMP error (port unreachable from a NAT that filtered an earlier poke) makes the
// socket's next send fail with ECONNREFUSED and drop the datagram, whatever its destination.
const send = (s, text, r, tries = 3) =>
  s.send(text, r.port, r.address, (e) => { if (e && tries > 1) send(s, text, r, tries - 1); });
for (const { s } of socks) {
  s.on("error", () => {});
  s.on("message", (m, r) => {
    send(s, "seen " + r.address + ":" + r.port, r);
    if (String(m) === "poke") for (const o of socks) if (o.s !== s) send(o.s, "poke " + o.name, r);
  });
}
console.log("ready");
`;

/**
 * UDP client, driven by a JSON argument:
 *  - {mode:"ask", sends:["ip:port msg", ...], waitMs, expect}: sends each from one socket,
 *    collects datagrams until `expect` arrived and then `waitMs` more, prints
 *    {local, got:[{from, text}]}.
 *  - {mode:"punch", port, stun:"ip:port", name}: binds `port`, asks the echo server for its
 *    mapping, prints "mapped ip:port", then reads one stdin line
 *    {peer:"ip:port", go:epochMs, delayMs, probes, ms}: at go+delayMs it sends (if probes) 3
 *    datagrams with IP TTL 2 (expire one hop past its own NAT) and, 150 ms later, sends
 *    "hello" every 20 ms for `ms`; prints {got:[from...]} of datagrams from the peer.
 */
const UDP = `
import dgram from "node:dgram";
const cfg = JSON.parse(process.argv[2]);
const s = dgram.createSocket("udp4");
const got = [];
const split = (a) => { const i = a.lastIndexOf(":"); return [Number(a.slice(i + 1)), a.slice(0, i)]; };
await new Promise((ok) => s.bind(cfg.port ?? 0, ok));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
if (cfg.mode === "ask") {
  let first;
  s.on("message", (m, r) => { got.push({ from: r.address + ":" + r.port, text: String(m) }); });
  for (const line of cfg.sends) {
    const [to, msg] = line.split(" ");
    s.send(msg, ...split(to));
  }
  const t0 = Date.now();
  while (got.length < cfg.expect && Date.now() - t0 < 3000) await sleep(5);
  await sleep(cfg.waitMs);
  console.log(JSON.stringify({ local: s.address().port, got }));
  process.exit(0);
}
// punch
let mapped;
s.on("message", (m, r) => {
  const text = String(m);
  if (text.startsWith("seen ")) mapped ??= text.slice(5);
  else got.push(r.address + ":" + r.port + " " + text);
});
for (let i = 0; i < 50 && mapped === undefined; i++) { s.send("echo", ...split(cfg.stun)); await sleep(40); }
console.log("mapped " + mapped);
let line = "";
for await (const chunk of process.stdin) { line += chunk; if (line.includes("\\n")) break; }
const p = JSON.parse(line);
const peer = split(p.peer);
await sleep(Math.max(0, p.go + p.delayMs - Date.now()));
if (p.probes) {
  s.setTTL(2);
  for (let i = 0; i < 3; i++) s.send("probe", ...peer);
  await sleep(150);
  s.setTTL(64);
}
const end = Date.now() + p.ms;
while (Date.now() < end) { s.send("hello from " + cfg.name, ...peer); await sleep(20); }
console.log(JSON.stringify({ got }));
process.exit(0);
`;

const BUN = process.execPath;
const ECHO_BINDS = ["203.0.113.10:3478", "203.0.113.10:3479", "203.0.113.11:3478"] as const;
const [X1, X2, Y1] = ECHO_BINDS;
const FIREWALLED = { kind: "eim-pr", firewall: true } as const;

let dir = "";
let lab: Lab | undefined;
let labError: unknown;

/** The lab, or a failure explaining why there is none (not root, tools missing, build failed). */
function need(): Lab {
  if (lab === undefined) {
    throw new Error(
      `NAT lab unavailable: ${labError instanceof Error ? labError.message : labError}`,
    );
  }
  return lab;
}

/** Runs a program inside a namespace and waits for it to print `line`, within `ms`. */
async function started(l: Lab, ns: string, argv: string[], line: string, ms = 10_000) {
  const p = l.spawn(ns, argv, { stdin: "pipe" });
  const reader = p.stdout.getReader();
  const decoder = new TextDecoder();
  let out = "";
  const timer = setTimeout(() => p.kill("SIGKILL"), ms);
  try {
    while (!out.includes(line)) {
      const { value, done } = await reader.read();
      if (done) {
        const err = await new Response(p.stderr).text();
        throw new Error(`${argv.join(" ")} in ${ns}: no "${line}" (stdout ${out}; stderr ${err})`);
      }
      out += decoder.decode(value, { stream: true });
    }
  } finally {
    clearTimeout(timer);
  }
  /** The rest of stdout, until the process exits (bounded by `ms2`). */
  const rest = async (ms2: number): Promise<string> => {
    const t = setTimeout(() => p.kill("SIGKILL"), ms2);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return out;
        out += decoder.decode(value, { stream: true });
      }
    } finally {
      clearTimeout(t);
    }
  };
  return { p, out: () => out, rest };
}

interface Asked {
  local: number;
  got: { from: string; text: string }[];
}

/** From `host`, sends `sends` ("ip:port msg") from one socket and returns what came back. */
async function ask(l: Lab, host: Host, sends: string[], expectN: number, waitMs: number) {
  const cfg = JSON.stringify({ mode: "ask", sends, expect: expectN, waitMs });
  const r = await l.exec(host.name, [BUN, join(dir, "udp.ts"), cfg], { timeoutMs: 10_000 });
  if (r.code !== 0) throw new Error(`udp client in ${host.name} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Asked;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "natlab-test-"));
  writeFileSync(join(dir, "echo.ts"), ECHO);
  writeFileSync(join(dir, "udp.ts"), UDP);
  try {
    // h1..h4: one host behind each NAT kind; h5: a second eim-pr NAT, for hole punching;
    // h6, h7: eim-pr NATs that drop unsolicited packets to themselves, like home routers.
    lab = await createLab({
      nats: ["eim-pr", "eim-fc", "sym", "eim-ar", "eim-pr", ...[1, 2].map(() => FIREWALLED)],
    });
    await started(lab, "inet", [BUN, join(dir, "echo.ts"), ...ECHO_BINDS], "ready");
  } catch (e) {
    labError = e;
  }
});

afterAll(async () => {
  await lab?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

describe("NAT lab", () => {
  test(
    "filtering: only full cone lets anyone in; address-restricted lets the same IP in",
    async () => {
      const l = need();
      // First in the file: eim-ar remembers every address the host has sent to (from any port),
      // so the host must not have sent to the other address (Y1) yet.
      const expected: Record<string, string[]> = {
        "eim-fc": [`poke ${X2}`, `poke ${Y1}`],
        "eim-ar": [`poke ${X2}`],
        "eim-pr": [],
        "sym": [],
      };
      await Promise.all(
        Object.entries(expected).map(async ([kind, pokes]) => {
          const a = await ask(l, l.host(kind), [`${X1} poke`], 1, 500);
          const texts = a.got.map((g) => g.text);
          expect({ kind, seen: texts.filter((t) => t.startsWith("seen ")).length }).toEqual({
            kind,
            seen: 1,
          });
          expect({ kind, pokes: texts.filter((t) => t.startsWith("poke ")).sort() }).toEqual({
            kind,
            pokes,
          });
        }),
      );
    },
    20_000,
  );

  test(
    "mapping: the internet sees the router's address; EIM keeps one port, sym does not",
    async () => {
      const l = need();
      const results = await Promise.all(
        ["eim-pr", "eim-fc", "eim-ar", "sym"].map(async (kind) => {
          const h = l.host(kind);
          const a = await ask(l, h, [`${X1} echo`, `${X2} echo`, `${Y1} echo`], 3, 0);
          return { h, a };
        }),
      );
      for (const { h, a } of results) {
        const seen = new Map(a.got.map((g) => [g.from, g.text.replace(/^seen /, "")]));
        expect([...seen.keys()].sort()).toEqual([...ECHO_BINDS].sort());
        const mapped = [...seen.values()];
        for (const m of mapped) expect(m.split(":")[0]).toBe(h.router!.publicAddress);
        const ports = new Set(mapped.map((m) => m.split(":")[1]));
        if (h.kind === "sym") {
          expect(ports.size).toBeGreaterThanOrEqual(2); // all three equal: 1 in ~10^9 by chance
        } else {
          // One mapping for every destination, and Linux keeps the host's own port.
          expect([...ports]).toEqual([String(a.local)]);
        }
      }
    },
    20_000,
  );

  /** Two hosts punch towards each other; returns what each received from the other. */
  async function punch(
    l: Lab,
    a: Host,
    b: Host,
    port: number,
    opts: { probes: boolean; delayB: number },
  ): Promise<{ a: string[]; b: string[]; mappedA: string; mappedB: string }> {
    const start = (h: Host) => {
      const cfg = JSON.stringify({ mode: "punch", port, stun: X1, name: h.name });
      return started(l, h.name, [BUN, join(dir, "udp.ts"), cfg], "mapped ");
    };
    const [pa, pb] = await Promise.all([start(a), start(b)]);
    const mapped = (o: string) => /mapped (\S+)/.exec(o)?.[1] ?? "";
    const mappedA = mapped(pa.out());
    const mappedB = mapped(pb.out());
    const go = Date.now() + 300;
    const ms = 800;
    const line = (peer: string, delayMs: number) =>
      JSON.stringify({ peer, go, delayMs, probes: opts.probes, ms }) + "\n";
    pa.p.stdin!.write(line(mappedB, 0));
    pb.p.stdin!.write(line(mappedA, opts.delayB));
    await Promise.all([pa.p.stdin!.flush(), pb.p.stdin!.flush()]);
    const [oa, ob] = await Promise.all([pa.rest(5_000), pb.rest(5_000)]);
    const got = (o: string) => (JSON.parse(o.slice(o.indexOf("{"))) as { got: string[] }).got;
    return { a: got(oa), b: got(ob), mappedA, mappedB };
  }

  test(
    "hole punching between two port-restricted NATs: naive fails, low-TTL probes first work",
    async () => {
      const l = need();
      const [a, b] = [l.host("h1"), l.host("h5")];
      expect([a.kind, b.kind]).toEqual(["eim-pr", "eim-pr"]);
      // Naive: A's first datagram reaches B's router before B has sent anything. It lands on the
      // router itself and its conntrack entry holds B's port, so B's mapping gets another port.
      const naive = await punch(l, a, b, 41_000, { probes: false, delayB: 300 });
      expect(naive.mappedA).toBe(`${a.publicAddress}:41000`);
      expect({ a: naive.a.length, b: naive.b.length }).toEqual({ a: 0, b: 0 });
      // Each side first sends a few datagrams with TTL 2: they open its own NAT's mapping and die
      // at the next hop (the internet router), so the far NAT sees nothing. Then real datagrams.
      const probed = await punch(l, a, b, 42_000, { probes: true, delayB: 0 });
      expect(probed.a.length).toBeGreaterThan(0);
      expect(probed.b.length).toBeGreaterThan(0);
      expect(probed.a[0]).toStartWith(`${probed.mappedB} hello from h5`);
      expect(probed.b[0]).toStartWith(`${probed.mappedA} hello from h1`);
    },
    30_000,
  );

  test("hole punching between two firewalled port-restricted NATs: naive works", async () => {
    const l = need();
    const [a, b] = [l.host("h6"), l.host("h7")];
    // The router drops A's early datagram before conntrack confirms its entry, so nothing holds
    // B's port and B's mapping keeps it; B's later datagrams then match A's mapping.
    const naive = await punch(l, a, b, 41_000, { probes: false, delayB: 300 });
    expect(naive.a.length).toBeGreaterThan(0);
    expect(naive.b.length).toBeGreaterThan(0);
    expect(naive.a[0]).toStartWith(`${b.publicAddress}:41000 hello from h7`);
  }, 30_000);

  test(
    "destroy() removes every namespace and process; stale labs of dead processes are swept",
    async () => {
      need();
      const ip = which("ip") ?? "ip";
      const names = async () => (await run([ip, "netns", "list"])).stdout;
      // A namespace in this lab's scheme whose pid is not running: left by a crashed run.
      let dead = 4_000_000;
      while (
        dead > 2 && (() => {
          try {
            process.kill(dead, 0);
            return true;
          } catch {
            return false;
          }
        })()
      ) dead--;
      const stale = `mlab${dead}x0-r1`;
      const alive = `mlab${process.pid}x999-r1`; // same scheme, live pid: not stale
      const other = "mlabkeep-test"; // not the scheme at all
      for (const ns of [stale, alive, other]) {
        expect((await run([ip, "netns", "add", ns])).code).toBe(0);
      }
      let small: Lab | undefined;
      try {
        small = await createLab({ nats: [{ kind: "sym", hosts: 2 }], publicHosts: 1 });
        const list = await names();
        expect(list).not.toContain(stale);
        expect(list).toContain(alive);
        expect(list).toContain(other);
        for (const ns of small.namespaces) expect(list).toContain(ns);
        const sleeper = small.spawn("h1b", ["sleep", "60"]);
        const r = await small.exec("p1", [ip, "-4", "-o", "addr", "show", "dev", "eth0"]);
        expect(r.stdout).toContain("203.0.113.21/32");
        await small.destroy();
        await small.destroy(); // idempotent
        expect(await sleeper.exited).not.toBe(0);
        const after = await names();
        for (const ns of small.namespaces) expect(after).not.toContain(ns);
        expect(after).not.toContain(small.prefix);
      } finally {
        await small?.destroy().catch(() => {});
        for (const ns of [stale, alive, other]) await run([ip, "netns", "delete", ns]);
      }
    },
    30_000,
  );
});
