// The console's Analytics tab in the browser, after the fleet view: a week of minute summaries
// from six machines in two labs, sent through the API as the apps send them (`metrics.minute`
// events, 500 a request); the charts' series and points read from uPlot's instances; scopes,
// periods (1 h, 24 h, 7 days, from–to), an empty period, drag-to-zoom on one chart (all follow,
// with finer steps) and reset; then a new minute posted and timed until the chart has it.
// Timings are printed beside their budgets, never asserted.
import assert from "node:assert/strict";

const MINUTE = 60_000;
const WEEK = 7 * 24 * 60;
// Three machines in each lab; the north ones sat demo-mixed yesterday for two hours.
const MACHINES = [
  ["north-01", "Lab North", "student11"],
  ["north-02", "Lab North", "student12"],
  ["north-03", "Lab North", "student13"],
  ["south-01", "Lab South", "student14"],
  ["south-02", "Lab South", "student15"],
  ["south-03", "Lab South", "student16"],
];
const EXAM_MINUTES = [24 * 60 + 1, 26 * 60]; // minutes ago, inclusive

// A small deterministic generator (mulberry32), so that every run draws the same week.
function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const agg = (count, sum, min, max) => ({ count, sum, min, max });

// One machine's minute `ago` minutes before `base`, as the app would summarise it: saves busier
// in school hours, Lab South slower and offline for 20 minutes two days ago, north-02 offline
// for 6 minutes yesterday, a failed token refresh in the south now and then (more after its
// outage).
function minuteOf(index, ago, base) {
  const [device, lab] = MACHINES[index];
  const at = base - ago * MINUTE;
  const r = random(index * 1_000_003 + ago);
  const south = lab === "Lab South";
  const hour = new Date(at).getUTCHours();
  const busy = hour >= 7 && hour < 15;
  const offline = (south && ago >= 3000 && ago < 3020) || (device === "north-02" && ago >= 1700 && ago < 1706);
  const metrics = {};
  const saves = busy ? 2 + Math.floor(r() * 6) : Math.floor(r() * 2);
  if (saves > 0) {
    const mean = (8 + 6 * r() + (busy ? 4 : 0)) * (south ? 1.6 : 1);
    metrics.save_ms = agg(saves, mean * saves, mean * 0.6, mean * (1.3 + 2 * r()));
  }
  const delivered = offline ? 0 : saves;
  metrics.delivered = agg(60, delivered, 0, Math.min(delivered, 2));
  const queue = offline ? 3 + (ago % 20) / 2 : r() < 0.1 ? 1 : 0;
  metrics.queue_depth = agg(60, queue * 60, Math.max(0, queue - 1), queue);
  if (offline) {
    metrics.offline_s = agg(60, 60, 1, 1);
    if (ago === 3019 || ago === 1705) metrics.outages = agg(1, 1, 1, 1);
  } else {
    metrics.online_s = agg(60, 60, 1, 1);
    const rtt = (south ? 35 : 18) + 10 * r();
    metrics.rtt_ms = agg(4, rtt * 4, rtt * 0.8, rtt * 1.5);
  }
  // Lab South's token refreshes fail now and then, more after its outage.
  if (south && (ago % 1440 === 600 + index * 7 || (ago >= 2980 && ago < 3000 && ago % 4 === index % 4))) {
    metrics.refresh_failures = agg(1, 1, 1, 1);
  }
  const inExam = lab === "Lab North" && ago >= EXAM_MINUTES[0] && ago <= EXAM_MINUTES[1];
  const minute = new Date(at).toISOString();
  return {
    id: `metrics-${device}-${at}`,
    type: "metrics.minute",
    at: minute,
    attrs: {
      minute, device, lab, app_version: "1.4.0",
      attempt_id: inExam ? `attempt-${device}` : null, exam_id: inExam ? "demo-mixed" : null,
      metrics,
    },
  };
}

// How many steps of `stepS` seconds the minutes in [from, to) fall in.
function stepsOf(minutes, from, to, stepS) {
  const step = stepS * 1000;
  return new Set(minutes.filter((m) => m >= from && m < to).map((m) => Math.floor(m / step) * step)).size;
}

// The page's state, read from the status line and uPlot's instances.
async function charts(page) {
  return page.evaluate(() => {
    const status = document.querySelector("[data-testid=an-status]").dataset;
    const shown = [...document.querySelectorAll("figure.chart")].map((figure) => ({
      id: figure.dataset.chart,
      series: figure.uplot.series.length - 1,
      labels: figure.uplot.series.slice(1).map((s) => s.label),
      points: figure.uplot.data[0].length,
      first: figure.uplot.data[0][0],
      last: figure.uplot.data[0].at(-1),
      min: figure.uplot.scales.x.min,
      max: figure.uplot.scales.x.max,
      yLabel: figure.uplot.axes[1].label,
    }));
    return {
      step: Number(status.step), points: Number(status.points), from: Number(status.from), to: Number(status.to),
      renderMs: status.renderMs === undefined ? null : Number(status.renderMs),
      fetchMs: status.fetchMs === undefined ? null : Number(status.fetchMs), text: document.querySelector("[data-testid=an-status]").textContent,
      charts: shown,
    };
  });
}

// The loads the status line has told of so far.
async function loadsNow(page) {
  return Number((await page.getByTestId("an-status").getAttribute("data-loads")) ?? 0);
}

// Waits until the status line tells of load number `loads`, in steps of `step` seconds.
async function loaded(page, { step, loads }) {
  await page.waitForFunction(
    ([step, loads]) => {
      const status = document.querySelector("[data-testid=an-status]");
      return Number(status.dataset.step) === step && status.dataset.loads === String(loads);
    },
    [step, loads],
  );
}

export async function analytics(page, { server, signInAs, postEvents, shots, fleetMinute }) {
  // ---- a week of minutes, through the API ------------------------------------------------------
  const base = Math.floor(Date.now() / MINUTE) * MINUTE;
  const tokens = await Promise.all(MACHINES.map(([, , student]) => signInAs(student)));
  const seeding = performance.now();
  const jobs = [];
  for (let index = 0; index < MACHINES.length; index += 1) {
    for (let first = 1; first <= WEEK; first += 500) {
      jobs.push([index, first, Math.min(WEEK, first + 499)]);
    }
  }
  let sent = 0;
  const worker = async () => {
    for (let job = jobs.shift(); job; job = jobs.shift()) {
      const [index, first, last] = job;
      const events = [];
      for (let ago = first; ago <= last; ago += 1) events.push(minuteOf(index, ago, base));
      // (Awaited first: `sent += await …` would read `sent` before the other worker adds to it.)
      const accepted = await postEvents(tokens[index], events);
      sent += accepted;
    }
  };
  await Promise.all([worker(), worker()]);
  assert.equal(sent, MACHINES.length * WEEK, "every minute stored once");
  console.log(`seeded ${sent} machine-minutes (6 machines × 7 days) in ${((performance.now() - seeding) / 1000).toFixed(1)} s`);

  const seeded = Array.from({ length: WEEK }, (_, i) => base - (i + 1) * MINUTE);
  // The fleet view's minutes (one and two minutes before its own minute) are in the week too.
  const fleetMinutes = [fleetMinute - MINUTE, fleetMinute - 2 * MINUTE];
  const everything = [...new Set([...seeded, ...fleetMinutes])];
  const examMinutes = [
    ...seeded.filter((m) => m <= base - EXAM_MINUTES[0] * MINUTE && m >= base - EXAM_MINUTES[1] * MINUTE),
    ...fleetMinutes,
  ];

  // ---- the last 24 hours, then a week --------------------------------------------------------
  let loads = await loadsNow(page);
  await page.getByRole("tab", { name: "Analytics" }).click();
  await page.getByTestId("an-live").filter({ hasText: "Live" }).waitFor();
  await loaded(page, { step: 60, loads: (loads += 1) });
  let state = await charts(page);
  assert.deepEqual(state.charts.map((c) => c.id), ["save", "delivered", "offline", "problems"], "the default charts");
  assert.equal(state.points, stepsOf(everything, state.from, state.to, 60), `24 h by the minute: ${state.text}`);
  for (const chart of state.charts) assert.equal(chart.points, state.points, `${chart.id}: every step drawn`);
  assert.deepEqual(state.charts.map((c) => c.series), [3, 1, 2, 2], "lines per chart");
  assert.deepEqual(state.charts.map((c) => c.yLabel), ["ms", "per min", "machines", "per min"], "axis units");
  assert.deepEqual(state.charts[0].labels, ["mean", "p99 of each machine's slowest", "slowest"]);
  await page.screenshot({ path: `${shots}/console-analytics-24h.png`, fullPage: true });

  const clicked = performance.now();
  await page.getByRole("button", { name: "7 days" }).click();
  loads += 1;
  await loaded(page, { step: 300, loads });
  const waited = performance.now() - clicked;
  state = await charts(page);
  const weekPoints = stepsOf(everything, state.from, state.to, 300);
  assert.equal(state.points, weekPoints, `a week in 5-minute steps: ${state.text}`);
  for (const chart of state.charts) assert.equal(chart.points, weekPoints, `${chart.id}: every step drawn`);
  assert.ok(Math.abs(state.charts[0].min * 1000 - state.from) < 1000 && Math.abs(state.charts[0].max * 1000 - state.to) < 1000, "the x axis is the week");
  console.log(
    `analytics: 7 days of minute data (${sent} machine-minutes; ${weekPoints} steps × 4 charts) drawn in ` +
      `${state.renderMs} ms from the click, as the page measured it (the figures took ${state.fetchMs} ms to come; ` +
      `${waited.toFixed(0)} ms until the test saw it) — budget ≤ 300 ms`,
  );
  await page.screenshot({ path: `${shots}/console-analytics-7d.png`, fullPage: true });

  // ---- zoom: drag across the save chart; every chart follows, with minutes ----------------------
  const over = page.locator("[data-testid=chart-save] .u-over");
  const box = await over.boundingBox();
  const y = box.y + box.height / 2;
  await page.mouse.move(box.x + box.width * 0.55, y);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.62, y, { steps: 8 });
  await page.mouse.move(box.x + box.width * 0.7, y, { steps: 8 });
  await page.mouse.up();
  await page.waitForFunction(() => Number(document.querySelector("[data-testid=an-status]").dataset.step) === 60);
  state = await charts(page);
  const [zoomMin, zoomMax] = [state.charts[0].min, state.charts[0].max];
  assert.ok(zoomMax - zoomMin < 0.2 * 7 * 86_400, "zoomed in");
  for (const chart of state.charts) assert.deepEqual([chart.min, chart.max], [zoomMin, zoomMax], `${chart.id} follows the zoom`);
  const fetchedFrom = Math.floor((zoomMin * 1000) / MINUTE) * MINUTE;
  const fetchedTo = Math.ceil((zoomMax * 1000) / MINUTE) * MINUTE;
  assert.equal(state.charts[0].points, stepsOf(everything, fetchedFrom, fetchedTo, 60), "the zoomed span by the minute");
  assert.equal(await page.getByTestId("an-reset").isEnabled(), true);
  await page.screenshot({ path: `${shots}/console-analytics-zoom.png`, fullPage: true });
  await page.getByTestId("an-reset").click();
  await page.waitForFunction(() => Number(document.querySelector("[data-testid=an-status]").dataset.step) === 300);
  state = await charts(page);
  assert.equal(state.charts[0].points, weekPoints, "back to the week");
  assert.ok(Math.abs(state.charts[0].min * 1000 - state.from) < 1000, "the whole week again");
  assert.equal(await page.getByTestId("an-reset").isDisabled(), true);

  // ---- scopes: a lab, an exam, a machine ---------------------------------------------------------
  await page.getByTestId("an-scope").locator("option[value='lab:Lab South']").waitFor({ state: "attached" });
  await page.getByTestId("an-scope").selectOption("lab:Lab South");
  await loaded(page, { step: 300, loads: (loads += 1) });
  state = await charts(page);
  assert.equal(state.points, stepsOf(seeded, state.from, state.to, 300), `Lab South: ${state.text}`);
  assert.match(state.text, /^Lab South: /);
  // The pointer on its outage: every chart's legend reads that step (the charts' cursors are synced).
  const outage = Math.floor((base - 3010 * MINUTE) / 300_000) * 300;
  const offline = page.locator("[data-testid=chart-offline] .u-over");
  await offline.scrollIntoViewIfNeeded();
  // At a week's 5-minute steps a pixel spans more than two steps, so the pointer is placed at
  // the step's exact (fractional) position through uPlot rather than a whole-pixel mouse move,
  // which could land on the outage's first or last, partly offline, step.
  await offline.evaluate((over, x) => {
    const u = over.closest("figure").uplot;
    u.setCursor({ left: u.valToPos(x, "x"), top: over.clientHeight / 2 });
  }, outage);
  await page.getByTestId("chart-offline").locator(".u-legend").filter({ hasText: /offline\s*3 machines/ }).waitFor();
  await page.screenshot({ path: `${shots}/console-analytics-lab.png`, fullPage: true });
  await page.mouse.move(0, 0);
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.getByTestId("an-scope").selectOption("exam:demo-mixed");
  await loaded(page, { step: 300, loads: (loads += 1) });
  state = await charts(page);
  assert.equal(state.points, stepsOf(examMinutes, state.from, state.to, 300), `the exam: ${state.text}`);
  await page.getByTestId("an-scope").selectOption("machine:north-02");
  await page.getByRole("button", { name: "24 h" }).click();
  await loaded(page, { step: 60, loads: (loads += 2) });
  state = await charts(page);
  assert.equal(state.points, stepsOf(seeded, state.from, state.to, 60), `one machine: ${state.text}`);

  // ---- from–to: a day three days ago, then a period with nothing ----------------------------------
  await page.getByTestId("an-scope").selectOption("lab:Lab North");
  loads += 1;
  await page.getByRole("button", { name: "From–to" }).click();
  const local = (t) => new Date(t - new Date(t).getTimezoneOffset() * MINUTE).toISOString().slice(0, 16);
  const dayStart = base - 3 * 24 * 60 * MINUTE;
  await page.getByTestId("an-from").fill(local(dayStart));
  await page.getByTestId("an-to").fill(local(dayStart + 24 * 60 * MINUTE));
  await page.getByRole("button", { name: "Show" }).click();
  await loaded(page, { step: 60, loads: (loads += 1) });
  state = await charts(page);
  assert.equal(state.points, 1440, `a whole day by the minute: ${state.text} ${new Date(state.from).toISOString()} – ${new Date(state.to).toISOString()}`);
  await page.getByTestId("an-from").fill(local(base - 12 * 24 * 60 * MINUTE));
  await page.getByTestId("an-to").fill(local(base - 11 * 24 * 60 * MINUTE));
  await page.getByRole("button", { name: "Show" }).click();
  await loaded(page, { step: 60, loads: (loads += 1) });
  await page.getByTestId("an-empty").filter({ hasText: "Nothing from Lab North between" }).waitFor();
  assert.equal(await page.getByTestId("an-charts").isVisible(), false);
  await page.screenshot({ path: `${shots}/console-analytics-nothing.png` });

  // ---- live: the last hour follows a new minute ---------------------------------------------------
  await page.getByRole("button", { name: "1 h" }).click();
  await loaded(page, { step: 60, loads: (loads += 1) });
  state = await charts(page);
  assert.equal(state.points, stepsOf(seeded, state.from, state.to, 60), `the last hour: ${state.text}`);
  const now = Math.floor(Date.now() / MINUTE) * MINUTE;
  assert.ok(!seeded.includes(now));
  const fresh = minuteOf(0, 0, now);
  fresh.id = `metrics-north-01-${now}-live`;
  const posted = performance.now();
  assert.equal(await postEvents(tokens[0], [fresh]), 1);
  await page.waitForFunction(
    (x) => document.querySelector("[data-testid=chart-save]").uplot.data[0].includes(x),
    now / 1000,
    { polling: "raf" },
  );
  const latency = performance.now() - posted;
  console.log(`analytics: a new minute reached the chart ${latency.toFixed(0)} ms after it was posted — budget ≤ 1000 ms`);
  state = await charts(page);
  assert.equal(state.charts[0].last, now / 1000, "appended at the end");
  assert.ok(await page.getByTestId("an-charts").getAttribute("data-updated"), "the newest steps alone were fetched");
  await page.screenshot({ path: `${shots}/console-analytics-live.png`, fullPage: true });

  // Back to the whole fleet's week for the others.
  await page.getByTestId("an-scope").selectOption("");
}
