/**
 * The files `macula certs` reads, told apart by their PEM labels: certificates, CRLs,
 * certificate requests, public keys, private keys. A file of the wrong kind is refused with one
 * line saying what it is and what was wanted (`--ca ca.key is a private key, not a
 * certificate`), before any parser sees it and answers with its own internals.
 */
import { CertsError, readText } from "../lib/identity/mod.ts";

/** What a PEM block holds. */
export type PemKind =
  | "certificate"
  | "crl"
  | "csr"
  | "public-key"
  | "private-key"
  | "encrypted-private-key"
  | "parameters"
  | "other";

/** PEM labels (RFC 7468, and OpenSSL's older ones) and what they hold. */
const LABELS: Record<string, PemKind> = {
  "CERTIFICATE": "certificate",
  "X509 CERTIFICATE": "certificate",
  "X509 CRL": "crl",
  "CRL": "crl",
  "CERTIFICATE REQUEST": "csr",
  "NEW CERTIFICATE REQUEST": "csr",
  "PUBLIC KEY": "public-key",
  "PRIVATE KEY": "private-key",
  "RSA PRIVATE KEY": "private-key",
  "EC PRIVATE KEY": "private-key",
  "DSA PRIVATE KEY": "private-key",
  "OPENSSH PRIVATE KEY": "private-key",
  "ENCRYPTED PRIVATE KEY": "encrypted-private-key",
  "EC PARAMETERS": "parameters",
};

/** One `-----BEGIN …-----` … `-----END …-----` block of a PEM file. */
export interface PemBlock {
  label: string;
  kind: PemKind;
  /** The block's text, BEGIN and END lines included. */
  pem: string;
}

/** The kinds, as a sentence names them. */
export const KIND_TEXT: Record<Exclude<PemKind, "other">, string> = {
  certificate: "a certificate",
  crl: "a CRL",
  csr: "a certificate request",
  "public-key": "a public key",
  "private-key": "a private key",
  "encrypted-private-key": "an encrypted private key",
  parameters: "key parameters",
};

/** What a block is, for a sentence: `a private key`, `a PEM "FOO" block`. */
export function kindText(block: PemBlock): string {
  return block.kind === "other" ? `a PEM "${block.label}" block` : KIND_TEXT[block.kind];
}

/** The PEM blocks of a text, in order. */
export function pemBlocks(text: string): PemBlock[] {
  const out: PemBlock[] = [];
  for (const m of text.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g)) {
    const label = m[1]!;
    out.push({ label, kind: LABELS[label] ?? "other", pem: m[0] });
  }
  return out;
}

/**
 * The blocks of a file's text, or a `CertsError` saying why there are none: empty, no PEM at
 * all (DER, or another format), or a block cut short. `subject` names the file in the message.
 */
export function blocksOf(text: string, subject: string): PemBlock[] {
  const blocks = pemBlocks(text);
  if (blocks.length > 0) return blocks;
  if (text.trim() === "") throw new CertsError(`${subject} is empty`);
  const begin = /-----BEGIN ([A-Z0-9 ]+)-----/.exec(text);
  if (begin) {
    throw new CertsError(
      `${subject} is cut short: its "${begin[1]}" block has no END line`,
    );
  }
  // Binary (DER, most likely) or text of another format: the conversion hint only for the first.
  // deno-lint-ignore no-control-regex -- control characters are what binary looks like
  const binary = /[\u0000-\u0008\u000e-\u001f\ufffd]/.test(text);
  throw new CertsError(
    `${subject} is not a PEM file (no -----BEGIN line)` +
      (binary
        ? "\n  macula certs reads PEM; if it is DER, convert it, e.g. openssl x509 -inform DER -in cert.der -out cert.pem"
        : ""),
  );
}

type Wanted = Exclude<PemKind, "other" | "parameters">;

/** How `readInput` names and checks a file. */
export interface InputSpec {
  /**
   * The kind wanted, or kinds (messages name the first): the file's first block that is not key
   * parameters must be of it.
   */
  want: Wanted | readonly Wanted[];
  /** Its role, for a read error: `cannot read <role> <path>: no such file`. */
  role: string;
  /** The flag that named it (`--ca`), put before the path in messages. */
  flag?: string;
  /** Said after a wrong kind, in parentheses: what to give instead. */
  hint?: string;
}

/**
 * Reads a PEM file that must hold `spec.want`, and returns its text. Throws `FileError` when it
 * cannot be read, `CertsError` when it is empty, not PEM, or another kind of file.
 */
export async function readInput(path: string, spec: InputSpec): Promise<string> {
  const text = await readText(path, spec.role);
  const subject = spec.flag ? `${spec.flag} ${path}` : path;
  const want: readonly Wanted[] = typeof spec.want === "string" ? [spec.want] : spec.want;
  const first = blocksOf(text, subject).find((b) => b.kind !== "parameters");
  if (first === undefined || !want.includes(first.kind as Wanted)) {
    const what = first ? kindText(first) : "key parameters only";
    throw new CertsError(
      `${subject} is ${what}, not ${KIND_TEXT[want[0]!]}${spec.hint ? ` (${spec.hint})` : ""}`,
    );
  }
  return text;
}
