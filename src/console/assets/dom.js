// DOM helpers. Text is always set as text (never as HTML), so recorded data cannot inject markup.

/**
 * Creates an element: `h("a", { href: "#/runs", class: "x", onclick: fn }, "text", child)`.
 * @param {string} tag
 * @param {Record<string, unknown> | null} [props]
 * @param {...unknown} children
 * @returns {HTMLElement}
 */
export function h(tag, props, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") element.addEventListener(key.slice(2), /** @type {EventListener} */ (value));
    else if (key === "class") element.className = String(value);
    else if (key === "dataset") Object.assign(element.dataset, value);
    else if (key === "value" && "value" in element) /** @type {HTMLInputElement} */ (element).value = String(value);
    else if (value === true) element.setAttribute(key, "");
    else element.setAttribute(key, String(value));
  }
  append(element, children);
  return element;
}

/** @param {Element} parent @param {unknown[]} children */
export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** @param {Element} element @param {...unknown} children */
export function replace(element, ...children) {
  element.replaceChildren();
  append(element, children);
}

const pad = (n, w = 2) => String(n).padStart(w, "0");

/** `2025-01-31 14:05:09` in local time, inside a <time> with the ISO value. */
export function time(ts) {
  if (typeof ts !== "number") return h("span", { class: "muted" }, "—");
  const d = new Date(ts);
  const text = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return h("time", { datetime: d.toISOString(), title: d.toISOString() }, text);
}

/** `1.2 s`, `340 ms`, `3 min 5 s`. */
export function duration(ms) {
  if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const seconds = Math.round(ms / 1000);
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
  const minutes = Math.round(seconds / 60);
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** `in 14 min`, `3 s ago`. */
export function relative(ts, now = Date.now()) {
  const delta = ts - now;
  const text = duration(Math.abs(delta));
  return delta >= 0 ? `in ${text}` : `${text} ago`;
}

/** Every status and decision the console shows: icon, word, tone. The word is always shown. */
const STATUS = {
  running: ["●", "Running", "info"],
  completed: ["✓", "Completed", "ok"],
  failed: ["✗", "Failed", "bad"],
  pending: ["…", "Pending", "warn"],
  blocked: ["✖", "Blocked", "bad"],
  awaiting_approval: ["‖", "Awaiting approval", "warn"],
  rejected: ["✗", "Rejected", "bad"],
  approved: ["✓", "Approved", "ok"],
  expired: ["◷", "Expired", "neutral"],
  cancelled: ["⊘", "Cancelled", "neutral"],
  allow: ["✓", "Allow", "ok"],
  warn: ["⚠", "Warn", "warn"],
  block: ["✖", "Block", "bad"],
  require_approval: ["⚑", "Needs approval", "warn"],
  halted: ["■", "Halted", "bad"],
  active: ["■", "In force", "bad"],
  lifted: ["↺", "Lifted", "neutral"],
  shadow: ["◌", "Shadow", "info"],
  enforce: ["■", "Enforced", "neutral"],
};

/**
 * A status badge: icon and text, so it reads without colour.
 * @param {string} status
 * @param {string} [prefix] words before the label, e.g. "Decision:" for screen readers
 */
export function badge(status, prefix) {
  const [icon, label, tone] = STATUS[status] ?? ["•", String(status ?? "unknown"), "neutral"];
  return h(
    "span",
    { class: `badge ${tone}${status === "shadow" ? " shadow" : ""}`, dataset: { status: String(status) } },
    h("span", { class: "icon", "aria-hidden": "true" }, icon),
    prefix ? h("span", { class: "visually-hidden" }, `${prefix} `) : null,
    label,
  );
}

/** Pretty JSON in a <pre>, or a dash when there is nothing. */
export function json(value) {
  if (value === undefined) return h("p", { class: "muted" }, "— (none recorded)");
  return h("pre", { class: "json", tabindex: "0" }, JSON.stringify(value, null, 2));
}

/** A definition list from [term, value] pairs, skipping empty values. */
export function facts(pairs) {
  const dl = h("dl", { class: "facts" });
  for (const [term, value] of pairs) {
    if (value === undefined || value === null || value === "") continue;
    dl.append(h("dt", null, term), h("dd", null, value));
  }
  return dl;
}

/** Short form of a long id, with the full id as title. */
export function shortId(id) {
  const text = String(id);
  return h("span", { class: "mono", title: text }, text.length > 22 ? `${text.slice(0, 10)}…${text.slice(-8)}` : text);
}

/** A table with a caption, header labels repeated on each cell for the narrow layout. */
export function table(caption, headers, rows, options = {}) {
  const tbody = h("tbody");
  for (const row of rows) tbody.append(row instanceof HTMLElement ? row : tableRow(headers, row));
  return h(
    "div",
    { class: "table-wrap" },
    h("table", { class: "responsive", ...(options.id && { id: options.id }) }, h("caption", { class: options.hideCaption ? "visually-hidden" : undefined }, caption), h("thead", null, h("tr", null, headers.map((label) => h("th", { scope: "col" }, label)))), tbody),
  );
}

/** @param {string[]} headers @param {unknown[]} cells @param {Record<string, unknown>} [props] */
export function tableRow(headers, cells, props) {
  return h(
    "tr",
    props ?? null,
    cells.map((cell, i) => h("td", { "data-label": headers[i] }, cell)),
  );
}

/** Announces a short message to screen readers. */
export function announce(message) {
  const region = document.getElementById("announcer");
  if (!region) return;
  region.textContent = "";
  setTimeout(() => (region.textContent = message), 30);
}

/** A transient message in the corner (also announced). */
export function toast(message) {
  const region = document.getElementById("toast");
  if (!region) return;
  const item = h("div", null, message);
  region.append(item);
  setTimeout(() => item.remove(), 6000);
}

/**
 * Opens a modal confirmation. Resolves true on confirm, false on cancel or Escape.
 * @param {{ title: string, body: unknown[], confirm: string, danger?: boolean }} options
 */
export function confirmDialog({ title, body, confirm, danger = false }) {
  return new Promise((resolve) => {
    const titleId = `dialog-${Math.random().toString(36).slice(2)}`;
    const dialog = h(
      "dialog",
      { "aria-labelledby": titleId },
      h("h2", { id: titleId }, title),
      ...body,
      h(
        "form",
        { method: "dialog", class: "actions" },
        h("button", { type: "submit", value: "confirm", class: danger ? "danger" : "primary" }, confirm),
        h("button", { type: "submit", value: "cancel", autofocus: true }, "Cancel"),
      ),
    );
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "confirm");
      dialog.remove();
    });
    document.body.append(dialog);
    /** @type {HTMLDialogElement} */ (dialog).showModal();
  });
}

/** "Whole organization", "Agent billing-agent", "Group payments", "Run run_…". */
export function describeScope(halt) {
  return halt.scope === "organization" ? "Whole organization" : `${halt.scope[0].toUpperCase()}${halt.scope.slice(1)} ${halt.target}`;
}

/** A child's identity across renders: its id, or its `data-key`. */
function keyOf(node) {
  return node.nodeType === Node.ELEMENT_NODE ? /** @type {Element} */ (node).id || /** @type {HTMLElement} */ (node).dataset?.key || null : null;
}

/**
 * Brings `current` to look like `next` in place: nodes that stay keep their identity, so the
 * reader's scroll position, text selection, focus and opened <details> survive a live update. A
 * <details> keeps the open state the reader gave it; children are matched by id or `data-key`,
 * else by position.
 * @param {Node} current @param {Node} next
 */
export function morph(current, next) {
  if (current.nodeType !== next.nodeType || current.nodeName !== next.nodeName) {
    /** @type {ChildNode} */ (current).replaceWith(next);
    return;
  }
  if (current.nodeType === Node.TEXT_NODE) {
    if (/** @type {Text} */ (current).data !== /** @type {Text} */ (next).data) /** @type {Text} */ (current).data = /** @type {Text} */ (next).data;
    return;
  }
  if (current.nodeType !== Node.ELEMENT_NODE) return;
  const from = /** @type {Element} */ (current);
  const to = /** @type {Element} */ (next);
  const keepOpen = from.tagName === "DETAILS";
  for (const attribute of [...from.attributes]) if (!to.hasAttribute(attribute.name) && !(keepOpen && attribute.name === "open")) from.removeAttribute(attribute.name);
  for (const attribute of [...to.attributes]) {
    if (keepOpen && attribute.name === "open") continue;
    if (from.getAttribute(attribute.name) !== attribute.value) from.setAttribute(attribute.name, attribute.value);
  }
  const wanted = [...to.childNodes];
  const keyed = new Map();
  for (const child of from.childNodes) {
    const key = keyOf(child);
    if (key) keyed.set(key, child);
  }
  let cursor = from.firstChild;
  for (const child of wanted) {
    const key = keyOf(child);
    let match = key ? keyed.get(key) : cursor && !keyOf(cursor) && cursor.nodeType === child.nodeType && cursor.nodeName === child.nodeName ? cursor : undefined;
    if (match === undefined) {
      from.insertBefore(child, cursor);
      continue;
    }
    keyed.delete(key);
    if (match === cursor) cursor = cursor.nextSibling;
    else from.insertBefore(match, cursor);
    morph(match, child);
  }
  while (cursor) {
    const after = cursor.nextSibling;
    cursor.remove();
    cursor = after;
  }
}
