// The Analytics panel's charts drawn with uPlot: time and unit axes in the UI's language,
// drag across a chart to zoom every chart of the panel to that span, double-click to see the
// whole range again. uPlot is imported only when the first chart is drawn, and whoever calls
// `drawChart` keeps a plain chart to show if it rejects: a chart library that cannot load or
// draw must never blank the status window (uPlot 1.6.32 as published did, under `LANG=C`; the
// vendored copy has upstream's fix — src/vendor/uplot/README.md).
import type uPlot from "uplot";
import { valueTicks, timeTicks } from "./analytics";

type UPlot = typeof uPlot;

let loading: Promise<UPlot> | undefined;

/** uPlot and its stylesheet, imported once per window. A failed import stays failed: the
 * panel shows its plain lines for the window's life rather than retrying on every update. */
export function loadUplot(): Promise<UPlot> {
  loading ??= Promise.all([import("../vendor/uplot/uPlot.esm.js"), import("../vendor/uplot/uPlot.min.css")]).then(
    ([module]) => module.default,
  );
  return loading;
}

/** The charts of one panel: they share a time axis, so a hover or a zoom in one is shown in
 * all (uPlot's cursor sync), and whether the user has zoomed in. */
export class ChartGroup {
  private static count = 0;
  readonly key = `analytics-${++ChartGroup.count}`;
  /** A span picked by dragging is shown until a double-click, even as live seconds arrive. */
  zoomed = false;
}

/** Columns: times in seconds, then the figures. */
export type Columns = [number[], number[]];

export interface ChartSpec {
  cols: Columns;
  /** The range asked for, in seconds: the time axis spans it (and live seconds past its end). */
  from: number;
  to: number;
  label: string;
  /** The value axis's label: the figure's unit. */
  unit: string;
  color: string;
  locale: string;
  timeLabel: string;
  height: number;
  group: ChartGroup;
  /** Called each time the chart has been drawn (its canvas painted by uPlot). */
  ondraw: () => void;
}

export interface Chart {
  /** New columns (a live second, another range); keeps the user's zoom while there is one. */
  update(cols: Columns, from: number, to: number): void;
  destroy(): void;
}

/** Draws `spec` with uPlot into `el` (its width; the spec's height). Rejects if uPlot cannot
 * be imported or cannot draw here: the caller shows its plain chart then. */
export async function drawChart(el: HTMLElement, spec: ChartSpec): Promise<Chart> {
  const UPlot = await loadUplot();
  let { from, to } = spec;
  const { group, locale } = spec;
  const span = () => to - from;
  const legendTime = () =>
    new Intl.DateTimeFormat(locale, {
      day: "numeric",
      month: "short",
      hour: "2-digit",
      minute: "2-digit",
      second: span() <= 3600 ? "2-digit" : undefined,
      hourCycle: "h23",
    });
  const legendValue = new Intl.NumberFormat(locale, { maximumFractionDigits: 2 });
  const font = '12px "Noto Sans", "DejaVu Sans", system-ui, sans-serif';
  const opts: uPlot.Options = {
    width: Math.max(200, el.clientWidth),
    height: spec.height,
    cursor: {
      // One time line across the charts; a level line would mean nothing in the others.
      y: false,
      sync: { key: group.key },
      drag: { x: true, y: false, setScale: true },
      bind: {
        // Back to the whole range asked for (uPlot's own double-click then re-ranges x).
        dblclick: (_u, _target, handler) => (e) => {
          group.zoomed = false;
          return handler(e);
        },
      },
    },
    scales: {
      x: {
        time: true,
        // The range asked for, unless the user picked a span: then what was picked.
        range: (_u, min, max) => (group.zoomed ? [min, max] : [from, Math.max(to, max ?? to)]),
      },
      y: {
        // Every figure charted is a count, a rate or a duration: from 0, with headroom.
        range: (_u, _min, max) => (max > 0 ? UPlot.rangeNum(0, max, 0.1, true) : [0, 1]),
      },
    },
    series: [
      { label: spec.timeLabel, value: (_u, v) => (v == null ? "—" : legendTime().format(new Date(v * 1000))) },
      {
        label: spec.label,
        stroke: spec.color,
        fill: `${spec.color}1a`,
        width: 1.5,
        value: (_u, v) => (v == null ? "—" : `${legendValue.format(v)} ${spec.unit}`),
      },
    ],
    axes: [
      {
        font,
        size: 30,
        values: (_u, splits, _axis, _space, step) => timeTicks(splits, step, locale),
      },
      {
        font,
        label: spec.unit,
        labelFont: font,
        labelSize: 18,
        size: 52,
        values: (_u, splits, _axis, _space, step) => valueTicks(splits, step, locale),
      },
    ],
    legend: { show: true, live: true },
    hooks: {
      setSelect: [
        (u) => {
          if (u.select.width > 0) group.zoomed = true;
        },
      ],
      // The span shown, on the chart's element: what a test (or the curious) can read of a
      // zoom without reading pixels.
      setScale: [
        (u, key) => {
          if (key !== "x") return;
          el.dataset.xMin = String(Math.round(u.scales.x.min ?? 0));
          el.dataset.xMax = String(Math.round(u.scales.x.max ?? 0));
        },
      ],
      draw: [() => spec.ondraw()],
    },
  };
  const u = new UPlot(opts, spec.cols, el);
  const resize =
    typeof ResizeObserver === "function"
      ? new ResizeObserver(() => {
          const width = Math.max(200, el.clientWidth);
          if (width !== u.width) u.setSize({ width, height: spec.height });
        })
      : undefined;
  resize?.observe(el);
  return {
    update(cols, newFrom, newTo) {
      from = newFrom;
      to = newTo;
      u.setData(cols, !group.zoomed);
    },
    destroy() {
      resize?.disconnect();
      u.destroy();
    },
  };
}
