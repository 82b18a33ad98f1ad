/**
 * A small reader of Containerfile/Dockerfile instructions, for the recipe tests (no Docker
 * engine runs here): line continuations, comments, the parser directive, and the JSON (exec)
 * form of arguments.
 */

export interface Instruction {
  /** Upper-cased: FROM, RUN, COPY, … */
  readonly op: string;
  /** The text after the instruction word, continuations joined. */
  readonly args: string;
  /** The build stage it belongs to (0 = the first FROM). */
  readonly stage: number;
}

/** The instructions of `text`, in order. */
export function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let stage = -1;
  let pending = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (pending === "" && (line === "" || line.startsWith("#"))) continue;
    if (pending !== "" && line.startsWith("#")) continue; // comments inside a continuation
    if (line.endsWith("\\")) {
      pending += `${line.slice(0, -1).trim()} `;
      continue;
    }
    const whole = `${pending}${line}`.trim();
    pending = "";
    if (whole === "") continue;
    const m = /^(\S+)\s*(.*)$/s.exec(whole)!;
    const op = m[1]!.toUpperCase();
    if (op === "FROM") stage++;
    out.push({ op, args: m[2]!, stage });
  }
  if (pending !== "") throw new Error("the file ends inside a line continuation");
  return out;
}

/** An exec-form argument list (`["a", "b"]`), or a failure naming the instruction. */
export function execForm(i: Instruction): string[] {
  const v = JSON.parse(i.args.replace(/^CMD\s+/, "")) as unknown;
  if (!Array.isArray(v) || !v.every((s) => typeof s === "string")) {
    throw new Error(`${i.op} ${i.args}: not an exec-form list of strings`);
  }
  return v as string[];
}

/** `--name=value` options at the start of an instruction's arguments, and the rest. */
export function options(args: string): { opts: Record<string, string>; rest: string } {
  const opts: Record<string, string> = {};
  let rest = args;
  for (;;) {
    const m = /^--([\w-]+)=(\S+)\s+/.exec(rest);
    if (!m) return { opts, rest };
    opts[m[1]!] = m[2]!;
    rest = rest.slice(m[0].length);
  }
}
