/** lib/mesh is sans-IO: no clocks, no Math.random, no timers, no runtime IO in any of its files. */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";

const ROOT = join(import.meta.dir, "../../lib/mesh");

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith(".ts") ? [p] : [];
  });
}

describe("lib/mesh stays sans-IO", () => {
  const banned: [RegExp, string][] = [
    [/Math\.random/, "randomness must be injected"],
    [/Date\.now|new Date\(|performance\.now/, "time must be passed in"],
    [/setTimeout|setInterval|queueMicrotask|setImmediate/, "no timers"],
    [/from "node:|from "bun"|Deno\./, "no runtime IO modules"],
  ];
  const all = files(ROOT);
  test("it has files", () => expect(all.length).toBeGreaterThan(3));
  for (const file of all) {
    test(relative(ROOT, file), () => {
      const src = readFileSync(file, "utf8").replace(/\/\*[\s\S]*?\*\//g, "").replace(
        /\/\/.*$/gm,
        "",
      );
      for (const [re, why] of banned) {
        if (re.test(src)) throw new Error(`${relative(ROOT, file)} matches ${re}: ${why}`);
      }
    });
  }
});

describe("seededRng", () => {
  test("no short cycle, uniform enough, unrelated across nearby seeds", async () => {
    const { seededRng } = await import("../../lib/mesh/types.ts");
    const r = seededRng(1);
    const seen = new Set<number>();
    let sum = 0;
    for (let i = 0; i < 200_000; i++) {
      const x = r();
      expect(x >= 0 && x < 1).toBe(true);
      seen.add(x);
      sum += x;
    }
    expect(seen.size).toBe(200_000); // 53-bit doubles: a repeat means a cycle
    expect(Math.abs(sum / 200_000 - 0.5)).toBeLessThan(0.005);
    const a = seededRng(2), b = seededRng(3);
    let same = 0;
    for (let i = 0; i < 1000; i++) if (Math.floor(a() * 16) === Math.floor(b() * 16)) same++;
    expect(same).toBeLessThan(100); // about 1000/16 = 62 by chance
    expect(seededRng("x", 1)()).toBe(seededRng("x", 1)());
    expect(seededRng("x", 1)()).not.toBe(seededRng("x", 2)());
  });
});
