/** Plain-text and Markdown tables: numeric-looking columns right-aligned, the rest left-aligned. */

export type Row = readonly string[];

const NUMERIC = /^(—|-|n\/a|[0-9.,]+(×|%)?)$/;

/** True for each column whose body cells all look like numbers (or placeholders). */
function rightAligned(headers: Row, rows: readonly Row[]): boolean[] {
  return headers.map((_, c) =>
    c > 0 && rows.length > 0 && rows.every((r) => NUMERIC.test(r[c] ?? ""))
  );
}

export function textTable(headers: Row, rows: readonly Row[]): string {
  const all = [headers, ...rows];
  const widths = headers.map((_, c) => Math.max(...all.map((r) => (r[c] ?? "").length)));
  const right = rightAligned(headers, rows);
  const fmt = (r: Row): string =>
    r
      .map((cell, c) => {
        const w = widths[c] ?? 0;
        return right[c] ? cell.padStart(w) : cell.padEnd(w);
      })
      .join("  ")
      .trimEnd();
  const rule = widths.map((w) => "-".repeat(w)).join("  ");
  return [fmt(headers), rule, ...rows.map(fmt)].join("\n");
}

export function markdownTable(headers: Row, rows: readonly Row[]): string {
  const esc = (s: string): string => s.replaceAll("|", "\\|");
  const line = (r: Row): string => `| ${r.map(esc).join(" | ")} |`;
  const right = rightAligned(headers, rows);
  const align = `|${headers.map((_, c) => (right[c] ? "---:" : "---")).join("|")}|`;
  return [line(headers), align, ...rows.map(line)].join("\n");
}
