/**
 * Durations as operators type them in flags: a number and a unit, optionally several (`1d12h`).
 * Units: `s`, `m` (minutes), `h`, `d` (24 h), `w` (7 d), `y` (365 d). The other way round (a
 * duration for people, in expiry warnings) is lib/identity's `formatDuration`.
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

/**
 * A duration text that cannot be understood (a flag's value: the command's usage error). The
 * message names the text; `problem` is only what is wrong with it, for a caller that names the
 * value itself (`--duration 'ten days': use a number and a unit…`).
 */
export class DurationError extends Error {
  override name = "DurationError";
  constructor(readonly text: string, readonly problem: string, options?: ErrorOptions) {
    super(`invalid duration ${JSON.stringify(text)}: ${problem}`, options);
  }
}

/** Parses `8760h`, `30d`, `90m`, `1d12h`… into milliseconds; throws `DurationError`. */
export function parseDuration(text: string): number {
  const hint = "use a number and a unit, e.g. 8760h, 30d, 90m or 1d12h (units: s, m, h, d, w, y)";
  const t = text.trim();
  if (!/^(?:\d+(?:\.\d+)?[smhdwy])+$/.test(t)) {
    throw new DurationError(text, hint);
  }
  let ms = 0;
  for (const m of t.matchAll(/(\d+(?:\.\d+)?)([smhdwy])/g)) {
    ms += Number(m[1]) * UNIT_MS[m[2]!]!;
  }
  ms = Math.round(ms);
  if (ms < 60_000) {
    throw new DurationError(text, "at least 1 minute");
  }
  if (ms > MAX_DURATION_MS) {
    throw new DurationError(text, "at most 100 years");
  }
  return ms;
}
