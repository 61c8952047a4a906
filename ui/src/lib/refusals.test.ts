import { afterEach, describe, expect, it } from "vitest";
import type { RefusedItem } from "../bindings";
import { en } from "./i18n/en";
import { i18n } from "./i18n.svelte";
import { refusalReason, refusedSubject } from "./refusals";

const item = (over: Partial<RefusedItem> = {}): RefusedItem => ({
  id: 7,
  what: "answer",
  exam_title: "General knowledge",
  question_number: 5,
  question_count: 20,
  refusal: { status: 409, code: "attempt_closed", detail: "the attempt was submitted at 10:02" },
  refused_at_ms: 0,
  ...over,
});

describe("what the server refused, in the student's words", () => {
  afterEach(() => {
    i18n.lang = "en";
  });

  it("names the question and the exam, never a path", () => {
    expect(refusedSubject(item())).toBe("Question 5 of General knowledge");
    expect(refusedSubject(item({ what: "submission" }))).toBe("Submitting General knowledge");
    expect(refusedSubject(item({ what: "start" }))).toBe("Starting General knowledge");
    expect(refusedSubject(item({ question_number: null }))).toBe("An answer in General knowledge");
    expect(refusedSubject(item({ what: "other", exam_title: null }))).toBe("A request to the server");
    i18n.lang = "vi";
    expect(refusedSubject(item())).toBe("Câu 5 của General knowledge");
  });

  it("words every code the server uses, in both languages, and falls back to the status", () => {
    const codes = Object.keys(en)
      .filter((k) => k.startsWith("refusal.") && k !== "refusal.status" && k !== "refusal.here")
      .map((k) => k.slice("refusal.".length));
    expect(codes).toContain("attempt_closed");
    for (const lang of ["en", "vi"] as const) {
      i18n.lang = lang;
      for (const code of codes) {
        const words = refusalReason({ status: 409, code, detail: "English detail" });
        expect(words, `${lang} ${code}`).not.toContain("English detail");
        expect(words, `${lang} ${code}`).not.toContain("refusal.");
      }
    }
    i18n.lang = "en";
    expect(refusalReason({ status: 418, code: "teapot", detail: "x" })).toBe("refused by the server, code 418");
    expect(refusalReason({ status: null, code: null, detail: "the key is gone" })).toBe("it could not be sent from this computer");
  });
});
