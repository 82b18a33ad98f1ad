/**
 * Running a node as an operator does (docs/operations.md), through the CLI from source:
 * `macula config init`, `node up --check`, paths relative to the config file, JSON logs, a
 * silent seed logged within seconds, and SIGHUP reloading the log level (a bad file refused).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { createSocket } from "node:dgram";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig, sampleConfig } from "../../lib/node/mod.ts";
import { spawnMacula } from "../helpers/proc.ts";

const dir = mkdtempSync(join(tmpdir(), "macula-node-ops-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A fresh folder under the test's. */
function folder(name: string): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  return d;
}

describe("macula config init", () => {
  test("writes the commented sample, refuses to overwrite, prints it with -", async () => {
    const cwd = folder("init");
    const first = spawnMacula(["config", "init"], { cwd });
    expect(await first.code()).toBe(0);
    expect(first.err).toBe(
      "wrote macula.yaml; check it with: macula node up --config macula.yaml --check\n",
    );
    const text = readFileSync(join(cwd, "macula.yaml"), "utf8");
    expect(text).toBe(sampleConfig());
    // Every value in it is the default: the file runs as no file does.
    expect(parseConfig(text)).toEqual(parseConfig(""));
    const again = spawnMacula(["config", "init"], { cwd });
    expect(await again.code()).toBe(2);
    expect(again.err).toBe("macula config init: macula.yaml exists (--force replaces it)\n");
    const forced = spawnMacula(["config", "init", "--force"], { cwd });
    expect(await forced.code()).toBe(0);
    const stdout = spawnMacula(["config", "init", "-"], { cwd });
    expect(await stdout.code()).toBe(0);
    expect(stdout.out).toBe(sampleConfig());
  });

  test("the sample passes node up --check", async () => {
    const cwd = folder("init-check");
    expect(await spawnMacula(["config", "init"], { cwd }).code()).toBe(0);
    const check = spawnMacula(["node", "up", "--config", "macula.yaml", "--check"], { cwd });
    expect(await check.code()).toBe(0);
    expect(check.err).toContain("configuration ok; the effective configuration:\n");
  });
});

describe("macula node up --check", () => {
  test("prints the effective configuration (flags over the file) and writes nothing", async () => {
    const cwd = folder("check");
    writeFileSync(join(cwd, "node.yaml"), "tags: [gpu]\nlog: { format: json }\n");
    const p = spawnMacula(
      ["node", "up", "-f", "node.yaml", "--port", "4500", "--log-level", "debug", "--check"],
      { cwd },
    );
    expect(await p.code()).toBe(0);
    const c = parseConfig(p.out); // it reads back as a configuration
    expect(c.tags).toEqual(["gpu"]);
    expect(c.log).toEqual({ level: "debug", format: "json" });
    expect(c.listen.port).toBe(4500);
    expect(c.admin).toEqual({ host: "127.0.0.1", port: 9500 }); // QUIC port + 5000
    // A default path is the working directory's (only paths written in the file are its folder's).
    expect(c.dataDir).toBe("./macula-data");
    expect(p.err).toBe(
      `credentials: dev realm; the CA and the node's certificate are made on first start (${
        join(cwd, "macula-data", "ca")
      }, ${join(cwd, "macula-data", "node")})\nconfiguration ok; the effective configuration:\n`,
    );
    expect(existsSync(join(cwd, "macula-data"))).toBe(false);
  });

  test("paths in the file are the file's folder's: a missing certificate named there, exit 2", async () => {
    const cwd = folder("check-paths");
    const conf = folder("check-paths/etc/macula");
    writeFileSync(
      join(conf, "node.yaml"),
      "realm: acme\ntls: { ca: pki/ca.pem, cert: node.crt, key: node.key }\n",
    );
    const p = spawnMacula(["node", "up", "-f", "etc/macula/node.yaml", "--check"], { cwd });
    expect(await p.code()).toBe(2);
    expect(p.err).toBe(
      `macula node up: tls.ca: cannot read ${join(conf, "pki", "ca.pem")}: no such file\n`,
    );
    expect(p.out).toBe("");
  });

  test("real credentials: names the node, its realm and validity", async () => {
    const cwd = folder("check-creds");
    const ca = join(cwd, "ca");
    const init = spawnMacula(["certs", "ca", "init", "--realm", "acme", "--out", ca], { cwd });
    expect(await init.code(), init.err).toBe(0);
    const issue = spawnMacula(
      [
        "certs",
        "issue",
        "--ca-dir",
        ca,
        "--realm",
        "acme",
        "--name",
        "n1",
        "--role",
        "node",
        "--out",
        cwd,
      ],
      { cwd },
    );
    expect(await issue.code(), issue.err).toBe(0);
    writeFileSync(
      join(cwd, "node.yaml"),
      "realm: acme\ntls: { ca: ca/ca.pem, cert: n1.crt, key: n1.key }\n",
    );
    const p = spawnMacula(["node", "up", "-f", join(cwd, "node.yaml"), "--check"], {
      cwd: "/",
    });
    expect(await p.code()).toBe(0);
    expect(p.err).toMatch(
      new RegExp(
        `^credentials: ${
          join(cwd, "n1.crt")
        } is node [a-z2-7]{52} \\(n1\\) of realm acme, valid until \\S+, issued by ${
          join(cwd, "ca", "ca.pem")
        }\\n`,
      ),
    );
    // A file that leaves tls to --creds (a realm needs one): the flags make it whole.
    const creds = join(cwd, "n2creds");
    const n2 = spawnMacula(
      ["certs", "issue", "--ca-dir", ca, "--realm", "acme", "--name", "n2", "--creds-dir", creds],
      { cwd },
    );
    expect(await n2.code(), n2.err).toBe(0);
    writeFileSync(join(cwd, "bare.yaml"), "realm: acme\n");
    const bare = spawnMacula(
      [
        "node",
        "up",
        "-f",
        "bare.yaml",
        "--creds",
        creds,
        "--advertise",
        "quic://10.0.0.5:4433",
        "--check",
      ],
      { cwd },
    );
    expect(await bare.code(), bare.err).toBe(0);
    expect(parseConfig(bare.out).advertise).toBe("quic://10.0.0.5:4433");
    const none = spawnMacula(["node", "up", "-f", "bare.yaml", "--check"], { cwd });
    expect(await none.code()).toBe(2);
    expect(none.err).toBe(
      "macula node up: bare.yaml: tls: required for realm acme (only the dev realm makes its own certificates)\n",
    );
    // The wrong realm is what a start would refuse: so does --check.
    writeFileSync(
      join(cwd, "other.yaml"),
      "realm: other\ntls: { ca: ca/ca.pem, cert: n1.crt, key: n1.key }\n",
    );
    const wrong = spawnMacula(["node", "up", "-f", "other.yaml", "--check"], { cwd });
    expect(await wrong.code()).toBe(2);
    expect(wrong.err).toStartWith("macula node up: ");
    expect(wrong.err).toContain("acme");
  });
});

describe("logs", () => {
  test("JSON lines; a seed that does not answer is logged within seconds", async () => {
    const cwd = folder("json");
    // A UDP port that takes packets and never answers: a wrong address, or a firewall.
    const hole = createSocket("udp4");
    await new Promise<void>((r) => hole.bind(0, "127.0.0.1", r));
    const port = hole.address().port;
    const up = spawnMacula(
      ["node", "up", "--port", "0", "--log-format", "json", "--join", `quic://127.0.0.1:${port}`],
      { cwd },
    );
    try {
      await up.waitFor("err", '"event":"seed.silent"', 20_000);
      const lines = up.err.trim().split("\n").map((l) => JSON.parse(l));
      for (const l of lines) {
        expect(Object.keys(l).slice(0, 3)).toEqual(["time", "level", "realm"]);
        expect(l.realm).toBe("dev");
        expect(typeof l.event).toBe("string");
        expect(typeof l.msg).toBe("string");
      }
      const silent = lines.find((l) => l.event === "seed.silent")!;
      expect(silent).toMatchObject({
        level: "warn",
        seed: `quic://127.0.0.1:${port}`,
        node: expect.stringMatching(/^[a-z2-7]{52}$/),
        msg:
          `join quic://127.0.0.1:${port}: no answer after 3000 ms, still trying (is a node listening there, and does UDP reach it?)`,
      });
    } finally {
      up.p.kill("SIGINT");
      await up.exited;
      hole.close();
    }
  });
});

describe("SIGHUP", () => {
  test("reloads the log level and tags, says so; a bad file is refused and the old one kept", async () => {
    const cwd = folder("hup");
    const conf = join(cwd, "node.yaml");
    writeFileSync(conf, "log: { level: info }\n");
    const up = spawnMacula(["node", "up", "-f", "node.yaml", "--port", "0", "--ready-json"], {
      cwd,
    });
    try {
      await up.waitFor("out", '"ready":true');
      writeFileSync(conf, "log: { level: debug }\ntags: [gpu]\n");
      up.p.kill("SIGHUP");
      await up.waitFor("err", "SIGHUP: tags reloaded: gpu");
      expect(up.err).toContain("INFO  SIGHUP: log level info → debug\n");
      writeFileSync(conf, "log: { level: loud }\n");
      up.p.kill("SIGHUP");
      await up.waitFor("err", "(keeping the running configuration)");
      expect(up.err).toContain(
        `WARN  SIGHUP: node.yaml: log.level: must be one of debug, info, warn, error (got "loud") (keeping the running configuration)\n`,
      );
      up.p.kill("SIGINT");
      expect(await up.code()).toBe(0);
    } finally {
      up.p.kill("SIGKILL");
    }
  });
});
