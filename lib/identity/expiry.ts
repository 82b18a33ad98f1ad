/**
 * Expiry: how long a certificate has left, and the warnings the realm CA returns (and
 * `macula certs` prints) when a certificate or CA is near its end or past it.
 */
import { IDENTITY_DEFAULTS } from "./defaults.ts";
import type { x509 } from "./x509.ts";

const DAY = 86_400_000;

/** Whole days until `date` (negative when past). */
export function daysUntil(date: Date, now = new Date()): number {
  return Math.floor((date.getTime() - now.getTime()) / DAY);
}

/** A short human form of a duration: `364d 23h`, `2h 5m`, `45s`. */
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

/**
 * Expiry warnings for a labelled certificate: one when it is within
 * `IDENTITY_DEFAULTS.realm.warnWithinMs` (30 days) of its expiry, or already expired.
 */
export function expiryWarnings(
  label: string,
  cert: x509.X509Certificate,
  now: Date = new Date(),
): string[] {
  const left = cert.notAfter.getTime() - now.getTime();
  if (left <= 0) {
    return [`warning: ${label} expired on ${cert.notAfter.toISOString()}`];
  }
  if (left <= IDENTITY_DEFAULTS.realm.warnWithinMs) {
    return [
      `warning: ${label} expires in ${
        formatDuration(left)
      } (${cert.notAfter.toISOString()}); issue a new one`,
    ];
  }
  return [];
}
