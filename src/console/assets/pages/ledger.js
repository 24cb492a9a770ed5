// The ledger: whether the organization's hash chain verifies, up to which entry, or the first bad
// entry. Each organization has its own chain, numbered from 1: every figure here is this
// organization's own (entries, head, checkpoints), never a count across organizations.
import { get } from "../api.js";
import { h, replace, time } from "../dom.js";

/** @param {HTMLElement} main @param {unknown} _route @param {import("../app.js").Context} context */
export async function ledgerPage(main, _route, context) {
  const org = context.session.org;
  const result = h("section", { class: "panel", id: "ledger-result", "aria-live": "polite" });
  const button = h("button", { type: "button", class: "primary" }, "Verify again");

  async function verify() {
    button.setAttribute("disabled", "");
    replace(result, h("p", { class: "muted" }, "Verifying the whole chain…"));
    try {
      const report = await get("/v1/ledger/verify");
      const checkedAt = Date.now();
      if (report.ok) {
        replace(
          result,
          h(
            "p",
            { class: "integrity ok", id: "ledger-status", dataset: { ok: "true" } },
            h("span", { "aria-hidden": "true" }, "✓ "),
            report.head ? `Verified up to entry ${report.head.seq}: all ${report.entries} entries of ${org}` : `Verified: ${org}'s ledger is empty`,
          ),
          h(
            "dl",
            { class: "facts", id: "ledger-facts" },
            h("dt", null, "Organization"),
            h("dd", { dataset: { fact: "org" } }, org),
            h("dt", null, "Entries"),
            h("dd", { dataset: { fact: "entries" } }, String(report.entries)),
            h("dt", null, "Signed checkpoints"),
            h("dd", { dataset: { fact: "checkpoints" } }, String(report.checkpoints)),
            report.head ? [h("dt", null, "Head hash"), h("dd", { class: "mono" }, report.head.hash)] : null,
            h("dt", null, "Checked"),
            h("dd", null, time(checkedAt)),
          ),
        );
      } else {
        replace(
          result,
          h(
            "p",
            { class: "integrity bad", id: "ledger-status", dataset: { ok: "false" } },
            h("span", { "aria-hidden": "true" }, "✗ "),
            report.firstBadSeq === undefined ? `Tampering detected in ${org}'s ledger` : `Tampering detected: first bad entry is ${report.firstBadSeq}`,
          ),
          h("p", null, "Problem: ", report.problem),
          h(
            "p",
            null,
            report.firstBadSeq === undefined
              ? `${org}'s chain cannot be trusted (${report.entries} entries checked before the problem). Checked `
              : `${org}'s entries before it verify (${report.entries}); that entry and every one after it cannot be trusted. Checked `,
            time(checkedAt),
            ".",
          ),
        );
      }
    } catch (error) {
      replace(result, h("p", { class: "form-error", role: "alert" }, `Could not verify: ${error instanceof Error ? error.message : error}`));
    } finally {
      button.removeAttribute("disabled");
    }
  }
  button.addEventListener("click", () => void verify());

  replace(
    main,
    h("h1", null, "Ledger"),
    h("p", null, `Every decision, approval, halt and policy change of ${org} is an entry in its own append-only, hash-chained ledger with signed checkpoints. Verifying recomputes every hash and checks every signature.`),
    result,
    h("div", { class: "actions" }, button, h("a", { class: "button", href: "/v1/ledger/export", download: "warden-ledger.jsonl" }, "Export as JSON Lines")),
  );
  await verify();
}
