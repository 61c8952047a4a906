// This computer's history in words and chart data: what each insight means and what to do
// (English and Vietnamese), and each series as the figure a chart shows.
import type { Insight, Metric, Point, Series } from "../bindings";
import { formatLostTime, t } from "./i18n.svelte";

/** The figure charted for a bucket: a rate per second for counts, the mean or the worst for
 * measures (a queue's depth is its highest in the bucket). */
export function figure(metric: Metric, p: Point, resolution_s: number): number {
  switch (metric) {
    case "delivered":
    case "requests":
    case "connections":
      return (p.sum ?? 0) / Math.max(1, resolution_s);
    case "queue_depth":
      return p.max ?? 0;
    case "online_s":
    case "offline_s":
    case "degraded_s":
      return p.sum ?? 0;
    default:
      return p.mean ?? 0;
  }
}

/** uPlot's columns: times in seconds, then the figure. */
export function columns(series: Series): [number[], number[]] {
  const xs = series.points.map((p) => (p.at_ms ?? 0) / 1000);
  const ys = series.points.map((p) => figure(series.metric, p, series.resolution_s));
  return [xs, ys];
}

/** The columns as an SVG polyline across `width` × `height` (time left to right from `from`
 * to `to` in seconds; the figure bottom to top from its lowest to its highest), with the
 * range it spans, rounded for the caption. */
export function line(cols: [number[], number[]], from: number, to: number, width: number, height: number) {
  const [xs, ys] = cols;
  let lo = Infinity;
  let hi = -Infinity;
  for (const y of ys) {
    if (y < lo) lo = y;
    if (y > hi) hi = y;
  }
  if (!Number.isFinite(lo)) lo = hi = 0;
  const span = hi - lo || 1;
  const dx = to - from || 1;
  const parts: string[] = new Array(xs.length);
  for (let i = 0; i < xs.length; i++) {
    const x = ((xs[i] - from) / dx) * width;
    const y = height - 2 - ((ys[i] - lo) / span) * (height - 4);
    parts[i] = `${x.toFixed(1)},${y.toFixed(1)}`;
  }
  const round = (v: number) => (Math.abs(v) >= 100 ? Math.round(v) : Math.round(v * 10) / 10);
  return { points: parts.join(" "), min: round(lo), max: round(hi) };
}

/** The unit a metric's figure is charted in, for its chart's value axis. */
export function unitLabel(metric: Metric): string {
  switch (metric) {
    case "delivered":
    case "requests":
    case "connections":
      return t("analytics.unitPerSecond");
    case "queue_depth":
      return t("analytics.unitItems");
    case "online_s":
    case "offline_s":
    case "degraded_s":
      return t("analytics.unitSeconds");
    default:
      return t("analytics.unitMs");
  }
}

/** A value axis's ticks in the UI's language, with as many decimals as their spacing
 * (`step`) needs: 0.25 steps show two, whole steps none. */
export function valueTicks(values: number[], step: number, locale: string): string[] {
  let decimals = 0;
  while (decimals < 3 && Math.abs(Math.round(step * 10 ** decimals) - step * 10 ** decimals) > 1e-6) decimals++;
  const format = new Intl.NumberFormat(locale, { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
  return values.map((v) => format.format(v));
}

/** A time axis's ticks (`times` in seconds) in the UI's language, 24-hour: "14:30" when
 * the ticks are less than a day apart (the date instead at midnight), "12 Mar" when they are
 * days apart. */
export function timeTicks(times: number[], step: number, locale: string): string[] {
  const day = new Intl.DateTimeFormat(locale, { day: "numeric", month: "short" });
  const clock = new Intl.DateTimeFormat(locale, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  return times.map((s) => {
    const at = new Date(s * 1000);
    const midnight = at.getHours() === 0 && at.getMinutes() === 0 && at.getSeconds() === 0;
    return step >= 86_400 || (midnight && step >= 3600) ? day.format(at) : clock.format(at);
  });
}

export function metricLabel(metric: Metric): string {
  switch (metric) {
    case "save_ms":
      return t("analytics.saveMs");
    case "delivered":
      return t("analytics.delivered");
    case "queue_depth":
      return t("analytics.queueDepth");
    case "rtt_ms":
      return t("analytics.rttMs");
    case "offline_s":
      return t("analytics.offline");
    default:
      return metric;
  }
}

/** What an insight means and what to do. */
export function insightSentence(i: Insight): string {
  const v = i.value ?? 0;
  switch (i.code) {
    case "short_token_lifetime":
      return t("insight.shortTokenLifetime", { n: Math.round(v) });
    case "clock_skew":
      return t(v > 0 ? "insight.clockAhead" : "insight.clockBehind", { time: formatLostTime(Math.abs(v) * 1000) });
    case "frequent_outages":
      return t("insight.frequentOutages", { n: Math.round(v) });
    case "backlog":
      return t("insight.backlog", { time: formatLostTime(v * 1000) });
    case "slow_disk":
      return t("insight.slowDisk", { ms: Math.round(v) });
    case "keychain_errors":
      return t("insight.keychainErrors", { n: Math.round(v) });
    case "disk_filling_up":
      return t("insight.diskFillingUp", { time: formatLostTime(v * 1000) });
    case "slow_drain":
      return t("insight.slowDrain", { time: formatLostTime(v * 1000) });
  }
}
