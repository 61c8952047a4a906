// @vitest-environment jsdom
import { afterEach, describe, expect, it, vi } from "vitest";
import { dictionaries, formatDuration, i18n, initialLang, STORAGE_KEY, t, tn } from "./i18n.svelte";

const placeholders = (text: string) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

describe("dictionaries", () => {
  const en = dictionaries.en;
  const vi = dictionaries.vi;

  it("have the same keys in English and Vietnamese", () => {
    expect(Object.keys(vi).sort()).toEqual(Object.keys(en).sort());
  });

  it("have no empty text and the same placeholders in both languages", () => {
    for (const key of Object.keys(en) as (keyof typeof en)[]) {
      expect(en[key].trim(), key).not.toBe("");
      expect(vi[key].trim(), key).not.toBe("");
      expect(placeholders(vi[key]), key).toEqual(placeholders(en[key]));
    }
  });

  it("come in pairs for counted phrases", () => {
    for (const key of Object.keys(en)) {
      if (key.endsWith(".one")) expect(Object.keys(en), key).toContain(key.replace(/\.one$/, ".other"));
    }
  });

  it("Vietnamese is written with its diacritics", () => {
    expect(vi["save.local"]).toBe("Đã lưu trên máy này");
    expect(vi["nav.next"]).toContain("Câu");
  });
});

describe("t", () => {
  afterEach(() => {
    i18n.lang = "en";
    localStorage.clear();
  });

  it("fills in parameters and follows the current language", () => {
    i18n.lang = "en";
    expect(t("question.heading", { n: 3, total: 20 })).toBe("Question 3 of 20");
    i18n.set("vi");
    expect(t("question.heading", { n: 3, total: 20 })).toBe("Câu 3/20");
    expect(localStorage.getItem(STORAGE_KEY)).toBe("vi");
  });

  it("counts in English, once in Vietnamese", () => {
    i18n.lang = "en";
    expect(tn("exams.questions", 1)).toBe("1 question");
    expect(tn("exams.questions", 40)).toBe("40 questions");
    i18n.lang = "vi";
    expect(tn("exams.questions", 40)).toBe("40 câu hỏi");
  });

  it("formats durations", () => {
    i18n.lang = "en";
    expect(formatDuration(45 * 60)).toBe("45 min");
    expect(formatDuration(90 * 60)).toBe("1 h 30 min");
    expect(formatDuration(2 * 3600)).toBe("2 h");
    i18n.lang = "vi";
    expect(formatDuration(90 * 60)).toBe("1 giờ 30 phút");
  });
});

describe("initialLang", () => {
  afterEach(() => {
    localStorage.clear();
    vi.restoreAllMocks();
  });

  it("keeps the student's choice", () => {
    localStorage.setItem(STORAGE_KEY, "vi");
    expect(initialLang()).toBe("vi");
  });

  it("otherwise follows the system language", () => {
    vi.spyOn(navigator, "language", "get").mockReturnValue("vi-VN");
    expect(initialLang()).toBe("vi");
    vi.spyOn(navigator, "language", "get").mockReturnValue("en-US");
    expect(initialLang()).toBe("en");
    vi.spyOn(navigator, "language", "get").mockReturnValue("fr-FR");
    expect(initialLang()).toBe("en");
  });

  it("ignores a value it does not know", () => {
    localStorage.setItem(STORAGE_KEY, "klingon");
    vi.spyOn(navigator, "language", "get").mockReturnValue("en-GB");
    expect(initialLang()).toBe("en");
  });
});
