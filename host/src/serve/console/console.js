// The wscan console: plain JavaScript over the public /v1 API only (the
// same requests a script would make), served by `wscan serve` itself.
// The token is kept in sessionStorage (this tab, until it closes), sent as
// a bearer header, never put in a URL.

const main = document.getElementById("main");
const who = document.getElementById("who");
const logoutButton = document.getElementById("logout");
const TOKEN_KEY = "wscan-token";
const ROLES = { read: 0, scan: 1, admin: 2 };
let session = null; // {name, role, open}
let live = null; // the AbortController of the live view's stream

/** An element: el("td", {class: "x"}, "text", child...). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child !== undefined && child !== null) node.append(child);
  }
  return node;
}

class ApiError extends Error {
  constructor(status, body) {
    super(body && body.error ? body.error : `HTTP ${status}`);
    this.status = status;
    this.field = body && body.field;
  }
}

/** A request to the API with the session's token; JSON back. */
async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(path, Object.assign({}, options, { headers }));
  const text = await response.text();
  const body = text ? JSON.parse(text) : null;
  if (response.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    // No token yet: the login screen, without an error; a token refused:
    // why, in the API's words.
    showLogin(token ? body && body.error : null);
    throw new ApiError(401, body);
  }
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

function may(role) {
  return session && ROLES[session.role] >= ROLES[role];
}

// ---- Login ---------------------------------------------------------------

function showLogin(message) {
  session = null;
  who.textContent = "";
  logoutButton.hidden = true;
  if (live) live.abort();
  const input = el("input", { id: "token", type: "password", autocomplete: "off", required: true,
    "aria-describedby": "login-help" });
  const form = el("form", { class: "card", id: "login" },
    el("h2", {}, "Log in"),
    message ? el("p", { class: "error", role: "alert", id: "login-error" }, message) : null,
    el("label", { for: "token" }, "Token"),
    input,
    el("p", { class: "muted", id: "login-help" },
      "A token made with `wscan token create NAME --role read|scan|admin`. It is kept for this tab only."),
    el("button", { class: "primary", type: "submit" }, "Log in"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    await start();
  });
  main.replaceChildren(form);
  input.focus();
}

logoutButton.addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  showLogin("Logged out.");
});

async function start() {
  try {
    session = await api("/v1/whoami");
  } catch (e) {
    if (e.status !== 401) main.replaceChildren(el("p", { class: "error" }, e.message));
    return;
  }
  who.textContent = session.open ? "open service (no tokens)" : `${session.name} (${session.role})`;
  logoutButton.hidden = !!session.open;
  route();
}

// ---- Routing -------------------------------------------------------------

window.addEventListener("hashchange", () => session && route());

function route() {
  if (live) {
    live.abort();
    live = null;
  }
  const hash = location.hash || "#/scans";
  let m;
  if ((m = hash.match(/^#\/scans\/(\d+)$/))) return scanView(Number(m[1]));
  if ((m = hash.match(/^#\/diff\/(\d+)\/(\d+)$/))) return diffView(Number(m[1]), Number(m[2]));
  if (hash === "#/plugins") return pluginsView();
  return scansView();
}

function fail(e) {
  if (e.status === 401) return;
  main.append(el("p", { class: "error", role: "alert" }, e.message));
}

// ---- Scans ---------------------------------------------------------------

async function scansView() {
  main.replaceChildren(el("h2", {}, "Scans"));
  if (may("scan")) main.append(await newScanForm());
  const table = el("table", { id: "scans" },
    el("thead", {}, el("tr", {},
      el("th", {}, "#"), el("th", {}, "Status"), el("th", {}, "Started"),
      el("th", { class: "wide" }, "Command"), el("th", {}, "Findings"), el("th", {}, "Errors"),
      el("th", {}, ""))));
  const body = el("tbody");
  table.append(body);
  const diff = el("form", { class: "row", id: "diff-form" },
    el("div", {}, el("label", { for: "diff-a" }, "Diff: earlier scan"), el("input", { id: "diff-a", type: "number", min: 1, required: true })),
    el("div", {}, el("label", { for: "diff-b" }, "later scan"), el("input", { id: "diff-b", type: "number", min: 1, required: true })),
    el("div", {}, el("button", { type: "submit" }, "Compare")));
  diff.addEventListener("submit", (event) => {
    event.preventDefault();
    location.hash = `#/diff/${diff.querySelector("#diff-a").value}/${diff.querySelector("#diff-b").value}`;
  });
  main.append(table, diff);
  try {
    let after = 0;
    const rows = [];
    for (;;) {
      const page = await api(`/v1/scans?after=${after}&limit=1000`);
      rows.push(...page.scans);
      if (page.next == null) break;
      after = page.next;
    }
    rows.reverse();
    for (const scan of rows) {
      const actions = el("td", {});
      if (may("scan") && scan.status === "running") {
        actions.append(el("button", { type: "button", onclick: (e) => { e.stopPropagation(); act(scan.id, "cancel"); } }, "Cancel"));
      }
      if (may("scan") && (scan.status === "interrupted" || scan.status === "failed")) {
        actions.append(el("button", { type: "button", onclick: (e) => { e.stopPropagation(); act(scan.id, "resume"); } }, "Resume"));
      }
      if (may("admin") && scan.status !== "running") {
        actions.append(el("button", { type: "button", onclick: (e) => { e.stopPropagation(); remove(scan.id); } }, "Delete"));
      }
      const open = () => { location.hash = `#/scans/${scan.id}`; };
      body.append(el("tr", { tabindex: 0, onclick: open, onkeydown: (e) => e.key === "Enter" && open() },
        el("td", {}, el("a", { href: `#/scans/${scan.id}` }, String(scan.id))),
        el("td", { class: `status-${scan.status}` }, scan.status,
          scan.progress ? el("div", { class: "muted" },
            `${Math.floor((100 * scan.progress.units_done) / Math.max(1, scan.progress.units_known))}% · ${scan.progress.per_second} units/s`) : null),
        el("td", {}, scan.started.replace("T", " ").slice(0, 19)),
        el("td", { class: "wide" }, scan.argv.filter((a) => !a.startsWith("--plugin-dir")).join(" ")),
        el("td", {}, String(scan.findings)), el("td", {}, String(scan.errors)), actions));
    }
    if (!rows.length) body.append(el("tr", {}, el("td", { colspan: 7, class: "muted" }, "No scans yet.")));
  } catch (e) {
    fail(e);
  }
}

async function act(id, what) {
  try {
    await api(`/v1/scans/${id}/${what}`, { method: "POST" });
    route();
  } catch (e) {
    fail(e);
  }
}

async function remove(id) {
  if (!confirm(`Delete scan ${id} and its records?`)) return;
  try {
    await api(`/v1/scans/${id}`, { method: "DELETE" });
    route();
  } catch (e) {
    fail(e);
  }
}

// Durations as the host reads them (humantime): numbers with units.
const DURATION_UNITS = {
  ns: 1e-6, nsec: 1e-6, us: 1e-3, usec: 1e-3, "µs": 1e-3, ms: 1, msec: 1, millis: 1,
  s: 1e3, sec: 1e3, secs: 1e3, second: 1e3, seconds: 1e3,
  m: 6e4, min: 6e4, mins: 6e4, minute: 6e4, minutes: 6e4,
  h: 3.6e6, hr: 3.6e6, hrs: 3.6e6, hour: 3.6e6, hours: 3.6e6,
  d: 8.64e7, day: 8.64e7, days: 8.64e7,
};

function durationText(ms) {
  return ms === 0 ? "0s" : ms % 1000 ? `${ms}ms` : ms % 60000 ? `${ms / 1000}s` : `${ms / 60000}m`;
}

/** What is wrong with `text` as a value of `kind`, in the words the API
 *  would use ("" when nothing is): the form says it before a request is
 *  made. The API checks again, so a value this lets through is still
 *  refused there if wrong. */
function argProblem(kind, text) {
  const value = text.trim();
  if (value === "") return "";
  switch (kind.type) {
    case "integer": {
      const n = Number(value);
      return /^-?\d+$/.test(value) && n >= kind.min && n <= kind.max ? ""
        : `expected a whole number from ${kind.min} to ${kind.max}`;
    }
    case "duration": {
      const expected = `expected a duration with a unit from ${durationText(kind.min_ms)} to ${durationText(kind.max_ms)}, such as 500ms or 2s`;
      const parts = [...value.matchAll(/(\d+)\s*([a-zµ]+)\s*/gi)];
      if (!parts.length || parts.map((p) => p[0]).join("") !== value) return expected;
      let ms = 0;
      for (const [, n, unit] of parts) {
        // Units are case-sensitive, as humantime reads them: `M` is months.
        const scale = DURATION_UNITS[unit];
        if (scale === undefined) return ""; // a unit this list lacks: the API decides
        ms += Number(n) * scale;
      }
      return Number.isInteger(ms) && ms >= kind.min_ms && ms <= kind.max_ms ? "" : expected;
    }
    case "choice-list": {
      const words = value.split(",").map((w) => w.trim().toLowerCase()).filter(Boolean);
      const known = kind.choices.map((c) => c.toLowerCase());
      return words.every((w) => known.includes(w)) ? ""
        : `expected comma-separated words, each one of ${kind.choices.join(", ")}`;
    }
    default:
      return "";
  }
}

/** An input for each argument `plugin` declares, typed as it declares it
 *  (the API checks the value, as the CLI does, and names it if wrong). */
function argInputs(plugin) {
  const box = el("div", { class: "row", id: `args-${plugin.name}`, hidden: true });
  for (const a of plugin.args || []) {
    const id = `arg-${plugin.name}-${a.name}`;
    const key = `${plugin.name}.${a.name}`;
    const kind = a.kind || {};
    let input;
    if (kind.type === "boolean" || kind.type === "choice") {
      const choices = kind.type === "boolean" ? ["true", "false"] : kind.choices;
      input = el("select", { id, "data-arg": key, disabled: true },
        el("option", { value: "" }, `default (${a.default ?? "none"})`),
        choices.map((c) => el("option", { value: c }, c)));
    } else {
      const hint = kind.type === "integer" ? `${kind.min}-${kind.max}`
        : kind.type === "duration" ? "e.g. 500ms, 2s"
        : kind.type === "choice-list" ? kind.choices.join(",") : "";
      input = el("input", { id, "data-arg": key, disabled: true, placeholder: a.default ?? "",
        inputmode: kind.type === "integer" ? "numeric" : null, title: hint });
      // The browser shows the message and holds the submit while it is set.
      input.addEventListener("input", () => input.setCustomValidity(argProblem(kind, input.value)));
    }
    box.append(el("div", {}, el("label", { for: id, title: a.description || "" }, `${a.name} (${kind.type || "text"})`), input));
  }
  return box;
}

async function newScanForm() {
  let plugins = [];
  try {
    plugins = await api("/v1/plugins");
  } catch (e) {
    fail(e);
  }
  const form = el("form", { class: "card", id: "new-scan" },
    el("h3", {}, "New scan"),
    el("div", { class: "row" },
      el("div", {}, el("label", { for: "targets" }, "Targets (space or comma separated)"),
        el("input", { id: "targets", required: true, placeholder: "192.0.2.0/28 example.test" })),
      el("div", {}, el("label", { for: "ports" }, "Ports"),
        el("input", { id: "ports", placeholder: "top-1000" }))),
    el("fieldset", {}, el("legend", {}, "Plugins (none checked: all)"),
      plugins.map((p) => el("div", {},
        el("label", { class: "inline" },
          el("input", { type: "checkbox", name: "plugin", value: p.name,
            onchange: (e) => {
              // Hidden inputs are disabled too: an unused argument's bad
              // value must not hold the form.
              const box = form.querySelector(`#args-${p.name}`);
              box.hidden = !e.target.checked;
              for (const input of box.querySelectorAll("[data-arg]")) input.disabled = box.hidden;
            } }),
          ` ${p.name} `, el("span", { class: "muted" }, p.description || "")),
        argInputs(p)))),
    el("label", { for: "plugin-args" }, "More plugin arguments (PLUGIN.KEY=VALUE, one a line)"),
    el("textarea", { id: "plugin-args", rows: 2, cols: 40 }),
    el("p", { id: "scan-error", class: "error", role: "alert" }),
    el("button", { class: "primary", type: "submit" }, "Start scan"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const request = { targets: form.querySelector("#targets").value.split(/[\s,]+/).filter(Boolean) };
    const ports = form.querySelector("#ports").value.trim();
    if (ports) request.ports = ports;
    const chosen = [...form.querySelectorAll("input[name=plugin]:checked")].map((c) => c.value);
    if (chosen.length) request.plugins = chosen;
    const args = form.querySelector("#plugin-args").value.split("\n").map((l) => l.trim()).filter(Boolean);
    // The typed inputs of the plugins checked (those of the others are
    // hidden and disabled).
    for (const input of form.querySelectorAll("[data-arg]:enabled")) {
      if (input.value !== "") args.push(`${input.dataset.arg}=${input.value}`);
    }
    if (args.length) {
      request.plugin_args = {};
      for (const line of args) {
        const at = line.indexOf("=");
        request.plugin_args[line.slice(0, at)] = line.slice(at + 1);
      }
    }
    try {
      const scan = await api("/v1/scans", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(request) });
      location.hash = `#/scans/${scan.id}`;
    } catch (e) {
      form.querySelector("#scan-error").textContent = e.field ? `${e.field}: ${e.message}` : e.message;
    }
  });
  return form;
}

// ---- One scan, live ------------------------------------------------------

/** Read a Server-Sent Events stream with fetch (EventSource cannot send the token). */
async function follow(path, signal, onEvent) {
  const headers = {};
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(path, { headers, signal });
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let at;
    while ((at = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, at);
      buffer = buffer.slice(at + 2);
      let name = "message", data = null;
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) name = line.slice(7);
        else if (line.startsWith("data: ")) data = line.slice(6);
      }
      if (data !== null) onEvent(name, JSON.parse(data));
    }
  }
}

function svg(points, max) {
  const ns = "http://www.w3.org/2000/svg";
  const root = document.createElementNS(ns, "svg");
  root.setAttribute("class", "chart");
  root.setAttribute("viewBox", "0 0 100 40");
  root.setAttribute("preserveAspectRatio", "none");
  root.setAttribute("role", "img");
  root.setAttribute("aria-label", `peak ${Math.round(max)} a second`);
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", points);
  line.setAttribute("vector-effect", "non-scaling-stroke");
  root.append(line);
  return root;
}

const PAGE = 200;

async function scanView(id) {
  live = new AbortController();
  const signal = live.signal;
  const progress = el("progress", { id: "progress", max: 1, value: 0, "aria-label": "progress" });
  const state = el("span", { id: "scan-status" }, "…");
  const figures = el("div", { class: "stats", id: "figures" });
  const charts = el("div", { class: "row" },
    el("div", {}, el("div", { class: "muted" }, "Connects a second"), el("div", { id: "rate-chart" })),
    el("div", {}, el("div", { class: "muted" }, "Findings a second"), el("div", { id: "findings-chart" })));
  const filters = el("form", { class: "row", id: "filters" },
    el("div", {}, el("label", { for: "f-severity" }, "Severity"),
      el("select", { id: "f-severity" }, ["", "info", "low", "medium", "high", "critical"].map((s) => el("option", { value: s }, s || "any")))),
    el("div", {}, el("label", { for: "f-kind" }, "Kind"), el("select", { id: "f-kind" }, el("option", { value: "" }, "any"))),
    el("div", {}, el("label", { for: "f-plugin" }, "Plugin"), el("select", { id: "f-plugin" }, el("option", { value: "" }, "any"))),
    el("div", {}, el("label", { for: "f-search" }, "Search (host, port, title)"), el("input", { id: "f-search", type: "search" })));
  const rows = el("tbody", { id: "findings" });
  const count = el("p", { class: "muted", id: "shown" });
  const more = el("button", { type: "button", id: "more", hidden: true }, "Show more");
  const detail = el("section", { class: "card", id: "detail", "aria-live": "polite" }, el("p", { class: "muted" }, "Select a finding to see its data."));
  const exports = el("p", {}, "Export: ",
    ["jsonl", "csv", "markdown", "sarif", "nmap-xml"].map((f) => el("button", { type: "button", onclick: () => exportAs(id, f) }, f)));
  main.replaceChildren(
    el("h2", {}, `Scan ${id} `, state), progress, figures, charts,
    el("h3", {}, "Findings"), filters,
    el("div", { class: "split" },
      el("div", {}, el("table", {}, el("thead", {}, el("tr", {},
        el("th", {}, "Severity"), el("th", {}, "Kind"), el("th", {}, "Subject"), el("th", { class: "wide" }, "Title"))), rows), count, more),
      detail),
    exports);

  const all = []; // every finding seen, in order
  const kinds = new Set(), plugins = new Set();
  const rates = [], findingRates = [];
  let shown = PAGE, lastFindings = 0, lastConnects = 0, lastTime = null;

  const matches = (r) => {
    const sev = filters.querySelector("#f-severity").value;
    const kind = filters.querySelector("#f-kind").value;
    const plugin = filters.querySelector("#f-plugin").value;
    const text = filters.querySelector("#f-search").value.toLowerCase();
    if (sev && r.severity !== sev) return false;
    if (kind && r.kind !== kind) return false;
    if (plugin && r.plugin.name !== plugin) return false;
    if (text && !`${subject(r.subject)} ${r.title}`.toLowerCase().includes(text)) return false;
    return true;
  };
  // Only the first `shown` matching rows are in the page: a scan of
  // 100,000 findings keeps a table of a few hundred rows.
  const render = () => {
    const hits = all.filter(matches);
    rows.replaceChildren(...hits.slice(0, shown).map(row));
    count.textContent = `${Math.min(shown, hits.length)} of ${hits.length} matching finding(s) shown; ${all.length} in all`;
    more.hidden = hits.length <= shown;
  };
  const row = (r) => {
    const open = () => {
      rows.querySelectorAll("tr.selected").forEach((t) => t.classList.remove("selected"));
      tr.classList.add("selected");
      detail.replaceChildren(el("h3", {}, r.title),
        el("p", {}, `${r.kind} · ${r.severity} · ${r.plugin.name} ${r.plugin.version} · ${subject(r.subject)} · ${r.time}`),
        el("pre", { id: "detail-data" }, JSON.stringify(r.data, null, 2)));
    };
    const tr = el("tr", { tabindex: 0, onclick: open, onkeydown: (e) => e.key === "Enter" && open() },
      el("td", { class: `sev-${r.severity}` }, r.severity), el("td", {}, r.kind),
      el("td", {}, subject(r.subject)), el("td", { class: "wide" }, r.title));
    return tr;
  };
  // Typing in the search box re-filters once the keys pause (each pass
  // over 100,000 findings takes ~150 ms); the selects apply at once.
  let typing = null;
  filters.addEventListener("input", (e) => {
    shown = PAGE;
    clearTimeout(typing);
    if (e.target.id === "f-search") typing = setTimeout(render, 150);
    else render();
  });
  filters.addEventListener("submit", (e) => e.preventDefault());
  more.addEventListener("click", () => { shown += PAGE; render(); });
  let pending = false;
  const soon = () => {
    if (pending) return;
    pending = true;
    setTimeout(() => { pending = false; render(); }, 250);
  };
  const addOption = (select, set, value) => {
    if (set.has(value)) return;
    set.add(value);
    filters.querySelector(select).append(el("option", { value }, value));
  };

  try {
    await follow(`/v1/scans/${id}/events`, signal, (name, data) => {
      if (name === "record" && data.type === "finding") {
        all.push(data);
        addOption("#f-kind", kinds, data.kind);
        addOption("#f-plugin", plugins, data.plugin.name);
        soon();
      } else if (name === "progress") {
        progress.max = Math.max(1, data.units_known);
        progress.value = data.units_done;
        const percent = Math.floor((100 * data.units_done) / Math.max(1, data.units_known));
        state.textContent = `running, ${percent}%`;
        state.className = "status-running";
        const now = data.elapsed_s;
        if (lastTime !== null && now > lastTime) {
          findingRates.push((all.length - lastFindings) / (now - lastTime));
          rates.push((data.connects - lastConnects) / (now - lastTime));
        }
        lastTime = now;
        lastFindings = all.length;
        lastConnects = data.connects;
        figures.replaceChildren(
          el("div", {}, el("b", {}, `${data.units_done} / ${data.units_known}`), "units"),
          el("div", {}, el("b", {}, data.eta_s == null ? "–" : `${Math.round(data.eta_s)} s`), "ETA"),
          el("div", {}, el("b", {}, `${data.per_second.toFixed(1)}`), "units a second"),
          el("div", {}, el("b", {}, String(data.connects)), "connects"),
          el("div", {}, el("b", {}, String(all.length)), "findings"));
        charts.querySelector("#rate-chart").replaceChildren(svg(rates.map((v, i) => `${(i / Math.max(1, rates.length - 1)) * 100},${40 - (v / Math.max(1, ...rates)) * 38}`).join(" "), Math.max(1, ...rates)));
        charts.querySelector("#findings-chart").replaceChildren(svg(findingRates.map((v, i) => `${(i / Math.max(1, findingRates.length - 1)) * 100},${40 - (v / Math.max(1, ...findingRates)) * 38}`).join(" "), Math.max(1, ...findingRates)));
      } else if (name === "end") {
        // The fraction done first: the bar's max changes next.
        const fraction = data.status === "completed" ? 1 : progress.value / Math.max(1, progress.max);
        progress.max = 1;
        progress.value = fraction;
        state.textContent = data.status === "completed" ? `${data.status}, 100%` : data.status;
        state.className = `status-${data.status}`;
        const net = data.stats && data.stats.net;
        figures.replaceChildren(
          el("div", {}, el("b", {}, String(data.findings)), "findings"),
          el("div", {}, el("b", {}, String(data.errors)), "errors"),
          net ? el("div", {}, el("b", {}, String(net.connects)), "connects") : null,
          data.stats ? el("div", {}, el("b", {}, `${data.stats.elapsed_s} s`), "elapsed") : null);
        render();
      } else if (name === "error") {
        main.append(el("p", { class: "error", role: "alert" }, data.error));
      }
    });
  } catch (e) {
    if (e.name !== "AbortError") fail(e);
  }
}

function subject(s) {
  if (!s) return "";
  const host = s.address && s.address.includes(":") ? `[${s.address}]` : s.address;
  if (s.kind === "service") return `${s.host ? s.host + "@" : ""}${host}:${s.port}`;
  if (s.kind === "address") return `${s.host ? s.host + "@" : ""}${host}`;
  return s.name || s.host || JSON.stringify(s);
}

async function exportAs(id, format) {
  // The API renders the file (GET /v1/scans/{id}/export); fetched with the
  // token, then handed to the browser as a download.
  const headers = {};
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(`/v1/scans/${id}/export?format=${format}`, { headers });
  if (!response.ok) {
    fail(new ApiError(response.status, await response.json().catch(() => null)));
    return;
  }
  const name = (response.headers.get("Content-Disposition") || "").match(/filename="([^"]+)"/);
  const link = el("a", { href: URL.createObjectURL(await response.blob()), download: name ? name[1] : `scan-${id}` });
  document.body.append(link);
  link.click();
  link.remove();
}

// ---- Diff ----------------------------------------------------------------

async function allFindings(id) {
  const out = [];
  let after = 0;
  for (;;) {
    const page = await api(`/v1/scans/${id}/records?type=finding&after=${after}&limit=1000`);
    out.push(...page.records);
    if (page.next == null) return out;
    after = page.next;
  }
}

async function diffView(a, b) {
  main.replaceChildren(el("h2", {}, `Scan ${a} → scan ${b}`));
  try {
    const [before, after] = await Promise.all([allFindings(a), allFindings(b)]);
    const key = (r) => `${subject(r.subject)} ${r.plugin.name} ${r.kind}`;
    const strip = (r) => JSON.stringify([r.severity, r.title, r.data]);
    const was = new Map(before.map((r) => [key(r), r]));
    const now = new Map(after.map((r) => [key(r), r]));
    // [change, record in a, record in b]: one side is missing for what
    // appeared or disappeared.
    const changes = [];
    for (const [k, r] of now) {
      if (!was.has(k)) changes.push(["appeared", null, r]);
      else if (strip(was.get(k)) !== strip(r)) changes.push(["changed", was.get(k), r]);
    }
    for (const [k, r] of was) if (!now.has(k)) changes.push(["disappeared", r, null]);
    const counts = { appeared: 0, disappeared: 0, changed: 0 };
    for (const [change] of changes) counts[change] += 1;

    const detail = el("section", { class: "card", id: "diff-detail", "aria-live": "polite" },
      el("p", { class: "muted" }, "Select a row to see both scans' data side by side."));
    const side = (r) => r
      ? el("td", { class: `sev-${r.severity}` }, `${r.severity} · ${r.title}`)
      : el("td", { class: "muted" }, "—");
    const data = (id, r) => el("div", {}, el("h4", {}, `Scan ${id}`),
      r ? el("pre", {}, JSON.stringify({ severity: r.severity, title: r.title, data: r.data }, null, 2))
        : el("p", { class: "muted" }, "Not found by this scan."));
    const body = el("tbody", {}, changes.map(([change, was, now]) => {
      const r = now || was;
      const open = () => {
        body.querySelectorAll("tr.selected").forEach((t) => t.classList.remove("selected"));
        tr.classList.add("selected");
        detail.replaceChildren(el("h3", {}, `${change}: ${subject(r.subject)} · ${r.plugin.name} · ${r.kind}`),
          el("div", { class: "pair" }, data(a, was), data(b, now)));
      };
      const tr = el("tr", { tabindex: 0, class: `change-${change}`, "data-change": change, onclick: open,
        onkeydown: (e) => e.key === "Enter" && open() },
        el("td", {}, change), el("td", {}, subject(r.subject)), el("td", { class: "wide" }, `${r.plugin.name} · ${r.kind}`),
        side(was), side(now));
      return tr;
    }));
    // Which kinds of change are listed: a checkbox for each, all on.
    const shown = el("fieldset", { class: "row", id: "diff-filter" }, el("legend", {}, "Show"),
      Object.keys(counts).map((change) => el("label", { class: "inline" },
        el("input", { type: "checkbox", value: change, checked: true, onchange: (e) => {
          for (const tr of body.querySelectorAll(`tr[data-change=${change}]`)) tr.hidden = !e.target.checked;
        } }), ` ${change} (${counts[change]})`)));
    main.append(
      el("p", { id: "diff-summary" },
        `${counts.appeared} appeared, ${counts.disappeared} disappeared, ${counts.changed} changed; ${before.length} finding(s) in scan ${a}, ${after.length} in scan ${b}`),
      shown,
      el("div", { class: "split" },
        el("div", {}, el("table", { id: "diff" },
          el("thead", {}, el("tr", {}, el("th", {}, "Change"), el("th", {}, "Subject"), el("th", { class: "wide" }, "Plugin · kind"),
            el("th", {}, `Scan ${a}`), el("th", {}, `Scan ${b}`))), body)),
        detail),
      el("p", { class: "muted" }, `Keyed on subject, plugin and kind, as \`wscan results diff ${a} ${b}\` is.`));
  } catch (e) {
    fail(e);
  }
}

// ---- Plugins -------------------------------------------------------------

async function pluginsView() {
  main.replaceChildren(el("h2", {}, "Plugins"));
  if (may("admin")) {
    const form = el("form", { class: "card", id: "upload" },
      el("h3", {}, "Upload a plugin"),
      el("div", { class: "row" },
        el("div", {}, el("label", { for: "upload-name" }, "Name (as its describe() gives it)"), el("input", { id: "upload-name", required: true })),
        el("div", {}, el("label", { for: "upload-file" }, "Component (.wasm)"), el("input", { id: "upload-file", type: "file", accept: ".wasm", required: true }))),
      el("p", { id: "upload-result", role: "status" }),
      el("button", { class: "primary", type: "submit" }, "Upload"));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const name = form.querySelector("#upload-name").value.trim();
      const file = form.querySelector("#upload-file").files[0];
      const result = form.querySelector("#upload-result");
      try {
        const plugin = await api(`/v1/plugins/${encodeURIComponent(name)}`, { method: "PUT", headers: { "Content-Type": "application/wasm" }, body: file });
        result.className = "";
        result.textContent = `${plugin.name} ${plugin.version} is in use (${plugin.digest.slice(0, 12)}…).`;
        await listPlugins();
      } catch (e) {
        result.className = "error";
        result.textContent = e.message;
      }
    });
    main.append(form);
  }
  main.append(el("table", { id: "plugins" }, el("thead", {}, el("tr", {},
    el("th", {}, "Name"), el("th", {}, "Version"), el("th", { class: "wide" }, "Description"),
    el("th", {}, "Capabilities"), el("th", {}, "Arguments"), el("th", { class: "wide" }, "Source"))), el("tbody")));
  await listPlugins();
}

async function listPlugins() {
  const body = main.querySelector("#plugins tbody");
  try {
    const plugins = await api("/v1/plugins");
    body.replaceChildren(...plugins.map((p) => el("tr", {},
      el("td", {}, p.name), el("td", {}, p.version), el("td", { class: "wide" }, p.description || ""),
      el("td", {}, (p.capabilities || []).join(", ")),
      el("td", {}, (p.args || []).map((a) => el("div", { title: a.description || "" },
        `${a.name}: ${a.kind ? a.kind.type : ""}${a.default != null ? " = " + a.default : ""}`))),
      el("td", { class: "wide" }, p.source))));
  } catch (e) {
    fail(e);
  }
}

start();
