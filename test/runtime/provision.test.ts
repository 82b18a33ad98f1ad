/**
 * scripts/provision.ts, the first step of `npm test`: what is missing on a machine → what it
 * does (nothing, install with apt-get as root, or fail naming the packages and the command), and
 * the run around that decision with its side effects replaced.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  findTool,
  type Machine,
  plan,
  provision,
  type ProvisionIO,
  type Requirement,
  REQUIREMENTS,
} from "../../scripts/provision.ts";

const need = (...tools: string[]): Requirement[] =>
  tools.map((tool) => REQUIREMENTS.find((r) => r.tool === tool)!);

describe("plan: what is missing → what provisioning does", () => {
  test("the requirements are the tools the tests run", () => {
    expect(REQUIREMENTS.map((r) => `${r.tool}:${r.pkg}`)).toEqual([
      "openssl:openssl",
      "ip:iproute2",
      "iptables:iptables",
      "conntrack:conntrack",
      "jq:jq",
      "chromium:chromium",
      "promtool:prometheus",
      "systemd-analyze:systemd",
      "curl:curl",
      "unshare:util-linux",
    ]);
  });

  test("nothing missing: nothing to do, whoever runs it", () => {
    for (const uid of [0, 1000, undefined]) {
      const p = plan({ uid, aptGet: true, missing: [] });
      expect(p.action).toBe("none");
      expect(p.message).toContain("nothing to install");
    }
    expect(plan({ uid: 1000, aptGet: false, missing: [] }).action).toBe("none");
  });

  test("root with apt-get: update, then install exactly the missing packages", () => {
    const p = plan({ uid: 0, aptGet: true, missing: need("iptables", "conntrack") });
    if (p.action !== "install") throw new Error(`expected install, got ${p.action}`);
    expect(p.packages).toEqual(["iptables", "conntrack"]);
    expect(p.commands).toEqual([
      ["apt-get", "update", "-qq"],
      ["apt-get", "install", "-y", "--no-install-recommends", "iptables", "conntrack", "-qq"],
    ]);
    expect(p.message).toBe(
      "provision: installing iptables conntrack with apt-get (missing: iptables (`iptables`: " +
        "the NAT lab's routers), conntrack (`conntrack`: the NAT lab's mapping tests))",
    );
  });

  test("a tool is named by its package: `ip` comes from iproute2", () => {
    const p = plan({ uid: 0, aptGet: true, missing: need("ip") });
    if (p.action !== "install") throw new Error(`expected install, got ${p.action}`);
    expect(p.packages).toEqual(["iproute2"]);
  });

  test("not root: fails, naming the packages and the exact command", () => {
    const p = plan({ uid: 1000, aptGet: true, missing: need("openssl", "iptables") });
    expect(p.action).toBe("fail");
    expect(p.message).toContain("openssl (`openssl`: test/certs cross-checks certificates)");
    expect(p.message).toContain("uid 1000, not root");
    expect(p.message).toContain(
      "\n  sudo apt-get install -y --no-install-recommends openssl iptables\n",
    );
  });

  test("no uid at all counts as not root", () => {
    const p = plan({ uid: undefined, aptGet: true, missing: need("iptables") });
    expect(p.action).toBe("fail");
    expect(p.message).toContain("runs as not root");
  });

  test("no apt-get: fails even as root, naming the packages to install another way", () => {
    const p = plan({ uid: 0, aptGet: false, missing: need("conntrack") });
    expect(p.action).toBe("fail");
    expect(p.message).toContain("no apt-get");
    expect(p.message).toContain("install the packages conntrack (Debian's names)");
  });
});

/** A fake machine: `missing` until apt-get install runs, then what `after` says. */
function fakeIO(
  start: Machine,
  opts: { after?: Requirement[]; failing?: string } = {},
): ProvisionIO & { ran: string[]; lines: string[]; errors: string[] } {
  let installed = false;
  const io = {
    ran: [] as string[],
    lines: [] as string[],
    errors: [] as string[],
    machine: (): Machine => installed ? { ...start, missing: opts.after ?? [] } : start,
    exec: (argv: readonly string[], env: Record<string, string>) => {
      io.ran.push(`${env.DEBIAN_FRONTEND} ${argv.join(" ")}`);
      if (argv[1] === opts.failing) return Promise.resolve(100);
      if (argv[1] === "install") installed = true;
      return Promise.resolve(0);
    },
    out: (line: string) => io.lines.push(line),
    err: (line: string) => io.errors.push(line),
  };
  return io;
}

describe("provision: the run", () => {
  test("installs what is missing non-interactively and says what, once", async () => {
    const io = fakeIO({ uid: 0, aptGet: true, missing: need("iptables") });
    expect(await provision(io)).toBe(0);
    expect(io.ran).toEqual([
      "noninteractive apt-get update -qq",
      "noninteractive apt-get install -y --no-install-recommends iptables -qq",
    ]);
    expect(io.lines.filter((l) => l.startsWith("provision: installing"))).toHaveLength(1);
    expect(io.lines.at(-1)).toBe("provision: installed iptables");
    expect(io.errors).toEqual([]);
  });

  test("nothing missing: runs nothing", async () => {
    const io = fakeIO({ uid: 0, aptGet: true, missing: [] });
    expect(await provision(io)).toBe(0);
    expect(io.ran).toEqual([]);
  });

  test("not root: exit 1 before running anything", async () => {
    const io = fakeIO({ uid: 1000, aptGet: true, missing: need("conntrack") });
    expect(await provision(io)).toBe(1);
    expect(io.ran).toEqual([]);
    expect(io.errors.join("\n")).toContain("sudo apt-get install");
  });

  test("apt-get failing: its exit code, naming the command", async () => {
    const io = fakeIO({ uid: 0, aptGet: true, missing: need("iptables") }, { failing: "update" });
    expect(await provision(io)).toBe(100);
    expect(io.ran).toHaveLength(1);
    expect(io.errors).toEqual([
      "provision: 'apt-get update -qq' failed (exit 100); npm test cannot go on",
    ]);
  });

  test("a tool still missing after the install: exit 1, naming it", async () => {
    const io = fakeIO({ uid: 0, aptGet: true, missing: need("ip") }, { after: need("ip") });
    expect(await provision(io)).toBe(1);
    expect(io.errors[0]).toContain("apt-get installed iproute2, but `ip` is still not found");
  });
});

describe("findTool", () => {
  const dir = mkdtempSync(join(tmpdir(), "macula-provision-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("finds an executable on the given PATH, not a plain file or a directory", () => {
    const bin = join(dir, "bin");
    mkdirSync(bin);
    writeFileSync(join(bin, "macula-tool-x"), "#!/bin/sh\n");
    chmodSync(join(bin, "macula-tool-x"), 0o755);
    writeFileSync(join(bin, "macula-tool-plain"), "not executable\n");
    mkdirSync(join(bin, "macula-tool-dir"));
    expect(findTool("macula-tool-x", `/nonexistent:${bin}`)).toBe(join(bin, "macula-tool-x"));
    expect(findTool("macula-tool-plain", bin)).toBeUndefined();
    expect(findTool("macula-tool-dir", bin)).toBeUndefined();
  });

  test("also looks in the system directories an empty PATH lacks", () => {
    expect(findTool("sh", "")).toMatch(/\/sh$/);
  });
});
