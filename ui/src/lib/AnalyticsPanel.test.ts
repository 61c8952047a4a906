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


import AnalyticsPanel from "./AnalyticsPanel.svelte";
import { columns, line } from "./analytics";
import { i18n } from "./i18n.svelte";

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
  beforeEach(() => {
    i18n.lang = "en";
    analyticsOverview.mockReset();
    analyticsOverview.mockResolvedValue({ status: "ok", data: overview() });
  });
  afterEach(cleanup);

  it("charts each series as its figure, says what the history shows, and when the queue is sent", async () => {
    render(AnalyticsPanel);
    await vi.waitFor(() => expect(screen.getByTestId("insights")).toBeTruthy());
    expect(analyticsOverview).toHaveBeenCalledWith(3600);
    // Means for times, a rate per second for deliveries (120 in a minute = 2/s).
    expect(columns(overview().series[0])).toEqual([[1, 2], [2, 1]]);
    expect(columns(overview().series[1])).toEqual([[60], [2]]);
    const chart = screen.getByTestId("chart-save_ms");
    expect(chart.querySelector("polyline")?.getAttribute("points")).toBe(line([[1, 2], [2, 1]], 0, 3600, 600, 90).points);
    expect(chart.textContent).toContain("1 – 2");
    expect(screen.getByTestId("chart-queue_depth").textContent).toContain("No figures yet");
    expect(screen.getByTestId("insight-frequent_outages").textContent).toBe(
      "The network dropped 8 times in the last hour. Answers are kept; IT: check this lab's network.",
    );
    expect(screen.getByTestId("insight-frequent_outages").getAttribute("title")).toContain("8 network outages");
    expect(screen.getByTestId("analytics-queue").textContent).toContain("3000 waiting: all sent in about 25 min 0 s at the current rate.");
    expect(screen.getByTestId("analytics-queue").textContent).toContain("off by about 5 items");
  });

  it("follows the last hour live, and loads another range on request", async () => {
    render(AnalyticsPanel);
    await vi.waitFor(() => expect(screen.getByTestId("insights")).toBeTruthy());
    deliver?.({
      payload: { type: "history_tick", at_ms: 3000, values: [{ metric: "save_ms", count: 1, sum: 7, min: 7, max: 7 }] },
    });
    await tick();
    const chart = screen.getByTestId("chart-save_ms");
    expect(chart.getAttribute("data-live")).toBe("1");
    expect(chart.querySelector("polyline")?.getAttribute("points")?.split(" ").length).toBe(3);
    expect(chart.textContent).toContain("1 – 7");
    await fireEvent.click(screen.getByTestId("analytics-range-604800"));
    await tick();
    expect(analyticsOverview).toHaveBeenLastCalledWith(604800);
  });

  it("in Vietnamese, and says so when no history is kept", async () => {
    i18n.lang = "vi";
    render(AnalyticsPanel);
    await vi.waitFor(() => expect(screen.getByTestId("insights")).toBeTruthy());
    expect(screen.getByTestId("insight-slow_drain").textContent).toContain("cần 25 phút 0 giây để gửi hết");
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
