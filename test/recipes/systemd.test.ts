/**
 * recipes/systemd: the unit passes `systemd-analyze verify` and keeps its `systemd-analyze
 * security` exposure low; the config it names is accepted by `macula node up --check` with the
 * unit's own ExecStartPre; the unit's ExecStart runs a node that ExecReload reloads (SIGHUP) and
 * KillSignal stops with exit 0; and the two sandbox settings that could break the runtime are
 * checked against Bun itself: /proc limited to processes (ProcSubset=pid) and W^X
 * (MemoryDenyWriteExecute, left off: it turns off the JIT). No systemd runs here (PID 1 is not
 * systemd), so the sandbox as a whole is not exercised: recipes/systemd/README.md says so.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Proc, spawnMacula } from "../helpers/proc.ts";
import {
  builtBinary,
  FakeRoot,
  macula,
  match,
  nodeFiles,
  realm,
  recipe,
  REPO,
  tool,
} from "./helpers.ts";

const UNIT = recipe("systemd/macula.service");
const CONFIG = recipe("systemd/node.yaml");
const BIN = "/usr/local/bin/macula";

/** The unit's settings: `Key` → its values in order (a key may repeat). */
function settings(unit: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const raw of unit.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith("[")) continue;
    const eq = line.indexOf("=");
    const key = line.slice(0, eq);
    out.set(key, [...(out.get(key) ?? []), line.slice(eq + 1)]);
  }
  return out;
}

const unit = settings(UNIT);
const one = (key: string): string => {
  const v = unit.get(key);
  if (v?.length !== 1) throw new Error(`${key}: expected one value, got ${JSON.stringify(v)}`);
  return v[0]!;
};

let dir: string;
let root: FakeRoot;
const procs: Proc[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "macula-systemd-"));
  // /etc/macula as the README installs it, the key handed over as LoadCredential does.
  root = new FakeRoot(join(dir, "root"), [
    "/etc/macula",
    "/var/lib/macula",
    "/run/credentials/macula.service",
  ]);
  const ca = await realm("acme");
  await nodeFiles(ca, "vm-1", {
    ca: root.path("/etc/macula/ca.pem"),
    cert: root.path("/etc/macula/node.crt"),
    key: root.path("/etc/macula/node.key"),
  });
  const [name, from] = one("LoadCredential").split(":");
  root.mkdir("/run/credentials/macula.service");
  copyFileSync(
    root.path(from!),
    root.path(`/run/credentials/macula.service/${name}`),
  );
  root.write("/etc/macula/node.yaml", CONFIG);
});

afterAll(async () => {
  for (const p of procs) p.p.kill("SIGKILL");
  await Promise.all(procs.map((p) => p.exited.catch(() => 0)));
  rmSync(dir, { recursive: true, force: true });
});

/** A unit's command line with the binary run from source and paths under the fake root. */
function command(line: string): string[] {
  const words = root.rewrite(line).split(/\s+/);
  expect(words[0]).toBe(BIN);
  return words.slice(1);
}

describe("recipes/systemd/macula.service", () => {
  test("systemd-analyze verify passes, with ExecStart on dist/macula", async () => {
    const file = join(dir, "macula.service");
    writeFileSync(file, UNIT.replaceAll(BIN, builtBinary()));
    const r = await tool(["systemd-analyze", "verify", file]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
  });

  test("systemd-analyze verify fails on a unit with a mistake (the check is real)", async () => {
    const file = join(dir, "broken.service");
    writeFileSync(
      file,
      UNIT.replaceAll(BIN, builtBinary()).replace(
        "ProtectSystem=strict",
        "ProtectSystem=sometimes",
      ),
    );
    const r = await tool(["systemd-analyze", "verify", file]);
    expect(r.stderr).toContain("Failed to parse protect system value");
  });

  test("systemd-analyze security: overall exposure 1.5 or less (of 10)", async () => {
    const file = join(dir, "macula.service");
    writeFileSync(file, UNIT.replaceAll(BIN, builtBinary()));
    const r = await tool(
      ["systemd-analyze", "security", "--offline=true", "--threshold=15", file],
    );
    expect(r.code).toBe(0);
    const score = Number(
      match(r.stdout, /Overall exposure level for macula\.service: ([\d.]+)/)[1],
    );
    expect(score).toBeLessThanOrEqual(1.5);
  });

  test("the settings the README promises", () => {
    expect(one("DynamicUser")).toBe("yes");
    expect(one("StateDirectory")).toBe("macula");
    expect(one("ProtectSystem")).toBe("strict");
    expect(one("NoNewPrivileges")).toBe("yes");
    expect(one("CapabilityBoundingSet")).toBe("");
    expect(one("RestrictAddressFamilies")).toBe("AF_INET AF_INET6 AF_UNIX");
    expect(unit.get("SystemCallFilter")).toEqual(["@system-service", "~@privileged"]);
    expect(one("ExecReload")).toBe("/bin/kill -HUP $MAINPID");
    expect(one("Restart")).toBe("on-failure");
    expect(one("RestartPreventExitStatus")).toBe("2");
    expect(one("MemoryDenyWriteExecute")).toBe("no");
  });

  test("node.yaml names the unit's directories and its credential", () => {
    const [name] = one("LoadCredential").split(":");
    expect(CONFIG).toContain(`key: /run/credentials/macula.service/${name}`);
    expect(CONFIG).toContain(`data_dir: /var/lib/${one("StateDirectory")}`);
    expect(one("ExecStart")).toContain(`--config /etc/${one("ConfigurationDirectory")}/node.yaml`);
  });

  test("ExecStartPre (node up --check) accepts node.yaml and its certificates, exit 0", async () => {
    const r = await macula(command(one("ExecStartPre")));
    expect(r.err).toContain("configuration ok");
    expect(r.code).toBe(0);
    // The effective configuration: relative tls paths resolved against /etc/macula.
    expect(r.out).toContain(`ca: ${root.path("/etc/macula/ca.pem")}`);
  });

  test("ExecStartPre fails (exit 2) when the credential is not the certificate's key", async () => {
    const other = join(dir, "other");
    await nodeFiles(await realm("acme"), "x", {
      cert: join(other, "x.crt"),
      key: root.path("/run/credentials/macula.service/node.key"),
    });
    try {
      const r = await macula(command(one("ExecStartPre")));
      expect(r.code).toBe(2);
      expect(r.err).toMatch(/^macula node up: .*key/m);
    } finally {
      copyFileSync(
        root.path("/etc/macula/node.key"),
        root.path("/run/credentials/macula.service/node.key"),
      );
    }
  });

  test("ExecStart runs the node; ExecReload reloads the log level; KillSignal stops it, exit 0", async () => {
    // On 127.0.0.1 and free ports here, instead of 0.0.0.0:4433 and 127.0.0.1:9433.
    const config = root.path("/etc/macula/node.yaml");
    const local = (level: string) =>
      root.rewrite(CONFIG)
        .replace("host: 0.0.0.0, port: 4433", "host: 127.0.0.1, port: 0")
        .replace("listen: 127.0.0.1:9433", "listen: 127.0.0.1:0")
        .replace("level: info", `level: ${level}`);
    writeFileSync(config, local("info"));
    const p = spawnMacula(command(one("ExecStart")));
    procs.push(p);
    await p.waitFor("out", / is up\n/);
    writeFileSync(config, local("debug"));
    const reload = one("ExecReload").replace("$MAINPID", String(p.p.pid)).split(" ");
    expect((await tool(reload)).code).toBe(0);
    await p.waitFor("err", "log level info → debug");
    p.p.kill(one("KillSignal") as NodeJS.Signals);
    expect(await p.code()).toBe(0);
    writeFileSync(config, root.rewrite(CONFIG));
  });
});

describe("sandbox settings against Bun (no systemd here, so each is emulated)", () => {
  test("ProcSubset=pid: dist/macula runs its demo with /proc limited to processes", async () => {
    // A private mount and PID namespace whose /proc is mounted subset=pid, as systemd does.
    const r = await tool([
      "unshare",
      "--mount",
      "--pid",
      "--fork",
      "sh",
      "-c",
      `mount -t proc -o subset=pid,hidepid=invisible proc /proc && test ! -e /proc/meminfo && exec '${builtBinary()}' demo`,
    ]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("nodes drained and stopped");
  });

  test("MemoryDenyWriteExecute is off: under W^X Bun's JIT has no code region", async () => {
    // The kernel's W^X (prctl PR_SET_MDWE, inherited by children), as MemoryDenyWriteExecute=yes
    // asks of systemd. Bun still runs, but JavaScriptCore's writable+executable JIT region is
    // refused and it falls back to its interpreter: turning it on would slow the node down.
    const probe = join(REPO, "test", "recipes", "jit-probe.ts");
    const plain = await tool([process.execPath, probe]);
    const wx = await tool([process.execPath, probe, "--mdwe"]);
    expect(plain.code).toBe(0);
    expect(wx.code).toBe(0);
    expect(JSON.parse(plain.stdout)).toEqual({ mdwe: false, rwxRegion: true });
    expect(JSON.parse(wx.stdout)).toEqual({ mdwe: true, rwxRegion: false });
    expect(one("MemoryDenyWriteExecute")).toBe("no");
  });
});
