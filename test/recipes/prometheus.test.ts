/**
 * recipes/prometheus with Debian's promtool (provisioned by scripts/provision.ts): the scrape
 * config and its rule file are valid, the alert's own unit tests pass, and the default target is
 * the admin listener's address in the other recipes' configs. Debian's `prometheus` running this
 * scrape config against a live mesh's admin listeners is in grafana.test.ts (with the dashboard's
 * queries).
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { parse } from "yaml";
import { recipe, RECIPES, tool } from "./helpers.ts";

const DIR = join(RECIPES, "prometheus");

describe("recipes/prometheus", () => {
  test("promtool check config passes on prometheus.yml (and its rule file)", async () => {
    const r = await tool(["promtool", "check", "config", "prometheus.yml"], { cwd: DIR });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("SUCCESS: 1 rule files found");
  });

  test("promtool test rules: MaculaNodeDown fires after a minute without a scrape", async () => {
    const r = await tool(["promtool", "test", "rules", "rules.test.yml"], { cwd: DIR });
    expect(r.stdout).toContain("SUCCESS");
    expect(r.code).toBe(0);
  });

  test("the default target is the admin listener of the systemd recipe's node", () => {
    const targets = parse(recipe("prometheus/targets/local.yml")) as { targets: string[] }[];
    const node = parse(recipe("systemd/node.yaml")) as { admin: { listen: string } };
    expect(targets.flatMap((t) => t.targets)).toEqual([node.admin.listen]);
    const config = parse(recipe("prometheus/prometheus.yml")) as {
      scrape_configs: { job_name: string; metrics_path: string }[];
    };
    expect(config.scrape_configs.map((s) => [s.job_name, s.metrics_path])).toEqual([
      ["macula", "/metrics"],
    ]);
  });
});
