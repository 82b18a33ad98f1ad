/**
 * `macula certs` through the compiled binary (dist/macula, built by `npm run build`), alone in
 * an empty folder: make a CA, issue a certificate, and have OpenSSL and `certs verify` accept it.
 */
import { afterAll, expect, test } from "bun:test";
import { copyFile, mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { run } from "../helpers/run.ts";

const BUILT = fileURLToPath(new URL("../../dist/macula", import.meta.url));
let dir = "";

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

test("dist/macula certs: ca init, issue, verify (and openssl agrees)", async () => {
  const info = await stat(BUILT).catch(() => undefined);
  if (!info?.isFile()) {
    throw new Error(`${BUILT} is missing: run \`npm run build\` first (\`npm test\` does)`);
  }
  dir = await mkdtemp(join(tmpdir(), "macula-certs-bin-"));
  await copyFile(BUILT, join(dir, "macula"));
  const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir };
  const macula = (...args: string[]) => run(["./macula", "certs", ...args], { cwd: dir, env });

  const init = await macula("ca", "init", "--realm", "com.acme.prod", "--encrypt");
  expect(init.code).toBe(1); // no passphrase and no terminal
  expect(init.stderr).toContain("set MACULA_CA_PASSPHRASE");

  expect((await macula("ca", "init", "--realm", "com.acme.prod")).code).toBe(0);
  const issue = await macula("issue", "--realm", "com.acme.prod", "--name", "n1", "--json");
  expect(issue.code).toBe(0);
  const { nodeId } = JSON.parse(issue.stdout) as { nodeId: string };
  const v = await macula(
    "verify",
    "--ca",
    "macula-ca/ca.pem",
    "--realm",
    "com.acme.prod",
    "n1.crt",
  );
  expect(v.code).toBe(0);
  expect(v.stdout).toContain(`node ${nodeId} in realm com.acme.prod`);
  const wrong = await macula("verify", "--ca", "macula-ca/ca.pem", "--realm", "other", "n1.crt");
  expect(wrong.code).toBe(6);
  const o = await run(["openssl", "verify", "-CAfile", "macula-ca/ca.pem", "n1.crt"], { cwd: dir });
  expect(o.stdout).toBe("n1.crt: OK\n");
});
