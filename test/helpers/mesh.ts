/** Local meshes for tests: nodes on 127.0.0.1 sharing one dev CA, fully connected. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Client, connect, type ConnectOptions } from "../../lib/client/client.ts";
import { Node, type NodeStartOptions } from "../../lib/node/node.ts";

/** Nodes, their clients, and one `close()` for all of it. */
export interface Mesh {
  nodes: Node[];
  dir: string;
  /** A client of node `i`. */
  client(i: number, o?: ConnectOptions): Promise<Client>;
  /** Starts one more node in the mesh (or restarts one on `dataDir`/`port`). */
  add(o?: NodeStartOptions): Promise<Node>;
  close(): Promise<void>;
}

/** Starts `n` nodes; each joins every earlier one, and all routes are up on return. */
export async function mesh(n: number, o: NodeStartOptions = {}): Promise<Mesh> {
  const dir = mkdtempSync(join(tmpdir(), "macula-mesh-"));
  const nodes: Node[] = [];
  const clients: Client[] = [];
  let caDir: string | undefined;
  const add = async (extra: NodeStartOptions = {}) => {
    const node = await Node.start({
      dataDir: join(dir, `n${nodes.length}`),
      listen: { host: "127.0.0.1", port: 0 },
      devCaDir: caDir,
      join: nodes.filter((x) => x.running).map((x) => ({
        host: "127.0.0.1",
        port: x.endpoint.address.port,
      })),
      ...o,
      ...extra,
    });
    caDir ??= node.caDir!;
    nodes.push(node);
    return node;
  };
  for (let i = 0; i < n; i++) await add();
  await Promise.all(nodes.map((x) => x.waitForRoutes(n - 1)));
  return {
    nodes,
    dir,
    add,
    async client(i, co = {}) {
      const c = await connect({ url: nodes[i]!.url, creds: nodes[0]!.credsDir!, ...co });
      clients.push(c);
      return c;
    },
    async close() {
      await Promise.allSettled(clients.map((c) => c.close()));
      await Promise.allSettled(nodes.map((x) => x.stop()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The next `n` messages of a subscription as `topic payload-text`, bounded by `limitMs`. */
export async function take(
  sub: AsyncIterable<{ topic: string; text(): string }>,
  n: number,
  limitMs = 10_000,
): Promise<string[]> {
  const out: string[] = [];
  if (n === 0) return out;
  const it = sub[Symbol.asyncIterator]();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`only ${out.length} of ${n} messages within ${limitMs} ms: ${out}`)),
      limitMs,
    );
  });
  try {
    while (out.length < n) {
      const r = await Promise.race([it.next(), timeout]);
      if (r.done) throw new Error(`subscription ended after ${out.length} of ${n} messages`);
      out.push(`${r.value.topic} ${r.value.text()}`);
    }
  } finally {
    clearTimeout(timer);
  }
  return out;
}

/**
 * Starts `n` nodes in `dir`, one after another, each joining only the first (as a new user
 * starts a mesh from one seed); `o(i)` adds options for node `i`. Pushed into `into` as they
 * start, so the caller stops them even if a later start fails.
 */
export async function joinOneSeed(
  dir: string,
  n: number,
  o: (i: number) => NodeStartOptions,
  into: Node[] = [],
): Promise<Node[]> {
  for (let i = 0; i < n; i++) {
    into.push(
      await Node.start({
        dataDir: join(dir, `n${i}`),
        devCaDir: into[0]?.caDir,
        listen: { host: "127.0.0.1", port: 0 },
        join: i === 0 ? [] : [{ host: "127.0.0.1", port: into[0]!.endpoint.address.port }],
        ...o(i),
      }),
    );
  }
  return into;
}
