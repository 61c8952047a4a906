// The console for proctors and IT. Plain JavaScript, no build step, served by the reference
// server under a strict content security policy. Everything shown from the server is set as
// text (never as HTML): student names, evidence and notes come from outside.

import { analytics } from "./analytics.js";
import { insights } from "./insights.js";
import { readiness } from "./readiness.js";

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "exam-console-token";
const TABS = ["alerts", "events", "machines", "fleet", "analytics", "insights", "attempt", "actions"];
let token = sessionStorage.getItem(TOKEN_KEY);
const alerts = new Map(); // id -> alert
let version = 0;
let streaming = null;

function headers(extra = {}) {
  return { Authorization: `Bearer ${token}`, ...extra };
}

async function api(method, path, body) {
  const init = { method, headers: headers() };
  if (method !== "GET") {
    init.headers["Idempotency-Key"] = crypto.randomUUID();
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
  }
  const response = await fetch(path, init);
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) {
    const why = (data && (data.detail || data.title)) || response.statusText;
    throw new Error(`${response.status}: ${why}`);
  }
  return data;
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium", hourCycle: "h23" });
}

// ---- sign-in ------------------------------------------------------------------------------

async function signIn(event) {
  event.preventDefault();
  token = $("token").value.trim();
  $("signin-error").textContent = "";
  try {
    await api("GET", "/v1/admin/stats");
  } catch (error) {
    token = null;
    $("signin-error").textContent = `The server refused this token (${error.message}).`;
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  $("token").value = "";
  start();
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  location.reload();
}

async function start() {
  $("signin").hidden = true;
  $("app").hidden = false;
  $("sign-out").hidden = false;
  await loadAlerts();
  follow();
}

// ---- alerts -------------------------------------------------------------------------------

// The rule and severity filters, as the server's query parameters (empty: any).
function alertFilters() {
  const filters = {};
  if ($("filter-rule").value) filters.rule = $("filter-rule").value;
  if ($("filter-severity").value) filters.severity = $("filter-severity").value;
  return filters;
}

// The newest alerts (matching the filters, so older matches than the first load's are shown
// too); the stream keeps them current afterwards.
async function loadAlerts() {
  const params = new URLSearchParams({ limit: "500", ...alertFilters() });
  const data = await api("GET", `/v1/admin/alerts?${params}`);
  for (const alert of data.alerts) {
    alerts.set(alert.id, alert);
    version = Math.max(version, alert.version);
  }
  renderAlerts();
}

async function filterAlerts() {
  renderAlerts();
  try {
    await loadAlerts();
  } catch (error) {
    $("alerts-empty").textContent = `The alerts could not be loaded (${error.message}).`;
    $("alerts-empty").hidden = false;
  }
}

// What the server did, in words (the action's code when it is a new one).
const ACTIONS = {
  session_ended: "the session was ended",
  ip_blocked: "the address was blocked",
  step_up_required: "the password is asked again",
};

function stateOf(alert) {
  if (alert.acked_at) return "acknowledged";
  if (alert.cleared_at) return "stopped";
  return "open";
}

function renderAlerts(fresh = new Set()) {
  const openOnly = $("open-only").checked;
  const { rule, severity } = alertFilters();
  const body = $("alerts");
  body.replaceChildren();
  const list = [...alerts.values()].sort((a, b) => Number(b.id) - Number(a.id));
  let open = 0;
  for (const alert of list) {
    const state = stateOf(alert);
    if (!alert.acked_at) open += 1;
    if (openOnly && alert.acked_at) continue;
    if (rule && alert.rule !== rule) continue;
    if (severity && alert.severity !== severity) continue;
    const row = el("tr", undefined, `sev-${alert.severity}${fresh.has(alert.id) ? " fresh" : ""}`);
    row.dataset.testid = `alert-${alert.id}`;
    row.dataset.rule = alert.rule;
    row.append(el("td", when(alert.created_at)));
    const sev = el("td");
    sev.append(el("span", alert.severity, `badge ${alert.severity}`));
    row.append(sev);
    const what = el("td");
    what.append(el("strong", alert.summary));
    if (alert.response) {
      const action = ACTIONS[alert.response.action] ?? alert.response.action;
      what.append(el("div", `Response: ${action}${alert.response.undo ? ` — undo: ${alert.response.undo}` : ""}`, "muted"));
    }
    if (alert.ack_note) what.append(el("div", `Note: ${alert.ack_note}`, "muted"));
    row.append(what);
    row.append(el("td", alert.username ?? alert.ip ?? ""));
    row.append(el("td", state, `state ${state}`));
    const cell = el("td");
    const actions = el("div", undefined, "buttons");
    cell.append(actions);
    if (!alert.acked_at) {
      const note = el("input");
      note.placeholder = "Note";
      note.setAttribute("aria-label", `Note for alert ${alert.id}`);
      note.dataset.testid = `note-${alert.id}`;
      const ack = el("button", "Acknowledge");
      ack.type = "button";
      ack.dataset.testid = `ack-${alert.id}`;
      ack.addEventListener("click", async () => {
        ack.disabled = true;
        try {
          const updated = await api("POST", `/v1/admin/alerts/${alert.id}/ack`, { note: note.value });
          alerts.set(updated.id, updated);
          renderAlerts();
        } catch (error) {
          ack.disabled = false;
          actions.append(el("div", error.message, "error"));
        }
      });
      actions.append(note, ack);
    }
    if (alert.attempt_id) {
      const timeline = el("button", "Timeline", "quiet");
      timeline.type = "button";
      timeline.addEventListener("click", () => {
        $("attempt-id").value = alert.attempt_id;
        showTab("attempt");
      });
      actions.append(timeline);
    }
    // (A guessed username's sessions are not the guesser's.)
    if (alert.username && alert.rule !== "password_spraying" && alert.rule !== "brute_force") {
      const end = el("button", "End sessions", "quiet");
      end.type = "button";
      end.addEventListener("click", async () => actions.append(el("div", await endSessions(alert.username), "muted")));
      actions.append(end);
    }
    if (alert.response && alert.response.action === "step_up_required" && alert.username) {
      const withdraw = el("button", "Withdraw password demand", "quiet");
      withdraw.type = "button";
      withdraw.addEventListener("click", async () => actions.append(el("div", await withdrawStepUp(alert.username), "muted")));
      actions.append(withdraw);
    }
    if (alert.response && alert.response.block) {
      const lift = el("button", "Lift block", "quiet");
      lift.type = "button";
      lift.addEventListener("click", async () => actions.append(el("div", await unblock(alert.response.block), "muted")));
      actions.append(lift);
    }
    row.append(cell);
    body.append(row);
  }
  const empty = $("alerts-empty");
  empty.textContent = rule || severity ? "No alerts match these filters." : "No alerts.";
  empty.hidden = body.children.length > 0;
  const filtered = $("alerts-filtered");
  filtered.textContent = `Showing ${body.children.length} of ${list.length} alerts (filtered).`;
  filtered.hidden = !(rule || severity) || body.children.length === 0;
  $("open-count").textContent = String(open);
  document.title = open ? `(${open}) Exam Bank — console` : "Exam Bank — console";
}

function setLive(on, words) {
  const live = $("live");
  live.className = `live ${on ? "on" : "off"}`;
  live.textContent = words;
}

// Reads a server-sent event stream with fetch, so the token travels in a header: `opened()` once
// the server has answered, then `message(type, data)` for each event; returns when it ends.
async function readStream(path, opened, message) {
  const response = await fetch(path, { headers: headers() });
  if (!response.ok) throw new Error(`${response.status}`);
  opened();
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const lines = buffer.slice(0, end).split("\n");
      buffer = buffer.slice(end + 2);
      const type = lines.find((line) => line.startsWith("event: "))?.slice(7) ?? "message";
      const data = lines
        .filter((line) => line.startsWith("data: "))
        .map((line) => line.slice(6))
        .join("\n");
      if (data) message(type, data);
    }
  }
}

async function follow() {
  if (streaming) return;
  streaming = true;
  while (token) {
    try {
      await readStream(`/console/alerts/stream?since_version=${version}`, () => setLive(true, "Live"), (_type, data) => {
        const alert = JSON.parse(data);
        const isNew = !alerts.has(alert.id);
        alerts.set(alert.id, alert);
        version = Math.max(version, alert.version);
        renderAlerts(isNew ? new Set([alert.id]) : new Set());
      });
    } catch (error) {
      setLive(false, `Reconnecting (${error.message})`);
    }
    setLive(false, "Reconnecting…");
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

// ---- events and machines ------------------------------------------------------------------

async function loadEvents(event) {
  event?.preventDefault();
  const params = new URLSearchParams({ limit: "300" });
  if ($("events-user").value.trim()) params.set("user", $("events-user").value.trim());
  if ($("events-type").value.trim()) params.set("type", $("events-type").value.trim());
  const data = await api("GET", `/v1/admin/events?${params}`);
  const body = $("events");
  body.replaceChildren();
  for (const e of data.events) {
    const row = el("tr");
    row.append(el("td", when(e.received_at)), el("td", e.username), el("td", e.type));
    const attrs = e.attrs || {};
    row.append(el("td", attrs.evidence ?? JSON.stringify(attrs), "mono"));
    body.append(row);
  }
}

let shownMachine = null;

async function loadMachines() {
  const data = await api("GET", "/v1/admin/machines");
  const body = $("machines");
  body.replaceChildren();
  for (const m of data.machines) {
    const row = el("tr", undefined, "pick");
    row.dataset.testid = `machine-${m.device}`;
    if (m.device === shownMachine) row.setAttribute("aria-current", "true");
    const integrity = el("td");
    integrity.append(el("span", m.integrity, `badge ${m.integrity}`));
    // A button for the keyboard; the whole row answers a click.
    const device = el("td");
    const open = el("button", m.device, "link mono");
    open.type = "button";
    open.setAttribute("aria-label", `History of machine ${m.device}`);
    device.append(open);
    row.append(device, integrity, el("td", m.last_student), el("td", m.last_ip));
    row.append(el("td", when(m.last_contact)), el("td", m.students));
    row.addEventListener("click", () => loadMachineHistory(m.device));
    body.append(row);
  }
  if (shownMachine) loadMachineHistory(shownMachine);
}

// An alert's evidence in one line: "devices: a, b · session: …".
function compact(evidence) {
  if (!evidence || typeof evidence !== "object") return "";
  const words = Object.entries(evidence)
    .map(([key, value]) => {
      const shown = Array.isArray(value)
        ? value.join(", ")
        : value !== null && typeof value === "object"
          ? JSON.stringify(value)
          : String(value);
      return `${key.replaceAll("_", " ")}: ${shown}`;
    })
    .join(" · ");
  return words.length > 300 ? `${words.slice(0, 299)}…` : words;
}

async function loadMachineHistory(device) {
  shownMachine = device;
  for (const row of $("machines").children) {
    if (row.dataset.testid === `machine-${device}`) row.setAttribute("aria-current", "true");
    else row.removeAttribute("aria-current");
  }
  const panel = $("machine-history");
  panel.hidden = false;
  $("machine-history-title").textContent = `History of machine ${device}`;
  const body = $("machine-history-rows");
  body.replaceChildren();
  try {
    const data = await api("GET", `/v1/admin/machines/${encodeURIComponent(device)}/history?limit=300`);
    if (shownMachine !== device) return;
    const students = data.students.length ? data.students.join(", ") : "none";
    $("machine-history-head").textContent =
      `${data.items.length} entr${data.items.length === 1 ? "y" : "ies"}, newest first · students seen on it: ${students}`;
    for (const item of data.items) {
      const row = el("tr", undefined, `sev-${item.severity ?? "none"}`);
      row.dataset.testid = `history-${item.kind}-${item.id}`;
      row.dataset.kind = item.kind;
      row.dataset.code = item.code;
      const severity = el("td");
      severity.append(item.severity ? el("span", item.severity, `badge ${item.severity}`) : el("span", "—", "muted"));
      const evidence = el("td");
      evidence.append(el("div", item.summary));
      // (A client finding's evidence is the app's report, shown on the report's own row.)
      if (item.kind === "alert" && item.code !== "client_finding") {
        const { device: _machine, ...rest } = item.evidence ?? {};
        evidence.append(el("div", compact(rest), "muted"));
      }
      if (item.attempt_id) {
        const timeline = el("button", "Timeline", "quiet small");
        timeline.type = "button";
        timeline.addEventListener("click", () => {
          $("attempt-id").value = item.attempt_id;
          showTab("attempt");
        });
        evidence.append(timeline);
      }
      row.append(
        el("td", when(item.at)),
        el("td", item.username ?? ""),
        el("td", item.kind === "alert" ? "Alert" : "App report"),
        el("td", item.code, "code"),
        severity,
        evidence,
      );
      body.append(row);
    }
    $("machine-history-empty").hidden = data.items.length > 0;
    panel.scrollIntoView({ block: "nearest" });
  } catch (error) {
    $("machine-history-head").textContent = error.message;
  }
}

function closeMachineHistory() {
  shownMachine = null;
  $("machine-history").hidden = true;
  for (const row of $("machines").children) row.removeAttribute("aria-current");
}

// ---- fleet --------------------------------------------------------------------------------

const numbers = new Intl.NumberFormat("en");

// "2 min 5 s", "1 h 3 min", "45 s" (whole seconds); "—" for none.
function seconds(total) {
  const s = Math.round(total ?? 0);
  if (s <= 0) return "—";
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const parts = [];
  if (h) parts.push(`${h} h`);
  if (m) parts.push(`${m} min`);
  if (s % 60 && !h) parts.push(`${s % 60} s`);
  return parts.join(" ");
}

function ms(value) {
  return `${numbers.format(Number(value.toFixed(value < 10 ? 1 : 0)))} ms`;
}

const GROUP_HEADS = { lab: "Lab", machine: "Machine", exam: "Exam" };

// A lab known only by its subnet, or the minutes outside an exam: listed after the others.
function unnamed(by, group) {
  return (by === "lab" && group.label !== group.key) || (by === "exam" && group.key === "");
}

// A group's name cell: what people read first, and the key underneath when it says more.
function groupCell(by, group) {
  const cell = el("th");
  cell.scope = "row";
  if (by === "machine") {
    // A fingerprint is long: its start tells machines apart, the whole is in the tooltip.
    const short = group.key.length > 16 ? `${group.key.slice(0, 12)}…` : group.key;
    const device = el("span", short, "mono");
    device.title = group.key;
    cell.append(device, el("div", group.label, "muted"));
  } else if (by === "lab" && unnamed(by, group)) {
    cell.append(el("span", group.key, "nowrap"), el("div", "subnet, no lab name", "muted"));
  } else {
    cell.append(el("span", group.label));
    if (by === "exam" && group.key && group.key !== group.label) cell.append(el("div", group.key, "muted mono"));
  }
  return cell;
}

async function loadFleet(event) {
  event?.preventDefault();
  const by = $("fleet-by").value;
  const from = new Date(Date.now() - Number($("fleet-hours").value) * 3600_000).toISOString();
  const body = $("fleet-rows");
  try {
    const data = await api("GET", `/v1/admin/fleet?${new URLSearchParams({ by, from })}`);
    $("fleet-group-head").textContent = GROUP_HEADS[data.by];
    // (A machine is one machine: its Machines column says nothing.)
    document.querySelector("table.figures").dataset.by = data.by;
    body.replaceChildren();
    const groups = [...data.groups].sort(
      (a, b) => unnamed(data.by, a) - unnamed(data.by, b) || a.label.localeCompare(b.label) || a.key.localeCompare(b.key),
    );
    for (const group of groups) {
      const m = group.metrics;
      const sum = (name) => m[name]?.sum ?? 0;
      const row = el("tr");
      row.dataset.testid = `fleet-${group.key}`;
      // A count cell, marked when it is a problem worth a look.
      const count = (value, problem = false) => el("td", numbers.format(Math.round(value)), problem && value > 0 ? "num bad" : "num");
      row.append(
        groupCell(data.by, group),
        count(group.machines),
        count(group.students),
        count(m.save_ms?.count ?? 0),
        count(sum("delivered")),
        el("td", m.save_ms ? `${ms(m.save_ms.mean)} / ${ms(m.save_ms.max)}` : "—", "num"),
        el("td", seconds(sum("offline_s")), sum("offline_s") > 0 ? "num bad" : "num"),
        count(sum("outages"), true),
        count(sum("refresh_failures"), true),
        el("td", when(group.last_seen), "nowrap"),
      );
      body.append(row);
    }
    $("fleet-empty").hidden = data.groups.length > 0;
    $("fleet-server").textContent = serverWords(data.server);
  } catch (error) {
    body.replaceChildren();
    $("fleet-empty").textContent = `The fleet figures could not be loaded (${error.message}).`;
    $("fleet-empty").hidden = false;
  }
}

// The server's own requests in the same period, in one line.
function serverWords(server) {
  if (!server.from) return "Server: no request figures for this period (it keeps the last 24 hours since it started, in memory).";
  const latency = server.p50_ms === null ? "" : ` · median ${ms(server.p50_ms)}, p99 ${ms(server.p99_ms)}`;
  return `Server, same period (since ${when(server.from)}): ${numbers.format(server.requests)} requests · ` +
    `${numbers.format(server.errors)} server errors · ${numbers.format(server.client_errors)} refused · ` +
    `${numbers.format(server.rate_limited)} rate-limited${latency}.`;
}

async function loadTimeline(event) {
  event?.preventDefault();
  const id = $("attempt-id").value.trim();
  if (!id) return;
  const list = $("timeline");
  list.replaceChildren();
  const lost = $("time-lost");
  lost.hidden = true;
  try {
    const data = await api("GET", `/v1/admin/attempts/${encodeURIComponent(id)}/timeline`);
    $("attempt-head").textContent = `${data.username} · ${data.exam_id} · ${data.status}`;
    // The server's words, so every proctor reads the same figures.
    if (data.time_lost) {
      $("time-lost-summary").textContent = data.time_lost.summary;
      lost.classList.toggle("some", data.time_lost.total_ms > 0);
      lost.hidden = false;
    }
    for (const item of data.items) {
      const li = el("li", undefined, `kind-${item.kind}`);
      li.append(el("span", when(item.at), "muted"), el("span", ` ${item.text}`));
      list.append(li);
    }
  } catch (error) {
    $("attempt-head").textContent = error.message;
  }
}

// ---- actions ------------------------------------------------------------------------------

// Says how an action went (on the Actions view), and returns the words for a button elsewhere
// to show beside itself.
function said(words) {
  $("action-result").textContent = words;
  return words;
}

async function endSessions(user) {
  try {
    const data = await api("POST", `/v1/admin/users/${encodeURIComponent(user)}/sessions/revoke`);
    return said(`${user}: ${data.revoked_sessions} session(s) ended.`);
  } catch (error) {
    return said(`${user}: ${error.message}`);
  }
}

async function unblock(id) {
  try {
    await api("DELETE", `/v1/admin/ip-blocks/${encodeURIComponent(id)}`);
    return said(`Block ${id} lifted.`);
  } catch (error) {
    return said(`Block ${id}: ${error.message}`);
  }
}

async function withdrawStepUp(user) {
  try {
    await api("DELETE", `/v1/admin/users/${encodeURIComponent(user)}/step-up`);
    return said(`${user}: the demand was withdrawn.`);
  } catch (error) {
    return said(`${user}: ${error.message}`);
  }
}

function showTab(name) {
  for (const tab of TABS) {
    $(`tab-${tab}`).setAttribute("aria-selected", String(tab === name));
    $(`view-${tab}`).hidden = tab !== name;
  }
  if (name === "events") loadEvents();
  if (name === "machines") {
    loadMachines();
    ready.show();
  }
  if (name === "fleet") loadFleet();
  if (name === "analytics") charts.show();
  if (name === "insights") findings.show();
  if (name === "attempt") loadTimeline();
}

// ---- wiring -------------------------------------------------------------------------------

const charts = analytics({ api, el, when, readStream, $ });
const findings = insights({ api, el, when, headers, $ });
const ready = readiness({ api, el, when, headers, $ });

$("signin-form").addEventListener("submit", signIn);
$("sign-out").addEventListener("click", signOut);
$("open-only").addEventListener("change", () => renderAlerts());
$("filter-rule").addEventListener("change", filterAlerts);
$("filter-severity").addEventListener("change", filterAlerts);
$("alert-filters").addEventListener("submit", (e) => e.preventDefault());
$("machine-history-close").addEventListener("click", closeMachineHistory);
$("events-form").addEventListener("submit", loadEvents);
$("fleet-form").addEventListener("submit", loadFleet);
$("fleet-by").addEventListener("change", () => loadFleet());
$("fleet-hours").addEventListener("change", () => loadFleet());
for (const tab of TABS) {
  $(`tab-${tab}`).addEventListener("click", () => showTab(tab));
}
$("attempt-form").addEventListener("submit", loadTimeline);
$("end-sessions").addEventListener("submit", (e) => {
  e.preventDefault();
  endSessions($("end-user").value.trim());
});
$("block").addEventListener("submit", async (e) => {
  e.preventDefault();
  const until = new Date(Date.now() + Number($("block-minutes").value) * 60_000).toISOString();
  try {
    const block = await api("POST", "/v1/admin/ip-blocks", {
      cidr: $("block-cidr").value.trim(),
      reason: $("block-reason").value.trim(),
      until,
    });
    said(`Blocked ${block.cidr} until ${when(block.until)} (block ${block.id}).`);
  } catch (error) {
    said(error.message);
  }
});
$("step-up").addEventListener("submit", async (e) => {
  e.preventDefault();
  const user = $("step-up-user").value.trim();
  try {
    await api("POST", `/v1/admin/users/${encodeURIComponent(user)}/step-up`, { reason: $("step-up-reason").value.trim() });
    said(`${user} will be asked for the password again.`);
  } catch (error) {
    return said(`${user}: ${error.message}`);
  }
});
$("step-up-clear").addEventListener("click", () => withdrawStepUp($("step-up-user").value.trim()));
$("unblock").addEventListener("submit", (e) => {
  e.preventDefault();
  unblock($("unblock-id").value.trim());
});

if (token) start().catch(() => signOut());
