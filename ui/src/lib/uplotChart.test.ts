// @vitest-environment jsdom
// Where uPlot cannot run (jsdom has no canvas, nor matchMedia), drawing a chart rejects: it
// never throws past the caller, whose plain line stays (AnalyticsPanel.test.ts).
import { describe, expect, it } from "vitest";
import { ChartGroup, drawChart } from "./uplotChart";

describe("drawChart", () => {
  it("rejects where uPlot cannot load or draw", async () => {
    const el = document.createElement("div");
    const drawing = drawChart(el, {
      cols: [[1, 2], [3, 4]],
      from: 0,
      to: 3600,
      label: "Answer save time (ms)",
      unit: "ms",
      color: "#1f4e8c",
      locale: "en-GB",
      timeLabel: "Time",
      height: 150,
      group: new ChartGroup(),
      ondraw: () => {},
    });
    await expect(drawing).rejects.toThrow();
  });

  it("gives each panel's charts their own sync key", () => {
    expect(new ChartGroup().key).not.toBe(new ChartGroup().key);
  });
});
