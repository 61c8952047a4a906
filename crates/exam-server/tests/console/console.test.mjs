// The console for proctors and IT in a real browser (Debian's chromium through
// playwright-core), against a running reference server (SERVER, ADMIN_TOKEN): sign in with a
// wrong token and the right one; a student's app reports a prohibited program and the alert
// appears live (timed from the event's delivery); acknowledged with a note; an outage and a
// time the app was not running in the attempt's timeline, with the time lost above it; the events and machines views, and a machine's history; the
// machines' readiness for tomorrow's exam (two machines reporting, one not ready; its CSV); the
// fleet view (minute summaries from two labs, by lab, machine and exam); the alert
// filters (rule, severity); a spraying address blocked by the server is lifted from the
// console; the Analytics tab (empty, then a week of minutes from six machines in two labs:
// series and points drawn, scopes, periods, zoom and reset, a new minute arriving live — its
// render time and live latency printed beside the budgets, never asserted); the Insights &
// reports tab (a fleet finding, capacity, reports downloaded). Screenshots go to
// SCREENSHOTS.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";
import { analytics } from "./analytics.mjs";
import { insightsAndReports } from "./insights.mjs";
import { readinessView } from "./readiness.mjs";

const server = process.env.SERVER.replace(/\/$/, "");
const admin = process.env.ADMIN_TOKEN;
const shots = process.env.SCREENSHOTS ?? "target/screenshots";
mkdirSync(shots, { recursive: true });

async function signInAs(username) {
  const response = await fetch(`${server}/oauth/token`, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "password", username, password: "demo", client_id: "exam-desktop" }),
  });
  assert.equal(response.status, 200, `sign-in of ${username}`);
  return (await response.json()).access_token;
}

async function postEvents(token, events) {
  const response = await fetch(`${server}/v1/events`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json", "Idempotency-Key": randomUUID() },
    body: JSON.stringify({ events }),
  });
  const text = await response.text();
  assert.equal(response.status, 202, `events: ${text}`);
  return JSON.parse(text).accepted;
}

async function report(token, type, attrs) {
  const response = await fetch(`${server}/v1/events`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json", "Idempotency-Key": randomUUID() },
    body: JSON.stringify({ events: [{ id: randomUUID(), type, at: new Date().toISOString(), attrs }] }),
  });
  assert.equal(response.status, 202, `${type}: ${await response.text()}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
let failed = false;
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  const problems = [];
  // (The wrong token's 401 is expected; anything else is a problem.)
  page.on("console", (m) => m.type() === "error" && !/status of 401/.test(m.text()) && problems.push(m.text()));
  page.on("pageerror", (e) => problems.push(String(e)));
  await page.goto(`${server}/console`);

  // A wrong token is refused, and says so.
  await page.getByTestId("token").fill("not-the-admin-token-at-all");
  await page.getByTestId("sign-in").click();
  await page.getByRole("alert").filter({ hasText: "refused this token" }).waitFor();

  await page.getByTestId("token").fill(admin);
  await page.getByTestId("sign-in").click();
  await page.getByTestId("live").filter({ hasText: "Live" }).waitFor();

  // Analytics before any machine has reported: it says so, and draws nothing.
  await page.getByRole("tab", { name: "Analytics" }).click();
  await page.getByTestId("an-empty").filter({ hasText: "No machine has reported yet" }).waitFor();
  assert.equal(await page.getByTestId("an-charts").isVisible(), false);
  await page.screenshot({ path: `${shots}/console-analytics-empty.png` });
  await page.getByRole("tab", { name: /Alerts/ }).click();

  // A student's app reports AnyDesk during an attempt: the alert appears by itself.
  const student = await signInAs("student21");
  const attemptId = randomUUID();
  const started = await fetch(`${server}/v1/exams/demo-mixed/attempts`, {
    method: "POST",
    headers: { Authorization: `Bearer ${student}`, "Content-Type": "application/json", "Idempotency-Key": randomUUID() },
    body: JSON.stringify({ attempt_id: attemptId, started_at: new Date(Date.now() - 10 * 60_000).toISOString() }),
  });
  assert.ok(started.ok, `attempt: ${started.status} ${await started.text()}`);
  const attrs = {
    code: "prohibited_program", severity: "warning", confidence: "high", subject: "anydesk",
    category: "remote_control", evidence: "process `anydesk` (pid 4242, file /opt/anydesk/anydesk) is remote_control program `anydesk`",
    blocks_start: true, attempt_id: attemptId, device: "c0ffee00c0ffee00c0ffee00c0ffee00",
  };
  const sent = performance.now();
  await report(student, "security.prohibited_program", attrs);
  const row = page.locator("tr[data-rule=client_finding]").filter({ hasText: "anydesk" });
  await row.waitFor();
  const shownMs = performance.now() - sent;
  console.log(`console alert shown ${shownMs.toFixed(0)} ms after the event was delivered (budget ≤ 1000 ms)`);
  assert.equal(await page.getByTestId("open-count").textContent(), "1");
  await page.screenshot({ path: `${shots}/console-alert-live.png` });

  // Hostile text from a client is shown as text.
  await report(student, "security.remote_session", {
    code: "remote_session", severity: "warning", confidence: "high",
    evidence: "<img src=x onerror=alert(1)> the app runs in an SSH session", device: attrs.device,
  });
  const hostile = page.locator("tr[data-rule=client_finding]").filter({ hasText: "<img src=x" });
  await hostile.waitFor();
  assert.equal(await page.locator("td img").count(), 0, "client text rendered as HTML");

  // Acknowledged with a note: it leaves the open list, and the note is kept.
  const id = (await row.getAttribute("data-testid")).replace("alert-", "");
  await page.getByTestId(`note-${id}`).fill("Spoke to the student; AnyDesk closed");
  await page.getByTestId(`ack-${id}`).click();
  await page.getByTestId("open-count").filter({ hasText: "1" }).waitFor();
  await page.locator("#open-only").uncheck();
  await page.locator(`tr[data-testid=alert-${id}]`).filter({ hasText: "Spoke to the student" }).waitFor();

  // The app was offline for 2 min 5 s during the attempt, and says so once back.
  const outageStart = new Date(Date.now() - 8 * 60_000);
  const outageEnd = new Date(outageStart.getTime() + 125_000);
  await report(student, "network.outage", {
    attempt_id: attemptId, started_at: outageStart.toISOString(), ended_at: outageEnd.toISOString(),
    duration_ms: 125_000, state: "offline",
  });
  // Later the app was not running for 1 min 20 s (a crash), and says so when it starts again.
  const downStart = new Date(Date.now() - 5 * 60_000);
  const downEnd = new Date(downStart.getTime() + 80_000);
  await report(student, "app.not_running", {
    attempt_id: attemptId, started_at: downStart.toISOString(), ended_at: downEnd.toISOString(),
    duration_ms: 80_000, device: attrs.device,
  });

  // The attempt's timeline, from the alert: started, the outage, the finding, in order.
  await page.locator(`tr[data-testid=alert-${id}]`).getByRole("button", { name: "Timeline" }).click();
  await page.getByTestId("timeline").locator("li").filter({ hasText: "started demo-mixed" }).waitFor();
  await page.getByTestId("timeline").locator("li").filter({ hasText: "anydesk" }).first().waitFor();
  const until = outageEnd.toISOString().slice(11, 19);
  const outage = page.getByTestId("timeline").locator("li.kind-outage");
  assert.match(await outage.textContent(), new RegExp(`offline for 2 min 5 s \\(until ${until} UTC\\)`));
  const order = await page.getByTestId("timeline").locator("li").evaluateAll((items) => items.map((li) => li.className));
  assert.deepEqual(order.slice(0, 4), ["kind-started", "kind-outage", "kind-not_running", "kind-finding"], `timeline order: ${order}`);
  await page.screenshot({ path: `${shots}/console-timeline.png` });

  // The fair-time ledger: above the timeline, the time lost — offline and not running — and
  // the time not running marked in the timeline.
  const down = page.getByTestId("timeline").locator("li.kind-not_running");
  const downUntil = downEnd.toISOString().slice(11, 19);
  assert.match(await down.textContent(), new RegExp(`the app was not running for 1 min 20 s \\(until ${downUntil} UTC\\) — a crash or a restart`));
  const marked = await down.evaluate((li) => getComputedStyle(li).backgroundColor);
  const plain = await outage.evaluate((li) => getComputedStyle(li).backgroundColor);
  assert.notEqual(marked, plain, "a time not running stands out in the timeline");
  const lost = page.getByTestId("time-lost");
  assert.equal(await lost.isVisible(), true);
  assert.equal(
    await page.getByTestId("time-lost-summary").textContent(),
    "Time lost: 3 min 25 s — offline 2 min 5 s, app not running 1 min 20 s",
  );
  const lostBox = await lost.boundingBox();
  const timelineBox = await page.getByTestId("timeline").boundingBox();
  assert.ok(lostBox.y + lostBox.height <= timelineBox.y, "the time lost is above the timeline");
  await page.screenshot({ path: `${shots}/console-fair-time.png` });
  // An attempt with nothing reported lost nothing, and says so.
  const quiet = await fetch(`${server}/v1/exams/demo-essay/attempts`, {
    method: "POST",
    headers: { Authorization: `Bearer ${student}`, "Content-Type": "application/json", "Idempotency-Key": randomUUID() },
    body: "{}",
  });
  assert.equal(quiet.status, 201, `attempt: ${await quiet.clone().text()}`);
  await page.locator("#attempt-id").fill((await quiet.json()).attempt_id);
  await page.locator("#attempt-form").getByRole("button", { name: "Show" }).click();
  await page.getByTestId("time-lost-summary").filter({ hasText: /^No time lost$/ }).waitFor();
  assert.equal(await page.getByTestId("timeline").locator("li.kind-not_running").count(), 0);
  await page.screenshot({ path: `${shots}/console-no-time-lost.png` });

  // The events and machines views.
  await page.getByRole("tab", { name: "Events" }).click();
  await page.locator("#events-type").fill("security.*");
  await page.getByRole("button", { name: "Show" }).click();
  await page.locator("[data-testid=events] tbody tr").filter({ hasText: "student21" }).first().waitFor();
  await page.getByRole("tab", { name: "Machines" }).click();
  const machine = page.getByTestId(`machine-${attrs.device}`);
  await machine.waitFor();
  assert.match(await machine.textContent(), /warning/);
  await page.screenshot({ path: `${shots}/console-machines.png` });

  // A machine's history: chosen in the list, its findings and alerts, newest first.
  await machine.click();
  const history = page.getByTestId("machine-history");
  await history.getByRole("heading", { name: `History of machine ${attrs.device}` }).waitFor();
  const rows = history.locator("tbody tr");
  await rows.nth(3).waitFor();
  const seen = await rows.evaluateAll((trs) => trs.map((tr) => `${tr.dataset.kind} ${tr.dataset.code}`));
  assert.deepEqual(seen, [
    "alert client_finding",
    "event remote_session",
    "alert client_finding",
    "event prohibited_program",
  ], "the machine's history, newest first");
  for (const text of await rows.allTextContents()) assert.match(text, /student21/);
  assert.match(await rows.nth(3).textContent(), /pid 4242/);
  assert.match(await rows.nth(1).textContent(), /<img src=x/, "client text shown as text");
  assert.equal(await history.locator("img").count(), 0, "client text rendered as HTML");
  assert.equal(await machine.getAttribute("aria-current"), "true");
  await page.screenshot({ path: `${shots}/console-machine-history.png`, fullPage: true });

  // Readiness: which machines are not ready for tomorrow's exam, and why; the CSV.
  await readinessView(page, { server, admin, signInAs, postEvents, shots });

  // The fleet: minute summaries from three machines — two in "Lab A" during demo-mixed, one
  // without a lab name (so in its subnet) outside an exam — by lab, by machine, by exam.
  const thisMinute = Math.floor(Date.now() / 60_000) * 60_000;
  const minuteAgo = (n) => new Date(thisMinute - n * 60_000).toISOString();
  const agg = (count, sum, min, max) => ({ count, sum, min, max });
  const summary = async (token, ago, device, lab, examId, metrics) =>
    report(token, "metrics.minute", {
      minute: minuteAgo(ago), device, lab, app_version: "1.4.0",
      attempt_id: examId ? randomUUID() : null, exam_id: examId, metrics,
    });
  const [fleetA, fleetB, fleetC] = await Promise.all(["student24", "student25", "student26"].map(signInAs));
  await summary(fleetA, 2, "fa-01", "Lab A", "demo-mixed", {
    save_ms: agg(12, 264, 8, 95), delivered: agg(60, 12, 0, 3), offline_s: agg(20, 20, 1, 1),
    outages: agg(1, 1, 1, 1), online_s: agg(40, 40, 1, 1),
  });
  await summary(fleetA, 1, "fa-01", "Lab A", "demo-mixed", { save_ms: agg(8, 96, 7, 30), delivered: agg(60, 8, 0, 2) });
  await summary(fleetB, 1, "fa-02", "Lab A", "demo-mixed", {
    save_ms: agg(10, 140, 9, 41), delivered: agg(60, 10, 0, 2), refresh_failures: agg(1, 1, 1, 1),
  });
  await summary(fleetC, 1, "fb-01", null, null, { save_ms: agg(5, 40, 6, 12), delivered: agg(60, 5, 0, 1) });
  await page.getByRole("tab", { name: "Fleet" }).click();
  const fleetRow = (key) => page.getByTestId(`fleet-${key}`);
  const cells = (key) => fleetRow(key).locator("th, td").allTextContents();
  await fleetRow("Lab A").waitFor();
  const [labA, subnet] = [await cells("Lab A"), await cells("127.0.0.0/24")];
  // Lab, machines, students, answers saved, delivered, save time, offline, outages, refresh
  // failures (last seen apart: the server's clock).
  assert.deepEqual(labA.slice(0, 9), ["Lab A", "2", "2", "30", "30", "17 ms / 95 ms", "20 s", "1", "1"]);
  assert.deepEqual(subnet.slice(0, 9), ["127.0.0.0/24subnet, no lab name", "1", "1", "5", "5", "8 ms / 12 ms", "—", "0", "0"]);
  const labOrder = await page.locator("#fleet-rows tr").evaluateAll((trs) => trs.map((tr) => tr.dataset.testid));
  assert.deepEqual(labOrder, ["fleet-Lab A", "fleet-127.0.0.0/24"], "named labs first");
  assert.notEqual(labA[9], "", "last seen");
  assert.equal(await page.getByTestId("fleet").locator("thead th").first().textContent(), "Lab");
  assert.match(await page.getByTestId("fleet-server").textContent(), /^Server, same period \(since .*\): [0-9,]+ requests · 0 server errors/);
  const problem = await fleetRow("Lab A").locator("td.bad").count();
  assert.equal(problem, 3, "offline, outages and refresh failures stand out");
  await page.screenshot({ path: `${shots}/console-fleet.png` });
  await page.getByTestId("fleet-by").selectOption("machine");
  await fleetRow("fa-02").waitFor();
  // (No Machines column: a machine is one.)
  assert.deepEqual((await fleetRow("fa-01").locator("th:visible, td:visible").allTextContents()).slice(0, 8),
    ["fa-01in Lab A", "1", "20", "20", "18 ms / 95 ms", "20 s", "1", "0"]);
  assert.equal(await page.getByTestId("fleet").locator("tbody tr").count(), 3);
  await page.screenshot({ path: `${shots}/console-fleet-machines.png` });
  await page.getByTestId("fleet-by").selectOption("exam");
  await fleetRow("demo-mixed").waitFor();
  assert.match((await cells("demo-mixed"))[0], /demo-mixed$/, "the exam's title, then its id");
  assert.deepEqual((await cells("demo-mixed")).slice(1, 5), ["2", "2", "30", "30"]);
  assert.deepEqual((await cells("")).slice(0, 4), ["Not in an exam", "1", "1", "5"]);
  await page.screenshot({ path: `${shots}/console-fleet-exams.png` });

  await analytics(page, { server, signInAs, postEvents, shots, fleetMinute: thisMinute });
  await insightsAndReports(page, { signInAs, postEvents, shots });

  // Many usernames failing from one address: an alert. (Not blocked: a student signed in
  // from this address meanwhile — a lab behind one address is never blocked for typos.)
  for (let i = 0; i < 10; i += 1) {
    await fetch(`${server}/oauth/token`, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "password", username: `sprayed${i}`, password: "x", client_id: "exam-desktop" }),
    });
  }
  await page.getByRole("tab", { name: /Alerts/ }).click();
  await page.locator("tr[data-rule=password_spraying]").first().waitFor();
  await page.screenshot({ path: `${shots}/console-spraying.png` });

  // One student's password guessed at (locked after 5 failures), and another signed in on
  // two machines at once (the password is asked again): two warnings.
  for (let i = 0; i < 5; i += 1) {
    await fetch(`${server}/oauth/token`, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "password", username: "student22", password: "guess", client_id: "exam-desktop" }),
    });
  }
  const machineA = await signInAs("student23");
  const machineB = await signInAs("student23");
  const info = (device) => ({ code: "hypervisor_flag", severity: "info", device });
  await report(machineA, "security.hypervisor_flag", info("lab-a"));
  await report(machineB, "security.hypervisor_flag", info("lab-b"));
  await page.locator("tr[data-rule=brute_force]").filter({ hasText: "student22" }).waitFor();
  const twoMachines = page.locator("tr[data-rule=two_devices]").filter({ hasText: "student23" });
  await twoMachines.waitFor();
  assert.match(await twoMachines.textContent(), /the password is asked again — undo: DELETE \/v1\/admin\/users\/student23\/step-up/);
  await page.screenshot({ path: `${shots}/console-alerts-new-rules.png` });

  // The filters narrow the list: by severity, by rule, both (none match), and back.
  const shown = () => page.locator("#alerts tr").evaluateAll((trs) => trs.map((tr) => tr.dataset.rule));
  const everything = await shown();
  assert.ok(everything.length >= 5, `all alerts: ${everything}`);
  await page.getByTestId("filter-severity").selectOption("critical");
  await page.waitForFunction(() => [...document.querySelectorAll("#alerts tr")].every((tr) => tr.dataset.rule === "password_spraying"));
  const critical = await shown();
  assert.ok(critical.length >= 1 && critical.length < everything.length, `critical: ${critical}`);
  await page.getByTestId("filter-severity").selectOption("warning");
  await page.getByTestId("filter-rule").selectOption("two_devices");
  await page.waitForFunction(() => document.querySelectorAll("#alerts tr").length === 1);
  assert.deepEqual(await shown(), ["two_devices"]);
  assert.equal(await page.getByTestId("alerts-filtered").textContent(), `Showing 1 of ${everything.length} alerts (filtered).`);
  await page.screenshot({ path: `${shots}/console-alert-filters.png` });
  await page.getByTestId("filter-severity").selectOption("info");
  await page.getByTestId("alerts-empty").filter({ hasText: "No alerts match these filters." }).waitFor();
  await page.getByTestId("filter-rule").selectOption("");
  await page.getByTestId("filter-severity").selectOption("");
  await page.waitForFunction((n) => document.querySelectorAll("#alerts tr").length === n, everything.length);
  // The step-up the rule asked for is withdrawn from the alert itself.
  await twoMachines.getByRole("button", { name: "Withdraw password demand" }).click();
  await twoMachines.getByText("student23: the demand was withdrawn.").waitFor();
  const back = await fetch(`${server}/v1/exams`, { headers: { Authorization: `Bearer ${machineA}` } });
  assert.equal(back.status, 200, "the withdrawn demand no longer refuses the session");

  // Actions: block an address, then lift the block.
  await page.getByRole("tab", { name: "Actions" }).click();
  await page.locator("#block-cidr").fill("203.0.113.7");
  await page.locator("#block-reason").fill("console test");
  await page.getByRole("button", { name: "Block", exact: true }).click();
  const result = page.getByTestId("action-result");
  await result.filter({ hasText: "Blocked 203.0.113.7" }).waitFor();
  const block = (await result.textContent()).match(/block (\d+)/)[1];
  await page.locator("#unblock-id").fill(block);
  await page.getByRole("button", { name: "Lift" }).click();
  await result.filter({ hasText: `Block ${block} lifted` }).waitFor();
  // Ask a student for the password again: their older session is refused with the step-up
  // challenge; then the demand is withdrawn.
  await page.locator("#step-up-user").fill("student21");
  await page.locator("#step-up-reason").fill("two machines at once");
  await page.getByRole("button", { name: "Ask for the password" }).click();
  await result.filter({ hasText: "asked for the password again" }).waitFor();
  const refused = await fetch(`${server}/v1/exams`, { headers: { Authorization: `Bearer ${student}` } });
  assert.equal(refused.status, 401);
  assert.match(refused.headers.get("www-authenticate"), /insufficient_user_authentication/);
  await page.screenshot({ path: `${shots}/console-actions.png` });
  await page.getByRole("button", { name: "Withdraw" }).click();
  await result.filter({ hasText: "withdrawn" }).waitFor();

  assert.deepEqual(problems, [], "errors in the console's page");
  console.log("console: all checks passed");
} catch (error) {
  failed = true;
  console.error(error);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
