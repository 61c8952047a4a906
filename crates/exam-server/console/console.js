// The console for proctors and IT. Plain JavaScript, no build step, served by the reference
// server under a strict content security policy. Everything shown from the server is set as
// text (never as HTML): student names, evidence and notes come from outside.

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "exam-console-token";
const TABS = ["alerts", "events", "machines", "attempt", "actions"];
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

async function loadAlerts() {
  const data = await api("GET", "/v1/admin/alerts?limit=500");
  for (const alert of data.alerts) {
    alerts.set(alert.id, alert);
    version = Math.max(version, alert.version);
  }
  renderAlerts();
}

function stateOf(alert) {
  if (alert.acked_at) return "acknowledged";
  if (alert.cleared_at) return "stopped";
  return "open";
}

function renderAlerts(fresh = new Set()) {
  const openOnly = $("open-only").checked;
  const body = $("alerts");
  body.replaceChildren();
  const list = [...alerts.values()].sort((a, b) => Number(b.id) - Number(a.id));
  let open = 0;
  for (const alert of list) {
    const state = stateOf(alert);
    if (!alert.acked_at) open += 1;
    if (openOnly && alert.acked_at) continue;
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
      what.append(el("div", `Response: ${alert.response.action}${alert.response.undo ? ` — undo: ${alert.response.undo}` : ""}`, "muted"));
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
    if (alert.username && alert.rule !== "password_spraying") {
      const end = el("button", "End sessions", "quiet");
      end.type = "button";
      end.addEventListener("click", () => endSessions(alert.username));
      actions.append(end);
    }
    if (alert.response && alert.response.block) {
      const lift = el("button", "Lift block", "quiet");
      lift.type = "button";
      lift.addEventListener("click", () => unblock(alert.response.block));
      actions.append(lift);
    }
    row.append(cell);
    body.append(row);
  }
  $("alerts-empty").hidden = body.children.length > 0;
  $("open-count").textContent = String(open);
  document.title = open ? `(${open}) Exam Bank — console` : "Exam Bank — console";
}

function setLive(on, words) {
  const live = $("live");
  live.className = `live ${on ? "on" : "off"}`;
  live.textContent = words;
}

// Server-sent events read with fetch, so the token travels in a header.
async function follow() {
  if (streaming) return;
  streaming = true;
  while (token) {
    try {
      const response = await fetch(`/console/alerts/stream?since_version=${version}`, { headers: headers() });
      if (!response.ok) throw new Error(`${response.status}`);
      setLive(true, "Live");
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const message = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = message
            .split("\n")
            .filter((line) => line.startsWith("data: "))
            .map((line) => line.slice(6))
            .join("\n");
          if (!data) continue;
          const alert = JSON.parse(data);
          const isNew = !alerts.has(alert.id);
          alerts.set(alert.id, alert);
          version = Math.max(version, alert.version);
          renderAlerts(isNew ? new Set([alert.id]) : new Set());
        }
      }
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

async function loadMachines() {
  const data = await api("GET", "/v1/admin/machines");
  const body = $("machines");
  body.replaceChildren();
  for (const m of data.machines) {
    const row = el("tr");
    row.dataset.testid = `machine-${m.device}`;
    const integrity = el("td");
    integrity.append(el("span", m.integrity, `badge ${m.integrity}`));
    row.append(el("td", m.device, "mono"), integrity, el("td", m.last_student), el("td", m.last_ip));
    row.append(el("td", when(m.last_contact)), el("td", m.students));
    body.append(row);
  }
}

async function loadTimeline(event) {
  event?.preventDefault();
  const id = $("attempt-id").value.trim();
  if (!id) return;
  const list = $("timeline");
  list.replaceChildren();
  try {
    const data = await api("GET", `/v1/admin/attempts/${encodeURIComponent(id)}/timeline`);
    $("attempt-head").textContent = `${data.username} · ${data.exam_id} · ${data.status}`;
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

function said(words) {
  $("action-result").textContent = words;
}

async function endSessions(user) {
  try {
    const data = await api("POST", `/v1/admin/users/${encodeURIComponent(user)}/sessions/revoke`);
    said(`${user}: ${data.revoked_sessions} session(s) ended.`);
  } catch (error) {
    said(`${user}: ${error.message}`);
  }
}

async function unblock(id) {
  try {
    await api("DELETE", `/v1/admin/ip-blocks/${encodeURIComponent(id)}`);
    said(`Block ${id} lifted.`);
  } catch (error) {
    said(`Block ${id}: ${error.message}`);
  }
}

function showTab(name) {
  for (const tab of TABS) {
    $(`tab-${tab}`).setAttribute("aria-selected", String(tab === name));
    $(`view-${tab}`).hidden = tab !== name;
  }
  if (name === "events") loadEvents();
  if (name === "machines") loadMachines();
  if (name === "attempt") loadTimeline();
}

// ---- wiring -------------------------------------------------------------------------------

$("signin-form").addEventListener("submit", signIn);
$("sign-out").addEventListener("click", signOut);
$("open-only").addEventListener("change", () => renderAlerts());
$("events-form").addEventListener("submit", loadEvents);
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
    said(`${user}: ${error.message}`);
  }
});
$("step-up-clear").addEventListener("click", async () => {
  const user = $("step-up-user").value.trim();
  try {
    await api("DELETE", `/v1/admin/users/${encodeURIComponent(user)}/step-up`);
    said(`${user}: the demand was withdrawn.`);
  } catch (error) {
    said(`${user}: ${error.message}`);
  }
});
$("unblock").addEventListener("submit", (e) => {
  e.preventDefault();
  unblock($("unblock-id").value.trim());
});

if (token) start().catch(() => signOut());
