// The Machines tab's readiness: every machine the server knows with its lab, app version,
// last contact, readiness and waiting work, and "Ready for…": which machines are not ready for
// an exam at a time, and why (GET /v1/admin/machines/readiness), with the same answer as CSV.
//
// The verdicts and their words are the server's (from each app's daily `device.readiness`
// report); this file lays them out. Everything from the apps is set as text.

const numbers = new Intl.NumberFormat("en");

function plural(n, one, many) {
  return `${numbers.format(n)} ${n === 1 ? one : many}`;
}

// "2026-12-02T09:00" in this browser's time, for a datetime-local field.
function localInput(date) {
  const two = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())}T${two(date.getHours())}:${two(date.getMinutes())}`;
}

function tomorrowAtNine() {
  const date = new Date();
  date.setDate(date.getDate() + 1);
  date.setHours(9, 0, 0, 0);
  return date;
}

// A fingerprint is long: its start tells machines apart, the whole is in the tooltip.
function shortDevice(el, device) {
  const cell = el("span", device.length > 16 ? `${device.slice(0, 12)}…` : device, "mono");
  cell.title = device;
  return cell;
}

export function readiness({ api, el, when, headers, $ }) {
  let exams = [];
  let loaded = false;

  async function loadExams() {
    exams = await api("GET", "/v1/admin/exams");
    const none = el("option", "No exam (the machines alone)");
    none.value = "";
    $("ready-exam").replaceChildren(
      none,
      ...exams.map((exam) => {
        const needs = exam.min_client_version ? ` · app ${exam.min_client_version} or newer` : "";
        const option = el("option", `${exam.title} (${exam.id})${needs}`);
        option.value = exam.id;
        return option;
      }),
    );
    // The next exam to open, at its opening; else tomorrow at 09:00.
    const next = exams.find((exam) => new Date(exam.opens_at) > new Date());
    $("ready-exam").value = next ? next.id : "";
    examChanged();
    loaded = true;
  }

  function examChanged() {
    const exam = exams.find((e) => e.id === $("ready-exam").value);
    const opens = exam ? new Date(exam.opens_at) : null;
    $("ready-at").value = localInput(opens && opens > new Date() ? opens : tomorrowAtNine());
  }

  function params(format) {
    const query = new URLSearchParams();
    if ($("ready-exam").value) query.set("exam", $("ready-exam").value);
    const at = $("ready-at").value;
    if (at) query.set("at", new Date(at).toISOString());
    if (format) query.set("format", format);
    return query;
  }

  function summary(data) {
    const when_ = when(data.at);
    if (!data.exam) {
      return data.not_ready === 0
        ? `All ${plural(data.machines, "machine is", "machines are")} ready (${when_}).`
        : `${data.not_ready} of ${plural(data.machines, "machine is", "machines are")} not ready (${when_}).`;
    }
    const needs = data.exam.min_client_version ? ` It needs app ${data.exam.min_client_version} or newer.` : "";
    const what = `“${data.exam.title}” at ${when_}`;
    if (data.machines === 0) return `No machine is known yet.${needs}`;
    return data.not_ready === 0
      ? `All ${plural(data.machines, "machine is", "machines are")} ready for ${what}.${needs}`
      : `${data.not_ready} of ${plural(data.machines, "machine is", "machines are")} not ready for ${what}.${needs}`;
  }

  function waitingWords(waiting) {
    if (!waiting) return "unknown";
    const parts = [];
    if (waiting.items > 0) parts.push(`${numbers.format(waiting.items)} waiting`);
    if (waiting.refused > 0) parts.push(`${numbers.format(waiting.refused)} refused`);
    return parts.length ? parts.join(" · ") : "none";
  }

  function row(item) {
    const tr = el("tr");
    tr.dataset.testid = `readiness-${item.device}`;
    tr.dataset.ready = String(item.ready);
    const device = el("th");
    device.scope = "row";
    device.append(shortDevice(el, item.device));
    const lab = el("td");
    lab.append(el("span", item.lab ?? item.subnet ?? "—"));
    if (!item.lab && item.subnet) lab.append(el("div", "subnet, no lab name", "muted"));
    const verdict = el("td");
    verdict.append(el("span", item.ready ? "ready" : "not ready", `badge ${item.ready ? "ok" : "warning"}`));
    if (!item.ready) verdict.append(el("div", item.reasons.map((r) => r.code.replaceAll("_", " ")).join(", "), "muted"));
    const waiting = waitingWords(item.waiting);
    tr.append(
      device,
      lab,
      el("td", item.app_version ?? "—"),
      el("td", when(item.last_seen), "nowrap"),
      verdict,
      el("td", waiting, waiting === "none" || waiting === "unknown" ? "muted" : "bad"),
    );
    return tr;
  }

  function notReady(item) {
    const li = el("li", null, "not-ready");
    li.dataset.testid = `not-ready-${item.device}`;
    const head = el("div", null, "not-ready-head");
    head.append(shortDevice(el, item.device));
    head.append(el("span", item.lab ?? item.subnet ?? "", "muted"));
    head.append(el("span", item.app_version ? `app ${item.app_version}` : "app version unknown", "muted"));
    const reasons = el("ul", null, "reasons");
    for (const reason of item.reasons) {
      const line = el("li", reason.text);
      line.dataset.code = reason.code;
      reasons.append(line);
    }
    li.append(head, reasons);
    if (item.warnings.length) li.append(el("p", `Also: ${item.warnings.map((w) => w.text).join("; ")}.`, "hint"));
    return li;
  }

  async function check(event) {
    event?.preventDefault();
    const said = $("ready-summary");
    said.textContent = "Checking…";
    try {
      const data = await api("GET", `/v1/admin/machines/readiness?${params()}`);
      said.textContent = summary(data);
      said.dataset.state = data.not_ready === 0 ? "ready" : "not-ready";
      $("ready-list").replaceChildren(...data.items.filter((item) => !item.ready).map(notReady));
      $("ready-rows").replaceChildren(...data.items.map(row));
      $("ready-empty").hidden = data.items.length > 0;
    } catch (error) {
      said.textContent = `The readiness could not be loaded (${error.message}).`;
      said.dataset.state = "error";
    }
  }

  async function downloadCsv() {
    const said = $("ready-csv-said");
    try {
      const response = await fetch(`/v1/admin/machines/readiness?${params("csv")}`, { headers: headers() });
      if (!response.ok) {
        const problem = await response.json().catch(() => null);
        throw new Error(`${response.status}: ${problem?.detail ?? response.statusText}`);
      }
      const disposition = response.headers.get("content-disposition") ?? "";
      const name = /filename="([^"]+)"/.exec(disposition)?.[1] ?? "readiness.csv";
      const blob = await response.blob();
      const link = el("a");
      link.href = URL.createObjectURL(blob);
      link.download = name;
      document.body.append(link);
      link.click();
      setTimeout(() => { URL.revokeObjectURL(link.href); link.remove(); }, 60_000);
      said.textContent = `Downloaded ${name}.`;
    } catch (error) {
      said.textContent = `The CSV could not be made (${error.message}).`;
    }
  }

  $("ready-form").addEventListener("submit", check);
  $("ready-exam").addEventListener("change", () => {
    examChanged();
    check();
  });
  $("ready-csv").addEventListener("click", downloadCsv);

  return {
    async show() {
      try {
        if (!loaded) await loadExams();
      } catch (error) {
        $("ready-summary").textContent = `The exams could not be loaded (${error.message}).`;
        return;
      }
      await check();
    },
  };
}
