// The inbox: my tasks, most urgent first, refreshed by the live stream.
import { useEffect, useState } from "preact/hooks";
import { api, NetworkError } from "../shared/api";
import { lang, t, word } from "../shared/i18n";
import { beijing } from "../shared/time";
import { cached, remember } from "./cache";
import type { TaskSummary } from "./types";

export function Inbox({ version }: { version: number }) {
  const [tasks, setTasks] = useState<TaskSummary[] | null>(cached<TaskSummary[]>("/v1/me/tasks"));
  const [closed, setClosed] = useState(false);
  const [err, setErr] = useState("");
  useEffect(() => {
    const path = `/v1/me/tasks${closed ? "?include_closed=true" : ""}`;
    api<TaskSummary[]>(path)
      .then((ts) => {
        remember(path, ts);
        setTasks(ts);
        setErr("");
      })
      .catch((e) => {
        if (e instanceof NetworkError) setTasks(cached<TaskSummary[]>(path) ?? []);
        else setErr((e as Error).message);
      });
  }, [version, closed]);
  return (
    <section class="inbox">
      <div class="row">
        <h2>{t("inbox")} {tasks ? <span class="count">{tasks.length}</span> : null}</h2>
        <label class="small">
          <input type="checkbox" checked={closed} onChange={(e) => setClosed(e.currentTarget.checked)} /> {t("showClosed")}
        </label>
      </div>
      {err && <p class="error">{err}</p>}
      {tasks && tasks.length === 0 && <p class="muted">{t("noTasks")}</p>}
      <ul class="tasks">
        {(tasks ?? []).map((task) => (
          <li key={task.task_id}>
            <a href={`#/task/${task.task_id}`} class={`task ${task.priority}`} data-task={task.task_id}>
              <span class={`prio ${task.priority}`}>{task.priority}</span>
              <span class="what">
                <strong>{task.enterprise_name || task.enterprise_id}</strong>
                <small>
                  {word(task.route)} · {word(task.state)} · {beijing(task.created_at)}
                </small>
                {task.my_slot && <small class={task.my_slot.endsWith("OFFERED") ? "offer" : "muted"}>
                  {task.my_slot.endsWith("OFFERED") ? (lang() === "zh" ? "待我答复" : "waiting for my answer") : t("accepted")}
                </small>}
              </span>
            </a>
          </li>
        ))}
      </ul>
    </section>
  );
}
