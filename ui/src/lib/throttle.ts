// Runs an async task on request, at most once per interval and never twice at a time; a
// request while it runs or waits is folded into the next run. The exam screen uses it to
// ask for progress after sync events, which can arrive ten times a second.
export type Throttle = { request(): void; dispose(): void };

export function throttle(task: () => Promise<void>, intervalMs: number, now = () => performance.now()): Throttle {
  let last = -Infinity;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running = false;
  let again = false;
  let disposed = false;

  async function run() {
    if (running) {
      again = true;
      return;
    }
    running = true;
    last = now();
    try {
      await task();
    } finally {
      running = false;
      if (again && !disposed) {
        again = false;
        request();
      }
    }
  }

  function request() {
    if (disposed || timer !== undefined) return;
    if (running) {
      again = true;
      return;
    }
    const wait = Math.max(0, last + intervalMs - now());
    timer = setTimeout(() => {
      timer = undefined;
      void run();
    }, wait);
  }

  return {
    request,
    dispose() {
      disposed = true;
      clearTimeout(timer);
    },
  };
}
