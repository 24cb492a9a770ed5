/// <reference types="vite/client" />
import { mkdirSync, writeFileSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import type { Surface } from "./harness.js";
import { knownGaps } from "./known-gaps.js";
import { runScenario } from "./run-scenario.js";
import { scenarios } from "./scenarios.js";

// Every file in surfaces/ exports one `surface`: adding a surface is adding a file.
const modules = import.meta.glob<{ surface: Surface }>("./surfaces/*.ts", { eager: true });
const surfaces = Object.values(modules)
  .map((module) => module.surface)
  .sort((a, b) => a.name.localeCompare(b.name));

const matrix = new Map<string, Map<string, string>>();
const cell = (surface: string, scenario: string, text: string) => {
  if (!matrix.has(surface)) matrix.set(surface, new Map());
  matrix.get(surface)!.set(scenario, text);
};

describe.each(surfaces.map((surface) => [surface.name, surface] as const))("%s", (name, surface) => {
  for (const scenario of scenarios) {
    const cannot = surface.cannot?.(scenario.id);
    if (cannot !== undefined) {
      cell(name, scenario.id, `n/a: ${cannot}`);
      it.skip(`${scenario.id}: not expressible (${cannot})`, () => {});
      continue;
    }
    const gap = knownGaps[`${name} / ${scenario.id}`];
    (gap === undefined ? it : it.fails)(`${scenario.id}: ${scenario.title}${gap === undefined ? "" : ` (known gap: ${gap})`}`, async () => {
      cell(name, scenario.id, "✗ did not finish");
      const result = await runScenario(surface, scenario);
      const { expect: want } = scenario;
      cell(name, scenario.id, `✗ ${result.driven.outcome}: ${result.driven.received}`);
      expect(result.driven.outcome, result.driven.received).toBe(want.outcome);
      expect(result.bodyRan, "whether the tool body ran").toBe(want.bodyRan);
      if (want.status) expect(want.status, `recorded status ${result.status}`).toContain(result.status);
      for (const type of want.events ?? []) expect(result.events, `event ${type}`).toContain(type);
      if (want.refusalRecorded) expect(result.afterHalt?.length ?? 0, "a ledger entry records the refusal after the halt").toBeGreaterThan(0);
      if (want.redacted) expect(result.secretFound, "the secret was recorded").toBe(false);
      expect(result.unfinished, "calls left pending or awaiting approval").toEqual([]);
      cell(name, scenario.id, `✓ ${result.driven.outcome}: ${result.driven.received}`);
    });
  }
});

afterAll(() => {
  const header = `| surface | ${scenarios.map((s) => s.id).join(" | ")} |`;
  const rule = `| --- | ${scenarios.map(() => "---").join(" | ")} |`;
  const rows = [...matrix].map(([surface, cells]) => `| ${surface} | ${scenarios.map((s) => (cells.get(s.id) ?? "").replaceAll("|", "/")).join(" | ")} |`);
  const text = [header, rule, ...rows].join("\n");
  mkdirSync("test-results", { recursive: true });
  writeFileSync("test-results/conformance.md", `${text}\n`);
  if (process.env.WARDEN_CONFORMANCE_MATRIX) console.log(text);
});
