import { it } from "vitest";
import { scenarios } from "./conformance/scenarios.js";
import * as runMod from "./conformance/run-scenario.js";
import type { Surface } from "./conformance/harness.js";
const modules = import.meta.glob<{ surface: Surface }>("./conformance/surfaces/*.ts", { eager: true });
it("probe", async () => {
  const rows: string[] = [];
  for (const { surface } of Object.values(modules)) {
    if (surface.name.startsWith("hook")) continue;
    const cells: string[] = [];
    for (const id of ["block", "approval-rejected", "halt-during", "tool-throws", "allow"]) {
      const scenario = scenarios.find((s) => s.id === id)!;
      if (surface.cannot?.(scenario.id)) { cells.push(`${id}=n/a`); continue; }
      const r = await runMod.runScenario(surface, scenario);
      cells.push(`${id}=${(r as any).runs}`);
    }
    rows.push(`${surface.name}: ${cells.join("  ")}`);
  }
  console.log(rows.join("\n"));
}, 300_000);
