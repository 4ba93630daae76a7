// Field app entry (officers and monitoring staff): sign-in, the shell (connection, outbox,
// language, update prompt) and the two pages, inbox and task.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api } from "../shared/api";
import { subscribe, type PushEvent } from "../shared/events";
import { lang, setLang, t, useLang } from "../shared/i18n";
import { current, onSessionChange, signOut } from "../shared/session";
import { SignIn } from "../shared/signin";
import { forget } from "./cache";
import { config } from "./config";
import { Inbox } from "./inbox";
import { dismiss, flush, onOutboxChange, pending, progressOf, refusals, type Action, type Refusal } from "./outbox";
import { TaskView } from "./task";
import type { Me } from "./types";
import "./style.css";

function useRoute(): string {
  const [r, set] = useState(location.hash.slice(1) || "/");
  useEffect(() => {
    const f = () => set(location.hash.slice(1) || "/");
    addEventListener("hashchange", f);
    return () => removeEventListener("hashchange", f);
  }, []);
  return r;
}

function useSignedIn(): boolean {
  const [s, set] = useState(!!current());
  useEffect(() => onSessionChange(() => set(!!current())), []);
  return s;
}

function useOnline(): boolean {
  const [on, set] = useState(navigator.onLine);
  useEffect(() => {
    const up = () => set(true);
    const down = () => set(false);
    addEventListener("online", up);
    addEventListener("offline", down);
    return () => {
      removeEventListener("online", up);
      removeEventListener("offline", down);
    };
  }, []);
  return on;
}

function useOutbox(): [Action[], Refusal[]] {
  const [p, setP] = useState<Action[]>([]);
  const [r, setR] = useState<Refusal[]>([]);
  useEffect(() => {
    const f = () => {
      void pending().then(setP);
      void refusals().then(setR);
    };
    f();
    return onOutboxChange(f);
  }, []);
  return [p, r];
}

// A new service worker waits; the person decides when to take it (never mid-form). Only that
// choice reloads the page (the first worker's clients.claim() must not).
let updateChosen = false;

function useUpdate(): [boolean, () => void] {
  const [waiting, setWaiting] = useState<ServiceWorker | null>(null);
  useEffect(() => {
    if (!("serviceWorker" in navigator)) return;
    let reloading = false;
    navigator.serviceWorker.addEventListener("controllerchange", () => {
      if (updateChosen && !reloading) {
        reloading = true;
        location.reload();
      }
    });
    navigator.serviceWorker.register("/sw.js").then((reg) => {
      const watch = (w: ServiceWorker | null) => {
        if (!w) return;
        w.addEventListener("statechange", () => {
          if (w.state === "installed" && navigator.serviceWorker.controller) setWaiting(w);
        });
      };
      if (reg.waiting && navigator.serviceWorker.controller) setWaiting(reg.waiting);
      reg.addEventListener("updatefound", () => watch(reg.installing));
      setInterval(() => void reg.update().catch(() => undefined), 30 * 60_000);
    }, () => undefined);
  }, []);
  return [
    !!waiting,
    () => {
      updateChosen = true;
      waiting?.postMessage({ type: "SKIP_WAITING" });
    },
  ];
}

const NOTIFY: Record<string, { zh: string; en: string }> = {
  offer: { zh: "新任务待接受", en: "New task offered" },
  reminder: { zh: "任务提醒", en: "Task reminder" },
  team_confirmed: { zh: "队伍已确认", en: "Team confirmed" },
  cancelled: { zh: "任务已取消", en: "Task cancelled" },
  escalation: { zh: "任务升级", en: "Escalation" },
  checked_in: { zh: "队友已签到", en: "A teammate checked in" },
};

function announce(e: PushEvent): void {
  const title = NOTIFY[e.event]?.[lang()] ?? e.event;
  const body = [e.data.enterprise_name, e.data.name, e.data.note].filter(Boolean).join(" · ");
  if (e.event === "offer" || e.event === "escalation" || e.event === "reminder") navigator.vibrate?.([200, 100, 200]);
  if ("Notification" in window && Notification.permission === "granted" && document.visibilityState !== "visible") {
    const n = new Notification(title, { body, tag: String(e.data.task_id ?? e.id) });
    n.onclick = () => {
      focus();
      if (e.data.task_id) location.hash = `#/task/${e.data.task_id}`;
    };
  }
}

function Shell() {
  useLang();
  const route = useRoute();
  const online = useOnline();
  const [queue, refused] = useOutbox();
  const [update, takeUpdate] = useUpdate();
  const [live, setLive] = useState(false);
  const [version, setVersion] = useState(0);
  const [toast, setToast] = useState<string>("");
  const [offers, setOffers] = useState(0);
  const person = current()!.person;
  useEffect(() => {
    api<Me>("/v1/me").then((me) => (config.me = me)).catch(() => undefined);
    void flush();
    const stop = subscribe(
      "/v1/events",
      (e) => {
        setVersion((v) => v + 1);
        const title = NOTIFY[e.event]?.[lang()];
        if (title) {
          setToast(title);
          setTimeout(() => setToast((t) => (t === title ? "" : t)), 6000);
        }
        announce(e);
      },
      setLive,
    );
    return stop;
  }, []);
  // badge: tasks waiting for my answer (app icon where supported, and the title)
  useEffect(() => {
    api<{ my_slot: string | null; state: string }[]>("/v1/me/tasks")
      .then((ts) => {
        const n = ts.filter((x) => x.my_slot?.endsWith("OFFERED") && x.state === "ASSIGNING").length;
        setOffers(n);
        document.title = `${n ? `(${n}) ` : ""}${t("appName")}`;
        const nav = navigator as Navigator & { setAppBadge?: (n: number) => Promise<void>; clearAppBadge?: () => Promise<void> };
        if (n) void nav.setAppBadge?.(n).catch(() => undefined);
        else void nav.clearAppBadge?.().catch(() => undefined);
      })
      .catch(() => undefined);
  }, [version]);
  const taskId = route.startsWith("/task/") ? route.slice(6) : null;
  return (
    <>
      <header class="bar">
        <a href="#/" class="brand"><h1>{t("appName")}</h1></a>
        {offers > 0 && <span class="badge" data-testid="badge" title={t("newTask")}>{offers}</span>}
        <span class={`conn ${online && live ? "on" : "off"}`} data-testid="conn">
          {!online ? t("offline") : live ? t("live") : t("reconnecting")}
        </span>
        <span class="outbox-count" data-testid="outbox" title={t("outbox")}>
          {t("outbox")} {queue.length}
        </span>
      </header>
      {update && (
        <div class="update" role="status">
          {t("updateAvailable")} <button onClick={takeUpdate}>{t("updateNow")}</button>
        </div>
      )}
      {toast && (
        <div class="toast" role="status" onClick={() => setToast("")}>{toast}</div>
      )}
      {refused.map((r) => (
        <div class="refusal" role="alert" data-refused={r.request_id}>
          <b>{t("refused")} ({r.status})</b> {r.label}: {r.reason}{" "}
          <button onClick={() => dismiss(r.request_id)}>{t("dismiss")}</button>
        </div>
      ))}
      {queue.length > 0 && (
        <details class="queue">
          <summary>{t("outbox")} ({queue.length})</summary>
          <ul class="plain">
            {queue.map((a) => {
              const p = progressOf(a.request_id);
              return (
                <li key={a.request_id}>
                  {a.label}
                  {p !== undefined && <progress max={1} value={p} aria-label={t("uploading")} />}
                  {p !== undefined && ` ${t("uploading")} ${Math.round(p * 100)}%`}
                </li>
              );
            })}
          </ul>
        </details>
      )}
      <main>{taskId ? <TaskView taskId={taskId} version={version} /> : <Inbox version={version} />}</main>
      <footer>
        <span>{t("signedInAs")}: {person.name || person.person_id}</span>
        <button class="link" onClick={() => setLang(lang() === "zh" ? "en" : "zh")}>{t("language")}</button>
        <button class="link" onClick={() => { forget(); void signOut(); }}>{t("signOut")}</button>
      </footer>
    </>
  );
}

function App() {
  useLang();
  const signedIn = useSignedIn();
  useEffect(() => {
    if (signedIn && "Notification" in window && Notification.permission === "default") void Notification.requestPermission().catch(() => undefined);
  }, [signedIn]);
  return signedIn ? <Shell /> : <SignIn title={t("appName")} />;
}

render(<App />, document.getElementById("app")!);
