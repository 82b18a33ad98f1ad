/**
 * Macula nodes in the NAT lab: a rendezvous node on the lab's internet and one `macula node up`
 * process per lab host (behind its NAT, advertising only its LAN address), all sharing the
 * rendezvous's dev CA. Used by test/nat/traversal-lab.test.ts and bench/nat.
 */
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import process from "node:process";
import type { Host, Lab } from "./natlab.ts";
import { Proc } from "./proc.ts";

/** The CLI entry point, run from source. */
export const MAIN = resolve(import.meta.dir, "../../cli/main.ts");

export interface LabNodes {
  rendezvous: { nodeId: string; caDir: string; credsDir: string };
  nodes: { host: Host; id: string; proc: Proc }[];
  procs: Proc[];
  /** Runs `macula …args` in `ns` against that namespace's node. */
  cli(ns: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  /** Kills every node process. */
  kill(): void;
}

/** Starts the rendezvous and one node per host of `lab`; `dir` holds their data. */
export async function startLabNodes(lab: Lab, dir: string): Promise<LabNodes> {
  const procs: Proc[] = [];
  const start = async (ns: string, args: string[]) => {
    const p = new Proc(
      ["node", "up", ...args],
      lab.spawn(ns, [process.execPath, MAIN, "node", "up", ...args, "--ready-json"]),
    );
    procs.push(p);
    await p.waitFor("out", "\n", 30_000);
    return { ...(JSON.parse(p.lines()[0]!) as LabNodes["rendezvous"]), proc: p };
  };
  const r = await start(lab.internet.ns, [
    "--data-dir",
    join(dir, "r"),
    "--listen",
    `${lab.internet.addresses[0]}:4433`,
  ]);
  const nodes: LabNodes["nodes"] = [];
  for (const host of lab.hosts) {
    const config = join(dir, `${host.name}.yaml`);
    // A node behind a NAT knows only its LAN address.
    writeFileSync(config, `advertise: quic://${host.address}:4433\n`);
    const n = await start(host.ns, [
      "--config",
      config,
      "--data-dir",
      join(dir, host.name),
      "--dev-ca-dir",
      r.caDir,
      "--listen",
      "0.0.0.0:4433",
      "--join",
      `quic://${lab.internet.addresses[0]}:4433`,
    ]);
    nodes.push({ host, id: n.nodeId, proc: n.proc });
  }
  return {
    rendezvous: { nodeId: r.nodeId, caDir: r.caDir, credsDir: r.credsDir },
    nodes,
    procs,
    cli: (ns, args) =>
      lab.exec(ns, [
        process.execPath,
        MAIN,
        ...args,
        "--server",
        "quic://127.0.0.1:4433",
        "--creds",
        r.credsDir,
      ], { timeoutMs: 60_000 }),
    kill: () => {
      for (const p of procs) p.p.kill("SIGKILL");
    },
  };
}
