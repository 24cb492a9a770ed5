// The ledger: whether the hash chain verifies, up to which entry, or the first bad entry. The chain is
// shared by every organization; the report speaks only of this organization's entries.
import { get } from "../api.js";
import { h, replace, time } from "../dom.js";

/** @param {HTMLElement} main */
export async function ledgerPage(main) {
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
          h("p", { class: "integrity ok", id: "ledger-status", dataset: { ok: "true" } }, h("span", { "aria-hidden": "true" }, "✓ "), report.head ? `Verified up to entry ${report.head.seq}` : "Verified: the ledger is empty"),
          h(
            "dl",
            { class: "facts" },
            h("dt", null, "Entries of this organization"),
            h("dd", null, String(report.entries)),
            h("dt", null, "Signed checkpoints"),
            h("dd", null, String(report.checkpoints)),
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
            report.firstBadSeq === undefined ? "Tampering detected in the shared ledger" : `Tampering detected: first bad entry is ${report.firstBadSeq}`,
          ),
          h("p", null, "Problem: ", report.problem),
          h(
            "p",
            null,
            report.firstBadSeq === undefined ? "Entries after the bad one, this organization's among them, cannot be trusted. Checked " : "Entries before it verify; that entry and every one after it cannot be trusted. Checked ",
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
    h("p", null, "Every decision, approval, halt and policy change is an entry in an append-only, hash-chained ledger with signed checkpoints. Verifying recomputes every hash and checks every signature."),
    result,
    h("div", { class: "actions" }, button, h("a", { class: "button", href: "/v1/ledger/export", download: "warden-ledger.jsonl" }, "Export as JSON Lines")),
  );
  await verify();
}
