/**
 * The library examples in the docs run: each ```ts block (in README.md, docs/client.md and the
 * doc comment of mod.ts) that imports "macula" is written to a file, pointed at
 * a live node on 127.0.0.1 (its URL and credentials replace the defaults the docs show), and run
 * with Bun; it must exit 0.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Node } from "../../lib/node/node.ts";
import { run } from "../helpers/run.ts";

const ROOT = resolve(import.meta.dir, "../..");
let node: Node;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "macula-examples-"));
  node = await Node.start({ dataDir: join(dir, "node"), listen: { host: "127.0.0.1", port: 0 } });
});
afterAll(async () => {
  await node.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** The ```ts blocks of a Markdown file that import from "macula". */
function examples(file: string): string[] {
  let text = readFileSync(join(ROOT, file), "utf8");
  if (file.endsWith(".ts")) text = text.replace(/^\s*\* ?/gm, ""); // examples in doc comments
  return [...text.matchAll(/```ts\n([\s\S]*?)```/g)]
    .map((m) => m[1]!)
    .filter((code) => code.includes('from "macula"'));
}

describe("documented examples run against a real node", () => {
  for (const file of ["README.md", "docs/client.md", "mod.ts"]) {
    const blocks = examples(file);
    test(`${file}: has an example`, () => expect(blocks.length).toBeGreaterThan(0));
    blocks.forEach((code, i) => {
      test(`${file}, example ${i + 1}`, async () => {
        const program = code
          .replaceAll('from "macula"', `from ${JSON.stringify(join(ROOT, "mod.ts"))}`)
          .replaceAll("quic://127.0.0.1:4433", node.url)
          .replaceAll('"macula-data/client"', JSON.stringify(node.credsDir));
        const path = join(dir, `example-${file.replace(/\W/g, "_")}-${i}.ts`);
        writeFileSync(path, program); // no process.exit: the example must end by itself
        const r = await run([process.execPath, path], { timeoutMs: 30_000 });
        expect(r.stderr).not.toContain("error");
        expect(r.code).toBe(0);
      });
    });
  }
});
