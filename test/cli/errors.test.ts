/**
 * Every failure docs/troubleshooting.md documents, run for real: the command fails with the
 * documented exit code and exactly the documented message (variable parts, written `<like
 * this>` on the page, are filled in from the run). A message that changes fails here until the
 * page says the same; an entry on the page without a case here fails too.
 *
 * Nodes are in-process on 127.0.0.1; the commands run from source as child processes.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import dgram from "node:dgram";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Client, connect } from "../../lib/client/client.ts";
import { issueCert, loadCa, writeCredsDir } from "../../lib/identity/mod.ts";
import { Node } from "../../lib/node/node.ts";
import { run } from "../helpers/run.ts";
import { prepareNodeId } from "./twins.ts";

const MAIN = fileURLToPath(new URL("../../cli/main.ts", import.meta.url));
const PAGE = readFileSync(join(import.meta.dir, "../../docs/troubleshooting.md"), "utf8");

let dir: string;
let node: Node; // the realm the clients belong to
let stranger: Node; // a node of another dev CA
let silent: dgram.Socket; // a UDP port that never answers
let strict: Node; // the same realm, permissions deny by default, a 1 KiB payload limit
let twins: Node[] = []; // two nodes of the realm, joined, whose ids share the first character
let provider: Client; // serves fail.op (throws) and slow.op (answers when the test ends)
let release = () => {};
let vars: Record<string, string>;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "macula-errors-"));
  const at = { host: "127.0.0.1", port: 0 };
  node = await Node.start({ dataDir: join(dir, "node"), listen: at });
  stranger = await Node.start({ dataDir: join(dir, "stranger"), listen: at });
  strict = await Node.start({
    dataDir: join(dir, "strict"),
    listen: at,
    devCaDir: node.caDir!,
    permissions: { default: "deny", operatorGroup: "operator", groups: {} },
    limits: { maxPayload: 1024 },
  });
  const nobody = join(dir, "nobody"); // a client certificate of the realm, in no group
  const ca = await loadCa(node.caDir!);
  const cert = await issueCert({ ca, name: "nobody", role: "client", durationMs: 3_600_000 });
  await writeCredsDir(nobody, { ca: ca.pem, cert: cert.pem, key: cert.keyPem! });
  // A realm CA and a certificate of it, for the certs cases (run in <dir>/pki).
  const pki = join(dir, "pki");
  mkdirSync(pki);
  for (
    const argv of [["ca", "init", "--realm", "acme"], ["issue", "--realm", "acme", "--name", "n1"]]
  ) {
    const r = await run([process.execPath, MAIN, "certs", ...argv], { cwd: pki });
    if (r.code !== 0) throw new Error(`certs ${argv.join(" ")}: ${r.stderr}`);
  }
  provider = await connect({ url: node.url, creds: node.credsDir! });
  const never = new Promise<Uint8Array>((r) => (release = () => r(new Uint8Array())));
  provider.serve("fail.op", () => {
    throw new Error("boom");
  });
  provider.serve("slow.op", () => never);
  await provider.flush();
  silent = dgram.createSocket("udp4");
  await new Promise<void>((r) => silent.bind(0, "127.0.0.1", () => r()));
  // Credentials whose client certificate is another CA's.
  const mixed = join(dir, "mixed");
  mkdirSync(mixed);
  cpSync(join(node.credsDir!, "ca.pem"), join(mixed, "ca.pem"));
  cpSync(join(stranger.credsDir!, "cert.pem"), join(mixed, "cert.pem"));
  cpSync(join(stranger.credsDir!, "key.pem"), join(mixed, "key.pem"));
  // Two members whose ids start alike, for an ambiguous prefix (their keys drawn for it).
  const twin = await Node.start({
    dataDir: join(dir, "twin-a"),
    listen: at,
    devCaDir: node.caDir!,
  });
  await prepareNodeId(join(dir, "twin-b"), node.caDir!, (id) => id[0] === twin.nodeId[0]);
  twins = [
    twin,
    await Node.start({
      dataDir: join(dir, "twin-b"),
      listen: at,
      devCaDir: node.caDir!,
      join: [{ host: "127.0.0.1", port: twin.endpoint.address.port }],
    }),
  ];
  await Promise.all(twins.map((t) => t.waitForMembers(2)));
  const [t1, t2] = [...twins].sort((x, y) => (x.nodeId < y.nodeId ? -1 : 1));
  writeFileSync(join(dir, "unknown-key.yaml"), "listen: { prot: 4433 }\n");
  writeFileSync(join(dir, "duplicate.yaml"), "realm: dev\nrealm: acme\n");
  writeFileSync(join(dir, "afile"), "not a directory\n");
  vars = {
    url: node.url,
    "strict-url": strict.url,
    nobody,
    "stranger-url": stranger.url,
    "silent-url": `quic://127.0.0.1:${silent.address().port}`,
    creds: node.credsDir!,
    mixed,
    missing: join(dir, "nowhere"),
    port: String(node.endpoint.address.port),
    "node-dir": node.dataDir,
    pid: String(process.pid),
    dir,
    "twin-url": twin.url,
    prefix: twin.nodeId[0]!,
    "id-1": t1!.nodeId,
    "port-1": String(t1!.endpoint.address.port),
    "id-2": t2!.nodeId,
    "port-2": String(t2!.endpoint.address.port),
  };
});

afterAll(async () => {
  silent?.close();
  release();
  await provider?.close();
  await Promise.allSettled([
    node.stop(),
    stranger.stop(),
    strict.stop(),
    ...twins.map((t) => t.stop()),
  ]);
  rmSync(dir, { recursive: true, force: true });
});

/** One documented failure: the command (`<var>`s filled in) and what it must print. */
interface Case {
  /** The page's heading for it: the message's first line, as documented. */
  message: string;
  argv: string[];
  code: number;
  /** The lines after the first, as documented (hints). */
  more?: string[];
  /** A line the command printed on stderr before failing (it got that far). */
  before?: string;
  /** Where it runs, under the test's directory (default: the repository's root). */
  cwd?: string;
  env?: Record<string, string>;
}

const target = ["--server", "<url>", "--creds", "<creds>"];
const CASES: Case[] = [
  {
    message: "macula pub: cannot connect to <silent-url> (from --server): no answer within 300 ms",
    more: [
      "  is a node running there? start one with 'macula node up', or point --server, MACULA_URL or --context at a running node",
    ],
    argv: [
      "pub",
      "a.b",
      "x",
      "--server",
      "<silent-url>",
      "--creds",
      "<creds>",
      "--connect-timeout",
      "300",
    ],
    code: 1,
  },
  {
    message:
      "macula pub: cannot connect to <stranger-url> (from --server): the node's certificate is not signed by the CA in <creds>/ca.pem (TLS unknown_ca): it belongs to another realm or CA",
    more: ["  use credentials issued by that node's realm CA (--creds, MACULA_CREDS or --context)"],
    argv: ["pub", "a.b", "x", "--server", "<stranger-url>", "--creds", "<creds>"],
    code: 1,
  },
  {
    message:
      "macula pub: credentials: cannot read <missing>/ca.pem: no such file; a credentials directory holds ca.pem, cert.pem, key.pem (from --creds)",
    more: [
      "  a dev node writes client credentials to <data-dir>/client: run 'macula node up' and pass the --creds it prints",
    ],
    argv: ["pub", "a.b", "x", "--server", "<url>", "--creds", "<missing>"],
    code: 1,
  },
  {
    message:
      'macula pub: credentials: this client\'s certificate: certificate "client" (serial <serial>) is issued by "CN=Macula realm CA dev, O=Macula", not by the realm CA',
    argv: ["pub", "a.b", "x", "--server", "<url>", "--creds", "<mixed>"],
    code: 1,
  },
  {
    message:
      "macula pub: invalid topic \"a..b\": topic has an empty segment 2 (leading, trailing or doubled '.')",
    more: ["(run 'macula pub --help' for usage)"],
    argv: ["pub", "a..b", "x", ...target],
    code: 2,
  },
  {
    message: "macula sub: --count 'abc': give a whole number from 1 to 1000000000",
    more: ["(run 'macula sub --help' for usage)"],
    argv: ["sub", ">", "--count", "abc", ...target],
    code: 2,
  },
  {
    message: "macula: unknown command 'frobnicate'",
    more: ["(run 'macula --help' for usage)"],
    argv: ["frobnicate"],
    code: 2,
  },
  {
    message:
      "macula node up: cannot listen on udp 127.0.0.1:<port>: the port is in use (another node or program has it; choose another with --listen or --port, or 0 for a free one)",
    argv: ["node", "up", "--listen", "127.0.0.1:<port>", "--data-dir", "<dir>/second"],
    code: 1,
  },
  {
    message: "macula node up: <dir>/unknown-key.yaml: listen.prot: unknown key (known: host, port)",
    argv: ["node", "up", "--config", "<dir>/unknown-key.yaml"],
    code: 2,
  },
  {
    message: "macula node up: <dir>/duplicate.yaml:2:1: Map keys must be unique",
    more: ["  2 | realm: acme", "    | ^"],
    argv: ["node", "up", "--config", "<dir>/duplicate.yaml"],
    code: 2,
  },
  {
    message:
      "macula node up: the flags: tls: required for realm acme (only the dev realm makes its own certificates)",
    argv: ["node", "up", "--realm", "acme", "--data-dir", "<dir>/acme"],
    code: 2,
  },
  {
    message:
      "macula node up: cannot make the data directory <dir>/afile/n: a part of the path is not a directory",
    argv: ["node", "up", "--data-dir", "<dir>/afile/n", "--port", "0"],
    code: 2,
  },
  {
    message:
      "macula stun serve: cannot listen on udp 127.0.0.1:<port>: the port is in use (another node or program has it; choose another with --listen or --port, or 0 for a free one)",
    argv: ["stun", "serve", "--listen", "127.0.0.1:<port>"],
    code: 1,
  },
  {
    message:
      "macula node up: data directory <node-dir> is in use by process <pid> (<node-dir>/macula.lock): stop that node, or give another --data-dir",
    argv: ["node", "up", "--data-dir", "<node-dir>", "--port", "0"],
    code: 2,
  },
  {
    message: 'macula call: no_provider: no provider for "nobody.home"',
    argv: ["call", "nobody.home", ...target],
    code: 3,
  },
  {
    message: "macula call: timeout: slow.op: no reply within 300 ms",
    argv: ["call", "slow.op", "--timeout", "300", ...target],
    code: 4,
  },
  {
    message: "macula call: handler_error: boom",
    argv: ["call", "fail.op", ...target],
    code: 5,
  },
  {
    message: "macula pub: the message is 2000 bytes, over the node's payload limit of 1024",
    argv: ["pub", "a.b", "x".repeat(2000), "--server", "<strict-url>", "--creds", "<nobody>"],
    code: 1,
  },
  {
    message:
      "macula pub: the data is not JSON: invalid JSON payload (4 bytes, starting \"{bad\"): JSON Parse error: Expected '}'",
    more: ["  leave out --input json to send it as text"],
    argv: ["pub", "a.b", "{bad", "--input", "json", ...target],
    code: 2,
  },
  {
    message:
      "macula sub: node <strict-url>: permission_denied: subscribe >: no rule allows it (no groups) and the default is deny (permissions.default)",
    before: "subscribed to > on <strict-url>",
    argv: ["sub", ">", "--server", "<strict-url>", "--creds", "<nobody>"],
    code: 1,
  },
  {
    message: "macula ping: <id> is not a member the node knows",
    more: ["  ('macula inspect members' lists the members it knows)"],
    argv: ["ping", "<id>", ...target],
    code: 1,
  },
  {
    message:
      'macula ping: node id prefix "<prefix>" is ambiguous: <n> members the node knows start with it',
    more: [
      "  <id-1>  127.0.0.1:<port-1>  alive",
      "  <id-2>  127.0.0.1:<port-2>  alive",
      "  give more characters of the id",
    ],
    argv: ["ping", "<prefix>", "--server", "<twin-url>", "--creds", "<creds>"],
    code: 2,
  },
  {
    message:
      "macula certs ca init: macula-ca/ca.pem already exists (a CA is already there; use --force to replace it)",
    argv: ["certs", "ca", "init", "--realm", "acme"],
    cwd: "pki",
    code: 1,
  },
  {
    message:
      "macula certs print: macula-ca/ca.key is a private key, not a certificate (give a certificate, a CRL, a CSR or a public key)",
    argv: ["certs", "print", "macula-ca/ca.key"],
    cwd: "pki",
    code: 1,
  },
  {
    message: "macula certs issue: the CA in macula-ca is for realm acme, not other",
    argv: ["certs", "issue", "--realm", "other", "--name", "x"],
    cwd: "pki",
    code: 1,
  },
  {
    message:
      'macula certs verify: n1.crt: untrusted: issued by "CN=Macula realm CA acme, O=Macula", not by this CA ("CN=Macula realm CA dev, O=Macula")',
    argv: ["certs", "verify", "n1.crt", "--ca", "<creds>/ca.pem"],
    cwd: "pki",
    code: 5,
  },
  {
    message: 'macula context use: no context named "nope" (no contexts are saved)',
    argv: ["context", "use", "nope"],
    code: 1,
  },
  {
    message: "macula docs: no page named \"nope\" ('macula docs' lists them: <pages>)",
    more: ["(run 'macula docs --help' for usage)"],
    argv: ["docs", "nope"],
    code: 2,
  },
];

/** `<name>` → its value, or a pattern for the parts no test can know (a serial, an id). */
function pattern(text: string): RegExp {
  const escaped = text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(
    `^${
      escaped.replace(/<([\w-]+)>/g, (_, name: string) =>
        name in vars ? vars[name]!.replace(/[.*+?^${}()|[\]\\]/g, "\\$&") : "[^\\s]+(?:, [^\\s]+)*")
    }$`,
  );
}

const fill = (s: string) =>
  s.replace(
    /<([\w-]+)>/g,
    (all, name: string) => name === "id" ? "b".repeat(52) : vars[name] ?? all,
  );

describe("docs/troubleshooting.md: every documented failure, as documented", () => {
  for (const c of CASES) {
    test(c.message, async () => {
      const r = await run([process.execPath, MAIN, ...c.argv.map(fill)], {
        ...(c.cwd ? { cwd: join(dir, c.cwd) } : {}),
        env: {
          ...process.env as Record<string, string>,
          MACULA_CONFIG_DIR: join(dir, "config"), // no saved contexts
          ...c.env,
        },
      });
      const lines = [...(c.before ? [c.before] : []), c.message, ...(c.more ?? []), ""];
      expect(r.stderr).toMatch(pattern(lines.join("\n")));
      expect(r.code).toBe(c.code);
      // The page has it, word for word, as a heading.
      if (!PAGE.includes(`### \`${c.message}\``)) {
        throw new Error(`docs/troubleshooting.md has no entry "### \`${c.message}\`"`);
      }
    });
  }

  test("every message the page documents has a case here", () => {
    const documented = [...PAGE.matchAll(/^### `(macula[^`]*)`$/gm)].map((m) => m[1]);
    expect(documented.sort()).toEqual(CASES.map((c) => c.message).sort());
  });
});
