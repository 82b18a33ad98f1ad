/**
 * Files of the realm CA and of `macula certs`: reading an input with one clear error line
 * (`readText`), and writing outputs safely (`writeAll`): every output is written to a temporary
 * file beside its target and renamed into place, and a group of files lands together or not at
 * all. Problems are `FileError`s naming the path.
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, lstat, mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { FileError } from "./errors.ts";

/** One file to write. */
export interface OutFile {
  path: string;
  data: string;
  /** Permission bits; default 0o644. */
  mode?: number;
}

/** Why a file operation failed, in words ("no such file", not `ENOENT`). */
export function fileProblem(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  return code === "ENOENT"
    ? "no such file"
    : code === "EACCES" || code === "EPERM"
    ? "permission denied"
    : code === "EISDIR"
    ? "is a directory"
    : code === "ENOTDIR"
    ? "a part of the path is not a directory"
    : code === "EEXIST"
    ? "something is in the way (a file where a directory should be)"
    : code === "ENOSPC"
    ? "no space left on the device"
    : code === "EROFS"
    ? "the file system is read-only"
    : (e as Error).message;
}

/** Reads a text file, turning errors into one clear line naming the file and its role. */
export async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (e) {
    throw new FileError(`cannot read ${what} ${path}: ${fileProblem(e)}`, { cause: e });
  }
}

/** Throws unless every target is absent (or `force`). */
export function refuseExisting(
  paths: string[],
  force: boolean,
  hint = "use --force to replace",
): void {
  if (force) return;
  for (const p of paths) {
    if (existsSync(p)) throw new FileError(`${p} already exists (${hint})`);
  }
}

/**
 * Writes all files atomically as a group: temp files first, then renames. On any error the
 * temp files, any renamed file and any directory made here are removed again.
 */
export async function writeAll(files: OutFile[], opts: { force?: boolean } = {}): Promise<void> {
  refuseExisting(files.map((f) => f.path), opts.force ?? false);
  const madeDirs: string[] = [];
  const temps: string[] = [];
  const placed: string[] = [];
  try {
    for (const f of files) {
      const dir = dirname(resolve(f.path));
      if (!existsSync(dir)) {
        const first = await mkdir(dir, { recursive: true, mode: 0o755 });
        if (first) madeDirs.push(first);
      } else if (!(await lstat(dir)).isDirectory()) {
        throw new FileError(`${dir} is not a directory`);
      }
    }
    for (const f of files) {
      const tmp = join(
        dirname(resolve(f.path)),
        `.${basename(f.path)}.${randomBytes(6).toString("hex")}.tmp`,
      );
      temps.push(tmp);
      await writeFile(tmp, f.data, { mode: f.mode ?? 0o644, flag: "wx" });
      await chmod(tmp, f.mode ?? 0o644); // exact, whatever the umask
    }
    for (const [i, f] of files.entries()) {
      await rename(temps[i]!, f.path);
      placed.push(f.path);
    }
  } catch (e) {
    for (const t of temps) await rm(t, { force: true }).catch(() => {});
    // A forced overwrite that fails half way cannot restore the old files; new ones are removed
    // only when they did not replace anything (not forced).
    if (!opts.force) { for (const p of placed) await rm(p, { force: true }).catch(() => {}); }
    for (const d of madeDirs) await rm(d, { recursive: true, force: true }).catch(() => {});
    if (e instanceof FileError) throw e;
    const err = e as NodeJS.ErrnoException;
    throw new FileError(`cannot write ${err.path ?? "output"}: ${fileProblem(err)}`, {
      cause: e,
    });
  }
}
