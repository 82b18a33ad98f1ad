/** `macula node up` flags over the config file (cli/commands/node.ts `nodeConfig`), in process. */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nodeConfig } from "../../cli/commands/node.ts";

const dir = mkdtempSync(join(tmpdir(), "macula-flags-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("--no-relay turns relaying off and keeps the file's other relay keys; without it the file decides", () => {
  const file = join(dir, "node.yaml");
  writeFileSync(file, "relay: { sessions_per_peer: 4 }\n");
  expect(nodeConfig({ config: file, relay: false }).relay).toMatchObject({
    enabled: false,
    sessionsPerPeer: 4,
  });
  expect(nodeConfig({ config: file, relay: true }).relay).toMatchObject({
    enabled: true,
    sessionsPerPeer: 4,
  });
  writeFileSync(file, "relay: { enabled: false }\n");
  expect(nodeConfig({ config: file, relay: true }).relay.enabled).toBe(false);
  expect(nodeConfig({}).relay.enabled).toBe(true);
});
