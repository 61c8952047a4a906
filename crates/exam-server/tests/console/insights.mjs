// The Insights & reports tab in a real browser: two machines whose clocks are ten minutes
// ahead make a fleet finding with its evidence and recommendation; the capacity table lists
// the coming exams; an exam report is downloaded as PDF and CSV, the security summary as JSON.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

export async function insightsAndReports(page, { signInAs, postEvents, shots }) {
  const token = await signInAs("student17");
  const minute = Math.floor(Date.now() / 60_000) * 60_000;
  const events = [];
  for (const device of ["east-01", "east-02"]) {
    for (let k = 5; k <= 10; k += 1) {
      const at = new Date(minute + k * 60_000).toISOString();
      events.push({
        id: `metrics-${device}-${at}`, type: "metrics.minute", at,
        attrs: { minute: at, device, lab: "Lab East", app_version: "0.1.0", attempt_id: null, exam_id: null,
          metrics: { delivered: { count: 60, sum: 2, min: 0, max: 1 } } },
      });
    }
  }
  await postEvents(token, events);

  await page.getByRole("tab", { name: /Insights/ }).click();
  const skew = page.getByTestId("insight-clock_skew");
  await skew.waitFor();
  const words = await skew.textContent();
  assert.match(words, /Clocks off on several machines/);
  // (The week of minutes seeded before may add machines whose last minute came late.)
  assert.match(words, /\d+ machines' clocks are more than 60 s off the server's \(the worst \d+ s (ahead|behind)\)/);
  assert.match(words, /east-01.*east-02/s, "the machines it is about");
  assert.match(words, /NTP/);
  await page.getByTestId("capacity").locator("tbody tr").first().waitFor();
  const rows = await page.getByTestId("capacity").locator("tbody tr").count();
  assert.ok(rows >= 1, "the coming exams are listed");
  await page.getByTestId("capacity-students").fill("1000");
  await page.getByRole("button", { name: "Estimate" }).click();
  await page.getByTestId("capacity").locator("tbody tr td:nth-child(3)").first().filter({ hasText: "1,000" }).waitFor();
  await page.screenshot({ path: `${shots}/console-insights.png`, fullPage: true });

  // An exam's report, as a proctor downloads it.
  await page.getByTestId("report-exam").locator("option[value=demo-mixed]").waitFor({ state: "attached" });
  await page.getByTestId("report-exam").selectOption("demo-mixed");
  const [pdf] = await Promise.all([page.waitForEvent("download"), page.getByTestId("report-pdf").click()]);
  assert.match(pdf.suggestedFilename(), /^exam-demo-mixed-exam-\d{8}T\d{4}Z\.pdf$/);
  const pdfBytes = readFileSync(await pdf.path());
  assert.equal(pdfBytes.subarray(0, 5).toString(), "%PDF-");
  await page.getByTestId("report-said").filter({ hasText: /^Downloaded exam-demo-mixed/ }).waitFor();
  const [csv] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "CSV" }).click()]);
  const csvText = readFileSync(await csv.path(), "utf8");
  assert.match(csvText, /^ledger\r$/m, "the fair-time ledger is in the exam report");
  assert.match(csvText, /student21,open,125000,80000,205000/, "with the time the earlier student lost");
  // The security summary of the last day, as JSON.
  await page.getByTestId("report-kind").selectOption("security");
  assert.equal(await page.getByTestId("report-range").inputValue(), "day", "an exam's window is for exam reports");
  const [json] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "JSON" }).click()]);
  const summary = JSON.parse(readFileSync(await json.path(), "utf8"));
  assert.equal(summary.kind, "security");
  await page.screenshot({ path: `${shots}/console-reports.png` });
  console.log(`insights & reports: ${rows} coming exam(s) in the capacity table; PDF ${pdfBytes.length} bytes, CSV ${csvText.length} characters`);
}
