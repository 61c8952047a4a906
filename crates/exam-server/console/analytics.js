// The Analytics tab: the apps' minute summaries as charts (uPlot, vendored in vendor/) for the
// whole fleet, a lab, an exam or one machine, over the last hour, day or week or from–to.
// Drag across a chart to zoom (every chart follows, and finer steps are fetched for the span);
// double-click or "Reset zoom" to go back. Live: the fleet stream says when minutes arrive, and
// only the newest steps are fetched again and appended.
//
// The figures are the server's (GET /v1/admin/fleet/series: count, sum, min, max, mean and p99
// per step); this file only chooses which to draw and in what unit: a rate per minute, machines
// offline on average, a mean or the 99th percentile of the machines' slowest per minute.

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
const RANGES = { "1h": 60 * MINUTE, "24h": DAY, "7d": 7 * DAY };
const STEP_WORDS = { 60: "1-minute", 300: "5-minute", 900: "15-minute", 3600: "1-hour", 21600: "6-hour", 86400: "1-day" };
const COLORS = ["#1f4f8f", "#c2410c", "#64748b", "#15803d"];
// Present in every minute an app sends (its deliveries are sampled each second, 0 or not): the
// steps where it is missing had no summary at all, so a count missing there is not a zero.
const PRESENT = "delivered";

// What each chart draws: [metric, statistic, legend]. `rate`: the sum per minute; `machines`:
// seconds in a state per second, i.e. how many machines were in it on average.
const CHARTS = [
  { id: "save", title: "Answer-save time", unit: "ms", floor: 10, shown: true, empty: "No answer was saved",
    lines: [["save_ms", "mean", "mean"], ["save_ms", "p99", "p99 of each machine's slowest"], ["save_ms", "max", "slowest", false]] },
  { id: "delivered", title: "Answers delivered", unit: "per min", shown: true,
    lines: [["delivered", "rate", "delivered to the server"]] },
  { id: "queue", title: "Work waiting on the machines", unit: "entries", shown: false, empty: "No queue was sampled",
    lines: [["queue_depth", "mean", "mean per machine"], ["queue_depth", "max", "most on one machine"]] },
  { id: "rtt", title: "Round trip to the server", unit: "ms", floor: 10, shown: false, empty: "No round trip was measured",
    lines: [["rtt_ms", "mean", "mean"], ["rtt_ms", "p99", "p99 of each machine's slowest"]] },
  { id: "offline", title: "Machines offline", unit: "machines", shown: true,
    lines: [["offline_s", "machines", "offline"], ["degraded_s", "machines", "degraded network"]] },
  { id: "problems", title: "Outages and refresh failures", unit: "per min", shown: true,
    lines: [["outages", "rate", "outages"], ["refresh_failures", "rate", "token refresh failures"]] },
];

// The time axis in 24-hour time, the date under the first tick of each day (uPlot's table:
// tick spacing, format, then the format where the year, month, day, hour, minute, second
// changes, and whether those extend the default).
const TIME_TICKS = [
  [365 * 86_400, "{YYYY}", null, null, null, null, null, null, 1],
  [28 * 86_400, "{MMM}", "\n{YYYY}", null, null, null, null, null, 1],
  [86_400, "{D} {MMM}", "\n{YYYY}", null, null, null, null, null, 1],
  [3600, "{HH}:{mm}", "\n{D} {MMM} {YYYY}", null, "\n{D} {MMM}", null, null, null, 1],
  [60, "{HH}:{mm}", "\n{D} {MMM} {YYYY}", null, "\n{D} {MMM}", null, null, null, 1],
  [1, "{HH}:{mm}:{ss}", "\n{D} {MMM} {YYYY}", null, "\n{D} {MMM}", null, null, null, 1],
];

const numbers = new Intl.NumberFormat("en", { maximumFractionDigits: 1 });
const whole = new Intl.NumberFormat("en", { maximumFractionDigits: 0 });

function format(value, unit) {
  if (value === null || value === undefined) return "—";
  const shown = unit === "ms" && value >= 10 ? whole.format(value) : numbers.format(value);
  return `${shown} ${unit}`;
}

function valueOf(point, stat, stepS) {
  if (!point) return stat === "rate" || stat === "machines" ? 0 : null;
  if (stat === "rate") return point.sum / (stepS / 60);
  if (stat === "machines") return point.sum / stepS;
  return point[stat];
}

export function analytics({ api, el, when, readStream, $ }) {
  const view = {
    scope: "",
    range: "24h",
    from: 0,
    to: 0,
    // The figures of the whole period: step (s) and, per metric, step start (ms) -> point.
    full: null,
    // Finer figures of the zoomed span, or null.
    detail: null,
    zoom: null,
    known: null, // whether any machine has reported at all
    scopes: new Map(),
    loading: 0,
  };
  const charts = new Map(); // id -> { def, u, figure, note }
  let detailTimer = null;
  let following = false;
  let tail = null; // the earliest minute still to fetch again (ms), while a fetch runs
  let tailRunning = false;

  const shownCharts = () => CHARTS.filter((c) => $(`an-show-${c.id}`).checked);
  const metricsOf = (defs) => [...new Set([PRESENT, ...defs.flatMap((c) => c.lines.map(([m]) => m))])];
  const live = () => view.range !== "custom";

  function scopeParams() {
    if (!view.scope) return {};
    const at = view.scope.indexOf(":");
    return { by: view.scope.slice(0, at), key: view.scope.slice(at + 1) };
  }

  function scopeWords() {
    return view.scope ? view.scopes.get(view.scope) ?? view.scope : "Whole fleet";
  }

  // Two points per CSS pixel of the plot's width (a pixel on most screens; at most a week of minutes).
  function pointsWanted() {
    const width = $("an-charts").clientWidth || 1000;
    return Math.max(100, Math.min(10_080, Math.round(width * 2)));
  }

  async function fetchSeries(from, to, step, metrics) {
    const params = new URLSearchParams({
      metric: metrics.join(","),
      from: new Date(from).toISOString(),
      to: new Date(to).toISOString(),
      ...scopeParams(),
    });
    if (step === "auto") params.set("points", String(pointsWanted()));
    params.set("step", String(step));
    const data = await api("GET", `/v1/admin/fleet/series?${params}`);
    const series = data.series ?? [{ metric: data.metric, points: data.points }];
    const byMetric = new Map();
    for (const { metric, points } of series) {
      byMetric.set(metric, new Map(points.map((p) => [Date.parse(p.at), p])));
    }
    return { step: data.step_s, byMetric };
  }

  // The columns uPlot draws: the steps with any figure, then one column per line.
  function columns(figures, def, xs) {
    const data = [xs.map((x) => x / 1000)];
    for (const [metric, stat] of def.lines) {
      const points = figures.byMetric.get(metric) ?? new Map();
      data.push(xs.map((x) => valueOf(points.get(x), stat, figures.step)));
    }
    return data;
  }

  function steps(figures) {
    const all = new Set();
    for (const points of figures.byMetric.values()) for (const at of points.keys()) all.add(at);
    return [...all].filter((x) => x >= view.from - figures.step * 1000 && x < view.to).sort((a, b) => a - b);
  }

  function makeChart(def) {
    const figure = el("figure", undefined, "chart");
    figure.dataset.chart = def.id;
    figure.dataset.testid = `chart-${def.id}`;
    const caption = el("figcaption");
    caption.append(el("strong", def.title), el("span", def.unit, "unit-tag"));
    const note = el("p", "", "chart-note");
    note.hidden = true;
    const plot = el("div", undefined, "plot");
    figure.append(caption, note, plot);
    $("an-charts").append(figure);
    const u = new uPlot(
      {
        width: Math.max(300, plot.clientWidth || $("an-charts").clientWidth),
        height: 190,
        cursor: {
          sync: { key: "analytics" },
          // (A level line would read across every synced chart at the same height: none.)
          y: false,
          // The selection is turned into a zoom of every chart (see `selected`).
          drag: { x: true, y: false, setScale: false },
          bind: { dblclick: () => () => { resetZoom(); return null; } },
        },
        // From 0, and at least to `floor` (1 by default): a flat zero reads as nothing
        // happening, not as a scale of 0–100.
        scales: {
          x: { time: true },
          y: { range: (_u, _min, max) => uPlot.rangeNum(0, Math.max(max ?? 0, def.floor ?? 1), 0.1, true) },
        },
        axes: [
          { stroke: "#52606d", grid: { stroke: "#e6ebf1" }, ticks: { stroke: "#d5dce4" }, values: TIME_TICKS },
          {
            stroke: "#52606d",
            grid: { stroke: "#e6ebf1" },
            ticks: { stroke: "#d5dce4" },
            size: 64,
            label: def.unit,
            labelSize: 18,
            values: (_u, splits) => splits.map((v) => numbers.format(v)),
          },
        ],
        series: [
          { value: (_u, v) => (v === null ? "—" : when(new Date(v * 1000).toISOString())) },
          ...def.lines.map(([, stat, label, show = true], i) => ({
            label,
            show,
            stroke: COLORS[i % COLORS.length],
            width: stat === "p99" ? 1.5 : 2,
            dash: stat === "p99" ? [6, 4] : undefined,
            fill: def.lines.length === 1 ? "rgba(31, 79, 143, 0.08)" : undefined,
            spanGaps: false,
            points: { show: false },
            value: (_u, v) => format(v, def.unit),
          })),
        ],
        hooks: {
          setSelect: [selected],
          draw: [() => (view.drawnAt = performance.now())],
        },
      },
      [[], ...def.lines.map(() => [])],
      plot,
    );
    // For tests and the curious: the chart's instance, on its element.
    figure.uplot = u;
    charts.set(def.id, { def, u, figure, note });
  }

  function layout() {
    const wanted = new Set(shownCharts().map((c) => c.id));
    for (const [id, chart] of charts) {
      if (!wanted.has(id)) {
        chart.u.destroy();
        chart.figure.remove();
        charts.delete(id);
      }
    }
    // In the list's order, whatever order they were ticked in.
    for (const def of CHARTS) {
      if (wanted.has(def.id) && !charts.has(def.id)) makeChart(def);
      const chart = charts.get(def.id);
      if (chart) $("an-charts").append(chart.figure);
    }
  }

  // Puts the figures shown (the zoomed span's when fetched, else the period's) into the charts,
  // and the x axis on the zoom or the whole period.
  function draw() {
    const figures = view.detail ?? view.full;
    if (!figures) return 0;
    const xs = steps(figures);
    const [min, max] = view.zoom ?? [view.from, view.to];
    for (const { def, u, note } of charts.values()) {
      const data = columns(figures, def, xs);
      u.setData(data);
      u.setScale("x", { min: min / 1000, max: max / 1000 });
      const nothing = def.empty && data.slice(1).every((column) => column.every((v) => v === null));
      note.textContent = nothing ? `${def.empty} in this period.` : "";
      note.hidden = !nothing;
    }
    return xs.length;
  }

  function say(words, extra = {}) {
    const status = $("an-status");
    status.textContent = words;
    Object.assign(status.dataset, extra);
  }

  function describe(points, renderMs, fetchMs) {
    const figures = view.detail ?? view.full;
    const step = STEP_WORDS[figures.step] ?? `${figures.step}-second`;
    const zoom = view.zoom
      ? ` · zoomed to ${when(new Date(view.zoom[0]).toISOString())} – ${when(new Date(view.zoom[1]).toISOString())}`
      : "";
    const timing =
      renderMs === undefined ? "" : ` · drawn in ${Math.round(renderMs)} ms (the figures took ${Math.round(fetchMs)} ms to come)`;
    const paused = view.zoom && view.detail && live() ? " · live updates wait until the zoom is reset" : "";
    let newest = 0;
    for (const points of figures.byMetric.values()) for (const at of points.keys()) newest = Math.max(newest, at);
    const latest = newest && live() && !view.zoom ? ` · newest minute ${when(new Date(newest).toISOString())}` : "";
    const words = points ? `${scopeWords()}: ${numbers.format(points)} ${step} steps${zoom}${latest}${timing}${paused}.` : "";
    say(words, {
      points: String(points),
      step: String(figures.step),
      from: String(view.from),
      to: String(view.to),
      loads: String(view.loading),
      ...(renderMs === undefined ? {} : { renderMs: String(Math.round(renderMs)), fetchMs: String(Math.round(fetchMs)) }),
    });
  }

  function showEmpty(points) {
    const empty = $("an-empty");
    if (points > 0) {
      empty.hidden = true;
      $("an-charts").hidden = false;
      return;
    }
    $("an-charts").hidden = true;
    empty.hidden = false;
    if (view.known === false) {
      empty.textContent =
        "No machine has reported yet. Each exam app sends a summary of its minute while a student is signed in; " +
        "the charts fill in as they arrive (this page follows them live).";
    } else {
      const period = `${when(new Date(view.from).toISOString())} and ${when(new Date(view.to).toISOString())}`;
      const scope = view.scope ? scopeWords() : "the fleet";
      empty.textContent = `Nothing from ${scope} between ${period}: none of its machines reported in this period. Try a longer period or another scope.`;
    }
  }

  function setPeriod() {
    if (live()) {
      view.to = Date.now();
      view.from = view.to - RANGES[view.range];
    } else {
      view.from = new Date($("an-from").value).getTime();
      view.to = new Date($("an-to").value).getTime();
    }
  }

  // The whole period again: figures, charts, the status line with how long it took.
  async function load() {
    const started = performance.now();
    const loading = ++view.loading;
    setPeriod();
    if (!(view.from < view.to)) {
      say("Choose a start before the end.");
      return;
    }
    view.zoom = null;
    view.detail = null;
    $("an-reset").disabled = true;
    layout();
    say(`Loading ${view.scope ? scopeWords() : "the whole fleet"}…`);
    try {
      const figures = await fetchSeries(view.from, view.to, "auto", metricsOf(shownCharts()));
      const fetched = performance.now();
      if (loading !== view.loading) return;
      view.full = figures;
      const points = draw();
      showEmpty(points);
      // Drawn on the next frame: that is when the proctor sees it.
      await new Promise((resolve) => requestAnimationFrame(() => resolve()));
      describe(points, (view.drawnAt ?? performance.now()) - started, fetched - started);
    } catch (error) {
      say(`The charts could not be loaded (${error.message}).`);
    }
  }

  // The scopes to choose from: every lab, exam and machine with minutes kept (and whether any
  // machine has reported at all).
  async function loadScopes() {
    const data = await api("GET", "/v1/admin/fleet/scopes");
    view.known = data.first !== null;
    const select = $("an-scope");
    const chosen = select.value;
    select.replaceChildren(el("option", "Whole fleet"));
    select.firstChild.value = "";
    view.scopes.clear();
    const group = (label, by, groups, words) => {
      if (!groups.length) return;
      const optgroup = el("optgroup");
      optgroup.label = label;
      for (const g of groups) {
        const option = el("option", words(g));
        option.value = `${by}:${g.key}`;
        view.scopes.set(option.value, words(g));
        optgroup.append(option);
      }
      select.append(optgroup);
    };
    group("Labs", "lab", data.labs, (g) => g.label);
    group("Exams", "exam", data.exams, (g) => g.label);
    // A fingerprint is long: its start tells machines apart.
    group("Machines", "machine", data.machines, (g) =>
      `${g.key.length > 16 ? `${g.key.slice(0, 12)}…` : g.key} ${g.label}`,
    );
    if (chosen && !view.scopes.has(chosen)) {
      const option = el("option", chosen);
      option.value = chosen;
      select.append(option);
    }
    select.value = chosen;
  }

  // ---- zoom ---------------------------------------------------------------------------------

  // A span dragged across a chart: every chart zooms to it.
  function selected(u) {
    if (u.select.width < 3) return;
    const from = u.posToVal(u.select.left, "x") * 1000;
    const to = u.posToVal(u.select.left + u.select.width, "x") * 1000;
    u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
    zoomTo(from, to);
  }

  function zoomTo(from, to) {
    view.zoom = [from, to];
    for (const { u } of charts.values()) u.setScale("x", { min: from / 1000, max: to / 1000 });
    $("an-reset").disabled = false;
    clearTimeout(detailTimer);
    detailTimer = setTimeout(fetchDetail, 150);
  }

  // A zoomed span gets finer steps when the period's are coarse for it.
  async function fetchDetail() {
    if (!view.zoom || !view.full) {
      describe(view.full ? steps(view.full).length : 0);
      return;
    }
    const [from, to] = view.zoom;
    const finest = Math.ceil((to - from) / 1000 / pointsWanted());
    if (view.full.step <= 60 || view.full.step <= finest) {
      describe(steps(view.full).filter((x) => x >= from && x < to).length);
      return;
    }
    const zoom = view.zoom;
    try {
      const detail = await fetchSeries(Math.floor(from / MINUTE) * MINUTE, Math.ceil(to / MINUTE) * MINUTE, "auto", metricsOf(shownCharts()));
      if (view.zoom !== zoom) return;
      view.detail = detail;
      draw();
      describe(steps(detail).filter((x) => x >= from && x < to).length);
    } catch (error) {
      say(`The zoomed span could not be loaded (${error.message}).`);
    }
  }

  function resetZoom() {
    clearTimeout(detailTimer);
    view.zoom = null;
    view.detail = null;
    $("an-reset").disabled = true;
    if (live()) setPeriod();
    describe(draw());
  }

  // ---- live -----------------------------------------------------------------------------------

  function concerns(arrived) {
    if (!view.full || arrived.more || !view.scope) return true;
    const { by, key } = scopeParams();
    const names = { lab: arrived.labs, exam: arrived.exams, machine: arrived.machines }[by] ?? [];
    return names.includes(key);
  }

  // Fetches again the steps from `since` on (the newest minutes) and merges them in.
  async function refreshTail(since) {
    tail = tail === null ? since : Math.min(tail, since);
    if (tailRunning) return;
    tailRunning = true;
    try {
      while (tail !== null) {
        const from = tail;
        tail = null;
        if (!view.full) break;
        if (live()) setPeriod();
        const step = view.full.step * 1000;
        const start = Math.max(Math.floor(from / step) * step, Math.floor(view.from / step) * step);
        const end = Math.max(view.to, Date.now());
        if (start >= end) continue;
        const full = view.full;
        const fresh = await fetchSeries(start, end, full.step, metricsOf(shownCharts()));
        if (view.full !== full) continue;
        for (const [metric, points] of fresh.byMetric) {
          const kept = full.byMetric.get(metric) ?? new Map();
          for (const at of [...kept.keys()]) if (at >= start || at < view.from - step) kept.delete(at);
          for (const [at, point] of points) kept.set(at, point);
          full.byMetric.set(metric, kept);
        }
        if (!view.detail) {
          const points = draw();
          showEmpty(points);
          describe(points);
        }
        $("an-charts").dataset.updated = String(Date.now());
      }
    } catch (error) {
      say(`The newest minutes could not be loaded (${error.message}).`);
    } finally {
      tailRunning = false;
    }
  }

  function setLive(on, words) {
    const badge = $("an-live");
    badge.className = `live ${on ? "on" : "off"}`;
    badge.textContent = words;
  }

  // Follows the fleet stream; the first time, once it has answered (so nothing that arrives
  // while the charts load is missed), `ready` is resolved.
  function follow() {
    if (following) return Promise.resolve();
    following = true;
    return new Promise((ready) => {
      (async () => {
        let since = null;
        for (;;) {
          try {
            const path = since === null ? "/console/fleet/stream" : `/console/fleet/stream?since=${since}`;
            await readStream(path, () => { setLive(true, "Live"); ready(); }, (type, data) => {
              if (type !== "minutes") return;
              const arrived = JSON.parse(data);
              since = arrived.cursor;
              // (Out of sight, nothing is fetched: opening the tab loads everything.)
              if ($("view-analytics").hidden) return;
              if (view.known === false) loadScopes().catch(() => {});
              if (!concerns(arrived)) return;
              if (!live() && Date.parse(arrived.from) >= view.to) return;
              refreshTail(Date.parse(arrived.from));
            });
          } catch (error) {
            setLive(false, `Reconnecting (${error.message})`);
            ready();
          }
          await new Promise((resolve) => setTimeout(resolve, 1000));
        }
      })();
    });
  }

  // ---- wiring -------------------------------------------------------------------------------

  function pickRange(range) {
    view.range = range;
    for (const button of $("an-ranges").querySelectorAll("button")) {
      button.setAttribute("aria-pressed", String(button.dataset.range === range));
    }
    $("an-custom").hidden = range !== "custom";
    if (range === "custom") {
      if (!$("an-from").value) {
        const local = (t) => new Date(t - new Date(t).getTimezoneOffset() * MINUTE).toISOString().slice(0, 16);
        $("an-to").value = local(Date.now());
        $("an-from").value = local(Date.now() - DAY);
      }
      $("an-from").focus();
      return;
    }
    load();
  }

  const boxes = $("an-metrics");
  for (const def of CHARTS) {
    const label = el("label", undefined, "inline");
    const box = el("input");
    box.type = "checkbox";
    box.id = `an-show-${def.id}`;
    box.checked = def.shown;
    box.dataset.testid = `an-show-${def.id}`;
    box.addEventListener("change", () => load());
    label.append(box, ` ${def.title}`);
    boxes.append(label);
  }
  for (const button of $("an-ranges").querySelectorAll("button")) {
    button.addEventListener("click", () => pickRange(button.dataset.range));
  }
  $("an-form").addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  $("an-scope").addEventListener("change", () => {
    view.scope = $("an-scope").value;
    load();
  });
  $("an-reset").addEventListener("click", resetZoom);
  new ResizeObserver(() => {
    for (const { u, figure } of charts.values()) {
      const width = figure.querySelector(".plot").clientWidth;
      if (width > 0 && Math.abs(width - u.width) > 2) u.setSize({ width, height: u.height });
    }
  }).observe($("an-charts"));

  return {
    // The tab was opened: follow the stream, then the charts and the scopes.
    async show() {
      if (typeof uPlot === "undefined") {
        say("The chart library did not load (vendor/uPlot.iife.min.js).");
        return;
      }
      await follow();
      await load();
      loadScopes()
        .then(() => {
          if (view.known === false) showEmpty(0);
        })
        .catch((error) => say(`The scopes could not be loaded (${error.message}).`));
    },
  };
}
