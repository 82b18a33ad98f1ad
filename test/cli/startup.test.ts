/**
 * `macula node up` checks itself before it runs (docs/security.md, "Starting a node"): each
 * failure names what is wrong, exits 2, and leaves nothing written — a key that is not the
 * certificate's, a certificate of another realm, a client's certificate, an expired one, a data
 * directory in use, a node id alive elsewhere in the mesh, a --dev-ca-dir with no CA. A
 * certificate near its end starts with a warning. Real processes on 127.0.0.1.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type Ca,
  initCa,
  issueCert,
  loadCa,
  Verifier,
  writeCredsDir,
} from "../../lib/identity/mod.ts";
import { type Proc, spawnMacula } from "../helpers/proc.ts";

const DAY = 86_400_000;
let dir: string;
let acme: Ca;
const procs: Proc[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "macula-startup-"));
  acme = (await initCa({ realm: "acme", outDir: join(dir, "acme-ca"), durationMs: 365 * DAY })).ca;
});
afterAll(async () => {
  for (const p of procs) p.p.kill("SIGTERM");
  await Promise.all(procs.map((p) => p.code().catch(() => 0)));
  rmSync(dir, { recursive: true, force: true });
});

function macula(args: string[]): Proc {
  const p = spawnMacula(args, { cwd: dir });
  procs.push(p);
  return p;
}

/** A credentials directory with a new certificate from `ca`. */
async function creds(
  name: string,
  o: {
    ca?: Ca;
    role?: "node" | "client";
    groups?: string[];
    notBefore?: Date;
    durationMs?: number;
  } = {},
): Promise<string> {
  const ca = o.ca ?? acme;
  const c = await issueCert({
    ca,
    name,
    role: o.role ?? "node",
    groups: o.groups ?? [],
    durationMs: o.durationMs ?? 90 * DAY,
    ...(o.notBefore ? { notBefore: o.notBefore } : {}),
  });
  const d = join(dir, `creds-${name}`);
  await writeCredsDir(d, { ca: ca.pem, cert: c.pem, key: c.keyPem! });
  return d;
}

let dirs = 0;
const fresh = () => join(dir, `data-${++dirs}`);

/** Starts `node up --ready-json ...args` on 127.0.0.1 and waits for its ready line. */
async function up(args: string[]): Promise<{ proc: Proc; url: string; nodeId: string }> {
  const proc = macula(["node", "up", "--listen", "127.0.0.1:0", "--ready-json", ...args]);
  await proc.waitFor("out", "\n");
  const ready = JSON.parse(proc.lines()[0]!) as { url: string; nodeId: string };
  return { proc, url: ready.url, nodeId: ready.nodeId };
}

/** `macula inspect members --json` through `url` with `credsDir`: the rows. */
async function members(url: string, credsDir: string) {
  const p = macula(["inspect", "members", "--json", "--server", url, "--creds", credsDir]);
  expect(await p.code()).toBe(0);
  return JSON.parse(p.out) as { id: string; addr: string; state: string }[];
}

/** `node up` that must refuse: exit 2, the message, and the data directory never made. */
async function refused(args: string[], message: string): Promise<void> {
  const data = fresh();
  const p = macula(["node", "up", "--listen", "127.0.0.1:0", "--data-dir", data, ...args]);
  expect(await p.code()).toBe(2);
  expect(p.err).toContain(message);
  expect(p.out).toBe("");
  expect(existsSync(data)).toBe(false);
}

describe("macula node up refuses to start", () => {
  test("with a key that is not the certificate's", async () => {
    const a = await creds("a");
    const b = await creds("b");
    cpSync(join(b, "key.pem"), join(a, "key.pem"));
    await refused(["--realm", "acme", "--creds", a], `is not the key of ${join(a, "cert.pem")}`);
  });

  test("with a certificate of another realm's CA (a dev CA under realm acme)", async () => {
    const dev = (await initCa({ realm: "dev", outDir: join(dir, "dev-ca"), durationMs: DAY })).ca;
    await refused(
      ["--realm", "acme", "--creds", await creds("devnode", { ca: dev })],
      "the CA is for realm dev, not acme",
    );
  });

  test("with a client's certificate", async () => {
    await refused(
      ["--realm", "acme", "--creds", await creds("app", { role: "client" })],
      "is a client's certificate: a node needs one issued with --role node",
    );
  });

  test("with an expired certificate", async () => {
    const old = await creds("old", { notBefore: new Date(Date.now() - 3 * DAY), durationMs: DAY });
    await refused(["--realm", "acme", "--creds", old], "expired on");
  });

  test("with --dev-ca-dir naming no CA (a typo), unless asked to create one", async () => {
    const typo = join(dir, "n1/cq");
    await refused(["--dev-ca-dir", typo], `dev_ca_dir ${typo}: no CA there`);
    expect(existsSync(typo)).toBe(false);
    const made = macula([
      "node",
      "up",
      "--listen",
      "127.0.0.1:0",
      "--data-dir",
      fresh(),
      "--dev-ca-dir",
      typo,
      "--create-dev-ca",
      "--ready-json",
    ]);
    await made.waitFor("out", "\n");
    expect(existsSync(join(typo, "ca.pem"))).toBe(true);
    made.p.kill("SIGTERM");
    expect(await made.code()).toBe(0);
  });

  test("on a data directory another node runs on; it starts again once that one stopped", async () => {
    const data = fresh();
    const first = macula([
      "node",
      "up",
      "--listen",
      "127.0.0.1:0",
      "--data-dir",
      data,
      "--ready-json",
    ]);
    await first.waitFor("out", "\n");
    const second = macula(["node", "up", "--listen", "127.0.0.1:0", "--data-dir", data]);
    expect(await second.code()).toBe(2);
    expect(second.err).toContain(`data directory ${data} is in use by process ${first.p.pid}`);
    first.p.kill("SIGTERM");
    expect(await first.code()).toBe(0);
    const third = macula([
      "node",
      "up",
      "--listen",
      "127.0.0.1:0",
      "--data-dir",
      data,
      "--ready-json",
    ]);
    await third.waitFor("out", "\n");
    third.p.kill("SIGTERM");
    expect(await third.code()).toBe(0);
  });

  test("when its node id is alive at another address in the mesh (a copied certificate)", async () => {
    const n1 = await creds("n1");
    const a = macula([
      "node",
      "up",
      "--realm",
      "acme",
      "--creds",
      n1,
      "--listen",
      "127.0.0.1:0",
      "--data-dir",
      fresh(),
      "--ready-json",
    ]);
    await a.waitFor("out", "\n");
    const ready = JSON.parse(a.lines()[0]!) as { url: string; nodeId: string };
    await refused(
      ["--realm", "acme", "--creds", n1, "--join", ready.url],
      `node ${ready.nodeId} is already alive in the mesh at ${ready.url} (this one would be quic://127.0.0.1:`,
    );
    a.p.kill("SIGTERM");
    expect(await a.code()).toBe(0);
  });
});

test("a certificate within 30 days of its end starts, with a warning", async () => {
  const soon = await creds("soon", { durationMs: 10 * DAY });
  const p = macula([
    "node",
    "up",
    "--realm",
    "acme",
    "--creds",
    soon,
    "--listen",
    "127.0.0.1:0",
    "--data-dir",
    fresh(),
    "--ready-json",
  ]);
  await p.waitFor("out", "\n");
  await p.waitFor("err", /warning: this node's certificate .*cert\.pem expires in/);
  p.p.kill("SIGTERM");
  expect(await p.code()).toBe(0);
});

describe("what the start-up checks let through", () => {
  test("a lock left by a process that is gone is taken over (logged) and released at stop", async () => {
    const data = fresh();
    const gone = Bun.spawn({ cmd: ["true"], stdout: "ignore", stderr: "ignore" });
    await gone.exited; // reaped: its pid runs nothing now
    mkdirSync(data, { recursive: true });
    writeFileSync(join(data, "macula.lock"), `${gone.pid}\n`);
    const n = await up(["--data-dir", data]);
    expect(n.proc.err).toContain(`process ${gone.pid} that held it is gone`);
    expect(readFileSync(join(data, "macula.lock"), "utf8")).toBe(`${n.proc.p.pid}\n`);
    n.proc.p.kill("SIGTERM");
    expect(await n.proc.code()).toBe(0);
    expect(existsSync(join(data, "macula.lock"))).toBe(false);
  });

  test("a copy joining through a third node is refused, naming both addresses; the real one stays alive", async () => {
    const seed = await up([
      "--realm",
      "acme",
      "--creds",
      await creds("seed"),
      "--data-dir",
      fresh(),
    ]);
    const n2 = await creds("n2");
    const real = await up([
      "--realm",
      "acme",
      "--creds",
      n2,
      "--data-dir",
      fresh(),
      "--join",
      seed.url,
    ]);
    const ops = await creds("ops", { role: "client", groups: ["operator"] });
    // The seed knows the real node alive before the copy starts.
    await seed.proc.waitFor("err", `member up: ${real.nodeId.slice(0, 12)}`);
    expect((await members(seed.url, ops)).find((x) => x.id === real.nodeId)?.state).toBe("alive");
    await refused(
      ["--realm", "acme", "--creds", n2, "--join", seed.url],
      `node ${real.nodeId} is already alive in the mesh at ${real.url} (this one would be quic://127.0.0.1:`,
    );
    const after = await members(seed.url, ops);
    expect(after.find((x) => x.id === real.nodeId)).toMatchObject({
      state: "alive",
      addr: real.url,
    });
    for (const n of [real, seed]) n.proc.p.kill("SIGTERM");
    expect([await real.proc.code(), await seed.proc.code()]).toEqual([0, 0]);
  });

  test("a node killed and restarted at another port is not blocked by its stale entry", async () => {
    const seed = await up(["--data-dir", fresh()]);
    const seedDir = join(dir, `data-${dirs}`);
    const data = fresh();
    const first = await up([
      "--data-dir",
      data,
      "--dev-ca-dir",
      join(seedDir, "ca"),
      "--join",
      seed.url,
    ]);
    await seed.proc.waitFor("err", `member up: ${first.nodeId.slice(0, 12)}`);
    first.proc.p.kill("SIGKILL");
    await first.proc.code();
    // The seed still lists the killed run alive at its old address.
    const stale = await members(seed.url, join(seedDir, "client"));
    expect(stale.find((x) => x.id === first.nodeId)).toMatchObject({ addr: first.url });
    const again = await up([
      "--data-dir",
      data,
      "--dev-ca-dir",
      join(seedDir, "ca"),
      "--join",
      seed.url,
    ]);
    expect(again.nodeId).toBe(first.nodeId);
    expect(again.url).not.toBe(first.url);
    expect(again.proc.err).toContain("that held it is gone");
    for (const n of [again, seed]) n.proc.p.kill("SIGTERM");
    expect([await again.proc.code(), await seed.proc.code()]).toEqual([0, 0]);
  });

  test("dev realm: client credentials that are not an operator client's are issued again", async () => {
    const data = fresh();
    const a = await up(["--data-dir", data]);
    a.proc.p.kill("SIGTERM");
    expect(await a.proc.code()).toBe(0);
    // What a data directory made before roles holds: a node certificate as the client's.
    const ca = await loadCa(join(data, "ca"));
    const old = await issueCert({ ca, name: "client", durationMs: 90 * DAY });
    await writeCredsDir(join(data, "client"), { ca: ca.pem, cert: old.pem, key: old.keyPem! }, {
      force: true,
    });
    const b = await up(["--data-dir", data]);
    expect(b.nodeId).toBe(a.nodeId);
    expect(b.proc.err).toContain(`created client credentials in ${join(data, "client")}`);
    const pem = readFileSync(join(data, "client", "cert.pem"), "utf8");
    const id = await (await Verifier.create({ ca: ca.pem })).verify(pem);
    expect({ role: id.role, groups: id.groups }).toEqual({ role: "client", groups: ["operator"] });
    expect((await members(b.url, join(data, "client"))).length).toBe(1);
    b.proc.p.kill("SIGTERM");
    expect(await b.proc.code()).toBe(0);
  });
});
