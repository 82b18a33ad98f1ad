/**
 * `macula certs issue --role client --creds-dir DIR`: the directory `--creds` reads (ca.pem,
 * cert.pem, key.pem with mode 0600) holding a client certificate (URI macula://<realm>/client/…,
 * EKU clientAuth only), which works: pub/sub through a node of the realm, and `inspect` in the
 * operator group. What it refuses leaves nothing written. Real processes on 127.0.0.1.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Proc, spawnMacula } from "../helpers/proc.ts";

let dir: string;
const procs: Proc[] = [];

function macula(args: string[]): Proc {
  const p = spawnMacula(args, {
    cwd: dir,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir },
  });
  procs.push(p);
  return p;
}

async function done(args: string[]) {
  const p = macula(args);
  const code = await p.code();
  return { code, stdout: p.out, stderr: p.err };
}

const issue = (...args: string[]) =>
  done(["certs", "issue", "--realm", "acme", "--ca-dir", "ca", ...args]);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "macula-creds-dir-"));
  expect((await done(["certs", "ca", "init", "--realm", "acme", "--out", "ca"])).code).toBe(0);
});
afterAll(async () => {
  for (const p of procs) p.p.kill("SIGTERM");
  await Promise.all(procs.map((p) => p.code().catch(() => 0)));
  rmSync(dir, { recursive: true, force: true });
});

test("issue --role client --creds-dir: credentials a client uses as they are", async () => {
  const r = await issue(
    "--name",
    "alice",
    "--role",
    "client",
    "--groups",
    "operator",
    "--creds-dir",
    "alice",
    "--json",
  );
  expect(r.code).toBe(0);
  const out = JSON.parse(r.stdout) as { role: string; uri: string; nodeId: string };
  expect(out.role).toBe("client");
  expect(out.uri).toBe(`macula://acme/client/${out.nodeId}`);
  expect(readdirSync(join(dir, "alice")).sort()).toEqual(["ca.pem", "cert.pem", "key.pem"]);
  expect(statSync(join(dir, "alice", "key.pem")).mode & 0o777).toBe(0o600);
  expect(readFileSync(join(dir, "alice", "ca.pem"), "utf8")).toBe(
    readFileSync(join(dir, "ca", "ca.pem"), "utf8"),
  );
  expect(existsSync(join(dir, "alice.crt"))).toBe(false); // not in --out as well

  const print = await done(["certs", "print", "--json", "alice/cert.pem"]);
  expect(JSON.parse(print.stdout)).toMatchObject({
    role: "client",
    groups: ["operator"],
    extendedKeyUsage: ["clientAuth"],
  });
  expect((await done(["certs", "print", "alice/cert.pem"])).stdout).toMatch(/^role +client$/m);

  // A node of the realm (its own --creds-dir, role node by default), and alice through it.
  expect((await issue("--name", "n1", "--creds-dir", "n1")).code).toBe(0);
  const node = macula([
    "node",
    "up",
    "--realm",
    "acme",
    "--creds",
    "n1",
    "--listen",
    "127.0.0.1:0",
    "--data-dir",
    "n1-data",
    "--ready-json",
  ]);
  await node.waitFor("out", "\n");
  const { url } = JSON.parse(node.lines()[0]!) as { url: string };
  const target = ["--server", url, "--creds", "alice"];
  const sub = macula(["sub", "greet.>", "--count", "1", ...target]);
  await sub.waitFor("err", "subscribed to greet.>");
  expect((await done(["pub", "greet.world", "hi", ...target])).code).toBe(0);
  expect(await sub.code()).toBe(0);
  expect(sub.out).toBe("[greet.world] hi\n");
  const inspect = await done(["inspect", "node", "--json", ...target]);
  expect(inspect.code).toBe(0);
  node.p.kill("SIGTERM");
  expect(await node.code()).toBe(0);
});

test("--creds-dir refuses an existing directory's files (unless --force) and --in-pub", async () => {
  expect((await issue("--name", "bob", "--role", "client", "--creds-dir", "bob")).code).toBe(0);
  const before = readFileSync(join(dir, "bob", "cert.pem"), "utf8");
  const again = await issue("--name", "bob", "--role", "client", "--creds-dir", "bob");
  expect(again.code).toBe(1);
  expect(again.stderr).toContain("already exists");
  expect(readFileSync(join(dir, "bob", "cert.pem"), "utf8")).toBe(before);
  const forced = await issue("--name", "bob", "--role", "client", "--creds-dir", "bob", "--force");
  expect(forced.code).toBe(0);
  expect(readFileSync(join(dir, "bob", "cert.pem"), "utf8")).not.toBe(before);

  const pub = await issue("--name", "carol", "--in-pub", "x.pem", "--creds-dir", "carol");
  expect(pub.code).toBe(2);
  expect(pub.stderr).toContain("--creds-dir needs the key");
  expect(existsSync(join(dir, "carol"))).toBe(false);
});
