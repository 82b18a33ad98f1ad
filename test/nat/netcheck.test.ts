/**
 * netcheck (lib/nat/netcheck.ts): `classify` on synthetic results for every NAT kind, then the
 * whole run on 127.0.0.1 against the STUN server (one IP; and two, with 127.0.0.2), then the
 * `macula stun serve` and `macula netcheck` commands end to end.
 */
import { afterEach, describe, expect, test } from "bun:test";
import type { Subprocess } from "bun";
import { fileURLToPath } from "node:url";
import {
  type Address,
  openRawSocket,
  type OwnedRawSocket,
  type RawSocket,
  StunServer,
} from "../../lib/nat/stun-server.ts";
import {
  type BehaviourTests,
  classify,
  type NetcheckReport,
  type Probe,
  runNetcheck,
  StunClient,
} from "../../lib/nat/netcheck.ts";
import { closingEndpoints } from "../helpers/quic.ts";
import { Proc } from "../helpers/proc.ts";
import { run } from "../helpers/run.ts";

// ------------------------------------------------------------------ classify, synthetic

const LOCAL: Address = { host: "192.168.1.10", port: 5000 };
const ans = <T>(value: T): Probe<T> => ({ status: "answered", value });
const TIMEOUT = { status: "timeout" } as const;
const NT = (why = "n/a") => ({ status: "not-tested", why }) as const;
const pub = (port: number): Address => ({ host: "203.0.113.7", port });

/** Results of a full RFC 5780 run (4-address server) behind a NAT, overridable. */
function natTests(o: Partial<BehaviourTests>): BehaviourTests {
  return {
    local: LOCAL,
    localIps: ["192.168.1.10", "127.0.0.1"],
    primary: ans(pub(40000)),
    mapAltIp: ans(pub(40000)),
    mapAltIpPort: ans(pub(40000)),
    mapAltPort: ans(pub(40000)),
    filterChangeIpPort: ans(true as const),
    filterChangePort: ans(true as const),
    hairpin: ans(true as const),
    ...o,
  };
}

describe("classify (synthetic results)", () => {
  test("full cone: endpoint-independent mapping and filtering", () => {
    const c = classify(natTests({}));
    expect(c.nat).toBe(true);
    expect(c.mapping.behaviour).toBe("endpoint-independent");
    expect(c.filtering.behaviour).toBe("endpoint-independent");
    expect(c.hairpinning).toBe(true);
  });

  test("restricted cone: EI mapping, address-dependent filtering", () => {
    const c = classify(natTests({ filterChangeIpPort: TIMEOUT, hairpin: TIMEOUT }));
    expect(c.mapping.behaviour).toBe("endpoint-independent");
    expect(c.filtering.behaviour).toBe("address-dependent");
    expect(c.hairpinning).toBe(false);
  });

  test("port-restricted cone: EI mapping, address-and-port-dependent filtering", () => {
    const c = classify(natTests({ filterChangeIpPort: TIMEOUT, filterChangePort: TIMEOUT }));
    expect(c.mapping.behaviour).toBe("endpoint-independent");
    expect(c.filtering.behaviour).toBe("address-and-port-dependent");
  });

  test("address-dependent mapping", () => {
    const c = classify(natTests({
      mapAltIp: ans(pub(40001)),
      mapAltIpPort: ans(pub(40001)),
      filterChangeIpPort: TIMEOUT,
    }));
    expect(c.mapping.behaviour).toBe("address-dependent");
    expect(c.mapping.note).toContain("its other port saw the same one as its first");
  });

  test("symmetric: address-and-port-dependent mapping and filtering", () => {
    const c = classify(natTests({
      mapAltIp: ans(pub(40001)),
      mapAltIpPort: ans(pub(40002)),
      mapAltPort: ans(pub(40003)),
      filterChangeIpPort: TIMEOUT,
      filterChangePort: TIMEOUT,
    }));
    expect(c.mapping.behaviour).toBe("address-and-port-dependent");
    expect(c.filtering.behaviour).toBe("address-and-port-dependent");
  });

  test("no NAT: the server saw our own address (also when bound to a wildcard)", () => {
    const own = natTests({ primary: ans(LOCAL), mapAltIp: NT(), mapAltIpPort: NT() });
    expect(classify(own).nat).toBe(false);
    expect(classify(own).mapping.behaviour).toBe("endpoint-independent");
    const wild = { ...own, local: { host: "0.0.0.0", port: 5000 } };
    expect(classify(wild).nat).toBe(false);
    const other = { ...wild, primary: ans({ host: "192.168.1.99", port: 5000 }) };
    expect(classify(other).nat).toBe(true);
  });

  test("one server IP: change-IP tests not testable, the verdict says what remains", () => {
    const c = classify(natTests({
      mapAltIp: NT("one IP"),
      mapAltIpPort: NT("one IP"),
      filterChangeIpPort: NT("one IP"),
    }));
    expect(c.mapping).toMatchObject({
      behaviour: "unknown",
      possible: ["endpoint-independent", "address-dependent"],
    });
    expect(c.filtering).toMatchObject({
      behaviour: "unknown",
      possible: ["endpoint-independent", "address-dependent"],
    });
    expect(c.filtering.note).toContain("other IP and port not tested: one IP");
    // …but a different mapping from the other port settles it even with one IP.
    const apd = classify(natTests({
      mapAltIp: NT("one IP"),
      mapAltIpPort: NT("one IP"),
      mapAltPort: ans(pub(40009)),
      filterChangeIpPort: NT("one IP"),
      filterChangePort: TIMEOUT,
    }));
    expect(apd.mapping.behaviour).toBe("address-and-port-dependent");
    expect(apd.filtering.behaviour).toBe("address-and-port-dependent");
  });

  test("a plain STUN server (no OTHER-ADDRESS): nothing but the NAT's presence", () => {
    const c = classify(natTests({
      mapAltIp: NT(),
      mapAltIpPort: NT(),
      mapAltPort: NT(),
      filterChangeIpPort: NT(),
      filterChangePort: NT(),
      hairpin: NT(),
    }));
    expect(c.nat).toBe(true);
    expect(c.mapping.behaviour).toBe("unknown");
    expect(c.mapping.possible).toHaveLength(3);
    expect(c.filtering.possible).toHaveLength(3);
    expect(c.hairpinning).toBeNull();
  });

  test("no answer at all: nothing is known", () => {
    const c = classify(natTests({ primary: TIMEOUT }));
    expect(c).toMatchObject({ nat: null, hairpinning: null });
    expect(c.mapping.behaviour).toBe("unknown");
    expect(c.mapping.note).toBe("no STUN server answered");
  });

  test("inconsistent results are called so, not resolved by a guess", () => {
    const c = classify(natTests({ mapAltIp: ans(pub(40000)), mapAltPort: ans(pub(40005)) }));
    expect(c.mapping).toMatchObject({ behaviour: "unknown", possible: [] });
    expect(c.mapping.note).toContain("inconsistent");
  });
});

// ------------------------------------------------------------------ the run, on 127.0.0.1

const RT = { rtoMs: 40, transmissions: 2, lastWaitRtos: 2 };

describe("runNetcheck on 127.0.0.1", () => {
  const { ep } = closingEndpoints();
  const owned: OwnedRawSocket[] = [];
  const servers: StunServer[] = [];
  afterEach(() => {
    servers.splice(0).forEach((s) => s.close());
    owned.splice(0).forEach((s) => s.close());
  });
  const raw = async (host: string, port = 0) => {
    const s = await openRawSocket(host, port);
    owned.push(s);
    return s;
  };
  const serve = (o: ConstructorParameters<typeof StunServer>[0]) => {
    const s = new StunServer(o);
    servers.push(s);
    return s;
  };

  test("one IP, two ports: no NAT, EI mapping; change-IP tests reported not testable", async () => {
    const primary = await ep();
    const altPort = await ep();
    serve({ primary, altPort });
    const client = await ep(); // the QUIC socket whose mapping matters
    const r = await runNetcheck(client, { servers: [primary.address], rt: RT });
    expect(r.mapped).toEqual({ host: "127.0.0.1", port: client.address.port });
    expect(r.nat).toBe(false);
    expect(r.mapping.behaviour).toBe("endpoint-independent");
    expect(r.filtering).toMatchObject({
      behaviour: "unknown",
      possible: ["endpoint-independent", "address-dependent"],
    });
    expect(r.tests.filterChangePort).toEqual({ status: "answered", value: true });
    expect(r.tests.filterChangeIpPort).toEqual({
      status: "not-tested",
      why: "the server has one IP",
    });
    expect(r.tests.mapAltPort).toEqual({ status: "answered", value: r.mapped! });
    expect(r.hairpinning).toBe(true);
    expect(r.servers).toHaveLength(1);
    expect(r.servers[0]!.otherAddress).toEqual(altPort.address);
    expect(r.servers[0]!.rttMs).toBeGreaterThan(0);
    expect(r.behaviourServer).toBe(`127.0.0.1:${primary.address.port}`);
  });

  test("two IPs (127.0.0.1, 127.0.0.2), four sockets: EI mapping and filtering", async () => {
    const primary = await raw("127.0.0.1");
    const altPort = await raw("127.0.0.1");
    const altIp = await raw("127.0.0.2", primary.address.port);
    const altIpPort = await raw("127.0.0.2", altPort.address.port);
    const s = serve({ primary, altPort, altIp, altIpPort });
    const client = await ep();
    const r = await runNetcheck(client, { servers: [primary.address], rt: RT });
    expect(r.nat).toBe(false);
    expect(r.mapping.behaviour).toBe("endpoint-independent");
    expect(r.filtering.behaviour).toBe("endpoint-independent");
    for (const k of ["mapAltIp", "mapAltIpPort", "mapAltPort"] as const) {
      expect(r.tests[k]).toEqual({ status: "answered", value: r.mapped! });
    }
    expect(r.servers[0]!.otherAddress).toEqual(altIpPort.address);
    expect(s.stats.sentFrom.altIpPort).toBeGreaterThanOrEqual(2); // change IP+port, map III
  });

  test("a server that drops change requests reads as filtering (the timeouts)", async () => {
    const primary = await ep();
    const altPort = await ep();
    serve({ primary, altPort });
    // Lose everything the alternate port sends: what a port-restricted NAT would do.
    const realSend = altPort.sendRaw.bind(altPort);
    let dropped = 0;
    (altPort as RawSocket).sendRaw = () => void dropped++;
    try {
      const client = await ep();
      const r = await runNetcheck(client, { servers: [primary.address], rt: RT });
      expect(r.tests.filterChangePort).toEqual({ status: "timeout" });
      expect(r.filtering.behaviour).toBe("address-and-port-dependent");
      expect(dropped).toBeGreaterThan(0);
    } finally {
      (altPort as RawSocket).sendRaw = realSend;
    }
  });

  test("a plain server and a dead one: latency and mapping, behaviour not testable", async () => {
    const primary = await ep();
    serve({ primary });
    const dead = await raw("127.0.0.1"); // bound, answers nothing
    const client = await ep();
    const r = await runNetcheck(client, {
      servers: [dead.address, primary.address],
      rt: RT,
      noHairpin: true,
    });
    expect(r.servers[0]).toMatchObject({ rttMs: null, mapped: null, error: "no answer" });
    expect(r.servers[1]!.mapped).toEqual({ host: "127.0.0.1", port: client.address.port });
    expect(r.mapping.behaviour).toBe("endpoint-independent"); // no NAT
    expect(r.filtering.possible).toHaveLength(3);
    expect(r.tests.filterChangePort).toMatchObject({ status: "not-tested" });
    expect(r.hairpinning).toBeNull();
    expect(r.mappingVariesByServer).toBeNull(); // one answering IP
  });

  test("a node's own STUN server keeps answering during and after its netcheck", async () => {
    const remote = await ep();
    serve({ primary: remote });
    const node = await ep();
    const own = serve({ primary: node });
    const asker = new StunClient(await raw("127.0.0.1"));
    try {
      const during = asker.binding(node.address, { rt: RT });
      const r = await runNetcheck(node, {
        servers: [remote.address],
        rt: RT,
        onOther: own.handler(),
      });
      expect(r.mapped).toEqual({ host: "127.0.0.1", port: node.address.port });
      expect((await during)?.msg.cls).toBe("success");
      expect((await asker.binding(node.address, { rt: RT }))?.msg.cls).toBe("success");
      expect(own.stats.requests).toBeGreaterThanOrEqual(2);
    } finally {
      asker.close();
    }
  });

  test("no server answers: the report says so", async () => {
    const dead = await raw("127.0.0.1");
    const client = await ep();
    const r = await runNetcheck(client, { servers: [dead.address], rt: RT });
    expect(r).toMatchObject({ mapped: null, nat: null, hairpinning: null });
    expect(r.mapping.note).toBe("no STUN server answered");
  });
});

// ------------------------------------------------------------------ the commands

const MAIN = fileURLToPath(new URL("../../cli/main.ts", import.meta.url));

describe("macula stun serve / macula netcheck", () => {
  const procs: Proc[] = [];
  afterEach(async () => {
    for (const p of procs.splice(0)) {
      p.p.kill("SIGTERM");
      await p.code().catch(() => p.p.kill("SIGKILL"));
    }
  });
  const start = (args: string[]) => {
    const p = new Proc(
      args,
      Bun.spawn({
        cmd: [process.execPath, MAIN, ...args],
        stdin: "ignore",
        stdout: "pipe",
        stderr: "pipe",
        timeout: 60_000,
        killSignal: "SIGKILL",
      }) as Subprocess<"pipe" | "ignore", "pipe", "pipe">,
    );
    procs.push(p);
    return p;
  };
  const macula = (...args: string[]) => run([process.execPath, MAIN, ...args]);

  test("serve --ready-json, then netcheck --json and stun query against it", async () => {
    const server = start([
      "stun",
      "serve",
      "--listen",
      "127.0.0.1:0",
      "--alt-port",
      "0",
      "--ready-json",
    ]);
    await server.waitFor("out", "\n");
    const ready = JSON.parse(server.lines()[0]!) as {
      ready: boolean;
      port: number;
      altPort: number;
    };
    expect(ready).toMatchObject({ ready: true, host: "127.0.0.1", altHost: null });
    const to = `127.0.0.1:${ready.port}`;

    const nc = await macula(
      "netcheck",
      "--stun",
      to,
      "--listen",
      "127.0.0.1",
      "--rto",
      "50",
      "--json",
    );
    expect(nc.stderr).toBe("");
    expect(nc.code).toBe(0);
    const r = JSON.parse(nc.stdout) as NetcheckReport;
    expect(r.mapped!.host).toBe("127.0.0.1");
    expect(r.mapped!.port).toBe(r.local.port);
    expect(r.nat).toBe(false);
    expect(r.mapping.behaviour).toBe("endpoint-independent");
    expect(r.filtering.possible).toEqual(["endpoint-independent", "address-dependent"]);
    expect(r.servers[0]!.otherAddress).toEqual({ host: "127.0.0.1", port: ready.altPort });

    const text = await macula("netcheck", "--stun", to, "--rto", "50");
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/public address: +127\.0\.0\.1:\d+/);
    expect(text.stdout).toContain("behind a NAT:     no");
    expect(text.stdout).toContain(
      "filtering:        endpoint-independent or address-dependent",
    );

    const q = await macula("stun", "query", to, "--json");
    expect(q.code).toBe(0);
    expect(JSON.parse(q.stdout)).toMatchObject({
      server: to,
      mapped: { host: "127.0.0.1" },
      responseOrigin: { host: "127.0.0.1", port: ready.port },
      software: "macula",
    });

    server.p.kill("SIGTERM");
    expect(await server.code()).toBe(0);
    expect(server.err).toMatch(/SIGTERM: stopped after \d+ answers/);
  });

  test("netcheck exits 1 when no STUN server answers", async () => {
    const dead = await openRawSocket("127.0.0.1", 0);
    try {
      const r = await macula(
        "netcheck",
        "--stun",
        `127.0.0.1:${dead.address.port}`,
        "--rto",
        "20",
        "--json",
      );
      expect(r.code).toBe(1);
      expect(JSON.parse(r.stdout)).toMatchObject({ mapped: null, nat: null });
      expect(r.stderr).toContain("macula netcheck: no STUN server answered");
    } finally {
      dead.close();
    }
  });

  test("usage errors exit 2 naming the problem", async () => {
    const bad = await macula("netcheck", "--stun", "127.0.0.1:99999");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("port 99999 is not from 1 to 65535");
    const alt = await macula("stun", "serve", "--alt-host", "127.0.0.2");
    expect(alt.code).toBe(2);
    expect(alt.stderr).toContain("--alt-host needs --alt-port");
    const host = await macula("stun", "serve", "--listen", "example.com:3478");
    expect(host.code).toBe(2);
    expect(host.stderr).toBe("macula stun serve: --listen example.com: give an IP address\n");
  });
});
