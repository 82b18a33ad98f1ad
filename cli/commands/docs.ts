/**
 * `macula docs [page]` — the guides of docs/, embedded in the binary: the help of every command
 * points here ("Guide: macula docs nat-traversal"), so it points at something that ships.
 */
import { Command, InvalidArgumentError } from "@commander-js/extra-typings";
import architecture from "../../docs/architecture.md" with { type: "text" };
import benchmarks from "../../docs/benchmarks.md" with { type: "text" };
import certificates from "../../docs/certificates.md" with { type: "text" };
import cli from "../../docs/cli.md" with { type: "text" };
import client from "../../docs/client.md" with { type: "text" };
import comparison from "../../docs/comparison.md" with { type: "text" };
import contexts from "../../docs/contexts.md" with { type: "text" };
import dht from "../../docs/dht.md" with { type: "text" };
import faq from "../../docs/faq.md" with { type: "text" };
import glossary from "../../docs/glossary.md" with { type: "text" };
import load_testing from "../../docs/load-testing.md" with { type: "text" };
import membership from "../../docs/membership.md" with { type: "text" };
import messaging from "../../docs/messaging.md" with { type: "text" };
import nat_traversal from "../../docs/nat-traversal.md" with { type: "text" };
import operations from "../../docs/operations.md" with { type: "text" };
import overlay from "../../docs/overlay.md" with { type: "text" };
import quic from "../../docs/quic.md" with { type: "text" };
import quickstart from "../../docs/quickstart.md" with { type: "text" };
import routing from "../../docs/routing.md" with { type: "text" };
import security from "../../docs/security.md" with { type: "text" };
import simulator from "../../docs/simulator.md" with { type: "text" };
import troubleshooting from "../../docs/troubleshooting.md" with { type: "text" };
import tracing from "../../docs/tracing.md" with { type: "text" };
import tuning from "../../docs/tuning.md" with { type: "text" };
import tutorial from "../../docs/tutorial.md" with { type: "text" };
import wire_protocol from "../../docs/wire-protocol.md" with { type: "text" };
import { guarded, out } from "./shared.ts";

/** Every page of docs/, by file name without `.md` (test/cli/docs.test.ts keeps it complete). */
export const PAGES: Readonly<Record<string, string>> = {
  "architecture": architecture,
  "benchmarks": benchmarks,
  "certificates": certificates,
  "cli": cli,
  "client": client,
  "comparison": comparison,
  "contexts": contexts,
  "dht": dht,
  "faq": faq,
  "glossary": glossary,
  "load-testing": load_testing,
  "membership": membership,
  "messaging": messaging,
  "nat-traversal": nat_traversal,
  "operations": operations,
  "overlay": overlay,
  "quic": quic,
  "quickstart": quickstart,
  "routing": routing,
  "security": security,
  "simulator": simulator,
  "troubleshooting": troubleshooting,
  "tracing": tracing,
  "tuning": tuning,
  "tutorial": tutorial,
  "wire-protocol": wire_protocol,
};

/**
 * A page as a reader gets it: without the test directives (`<!-- step: … -->` and the like, on
 * lines of their own, which tell test/docs how to run the page) and the blank line after each.
 */
export function readable(page: string): string {
  return page.replace(/^<!-- [\s\S]*? -->\n(\n)?/gm, "");
}

/** A page's title: its first line without the leading `#`. */
export function titleOf(page: string): string {
  return (PAGES[page] ?? "").split("\n", 1)[0]!.replace(/^#\s*/, "");
}

function pageArg(v: string): string {
  if (!(v in PAGES)) {
    throw new InvalidArgumentError(
      `no page named ${JSON.stringify(v)} ('macula docs' lists them: ${
        Object.keys(PAGES).join(", ")
      })`,
    );
  }
  return v;
}

/** Builds `macula docs`. */
export function docsCommand() {
  return new Command("docs")
    .description("read the guides (Markdown, from the binary): 'macula docs' lists them")
    .argument("[page]", "the page to print, e.g. quickstart", pageArg)
    .addHelpText(
      "after",
      `
The same pages as docs/ in the source tree, as Markdown on stdout: pipe them to a pager or a
Markdown viewer.

Examples:
  $ macula docs                              every page and its title
  $ macula docs quickstart | less            three nodes by hand
  $ macula docs troubleshooting | grep -A5 unknown_ca

Exit codes: 0 printed, 2 no such page.`,
    )
    .action(guarded("macula docs", async (page?: string) => {
      if (page !== undefined) return await out(readable(PAGES[page]!));
      const width = Math.max(...Object.keys(PAGES).map((p) => p.length));
      await out(
        Object.keys(PAGES).map((p) => `${p.padEnd(width)}  ${titleOf(p)}\n`).join("") +
          "\nmacula docs <page> prints one.\n",
      );
    }));
}
