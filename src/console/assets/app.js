// The console's shell: session, navigation, halt banner, pending-approval count and the router.
// Pages live in ./pages/; each renders into <main> and returns a cleanup function.
import { get, request, setCsrfToken, withQuery } from "./api.js";
import { describeScope, h, replace, time, toast } from "./dom.js";
import * as live from "./live.js";
import { approvalsPage } from "./pages/approvals.js";
import { deliveriesPage } from "./pages/deliveries.js";
import { haltsPage } from "./pages/halts.js";
import { ledgerPage } from "./pages/ledger.js";
import { loginPage } from "./pages/login.js";
import { policiesPage } from "./pages/policies.js";
import { runPage } from "./pages/run.js";
import { runsPage } from "./pages/runs.js";
import { verifyPage } from "./pages/verify.js";

/**
 * What pages get: the signed-in operator and what they may do.
 * @typedef {{ session: { keyId: string, org: string, role: "reviewer" | "admin", name?: string, expiresAt: number }, isAdmin: boolean, navigate: (hash: string) => void }} Context
 */

const main = /** @type {HTMLElement} */ (document.getElementById("main"));
const header = /** @type {HTMLElement} */ (document.getElementById("top"));
const banner = /** @type {HTMLElement} */ (document.getElementById("halt-banner"));
/** @type {Context | undefined} */
let context;
/** @type {(() => void) | undefined} */
let cleanup;
/** @type {(() => void)[]} */
let shellSubscriptions = [];

const routes = [
  { pattern: /^\/runs\/([^/?]+)$/, page: runPage, name: "runs", title: "Run" },
  { pattern: /^\/runs$/, page: runsPage, name: "runs", title: "Runs" },
  { pattern: /^\/approvals$/, page: approvalsPage, name: "approvals", title: "Approvals" },
  { pattern: /^\/halts$/, page: haltsPage, name: "halts", title: "Halts" },
  { pattern: /^\/policies$/, page: policiesPage, name: "policies", title: "Policies" },
  { pattern: /^\/ledger$/, page: ledgerPage, name: "ledger", title: "Ledger" },
  { pattern: /^\/deliveries$/, page: deliveriesPage, name: "deliveries", title: "Channels" },
  { pattern: /^\/verify$/, page: verifyPage, name: "verify", title: "Verify evidence" },
];

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/runs";
  const [path, query = ""] = raw.split("?");
  return { path, params: new URLSearchParams(query) };
}

function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

async function route() {
  if (!context) return;
  cleanup?.();
  cleanup = undefined;
  const { path, params } = parseHash();
  const match = routes.map((r) => ({ r, m: r.pattern.exec(path) })).find((x) => x.m);
  for (const link of document.querySelectorAll("#nav a")) {
    if (match && link.getAttribute("data-route") === match.r.name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (!match) {
    replace(main, h("h1", { tabindex: "-1" }, "Not found"), h("p", null, "There is no such page. ", h("a", { href: "#/runs" }, "Go to runs")));
    return;
  }
  document.title = `${match.r.title} · Warden console`;
  main.replaceChildren(h("p", { class: "muted" }, "Loading…"));
  try {
    cleanup = await match.r.page(main, { params, args: match.m.slice(1).map(decodeURIComponent) }, context);
  } catch (error) {
    replace(main, h("h1", { tabindex: "-1" }, "Something went wrong"), h("p", { class: "form-error", role: "alert" }, error instanceof Error ? error.message : String(error)));
  }
  const heading = main.querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    if (routed) heading.focus({ preventScroll: false });
  }
  routed = true;
}
let routed = false;

// ── halt banner: always visible ─────────────────────────────────────────────────────────────
async function refreshHalts() {
  let halts;
  try {
    halts = (await get("/v1/halts")).halts;
  } catch {
    return;
  }
  banner.hidden = false;
  if (halts.length === 0) {
    banner.className = "halt-banner clear";
    replace(banner, h("span", { "aria-hidden": "true" }, "✓ "), "No halts in force: agents run under their policies. ", h("a", { href: "#/halts" }, "Halts"));
    return;
  }
  banner.className = "halt-banner halted";
  replace(
    banner,
    h("span", { "aria-hidden": "true" }, "■ "),
    `HALTED — ${halts.length} halt${halts.length === 1 ? "" : "s"} in force. `,
    h("a", { href: "#/halts" }, context?.isAdmin ? "Review or resume" : "Details"),
    h(
      "ul",
      null,
      halts.map((halt) => h("li", { dataset: { haltId: halt.haltId } }, `${describeScope(halt)}: “${halt.reason}” — by ${halt.actor ?? "unknown"} since `, time(halt.createdAt))),
    ),
  );
}

async function refreshPendingCount() {
  const badge = /** @type {HTMLElement} */ (document.getElementById("pending-count"));
  try {
    const page = await get(withQuery("/v1/approvals", { status: "pending", limit: 1 }));
    badge.hidden = page.total === 0;
    badge.textContent = String(page.total);
    badge.setAttribute("aria-label", `${page.total} pending`);
  } catch {
    // The count is a convenience; the inbox itself shows errors.
  }
}

function setLiveState(state) {
  const element = /** @type {HTMLElement} */ (document.getElementById("live-state"));
  element.dataset.state = state;
  element.textContent = state === "live" ? "● Live" : state === "connecting" ? "○ Connecting…" : "○ Offline — retrying";
}

// ── session ────────────────────────────────────────────────────────────────────────────────
function start(session) {
  setCsrfToken(session.csrfToken);
  context = { session, isAdmin: session.role === "admin", navigate };
  header.hidden = false;
  replace(/** @type {HTMLElement} */ (document.getElementById("who")), h("span", null, `${session.name ?? session.keyId} · `, h("strong", null, session.role), ` · org ${session.org}`));
  live.connect(setLiveState);
  shellSubscriptions = [
    live.on("halt.created", refreshHalts),
    live.on("halt.lifted", refreshHalts),
    live.on("reset", refreshHalts),
    live.on("approval.requested", refreshPendingCount),
    live.on("approval.resolved", refreshPendingCount),
    live.on("reset", refreshPendingCount),
  ];
  void refreshHalts();
  void refreshPendingCount();
  if (!location.hash || location.hash === "#/login") location.replace("#/runs");
  void route();
}

function stop(message) {
  cleanup?.();
  cleanup = undefined;
  for (const unsubscribe of shellSubscriptions) unsubscribe();
  shellSubscriptions = [];
  live.disconnect();
  setCsrfToken("");
  context = undefined;
  header.hidden = true;
  banner.hidden = true;
  loginPage(main, { message, onSignedIn: start });
}

window.addEventListener("hashchange", () => void route());
window.addEventListener("warden:signed-out", () => {
  if (context) stop("Your session ended. Sign in again.");
});
window.addEventListener("warden:stream-closed", async () => {
  try {
    const session = await get("/console/session");
    if (!session?.signedIn && context) stop("Your session ended. Sign in again.");
  } catch {
    // The server is unreachable: the stream keeps retrying.
  }
});
document.getElementById("sign-out")?.addEventListener("click", async () => {
  try {
    await request("DELETE", "/console/session");
  } catch (error) {
    toast(`Could not sign out: ${error instanceof Error ? error.message : error}`);
    return;
  }
  stop("Signed out.");
});

try {
  const session = await get("/console/session");
  if (session?.signedIn) start(session);
  else stop();
} catch {
  stop("The control plane did not answer. Reload to try again.");
}
