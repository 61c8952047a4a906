// The Insights tab: what only the fleet shows (GET /v1/admin/fleet/insights) — each finding
// with its figures, the machines it is about and what to do — the peak answer writes each
// upcoming exam will ask of the server, and the reports (GET /v1/admin/reports/{kind}) to
// download as PDF, CSV or JSON for an exam, a lab or the alerts of a period.
//
// The words are the server's (evidence, recommendation); this file lays them out.

const TITLES = {
  clock_skew: "Clocks off on several machines",
  frequent_outages: "Outages every few minutes in a lab",
  backlog: "Machines still holding work",
  refresh_failures_rising: "Token refresh failures rising",
  slow_disks: "Slow disks",
  disk_filling_up: "Disks filling up",
};

const numbers = new Intl.NumberFormat("en", { maximumFractionDigits: 1 });

function backtestWords(backtest, unit) {
  if (!backtest) return null;
  return `Checked on past data: ${backtest.n} forecasts, off by ${numbers.format(backtest.mae)} ${unit} on average` +
    (backtest.mape > 0 ? ` (${numbers.format(backtest.mape)} %)` : "") + ".";
}

function pastWords(exam) {
  const past = `${exam.past_exams} past exam${exam.past_exams === 1 ? "" : "s"}`;
  if (exam.backtest) return `± ${numbers.format(exam.backtest.mae)} a second (${past})`;
  return exam.past_exams === 1 ? `${past}: too few to check` : past;
}

export function insights({ api, el, when, headers, $ }) {
  let loaded = false;

  function card(insight) {
    const item = el("li", null, `insight ${insight.severity}`);
    item.dataset.testid = `insight-${insight.code}`;
    const head = el("div", null, "insight-head");
    head.append(el("span", insight.severity, `badge ${insight.severity}`), el("strong", TITLES[insight.code] ?? insight.code));
    if (insight.lab) head.append(el("span", insight.lab, "muted"));
    item.append(head, el("p", insight.evidence), el("p", insight.recommendation, "hint"));
    const unit = insight.code === "refresh_failures_rising" ? "failures an hour" : insight.code === "disk_filling_up" ? "MiB" : "";
    const checked = backtestWords(insight.backtest, unit);
    if (checked) item.append(el("p", checked, "hint"));
    if (insight.machines.length > 0) {
      const machines = el("details");
      machines.append(el("summary", `${insight.machines.length} machine${insight.machines.length === 1 ? "" : "s"}`));
      machines.append(el("p", insight.machines.join(", "), "mono muted"));
      item.append(machines);
    }
    return item;
  }

  async function load(event) {
    event?.preventDefault();
    const students = $("capacity-students").value.trim();
    const query = students ? `?${new URLSearchParams({ students })}` : "";
    try {
      const data = await api("GET", `/v1/admin/fleet/insights${query}`);
      const list = $("insight-list");
      list.replaceChildren(...data.insights.map(card));
      $("insights-empty").hidden = data.insights.length > 0;
      $("insights-empty").textContent = data.machines === 0
        ? "No machine has reported in the last 24 hours."
        : `Nothing to look at: ${data.machines} machine${data.machines === 1 ? "" : "s"} in ${data.labs} lab${data.labs === 1 ? "" : "s"} reported in the last 24 hours.`;
      $("insights-when").textContent = `As of ${when(data.generated_at)}.`;
      const rows = $("capacity-rows");
      rows.replaceChildren();
      for (const exam of data.capacity) {
        const row = el("tr");
        row.dataset.testid = `capacity-${exam.exam_id}`;
        const peak = exam.peak_writes_per_s === null
          ? el("td", "no past exam to learn from", "muted")
          : el("td", `${numbers.format(exam.peak_writes_per_s)} a second`, "num");
        row.append(
          el("td", exam.title),
          el("td", when(exam.opens_at), "nowrap"),
          el("td", numbers.format(exam.students), "num"),
          peak,
          el("td", pastWords(exam), "muted"),
        );
        rows.append(row);
      }
      $("capacity-empty").hidden = data.capacity.length > 0;
      loaded = true;
    } catch (error) {
      $("insight-list").replaceChildren();
      $("insights-empty").textContent = `The insights could not be loaded (${error.message}).`;
      $("insights-empty").hidden = false;
    }
  }

  // ---- reports --------------------------------------------------------------------------

  async function loadSubjects() {
    try {
      const [exams, scopes] = await Promise.all([api("GET", "/v1/admin/exams"), api("GET", "/v1/admin/fleet/scopes")]);
      $("report-exam").replaceChildren(...exams.map((e) => {
        const option = el("option", `${e.title} (${e.attempts} attempts)`);
        option.value = e.id;
        return option;
      }));
      $("report-lab").replaceChildren(...scopes.labs.map((lab) => {
        const option = el("option", lab.label);
        option.value = lab.key;
        return option;
      }));
    } catch (error) {
      $("report-said").textContent = `The exams and labs could not be loaded (${error.message}).`;
    }
  }

  function kindChanged() {
    const kind = $("report-kind").value;
    $("report-exam-field").hidden = kind !== "exam";
    $("report-lab-field").hidden = kind !== "lab";
    const range = $("report-range");
    range.querySelector('option[value="exam"]').disabled = kind !== "exam";
    if (kind !== "exam" && range.value === "exam") range.value = "day";
    $("report-custom").hidden = range.value !== "custom";
  }

  async function download(format) {
    const kind = $("report-kind").value;
    const params = new URLSearchParams({ format });
    if (kind === "exam") params.set("exam", $("report-exam").value);
    if (kind === "lab") params.set("lab", $("report-lab").value);
    const range = $("report-range").value;
    if (range === "custom") {
      for (const side of ["from", "to"]) {
        const value = $(`report-${side}`).value;
        if (value) params.set(side, new Date(value).toISOString());
      }
    } else {
      params.set("range", range);
    }
    const said = $("report-said");
    said.textContent = "Making the report…";
    try {
      const response = await fetch(`/v1/admin/reports/${kind}?${params}`, { headers: headers() });
      if (!response.ok) {
        const problem = await response.json().catch(() => null);
        throw new Error(`${response.status}: ${problem?.detail ?? response.statusText}`);
      }
      const disposition = response.headers.get("content-disposition") ?? "";
      const name = /filename="([^"]+)"/.exec(disposition)?.[1] ?? `${kind}-report.${format}`;
      const blob = await response.blob();
      const link = el("a");
      link.href = URL.createObjectURL(blob);
      link.download = name;
      link.dataset.testid = "report-link";
      document.body.append(link);
      link.click();
      setTimeout(() => { URL.revokeObjectURL(link.href); link.remove(); }, 60_000);
      said.textContent = `Downloaded ${name} (${numbers.format(blob.size / 1024)} KiB).`;
    } catch (error) {
      said.textContent = `The report could not be made (${error.message}).`;
    }
  }

  $("capacity-form").addEventListener("submit", load);
  $("report-kind").addEventListener("change", kindChanged);
  $("report-range").addEventListener("change", kindChanged);
  $("report-form").addEventListener("submit", (e) => e.preventDefault());
  for (const button of document.querySelectorAll("#report-form button[data-format]")) {
    button.addEventListener("click", () => download(button.dataset.format));
  }

  return {
    show() {
      load();
      if (!loaded) loadSubjects().then(kindChanged);
    },
  };
}
