import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import * as messaging from "../../lib/messaging/mod.ts";

const DIR = join(import.meta.dir, "../../lib/messaging");

/** The source without comments (good enough for our own files: no "//" inside strings). */
function code(file: string): string {
  return readFileSync(join(DIR, file), "utf8")
    .replace(/\/\*[\s\S]*?\*\//g, "")
    .replace(/\/\/.*$/gm, "");
}

describe("lib/messaging stays sans-IO", () => {
  const files = readdirSync(DIR).filter((f) => f.endsWith(".ts"));
  const banned: [RegExp, string][] = [
    [/Math\.random/, "randomness must be injected"],
    [/Date\.now|new Date\(|performance\.now/, "time must be passed in"],
    [/setTimeout|setInterval|queueMicrotask/, "no timers"],
    [/from "node:|from "bun"|Deno\./, "no runtime IO modules"],
  ];
  for (const file of files) {
    test(file, () => {
      const src = code(file);
      for (const [re, why] of banned) {
        if (re.test(src)) throw new Error(`${file} matches ${re}: ${why}`);
      }
    });
  }

  test("mod.ts exports the public pieces", () => {
    for (
      const name of [
        "checkTopic",
        "checkPattern",
        "matches",
        "SubscriptionTrie",
        "MessageBuffer",
        "ProcedureRegistry",
        "PendingCalls",
        "RpcError",
        "encodeJson",
        "decodeJson",
      ]
    ) {
      expect(name in messaging).toBe(true);
    }
  });
});
