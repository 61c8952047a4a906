// @vitest-environment jsdom
import { cleanup, fireEvent, render, screen } from "@testing-library/svelte";
import { tick } from "svelte";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { CoreEvent, Overview } from "../bindings";

const analyticsOverview = vi.fn();
let deliver: ((event: { payload: CoreEvent }) => void) | undefined;
vi.mock("../bindings", () => ({
  commands: { analyticsOverview: (s: number) => analyticsOverview(s) },
  events: {
    coreEventMessage: {
      listen: async (handler: (event: { payload: CoreEvent }) => void) => {
        deliver = handler;
        return () => {};
      },
    },
  },
}));

// jsdom has no canvas: uPlot itself is exercised by the end-to-end test
// (tests/it/analytics_e2e.rs). Here a stand-in records what the panel asks uPlot to draw, or
// fails as uPlot would where it cannot load, so both the chart and its fallback are tested.
type Drawn = { spec: ChartSpec; updates: { cols: Columns; from: number; to: number }[]; destroyed: boolean };
let drawn: Drawn[] = [];
const drawChart = vi.fn();
vi.mock("./uplotChart", async (importOriginal) => ({
  ...(await importOriginal<typeof import("./uplotChart")>()),
  drawChart: (el: HTMLElement, spec: ChartSpec) => drawChart(el, spec),
}));
function uplotDraws() {
  drawChart.mockImplementation(async (_el: HTMLElement, spec: ChartSpec) => {
    const chart: Drawn = { spec, updates: [], destroyed: false };
    drawn.push(chart);
    queueMicrotask(spec.ondraw);
    return {
      update(cols: Columns, from: number, to: number) {
        chart.updates.push({ cols, from, to });
        queueMicrotask(spec.ondraw);
      },
      destroy() {
        chart.destroyed = true;
      },
    };
  });
}
function uplotFails() {
  drawChart.mockRejectedValue(new RangeError("invalid language tag: C"));
}

import AnalyticsPanel from "./AnalyticsPanel.svelte";
import { columns, line, timeTicks, unitLabel, valueTicks } from "./analytics";
import { i18n } from "./i18n.svelte";
import type { ChartSpec, Columns } from "./uplotChart";

const point = (at_ms: number, count: number, sum: number, max: number) => ({ at_ms, count, sum, min: 0, max, mean: sum / count });
const overview = (): Overview => ({
  from_ms: 0,
  to_ms: 3_600_000,
  series: [
    { metric: "save_ms", resolution_s: 1, points: [point(1000, 2, 4, 3), point(2000, 1, 1, 1)] },
    { metric: "delivered", resolution_s: 60, points: [point(60_000, 1, 120, 120)] },
    { metric: "queue_depth", resolution_s: 1, points: [] },
    { metric: "rtt_ms", resolution_s: 1, points: [] },
    { metric: "offline_s", resolution_s: 1, points: [] },
  ],
  insights: [
    { code: "frequent_outages", value: 8, threshold: 6, evidence: "8 network outages in the last hour" },
    { code: "slow_drain", value: 1500, threshold: 600, evidence: "" },
  ],
  queue_depth: 3000,
  queue_drained_in_s: 1500,
  depth_backtest: { n: 15, mae: 5.3, mape: 109 },
  rows: 1200,
  max_rows: 300_960,
});

describe("AnalyticsPanel", () => {
  const errors = vi.spyOn(console, "error");
  beforeEach(() => {
    i18n.lang = "en";
    analyticsOverview.mockReset();
    analyticsOverview.mockResolvedValue({ status: "ok", data: overview() });
    drawn = [];
    drawChart.mockReset();
    uplotDraws();
    errors.mockReset();
    errors.mockImplementation(() => {});
    history.replaceState(null, "", "/");
  });
  afterEach(cleanup);

  it("charts each series as its figure with uPlot, says what the history shows, and when the queue is sent", async () => {
    render(AnalyticsPanel);
    await vi.waitFor(() => expect(screen.getByTestId("analytics-render-ms")).toBeTruthy());
    expect(analyticsOverview).toHaveBeenCalledWith(3600);
    // Means for times, a rate per second for deliveries (120 in a minute = 2/s).
    expect(columns(overview().series[0])).toEqual([[1, 2], [2, 1]]);
    expect(columns(overview().series[1])).toEqual([[60], [2]]);
    // One uPlot chart per series with figures, over the hour asked for, its unit on the axis.
    expect(drawn.map((c) => [c.spec.label, c.spec.unit, c.spec.cols, c.spec.from, c.spec.to])).toEqual([
      ["Answer save time (ms)", "ms", [[1, 2], [2, 1]], 0, 3600],
      ["Delivered per second", "per second", [[60], [2]], 0, 3600],
    ]);
    expect(drawn[0].spec.group).toBe(drawn[1].spec.group);
    expect(screen.getByTestId("analytics-panel").getAttribute("data-renderer")).toBe("uplot");
    expect(screen.getByTestId("chart-save_ms").querySelector("[data-renderer=uplot]")).toBeTruthy();
    expect(screen.getByTestId("chart-save_ms").querySelector("polyline")).toBeNull();
    expect(screen.getByText(/Drag across a chart to zoom in/)).toBeTruthy();
    expect(screen.getByTestId("chart-queue_depth").textContent).toContain("No figures yet");
    expect(screen.getByTestId("insight-frequent_outages").textContent).toBe(
      "The network dropped 8 times in the last hour. Answers are kept; IT: check this lab's network.",
    );
    expect(screen.getByTestId("insight-frequent_outages").getAttribute("title")).toContain("8 network outages");
    expect(screen.getByTestId("analytics-queue").textContent).toContain("3000 waiting: all sent in about 25 min 0 s at the current rate.");
    expect(screen.getByTestId("analytics-queue").textContent).toContain("off by about 5 items");
    expect(Number(screen.getByTestId("analytics-render-ms").getAttribute("data-ms"))).toBeGreaterThanOrEqual(0);
    expect(errors).not.toHaveBeenCalled();
  });

  it("keeps the plain SVG line when uPlot cannot load, and says why", async () => {
    uplotFails();
    render(AnalyticsPanel);
    await vi.waitFor(() => expect(screen.getByTestId("analytics-render-ms")).toBeTruthy());
    const chart = screen.getByTestId("chart-save_ms");
    expect(chart.querySelector("polyline")?.getAttribute("points")).toBe(line([[1, 2], [2, 1]], 0, 3600, 600, 90).points);
    expect(chart.textContent).toContain("1 – 2");
    expect(screen.getByTestId("chart-delivered").querySelector("polyline")).toBeTruthy();
    const panel = screen.getByTestId("analytics-panel");
    expect(panel.getAttribute("data-renderer")).toBe("svg");
    expect(panel.getAttribute("data-fallback")).toBe("RangeError: invalid language tag: C");
    expect(errors).toHaveBeenCalledWith(expect.stringContaining("showing the plain line"), expect.any(RangeError));
    // No zoom to promise without uPlot; the panel's words are all there.
    expect(screen.queryByText(/Drag across a chart/)).toBeNull();
    expect(screen.getByTestId("analytics-queue").textContent).toContain("3000 waiting");
  });

  it("draws the plain lines only when the page asks (?chart=svg)", async () => {
    history.replaceState(null, "", "/diagnostics.html?chart=svg");
    render(AnalyticsPanel);
    await vi.waitFor(() => expect(screen.getByTestId("analytics-render-ms")).toBeTruthy());
    expect(drawChart).not.toHaveBeenCalled();
    expect(screen.getByTestId("chart-save_ms").querySelector("polyline")).toBeTruthy();
    expect(screen.getByTestId("analytics-panel").getAttribute("data-fallback")).toBeNull();
  });

  it("follows the last hour live, and loads another range on request", async () => {
    render(AnalyticsPanel);
    await vi.waitFor(() => expect(screen.getByTestId("analytics-render-ms")).toBeTruthy());
    deliver?.({
      payload: { type: "history_tick", at_ms: 3000, values: [{ metric: "save_ms", count: 1, sum: 7, min: 7, max: 7 }] },
    });
    await tick();
    await vi.waitFor(() => expect(drawn[0].updates.length).toBe(1));
    expect(screen.getByTestId("chart-save_ms").getAttribute("data-live")).toBe("1");
    expect(drawn[0].updates[0].cols).toEqual([[1, 2, 3], [2, 1, 7]]);
    expect(drawn[1].updates).toEqual([]);
    const week = { ...overview(), from_ms: 0, to_ms: 604_800_000 };
    analyticsOverview.mockResolvedValue({ status: "ok", data: week });
    await fireEvent.click(screen.getByTestId("analytics-range-604800"));
    expect(analyticsOverview).toHaveBeenLastCalledWith(604800);
    await vi.waitFor(() => expect(drawn[0].updates[drawn[0].updates.length - 1]?.to).toBe(604_800));
    // The same charts, given the new range: nothing was drawn twice over.
    expect(drawn.length).toBe(2);
  });

  it("follows the last hour live in the plain line too", async () => {
    uplotFails();
    render(AnalyticsPanel);
    await vi.waitFor(() => expect(screen.getByTestId("analytics-render-ms")).toBeTruthy());
    deliver?.({
      payload: { type: "history_tick", at_ms: 3000, values: [{ metric: "save_ms", count: 1, sum: 7, min: 7, max: 7 }] },
    });
    await tick();
    const chart = screen.getByTestId("chart-save_ms");
    expect(chart.getAttribute("data-live")).toBe("1");
    expect(chart.querySelector("polyline")?.getAttribute("points")?.split(" ").length).toBe(3);
    expect(chart.textContent).toContain("1 – 7");
  });

  it("in Vietnamese, and says so when no history is kept", async () => {
    i18n.lang = "vi";
    render(AnalyticsPanel);
    await vi.waitFor(() => expect(screen.getByTestId("insights")).toBeTruthy());
    expect(screen.getByTestId("insight-slow_drain").textContent).toContain("cần 25 phút 0 giây để gửi hết");
    await vi.waitFor(() => expect(drawn.length).toBe(2));
    expect(drawn[1].spec.unit).toBe("mỗi giây");
    expect(drawn[1].spec.locale).toBe("vi-VN");
    cleanup();
    analyticsOverview.mockResolvedValue({ status: "ok", data: null });
    i18n.lang = "en";
    render(AnalyticsPanel);
    expect(await screen.findByText(/No history is kept on this computer/)).toBeTruthy();
  });
});

describe("line", () => {
  it("spans the range left to right and the figure bottom to top", () => {
    const drawn = line([[0, 50, 100], [10, 20, 30]], 0, 100, 100, 50);
    expect(drawn.points).toBe("0.0,48.0 50.0,25.0 100.0,2.0");
    expect([drawn.min, drawn.max]).toEqual([10, 30]);
    // A flat series sits at the bottom, not divided by zero.
    expect(line([[0], [5]], 0, 10, 100, 50).points).toBe("0.0,48.0");
  });
});

describe("axes", () => {
  it("name each figure's unit", () => {
    i18n.lang = "en";
    expect(["save_ms", "delivered", "queue_depth", "rtt_ms", "offline_s"].map((m) => unitLabel(m as never))).toEqual([
      "ms",
      "per second",
      "items",
      "ms",
      "seconds",
    ]);
  });

  it("give values as many decimals as their spacing needs, in the UI's language", () => {
    expect(valueTicks([0, 0.25, 0.5], 0.25, "en-GB")).toEqual(["0.00", "0.25", "0.50"]);
    expect(valueTicks([0, 0.5, 1], 0.5, "vi-VN")).toEqual(["0,0", "0,5", "1,0"]);
    expect(valueTicks([0, 1000, 2000], 1000, "en-GB")).toEqual(["0", "1,000", "2,000"]);
  });

  it("give times on a 24-hour clock, and dates when ticks are days apart", () => {
    const at = (h: number, m = 0) => new Date(2025, 2, 12, h, m).getTime() / 1000;
    expect(timeTicks([at(13, 30), at(14)], 1800, "en-GB")).toEqual(["13:30", "14:00"]);
    expect(timeTicks([at(0), at(6)], 6 * 3600, "en-GB")).toEqual(["12 Mar", "06:00"]);
    expect(timeTicks([at(0)], 86_400, "vi-VN")[0]).toMatch(/12/);
  });
});
