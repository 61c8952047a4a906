// A tiny dictionary i18n: the exam is taken in English or Vietnamese, and the student picks.
// The choice is kept in localStorage so every window (and the next start) uses it; the first
// time, the system's language decides. `t` reads a rune, so templates follow a switch at once.
import { en, type MessageKey } from "./i18n/en";
import { vi } from "./i18n/vi";

export type Lang = "en" | "vi";
export const LANGS: { code: Lang; name: string }[] = [
  { code: "en", name: "English" },
  { code: "vi", name: "Tiếng Việt" },
];
export const STORAGE_KEY = "exam-desktop-lang";
export const dictionaries: Record<Lang, Record<MessageKey, string>> = { en, vi };

export type Params = Record<string, string | number>;
export type { MessageKey };

function storage(): Storage | null {
  try {
    return typeof localStorage === "undefined" ? null : localStorage;
  } catch {
    return null; // storage can be disabled; the language then lasts for this window only
  }
}

/** The saved choice, else the system language (vi, vi-VN… → vi), else English. */
export function initialLang(): Lang {
  const saved = storage()?.getItem(STORAGE_KEY);
  if (saved === "en" || saved === "vi") return saved;
  const system = typeof navigator === "undefined" ? "" : (navigator.language ?? "");
  return system.toLowerCase().startsWith("vi") ? "vi" : "en";
}

class I18n {
  lang = $state<Lang>(initialLang());

  set(lang: Lang) {
    this.lang = lang;
    storage()?.setItem(STORAGE_KEY, lang);
  }

  /** The BCP 47 tag for dates and numbers. */
  get locale(): string {
    return this.lang === "vi" ? "vi-VN" : "en-GB";
  }
}

export const i18n = new I18n();

export function format(template: string, params?: Params): string {
  if (!params) return template;
  return template.replace(/\{(\w+)\}/g, (whole, name: string) =>
    name in params ? String(params[name]) : whole,
  );
}

export function t(key: MessageKey, params?: Params): string {
  return format(dictionaries[i18n.lang][key] ?? en[key], params);
}

/** Keys that come as a `.one` / `.other` pair. */
type PluralBase = { [K in MessageKey]: K extends `${infer B}.one` ? B : never }[MessageKey];

/** A counted phrase; `{n}` is the count. (Vietnamese has one form; English has two.) */
export function tn(base: PluralBase, n: number, params?: Params): string {
  const key = (n === 1 ? `${base}.one` : `${base}.other`) as MessageKey;
  return t(key, { n, ...params });
}

/** "10:42": times are short and 24-hour, so there is no am/pm to misread. */
export function formatTime(iso: string | number | Date): string {
  return new Intl.DateTimeFormat(i18n.locale, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(
    new Date(iso),
  );
}

/** "12 Mar 2025, 09:00". */
export function formatDateTime(iso: string | number | Date): string {
  return new Intl.DateTimeFormat(i18n.locale, {
    day: "numeric",
    month: "short",
    year: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  }).format(new Date(iso));
}

/** To the second, for time lost: "3 min 20 s", "45 s", "1 h 5 min". */
export function formatLostTime(ms: number): string {
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return t("duration.s", { s: seconds });
  if (seconds < 3600) return t("duration.ms", { m: Math.floor(seconds / 60), s: seconds % 60 });
  return formatDuration(seconds);
}

/** "1 h 30 min", "45 min". */
export function formatDuration(seconds: number): string {
  const minutes = Math.round(seconds / 60);
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  if (h === 0) return t("duration.m", { m });
  return m === 0 ? t("duration.h", { h }) : t("duration.hm", { h, m });
}
