// @vitest-environment jsdom
import { cleanup, render, screen } from "@testing-library/svelte";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

const signIn = vi.fn();
vi.mock("../bindings", () => ({
  commands: { signIn: (...args: unknown[]) => signIn(...args) },
  events: {},
}));

import { auth } from "./auth.svelte";
import SignIn from "./SignIn.svelte";

const snapshot = {
  version: 3,
  status: "signed_in",
  has_session: true,
  user: "student4",
  expires_at: null,
  reason: null,
  refreshing: false,
  clock_offset_s: 0,
};

describe("SignIn", () => {
  beforeEach(() => {
    signIn.mockReset();
    auth.snapshot = null;
    auth.endedReason = null;
  });
  afterEach(() => {
    cleanup();
    vi.useRealTimers();
  });

  it("says so when a setting on this computer, not the school, chose the server", () => {
    render(SignIn, { serverUrl: "http://127.0.0.1:9999/", serverSetBy: "EXAM_DESKTOP_SERVER" });
    const note = screen.getByTestId("server-set-by-user");
    expect(note.textContent).toContain("http://127.0.0.1:9999/");
    expect(note.textContent).toContain("EXAM_DESKTOP_SERVER");
    expect(note.textContent).toContain("your password goes to it");
    cleanup();
    render(SignIn, { serverUrl: "https://exams.school.example/" });
    expect(screen.queryByTestId("server-set-by-user")).toBeNull();
    expect(screen.getByTestId("server-url").textContent).toBe("https://exams.school.example/");
  });

  it("is usable by keyboard alone: focus starts in the username, Enter signs in", async () => {
    signIn.mockResolvedValue({ status: "ok", data: snapshot });
    const user = userEvent.setup();
    render(SignIn, { serverUrl: "http://127.0.0.1:8080/" });
    expect(document.activeElement).toBe(screen.getByLabelText("Username"));
    await user.keyboard("student4");
    await user.tab();
    expect(document.activeElement).toBe(screen.getByLabelText("Password"));
    await user.keyboard("demo{Enter}");
    expect(signIn).toHaveBeenCalledWith("student4", "demo");
    expect(screen.getByRole("button", { name: "Sign in" })).toBeTruthy();
  });

  it("says what is missing instead of calling the server", async () => {
    const user = userEvent.setup();
    render(SignIn, { serverUrl: "x" });
    await user.keyboard("student4{Enter}");
    expect(signIn).not.toHaveBeenCalled();
    expect(screen.getByRole("alert").textContent).toContain("username and your password");
    expect(document.activeElement).toBe(screen.getByLabelText("Password"));
  });

  it("a wrong password is announced, marked on the fields, cleared and focused", async () => {
    signIn.mockResolvedValue({ status: "error", error: { kind: "wrong_credentials" } });
    const user = userEvent.setup();
    render(SignIn, { serverUrl: "x" });
    await user.keyboard("student4{Tab}wrong{Enter}");
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("not right");
    const password = screen.getByLabelText("Password") as HTMLInputElement;
    expect(password.getAttribute("aria-invalid")).toBe("true");
    expect(password.getAttribute("aria-describedby")).toBe("sign-in-error");
    expect(password.value).toBe("");
    expect(document.activeElement).toBe(password);
  });

  it("a lockout counts down on the button and then lets the student retry", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    signIn.mockResolvedValue({ status: "error", error: { kind: "locked_out", retry_after_s: 3 } });
    const user = userEvent.setup({ advanceTimers: vi.advanceTimersByTime });
    render(SignIn, { serverUrl: "x" });
    await user.keyboard("student4{Tab}wrong{Enter}");
    const button = await screen.findByRole("button", { name: "Try again in 3 s" });
    expect((button as HTMLButtonElement).disabled).toBe(true);
    expect(screen.getByRole("alert").textContent).toContain("wait 3 seconds");
    await vi.advanceTimersByTimeAsync(3100);
    const again = screen.getByRole("button", { name: "Sign in" }) as HTMLButtonElement;
    expect(again.disabled).toBe(false);
  });

  it("after the school ended the session, the name is kept and focus is in the password", () => {
    auth.apply({ ...snapshot, version: 9, status: "session_ended", reason: { code: "session_ended_by_school" } });
    render(SignIn, { serverUrl: "x" });
    expect((screen.getByLabelText("Username") as HTMLInputElement).value).toBe("student4");
    expect(document.activeElement).toBe(screen.getByLabelText("Password"));
    expect(screen.getByRole("alert").textContent).toContain("ended by your school");
  });

  it("asked for the password again, the student's name is filled in and it says why", () => {
    auth.apply({ ...snapshot, version: 10, status: "session_ended", reason: { code: "step_up_required" } });
    render(SignIn, { serverUrl: "x" });
    expect((screen.getByLabelText("Username") as HTMLInputElement).value).toBe("student4");
    expect(document.activeElement).toBe(screen.getByLabelText("Password"));
    expect(screen.getByRole("alert").textContent).toContain("Your school asks you to enter your password again.");
    expect(screen.getByRole("alert").textContent).toContain("Your exam and saved answers are kept");
  });

  it("warns when Caps Lock is on", async () => {
    const user = userEvent.setup();
    render(SignIn, { serverUrl: "x" });
    await user.click(screen.getByLabelText("Password"));
    await user.keyboard("{CapsLock}a");
    expect(screen.getByTestId("caps-lock").textContent).toContain("Caps Lock is on");
    expect(screen.getByLabelText("Password").getAttribute("aria-describedby")).toBe("caps-lock");
  });
});
