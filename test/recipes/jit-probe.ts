/**
 * For test/recipes/systemd.test.ts: does this Bun map a writable and executable JIT region?
 * Prints `{"mdwe":…,"rwxRegion":…}`. With `--mdwe` it first turns on the kernel's W^X for itself
 * and its children (prctl PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN: what MemoryDenyWriteExecute=yes
 * asks for) and runs the probe again in a child, which starts under it.
 */
import { dlopen, FFIType } from "bun:ffi";
import { readFileSync } from "node:fs";
import process from "node:process";

const PR_SET_MDWE = 65;
const PR_GET_MDWE = 66;
const PR_MDWE_REFUSE_EXEC_GAIN = 1;

if (process.argv.includes("--mdwe")) {
  // bun:ffi itself needs the JIT, so only this parent uses it; the child learns from its argv
  // that it runs under W^X (PR_SET_MDWE is inherited across fork and exec).
  const libc = dlopen("libc.so.6", {
    prctl: {
      args: [FFIType.i32, FFIType.u64, FFIType.u64, FFIType.u64, FFIType.u64],
      returns: FFIType.i32,
    },
  });
  const set = libc.symbols.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0);
  const got = libc.symbols.prctl(PR_GET_MDWE, 0, 0, 0, 0);
  if (set !== 0 || (got & PR_MDWE_REFUSE_EXEC_GAIN) === 0) {
    process.stderr.write(`jit-probe: prctl(PR_SET_MDWE) failed (${set}, ${got})\n`);
    process.exit(3);
  }
  const child = Bun.spawnSync([process.execPath, import.meta.path, "--under-mdwe"], {
    timeout: 30_000,
  });
  process.stdout.write(child.stdout);
  process.stderr.write(child.stderr);
  process.exit(child.exitCode ?? 1);
}

// Hot code, so that the JIT has compiled something by the time the mappings are read.
function work(n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += i % 7;
  return s;
}
let sum = 0;
for (let k = 0; k < 50; k++) sum += work(100_000);

const rwxRegion = readFileSync("/proc/self/maps", "utf8").split("\n").some((l) => {
  const f = l.split(/\s+/);
  return f[1] === "rwxp" && (f[5] ?? "") === "";
});
if (sum <= 0) throw new Error("the work did not run");
const mdwe = process.argv.includes("--under-mdwe");
process.stdout.write(`${JSON.stringify({ mdwe, rwxRegion })}\n`);
