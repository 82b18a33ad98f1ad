/** Flags of the benchmark processes (`--key value` / `--key=value`) and integer settings. */
import { UsageError } from "./types.ts";

/** `--key value` / `--key=value` pairs. */
export function flagMap(argv: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? "";
    if (!a.startsWith("--")) throw new Error(`unexpected argument ${JSON.stringify(a)}`);
    const eq = a.indexOf("=");
    if (eq > 0) {
      out.set(a.slice(2, eq), a.slice(eq + 1));
    } else {
      const v = argv[i + 1];
      if (v === undefined) throw new Error(`${a} needs a value`);
      out.set(a.slice(2), v);
      i++;
    }
  }
  return out;
}

/** A string flag (required unless `dflt` is given). */
export function strFlag(m: Map<string, string>, k: string, dflt?: string): string {
  const v = m.get(k) ?? dflt;
  if (v === undefined) throw new Error(`--${k} is required`);
  return v;
}

/** A non-negative integer flag (required unless `dflt` is given). */
export function intFlag(m: Map<string, string>, k: string, dflt?: number): number {
  const raw = m.get(k);
  if (raw === undefined) {
    if (dflt === undefined) throw new Error(`--${k} is required`);
    return dflt;
  }
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new Error(`--${k} must be a non-negative integer, got ${raw}`);
  }
  return n;
}

/** A non-negative integer from the environment, or undefined when unset. */
export function envInt(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === "") return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new UsageError(`${name} must be a non-negative integer, got ${v}`);
  }
  return n;
}
