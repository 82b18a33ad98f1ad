/**
 * recipes/compose: a three-node mesh. No Docker engine runs here and the docker CLI has no
 * compose plugin (`docker compose config` is "unknown command"), so nothing is started in
 * containers: recipes/compose/README.md says so. What is tested: make-certs.sh makes the realm,
 * the per-node credentials (with each node's name), the data folders and .env; the compose file
 * parses (YAML merge keys included) into one seed and two nodes joining it by name, each
 * advertising its own name, the admin ports published on loopback only; and each service's
 * command line, with its mounted config and credentials, passes `macula node up --check`.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parse } from "yaml";
import { FakeRoot, macula, maculaShim, RECIPES, REPO, subjectAltName, tool } from "./helpers.ts";

interface Service {
  image: string;
  build: { context: string; dockerfile: string };
  user: string;
  hostname: string;
  command: string[];
  volumes: string[];
  ports: string[];
  read_only: boolean;
  cap_drop: string[];
  depends_on?: Record<string, { condition: string }>;
}
interface NodeYaml {
  realm: string;
  advertise: string;
  join?: string[];
  listen: { port: number };
  admin: { listen: string };
}

const COMPOSE = parse(readFileSync(join(RECIPES, "compose", "compose.yaml"), "utf8"), {
  merge: true,
}) as { name: string; services: Record<string, Service> };
const services = COMPOSE.services;

let dir: string;
let work: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "macula-compose-"));
  work = join(dir, "compose");
  cpSync(join(RECIPES, "compose"), work, { recursive: true });
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A service's mounts: host path (relative to the compose folder) → container path. */
function mounts(s: Service): { host: string; at: string; ro: boolean }[] {
  return s.volumes.map((v) => {
    const [host, at, mode] = v.split(":");
    return { host: host!, at: at!, ro: mode === "ro" };
  });
}

/** The config a service mounts at /etc/macula/node.yaml. */
function nodeYaml(name: string): NodeYaml {
  const m = mounts(services[name]!).find((v) => v.at === "/etc/macula/node.yaml")!;
  return parse(readFileSync(join(RECIPES, "compose", m.host), "utf8")) as NodeYaml;
}

describe("recipes/compose", () => {
  test("make-certs.sh makes the CA, one credentials folder per node, data folders and .env", async () => {
    const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", MACULA: maculaShim(join(dir, "bin")) };
    const r = await tool(["sh", join(work, "make-certs.sh")], { env });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    for (const node of Object.keys(services)) {
      for (const f of ["ca.pem", "cert.pem", "key.pem"]) {
        expect(existsSync(join(work, "certs", node, f))).toBe(true);
      }
      expect(statSync(join(work, "certs", node, "key.pem")).mode & 0o077).toBe(0);
      expect(statSync(join(work, "data", node)).isDirectory()).toBe(true);
      // The name the other containers dial is in the node's certificate.
      const san = await subjectAltName(join(work, "certs", node, "cert.pem"));
      expect(san.stdout).toContain(`DNS:${services[node]!.hostname}`);
    }
    const uid = process.getuid!();
    expect(readFileSync(join(work, ".env"), "utf8")).toBe(
      `MACULA_UID=${uid}\nMACULA_GID=${process.getgid!()}\n`,
    );
    // A second run refuses rather than replace the realm.
    const again = await tool(["sh", join(work, "make-certs.sh")], { env });
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("certs/ exists already");
  });

  test("one seed and two nodes joining it by its name, each advertising its own", () => {
    expect(Object.keys(services)).toEqual(["seed", "n2", "n3"]);
    const seed = nodeYaml("seed");
    expect(seed.join).toBeUndefined();
    const seedUrl = `quic://${services.seed!.hostname}:${seed.listen.port}`;
    for (const [name, s] of Object.entries(services)) {
      const c = nodeYaml(name);
      expect(c.realm).toBe("demo");
      expect(c.advertise).toBe(`quic://${s.hostname}:${c.listen.port}`);
      if (name !== "seed") {
        expect(c.join).toEqual([seedUrl]);
        expect(s.depends_on).toEqual({ seed: { condition: "service_healthy" } });
      }
    }
  });

  test("every service: the image built from the Containerfile, locked down, run as .env's user", () => {
    for (const s of Object.values(services)) {
      expect(resolve(RECIPES, "compose", s.build.context)).toBe(resolve(REPO));
      expect(existsSync(join(REPO, s.build.dockerfile))).toBe(true);
      expect(s.image).toBe("macula:local");
      expect(s.user).toBe("${MACULA_UID:-10001}:${MACULA_GID:-10001}");
      expect(s.read_only).toBe(true);
      expect(s.cap_drop).toEqual(["ALL"]);
      // The config and credentials read-only; the data folder writable.
      expect(mounts(s).map((m) => [m.at, m.ro])).toEqual([
        ["/etc/macula/node.yaml", true],
        ["/etc/macula/creds", true],
        ["/var/lib/macula", false],
      ]);
    }
  });

  test("only the seed's QUIC port is published; the admin ports only on the host's loopback", () => {
    const published = Object.fromEntries(
      Object.entries(services).map(([n, s]) => [n, s.ports]),
    );
    expect(published).toEqual({
      seed: ["4433:4433/udp", "127.0.0.1:9433:9433"],
      n2: ["127.0.0.1:9434:9433"],
      n3: ["127.0.0.1:9435:9433"],
    });
    for (const name of Object.keys(services)) {
      expect(nodeYaml(name).admin.listen).toBe("0.0.0.0:9433");
    }
  });

  for (const name of ["seed", "n2", "n3"]) {
    test(`${name}: its command with its mounted config and credentials passes \`node up --check\``, async () => {
      // After make-certs.sh (the first test): the mounts as the container sees them.
      const s = services[name]!;
      const root = new FakeRoot(join(dir, `root-${name}`), mounts(s).map((m) => m.at));
      for (const m of mounts(s)) {
        const from = join(work, m.host);
        if (statSync(from).isDirectory()) {
          cpSync(from, root.path(m.at), { recursive: true });
        } else root.write(m.at, readFileSync(from, "utf8"));
      }
      const r = await macula([...s.command.map((a) => root.rewrite(a)), "--check"]);
      expect(r.err).toContain(`of realm demo`);
      expect(r.err).toContain("configuration ok");
      expect(r.code).toBe(0);
      expect(r.out).toContain(`advertise: quic://${s.hostname}:4433`);
      expect(r.out).toContain(`data_dir: ${root.path("/var/lib/macula")}`);
    });
  }
});
