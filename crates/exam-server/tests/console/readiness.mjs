// Readiness in the console's Machines tab, in a real browser: two machines of "Lab R" report
// their readiness as their apps do (`device.readiness`), one with an app new enough and
// tomorrow's exam downloaded, one with this app (older than that exam needs) and without the
// exam. "Ready for…" defaults to the next exam at its opening; asked about tomorrow's exam, it
// lists the second machine as not ready with its reasons and leaves the first out; the table
// shows both with their lab, version, last contact, readiness and waiting work; the CSV is
// downloaded and checked. A screenshot of the view goes to SCREENSHOTS/console-readiness.png.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

const EXAM = "demo-sealed-tomorrow";

function report(device, version, exams, waiting) {
  const at = new Date().toISOString();
  return {
    id: `readiness-${device}-${Date.parse(at)}`, type: "device.readiness", at,
    attrs: {
      device, lab: "Lab R", app_version: version, checked_at: at,
      checks: [
        { code: "disk", state: "ok", value: 48_213, detail: null },
        { code: "clock", state: "ok", value: 0.4, detail: null },
        { code: "keychain", state: "ok", value: null, detail: null },
        { code: "prohibited_apps", state: "ok", value: 0, detail: null },
        { code: "displays", state: "ok", value: 1, detail: null },
      ],
      exams,
      waiting,
    },
  };
}

export async function readinessView(page, { server, admin, signInAs, postEvents, shots }) {
  const [one, two] = await Promise.all(["student27", "student28"].map(signInAs));
  const ready = "lab-r-01-5f1c9a7e";
  const behind = "lab-r-02-93be04d1";
  await postEvents(one, [report(ready, "0.2.0", [{ exam_id: EXAM, version: 1, sealed: true, ready: true, reasons: [] }],
    { items: 0, refused: 0, students: 0 })]);
  await postEvents(two, [report(behind, "0.1.0", [], { items: 4, refused: 0, students: 1 })]);

  // The default: the next exam to open, at its opening.
  const exams = await (await fetch(`${server}/v1/admin/exams`, { headers: { Authorization: `Bearer ${admin}` } })).json();
  const next = exams.find((exam) => new Date(exam.opens_at) > new Date());
  await page.getByRole("tab", { name: "Machines" }).click();
  await page.getByTestId(`readiness-${behind}`).waitFor();
  assert.equal(await page.getByTestId("ready-exam").inputValue(), next.id, "the next exam is chosen");
  const atValue = await page.getByTestId("ready-at").inputValue();
  assert.equal(new Date(atValue).getTime(), Math.floor(Date.parse(next.opens_at) / 60_000) * 60_000, "at its opening");

  // Ready for tomorrow's exam, tomorrow at 09:00 (or its opening, when that comes first)?
  await page.getByTestId("ready-exam").selectOption(EXAM);
  const tomorrow = exams.find((exam) => exam.id === EXAM);
  assert.equal(tomorrow.min_client_version, "0.2.0");
  await page.getByTestId("ready-check").click();
  const summary = page.getByTestId("ready-summary");
  await summary.filter({ hasText: /not ready for “Sealed exam — opens tomorrow”/ }).waitFor();
  assert.match(await summary.textContent(), /It needs app 0\.2\.0 or newer\.$/);
  const listed = page.getByTestId(`not-ready-${behind}`);
  await listed.waitFor();
  const reasons = await listed.locator("ul.reasons li").evaluateAll((lis) => lis.map((li) => li.dataset.code));
  assert.deepEqual(reasons, ["version_too_old", "exam_not_downloaded", "work_waiting"]);
  assert.match(await listed.textContent(), /app 0\.1\.0 is older than the 0\.2\.0 this exam needs/);
  assert.match(await listed.textContent(), /the exam is not downloaded on it/);
  assert.match(await listed.textContent(), /4 items waiting to be sent \(1 student\)/);
  assert.equal(await page.getByTestId(`not-ready-${ready}`).count(), 0, "a ready machine is not listed");

  // The table: both machines with their lab, version, last contact, readiness, waiting work.
  const cells = (device) => page.getByTestId(`readiness-${device}`).locator("th, td").allTextContents();
  const first = await cells(ready);
  assert.deepEqual([first[1], first[2], first[4], first[5]], ["Lab R", "0.2.0", "ready", "none"]);
  assert.notEqual(first[3], "", "last seen");
  const second = await cells(behind);
  assert.deepEqual([second[1], second[2], second[5]], ["Lab R", "0.1.0", "4 waiting"]);
  assert.match(second[4], /^not readyversion too old, exam not downloaded, work waiting$/);
  // Client text is text.
  assert.equal(await page.getByTestId("readiness").locator("img").count(), 0);
  // (The machine history opened before is closed for the picture.)
  if (await page.locator("#machine-history-close").isVisible()) await page.locator("#machine-history-close").click();
  await page.screenshot({ path: `${shots}/console-readiness.png`, fullPage: true });

  // The same answer as CSV: a byte order mark, the question, a row per machine.
  const [csv] = await Promise.all([page.waitForEvent("download"), page.getByTestId("ready-csv").click()]);
  assert.match(csv.suggestedFilename(), new RegExp(`^readiness-${EXAM}-\\d{8}T\\d{4}Z\\.csv$`));
  const text = readFileSync(await csv.path(), "utf8");
  assert.ok(text.startsWith("\ufeff"), "a byte order mark");
  assert.match(text, new RegExp(`^exam,${EXAM}\\r$`, "m"));
  assert.match(text, /^min_client_version,0\.2\.0\r$/m);
  assert.match(text, /^device,lab,subnet,app_version,last_seen,ready,reasons,why,warnings,waiting_items,refused_items\r$/m);
  assert.match(text, new RegExp(`^${behind},Lab R,[^,]*,0\\.1\\.0,[^,]+,no,version_too_old; exam_not_downloaded; work_waiting,`, "m"));
  assert.match(text, new RegExp(`^${ready},Lab R,[^,]*,0\\.2\\.0,[^,]+,yes,,`, "m"));
  await page.getByTestId("ready-csv-said").filter({ hasText: /^Downloaded readiness-/ }).waitFor();
  const rows = text.split("\r\n").filter((line) => /^[^,]+,[^,]*,[^,]*,[^,]*,[^,]*,(yes|no),/.test(line)).length;
  console.log(`readiness: ${rows} machines in the CSV (${text.length} characters); not-ready reasons shown for ${behind}`);
}
