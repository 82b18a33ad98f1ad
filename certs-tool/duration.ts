/**
 * Durations as operators type them: a number and a unit, optionally several (`1d12h`).
 * Units: `s`, `m` (minutes), `h`, `d` (24 h), `w` (7 d), `y` (365 d).
 */

const UNIT_MS: Record<string, number> = {
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
  y: 365 * 86_400_000,
};

/** Longest duration accepted: 100 years. */
export const MAX_DURATION_MS = 100 * UNIT_MS.y!;

/** A duration text that cannot be understood. */
export class DurationError extends Error {
  override name = "DurationError";
}

/** Parses `8760h`, `30d`, `90m`, `1d12h`… into milliseconds; throws `DurationError`. */
export function parseDuration(text: string): number {
  const hint = "use a number and a unit, e.g. 8760h, 30d, 90m or 1d12h (units: s, m, h, d, w, y)";
  const t = text.trim();
  if (!/^(?:\d+(?:\.\d+)?[smhdwy])+$/.test(t)) {
    throw new DurationError(`invalid duration ${JSON.stringify(text)}: ${hint}`);
  }
  let ms = 0;
  for (const m of t.matchAll(/(\d+(?:\.\d+)?)([smhdwy])/g)) {
    ms += Number(m[1]) * UNIT_MS[m[2]!]!;
  }
  ms = Math.round(ms);
  if (ms < 60_000) {
    throw new DurationError(`invalid duration ${JSON.stringify(text)}: at least 1 minute`);
  }
  if (ms > MAX_DURATION_MS) {
    throw new DurationError(`invalid duration ${JSON.stringify(text)}: at most 100 years`);
  }
  return ms;
}

/** A short human form: `364d 23h`, `2h 5m`, `45s`. */
export function formatDuration(ms: number): string {
  const neg = ms < 0;
  let s = Math.floor(Math.abs(ms) / 1000);
  const d = Math.floor(s / 86_400);
  s -= d * 86_400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  const parts = d > 0
    ? [`${d}d`, h ? `${h}h` : ""]
    : h > 0
    ? [`${h}h`, m ? `${m}m` : ""]
    : m > 0
    ? [`${m}m`]
    : [`${s}s`];
  return (neg ? "-" : "") + parts.filter(Boolean).join(" ");
}
