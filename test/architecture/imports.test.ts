/**
 * The layer rule of docs/architecture.md, read off the source: every import in lib/ goes down the
 * layer order or stays in its own room (a top-level folder of lib/); an import into another room
 * goes through that room's mod.ts; lib/ never imports the tools above it; certs-tool, cli and
 * the root mod.ts use lib/ only through mod.ts files; and no file imports itself back through
 * others (no cycles of value imports).
 */
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "../..");

/** The layer order, lowest first; rooms on one line are siblings and may not import each other. */
export const LAYERS: readonly (readonly string[])[] = [
  ["util"],
  ["quic"],
  ["wire"],
  ["identity"],
  ["peer"],
  ["mesh"],
  ["messaging"],
  ["sim", "policy"],
  ["nat"],
  ["observe"],
  ["node", "client"],
];
const RANK = new Map(LAYERS.flatMap((rooms, i) => rooms.map((r) => [r, i] as const)));
/** What certs-tool may use of lib/. */
const CERTS_TOOL_MAY_USE = ["util", "identity"];

interface Import {
  from: string;
  to: string;
  /** `import type` / `export type`: erased, no runtime dependency. */
  typeOnly: boolean;
  line: number;
}

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith(".ts") ? [p] : [];
  });
}

/** The relative imports of a file (static, re-exports and dynamic), resolved to paths. */
function importsOf(file: string): Import[] {
  const src = readFileSync(file, "utf8").replace(
    /\/\*[\s\S]*?\*\//g,
    (c) => c.replace(/[^\n]/g, " "),
  );
  const out: Import[] = [];
  const re =
    /(?:^|\n)\s*(import|export)\s+(type\s+)?(?:[^;'"]*?\s+from\s+)?["'](\.[^"']+)["']|import\(\s*["'](\.[^"']+)["']\s*\)/g;
  for (const m of src.matchAll(re)) {
    const spec = m[3] ?? m[4]!;
    const start = m.index + Math.max(0, m[0].search(/import|export/));
    const line = src.slice(0, start).split("\n").length;
    const typeOnly = m[2] !== undefined ||
      (m[1] === "import" && /^\s*import\s+type\s/.test(m[0].trimStart()));
    out.push({ from: file, to: resolve(dirname(file), spec), typeOnly, line });
  }
  return out;
}

/** `lib/<room>/…` → room; else undefined. */
function roomOf(path: string): string | undefined {
  const rel = relative(join(ROOT, "lib"), path);
  if (rel.startsWith("..")) return undefined;
  const [room, ...rest] = rel.split("/");
  return rest.length === 0 ? "" : room;
}

/** Every cycle found by a depth-first walk of `edges`, each as a path back to its start. */
function cycles(edges: Map<string, string[]>): string[][] {
  const state = new Map<string, 1 | 2>(); // 1: on the stack, 2: done
  const found: string[][] = [];
  const visit = (f: string, stack: string[]): void => {
    state.set(f, 1);
    stack.push(f);
    for (const t of edges.get(f) ?? []) {
      if (state.get(t) === 1) found.push(stack.slice(stack.indexOf(t)).concat(t));
      else if (state.get(t) === undefined) visit(t, stack);
    }
    stack.pop();
    state.set(f, 2);
  };
  for (const f of edges.keys()) if (!state.has(f)) visit(f, []);
  return found;
}

const at = (i: Import) => `${relative(ROOT, i.from)}:${i.line} imports ${relative(ROOT, i.to)}`;

describe("the layer rule (docs/architecture.md)", () => {
  const lib = files(join(ROOT, "lib"));
  const libImports = lib.flatMap(importsOf);

  test("lib/ has only rooms, each in the layer order and with a mod.ts", () => {
    const rooms = readdirSync(join(ROOT, "lib"));
    for (const r of rooms) {
      expect(statSync(join(ROOT, "lib", r)).isDirectory(), `lib/${r} is a file in lib/`).toBe(true);
      expect(RANK.has(r), `lib/${r} is not in the layer order`).toBe(true);
      expect(existsSync(join(ROOT, "lib", r, "mod.ts")), `lib/${r}/mod.ts`).toBe(true);
    }
    // Every sub-folder of a room has its mod.ts too.
    for (const f of lib) {
      const d = dirname(f);
      expect(existsSync(join(d, "mod.ts")), `${relative(ROOT, d)}/mod.ts`).toBe(true);
    }
  });

  test("every import resolves to a file", () => {
    const missing = libImports.filter((i) => !existsSync(i.to) && !i.to.endsWith(".json"));
    expect(missing.map(at)).toEqual([]);
  });

  test("lib/ imports nothing above it (cli/, certs-tool/, test/, bench/)", () => {
    const up = libImports.filter((i) =>
      roomOf(i.to) === undefined && !i.to.endsWith("package.json")
    );
    expect(up.map(at)).toEqual([]);
  });

  test("between rooms: only down the layer order, never sideways, and only through mod.ts", () => {
    const bad: string[] = [];
    for (const i of libImports) {
      const from = roomOf(i.from)!;
      const to = roomOf(i.to);
      if (to === undefined || to === from) continue;
      const rf = RANK.get(from)!;
      const rt = RANK.get(to)!;
      if (rt > rf) bad.push(`${at(i)}: up (${from} is below ${to})`);
      else if (rt === rf) bad.push(`${at(i)}: sideways (${from} and ${to} are siblings)`);
      else if (relative(join(ROOT, "lib", to), i.to) !== "mod.ts") {
        bad.push(`${at(i)}: past lib/${to}/mod.ts`);
      }
    }
    expect(bad).toEqual([]);
  });

  test("certs-tool, cli and mod.ts use lib/ only through mod.ts files", () => {
    const bad: string[] = [];
    const outside = [
      ...files(join(ROOT, "certs-tool")),
      ...files(join(ROOT, "cli")),
      join(ROOT, "mod.ts"),
    ];
    for (const i of outside.flatMap(importsOf)) {
      const to = roomOf(i.to);
      if (to === undefined) {
        // certs-tool is a tool of its own: cli may use it through its mod.ts only.
        const rel = relative(ROOT, i.to);
        if (rel.startsWith("certs-tool/") && !relative(ROOT, i.from).startsWith("certs-tool/")) {
          if (rel !== "certs-tool/mod.ts") bad.push(`${at(i)}: past certs-tool/mod.ts`);
        }
        continue;
      }
      if (relative(join(ROOT, "lib", to), i.to) !== "mod.ts") {
        bad.push(`${at(i)}: past lib/${to}/mod.ts`);
      }
      if (relative(ROOT, i.from).startsWith("certs-tool/") && !CERTS_TOOL_MAY_USE.includes(to)) {
        bad.push(`${at(i)}: certs-tool uses only ${CERTS_TOOL_MAY_USE.join(" and ")}`);
      }
    }
    expect(bad).toEqual([]);
  });

  test("no cycles of value imports in lib/", () => {
    const edges = new Map<string, string[]>();
    for (const i of libImports) {
      if (i.typeOnly || !existsSync(i.to)) continue;
      const list = edges.get(i.from) ?? [];
      list.push(i.to);
      edges.set(i.from, list);
    }
    expect(cycles(edges).map((c) => c.map((p) => relative(ROOT, p)).join(" → "))).toEqual([]);
  });

  test("the checker sees what it checks: imports, type imports, re-exports, cycles", () => {
    expect(cycles(new Map([["a", ["b"]], ["b", ["c"]], ["c", ["a"]], ["d", ["a"]]]))).toEqual([
      ["a", "b", "c", "a"],
    ]);
    expect(cycles(new Map([["a", ["b", "c"]], ["b", ["c"]]]))).toEqual([]);
    const node = importsOf(join(ROOT, "lib/node/node.ts"));
    expect(node.length).toBeGreaterThan(10);
    expect(node.some((i) => i.typeOnly)).toBe(true);
    expect(importsOf(join(ROOT, "lib/mesh/mod.ts")).length).toBeGreaterThan(1);
  });
});
