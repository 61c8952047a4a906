import { afterEach, describe, expect, it, vi } from "vitest";
import { throttle } from "./throttle";
import { Countdown, crossedMinutes, formatRemaining } from "./timer";

describe("formatRemaining", () => {
  it("shows h:mm:ss, rounding partial seconds up", () => {
    expect(formatRemaining(0)).toBe("0:00:00");
    expect(formatRemaining(1)).toBe("0:00:01");
    expect(formatRemaining(59_000)).toBe("0:00:59");
    expect(formatRemaining(60_000)).toBe("0:01:00");
    expect(formatRemaining(90 * 60_000)).toBe("1:30:00");
    expect(formatRemaining(3_723_400)).toBe("1:02:04");
    expect(formatRemaining(10 * 3_600_000)).toBe("10:00:00");
    expect(formatRemaining(-5000)).toBe("0:00:00");
  });
});

describe("Countdown", () => {
  it("counts down from the core's figure on a monotonic clock, and re-anchors", () => {
    let now = 1000;
    const c = new Countdown(() => now);
    c.anchor(60_000);
    now += 15_000;
    expect(c.remaining()).toBe(45_000);
    // The core answers again: its figure replaces the local count.
    c.anchor(44_000);
    expect(c.remaining()).toBe(44_000);
    now += 50_000;
    expect(c.remaining()).toBe(0);
  });

  it("knows nothing until the core gives a figure, and ignores a missing one after", () => {
    let now = 0;
    const c = new Countdown(() => now);
    c.anchor(null);
    expect(c.remaining()).toBeNull();
    c.anchor(10_000);
    now += 4000;
    c.anchor(null);
    expect(c.remaining()).toBe(6000);
  });
});

describe("crossedMinutes", () => {
  it("announces 10, 5 and 1 minutes once, when crossed", () => {
    expect(crossedMinutes(600_500, 600_000)).toBe(10);
    expect(crossedMinutes(600_000, 599_000)).toBeNull();
    expect(crossedMinutes(300_200, 299_900)).toBe(5);
    expect(crossedMinutes(60_001, 59_999)).toBe(1);
    expect(crossedMinutes(700_000, 650_000)).toBeNull();
  });
  it("after a jump, announces only the most urgent", () => {
    expect(crossedMinutes(700_000, 50_000)).toBe(1);
  });
  it("says nothing when time goes up (more time given)", () => {
    expect(crossedMinutes(50_000, 700_000)).toBeNull();
  });
});

describe("throttle", () => {
  afterEach(() => vi.useRealTimers());

  it("runs at most once per interval, folding requests into the next run", async () => {
    vi.useFakeTimers();
    let clock = 0;
    const task = vi.fn(async () => {});
    const th = throttle(task, 500, () => clock);
    th.request();
    await vi.advanceTimersByTimeAsync(0);
    expect(task).toHaveBeenCalledTimes(1);
    for (let i = 0; i < 10; i++) {
      clock += 40;
      th.request();
      await vi.advanceTimersByTimeAsync(40);
    }
    // 400 ms after the first run: not yet.
    expect(task).toHaveBeenCalledTimes(1);
    clock += 100;
    await vi.advanceTimersByTimeAsync(100);
    expect(task).toHaveBeenCalledTimes(2);
    th.dispose();
  });

  it("never runs twice at once", async () => {
    vi.useFakeTimers();
    let clock = 0;
    let release: () => void = () => {};
    const task = vi.fn(() => new Promise<void>((r) => (release = r)));
    const th = throttle(task, 500, () => clock);
    th.request();
    await vi.advanceTimersByTimeAsync(0);
    clock = 1000;
    th.request();
    await vi.advanceTimersByTimeAsync(1000);
    expect(task).toHaveBeenCalledTimes(1);
    release();
    await vi.advanceTimersByTimeAsync(0);
    expect(task).toHaveBeenCalledTimes(2);
    th.dispose();
  });
});
