// Verify: an evidence bundle (from `warden evidence` or GET /v1/evidence/…) dropped or chosen here is
// verified in this browser, by agent-warden/verify itself (WebCrypto Ed25519 and SHA-256): nothing is
// sent to the control plane, so the verdict does not rest on trusting it.
import { h, replace, time } from "../dom.js";

/** The verifier (agent-warden/verify bundled for the browser), loaded on first use. @type {Promise<any> | undefined} */
let verifier;
const loadVerifier = () => (verifier ??= import("../verifier.js"));

/** @param {HTMLElement} main */
export async function verifyPage(main) {
  const result = h("section", { class: "panel", id: "verify-result", "aria-live": "polite" }, h("p", { class: "muted" }, "No bundle checked yet."));
  const input = h("input", { type: "file", id: "bundle-file", accept: ".json,application/json", "aria-describedby": "bundle-file-hint" });
  const key = h("textarea", { id: "public-key", rows: "3", spellcheck: "false", "aria-describedby": "public-key-hint", placeholder: "-----BEGIN PUBLIC KEY-----" });
  const zone = h(
    "div",
    { class: "drop-zone", id: "drop-zone" },
    h("p", null, h("strong", null, "Drop a bundle file here"), " or choose one:"),
    h("div", { class: "field" }, h("label", { for: "bundle-file" }, "Evidence bundle (JSON)"), input, h("p", { class: "hint", id: "bundle-file-hint" }, "Written by warden evidence <runId|toolCallId> -o file.json, or GET /v1/evidence/…")),
  );
  /** @type {File | undefined} */
  let last;

  async function check(file) {
    last = file;
    replace(result, h("p", { class: "muted" }, `Verifying ${file.name}…`));
    let bundle;
    try {
      bundle = JSON.parse(await file.text());
    } catch {
      show(file, { ok: false, code: "bundle_malformed", problem: `${file.name} is not JSON`, failures: [{ code: "bundle_malformed", problem: `${file.name} is not JSON` }] });
      return;
    }
    const pem = /** @type {HTMLTextAreaElement} */ (key).value.trim();
    try {
      const { verifyBundle } = await loadVerifier();
      show(file, await verifyBundle(bundle, pem === "" ? {} : { publicKey: pem }));
    } catch (error) {
      replace(result, h("p", { class: "form-error", role: "alert" }, `Could not verify: ${error instanceof Error ? error.message : error}`));
    }
  }

  function show(file, verdict) {
    if (verdict.ok) {
      replace(
        result,
        h("p", { class: "integrity ok", id: "verify-status", dataset: { ok: "true" } }, h("span", { "aria-hidden": "true" }, "✓ "), `Verified: ${file.name}`),
        h("p", { id: "verify-statement" }, verdict.statement),
        h(
          "dl",
          { class: "facts" },
          h("dt", null, "Subject"),
          h("dd", { class: "mono" }, `${verdict.subject.kind} ${verdict.subject.id}`),
          h("dt", null, "Entries"),
          h("dd", null, `${verdict.entries.from}..${verdict.entries.to} (${verdict.entries.count})`),
          h("dt", null, "Checkpoint"),
          h("dd", null, `size ${verdict.checkpoint.size}, root `, h("span", { class: "mono" }, verdict.checkpoint.root)),
          h("dt", null, "Signed by"),
          h("dd", { class: "mono" }, verdict.key.verifierKey),
          h("dt", null, "Key"),
          h("dd", null, verdict.key.source === "supplied" ? "the public key given above" : "the bundle's own key: paste the key obtained out of band above to prove it is the log's"),
          verdict.policy ? [h("dt", null, "Policy set"), h("dd", { class: "mono" }, verdict.policy.hash)] : null,
          verdict.approvals.map((a) => [
            h("dt", null, `Approval (${a.status})`),
            h("dd", null, `${a.reviewer ?? "unknown"} at `, time(a.ts), a.reason ? ` — “${a.reason}”` : "", a.request?.policyId ? ` (asked by policy ${a.request.policyId})` : ""),
          ]),
        ),
      );
      return;
    }
    replace(
      result,
      h("p", { class: "integrity bad", id: "verify-status", dataset: { ok: "false", code: verdict.code } }, h("span", { "aria-hidden": "true" }, "✗ "), `Not verified: ${file.name}`),
      h(
        "ul",
        { id: "verify-failures" },
        verdict.failures.map((f) => h("li", { dataset: { code: f.code } }, h("code", null, f.code), " ", f.problem)),
      ),
    );
  }

  input.addEventListener("change", () => {
    const file = /** @type {HTMLInputElement} */ (input).files?.[0];
    if (file) void check(file);
  });
  key.addEventListener("change", () => {
    if (last) void check(last);
  });
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    const file = event.dataTransfer?.files?.[0];
    if (file) void check(file);
  });

  replace(
    main,
    h("h1", null, "Verify evidence"),
    h("p", null, "Check an evidence bundle here, in this browser: every entry's hash and chain link, its inclusion proof to the signed checkpoint, the checkpoint's signature, the policy set's text and the approvals. The file never leaves this page."),
    zone,
    h("div", { class: "field" }, h("label", { for: "public-key" }, "Log public key (optional)"), key, h("p", { class: "hint", id: "public-key-hint" }, "PEM or verifier key obtained out of band. Without it the bundle is checked against its own key.")),
    result,
  );
}
