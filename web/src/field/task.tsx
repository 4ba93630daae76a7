// One task: the alarm in plain words, the site, the team, the clocks, and what I can do now.
import { useEffect, useState } from "preact/hooks";
import { api, ApiError, NetworkError } from "../shared/api";
import { factorName } from "../shared/factors";
import { distanceM, locate, wgs84ToGcj02, type Fix } from "../shared/geo";
import { lang, t, useLang, word } from "../shared/i18n";
import { current } from "../shared/session";
import { beijing, countdown } from "../shared/time";
import { cached, remember } from "./cache";
import { OnSite } from "./onsite";
import { newRequestId, submit } from "./outbox";
import type { SiteHistory, TaskDetail } from "./types";

function num(v: unknown): number | null {
  const n = typeof v === "string" ? Number(v) : (v as number);
  return typeof n === "number" && Number.isFinite(n) ? n : null;
}

const fmt = (n: number) => (Math.abs(n) >= 100 ? n.toFixed(0) : n.toFixed(1));

/** The alarm as a sentence an officer can read out. */
export function explainAlarm(ev: Record<string, unknown>): string[] {
  const zh = lang() === "zh";
  const factor = String(ev.factor ?? "");
  const name = factor ? factorName(factor, lang()) : "";
  const unit = String(ev.unit ?? "");
  const details = (ev.details ?? {}) as Record<string, unknown>;
  const value = num(ev.value);
  const limit = num(ev.limit);
  // the alerts service puts the judged hour's values in details as "value.<name>"
  const d = (name: string) => num(details[`value.${name}`] ?? details[name]);
  const measured = d("mean_measured");
  const o2 = d("mean_o2");
  const refO2 = d("reference_o2");
  const corrected = d("corrected");
  const hours = num(ev.hours_over);
  const lines: string[] = [];
  const kind = word(String(ev.kind ?? ""));
  if (value !== null && limit !== null && limit > 0) {
    const ratio = value / limit;
    const basis = corrected !== null ? (zh ? "折算浓度" : "O2-corrected value") : zh ? "监测值" : "measured value";
    lines.push(
      zh
        ? `${name}${kind}：${basis} ${fmt(value)} ${unit}，限值 ${fmt(limit)} ${unit}，为限值的 ${ratio.toFixed(2)} 倍。`
        : `${name} ${kind}: ${basis} ${fmt(value)} ${unit} against a limit of ${fmt(limit)} ${unit} (${ratio.toFixed(2)}x).`,
    );
  } else if (name || kind) {
    lines.push(`${name} ${kind}`.trim());
  }
  if (measured !== null && o2 !== null) {
    lines.push(
      zh
        ? `实测浓度 ${fmt(measured)} ${unit}，烟气含氧量 ${o2.toFixed(1)}%${refO2 !== null ? `，按基准含氧量 ${refO2}% 折算` : ""}。`
        : `Measured ${fmt(measured)} ${unit} at ${o2.toFixed(1)} % O2${refO2 !== null ? `, corrected to ${refO2} % reference O2` : ""}.`,
    );
  }
  if (ev.clause) lines.push(zh ? `依据：${String(ev.clause)}` : `Clause: ${String(ev.clause)}`);
  if (hours !== null && hours > 0) lines.push(zh ? `已超标 ${hours} 小时。` : `Over the limit for ${hours} h.`);
  const from = beijing(ev.window_start as string);
  const to = beijing((ev.window_end ?? ev.event_time) as string);
  if (to) lines.push(zh ? `数据时间（北京时间）：${from ? `${from} 至 ` : ""}${to}` : `Record time (Beijing): ${from ? `${from} to ` : ""}${to}`);
  return lines;
}

function navLinks(c: { lat: number; lon: number }, label: string) {
  const g = wgs84ToGcj02(c);
  const name = encodeURIComponent(label);
  return [
    {
      href: `https://uri.amap.com/marker?position=${g.lon.toFixed(6)},${g.lat.toFixed(6)}&name=${name}&coordinate=gaode`,
      text: lang() === "zh" ? "高德地图（GCJ-02 坐标）" : "Amap (GCJ-02)",
    },
    {
      href: `geo:${c.lat.toFixed(6)},${c.lon.toFixed(6)}?q=${c.lat.toFixed(6)},${c.lon.toFixed(6)}(${name})`,
      text: lang() === "zh" ? "手机地图（WGS-84 坐标）" : "Phone map (WGS-84)",
    },
  ];
}

function useNow(): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const i = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(i);
  }, []);
  return now;
}

// The clocks in the order the team meets them (dispatch sends them in no set order).
const CLOCK_ORDER = ["ACCEPT", "ARRIVE", "FINISH"];
const clockRank = (clock: string): number => {
  const i = CLOCK_ORDER.indexOf(clock);
  return i < 0 ? CLOCK_ORDER.length : i;
};

function Clocks({ task }: { task: TaskDetail }) {
  const now = useNow();
  const clocks = [...task.sla].sort((a, b) => clockRank(a.clock) - clockRank(b.clock));
  return (
    <ul class="clocks">
      {clocks.map((c) => {
        const left = new Date(c.due_at).getTime() - (c.stopped_at ? new Date(c.stopped_at).getTime() : now);
        return (
          <li key={c.clock} class={left < 0 ? "late" : c.stopped_at ? "met" : ""} data-clock={c.clock}>
            <span>{word(c.clock)}</span>
            <span>{c.stopped_at ? `✓ ${beijing(c.stopped_at).slice(11)}` : countdown(left)}</span>
            <small>{beijing(c.due_at)}</small>
          </li>
        );
      })}
    </ul>
  );
}

function History({ taskId }: { taskId: string }) {
  const [h, setH] = useState<SiteHistory | null>(null);
  useEffect(() => {
    api<SiteHistory>(`/v1/tasks/${taskId}/site-history`).then(setH).catch(() => setH(null));
  }, [taskId]);
  if (!h) return null;
  const l = lang();
  return (
    <details class="card">
      <summary>{t("history")} ({h.tasks.length + h.cases.length})</summary>
      {h.tasks.length + h.cases.length === 0 && <p class="muted">{t("noHistory")}</p>}
      <ul class="plain">
        {h.tasks.map((x) => (
          <li key={x.task_id}>
            {beijing(x.created_at)} · {x.priority} · {x.kinds.map(word).join("、")}{" "}
            {x.factors.map((f) => factorName(f, l)).join("、")} · {word(x.state)}
          </li>
        ))}
        {h.cases.map((c) => (
          <li key={c.case_id}>
            {t("caseFile")} {beijing(c.opened_at)} · {c.state} · {c.summary}
          </li>
        ))}
      </ul>
    </details>
  );
}

function CheckIn({ task, onDone }: { task: TaskDetail; onDone: (msg: string) => void }) {
  const [fix, setFix] = useState<Fix | null>(null);
  const [err, setErr] = useState("");
  const [busy, setBusy] = useState(false);
  const site = task.coordinates;
  const dist = fix && site ? distanceM(fix, site) : null;
  const inside = dist !== null && dist <= task.geofence_m;
  async function send() {
    if (!fix) return;
    setBusy(true);
    setErr("");
    try {
      const r = await submit({
        request_id: newRequestId(),
        path: `/v1/tasks/${task.task_id}/status`,
        body: { status: "ON_SITE", lat: fix.lat, lon: fix.lon, accuracy_m: fix.accuracy },
        label: `${t("checkIn")} ${task.enterprise.name}`,
        task_id: task.task_id,
      });
      onDone(r.sent ? t("done") : t("queued"));
    } catch (e) {
      const d = e instanceof ApiError ? (e.detail as Record<string, unknown>) : null;
      if (d && typeof d === "object" && "distance_m" in d)
        setErr(
          lang() === "zh"
            ? `签到被拒绝：距排口 ${Math.round(Number(d.distance_m))} 米，超出围栏 ${d.geofence_m} 米`
            : `Check-in refused: ${Math.round(Number(d.distance_m))} m from the outlet, outside the ${d.geofence_m} m geofence`,
        );
      else setErr((e as Error).message);
    } finally {
      setBusy(false);
    }
  }
  return (
    <div class="card checkin">
      <h3>{t("checkIn")}</h3>
      <button
        type="button"
        onClick={() => {
          setErr("");
          locate().then(setFix, (e) => setErr((e as Error).message));
        }}
      >
        {t("locate")}
      </button>
      {fix && (
        <p class={inside ? "ok" : "warn"} data-verdict={inside ? "inside" : "outside"}>
          {fix.lat.toFixed(5)}, {fix.lon.toFixed(5)} (WGS-84) · {t("accuracy")} ±{Math.round(fix.accuracy)} m
          <br />
          {dist !== null &&
            `${t("distance")} ${Math.round(dist)} m · ${inside ? t("insideFence") : t("outsideFence")} (${t("fence")} ${task.geofence_m} m)`}
        </p>
      )}
      {fix && <button class="primary" disabled={busy} onClick={send}>{t("sendCheckIn")}</button>}
      {err && <p class="error" role="alert">{err}</p>}
    </div>
  );
}

export function TaskView({ taskId, version }: { taskId: string; version: number }) {
  useLang();
  const path = `/v1/tasks/${taskId}`;
  const [task, setTask] = useState<TaskDetail | null>(cached<TaskDetail>(path));
  const [err, setErr] = useState("");
  const [msg, setMsg] = useState("");
  const [reason, setReason] = useState("");
  const [tick, setTick] = useState(0);
  useEffect(() => {
    api<TaskDetail>(path)
      .then((d) => {
        remember(path, d);
        setTask(d);
        setErr("");
      })
      .catch((e) => {
        if (!(e instanceof NetworkError)) setErr((e as Error).message);
      });
  }, [taskId, version, tick]);
  if (!task) return <p class="muted">{err || "…"}</p>;
  const me = current()?.person.person_id ?? "";
  const mine = task.team.find((m) => m.person_id === me);
  const offered = task.my_slot?.endsWith("OFFERED") && task.state === "ASSIGNING";
  const checkedIn = task.presence.some((p) => p.person_id === me);
  const open = !["COMPLETED", "CANCELLED"].includes(task.state);
  async function act(body: Record<string, unknown>, sub: string, label: string) {
    setErr("");
    setMsg("");
    try {
      const r = await submit({
        request_id: newRequestId(),
        path: `/v1/tasks/${taskId}/${sub}`,
        body,
        label,
        task_id: taskId,
      });
      setMsg(r.sent ? t("done") : t("queued"));
      setTick((x) => x + 1);
    } catch (e) {
      setErr((e as Error).message);
    }
  }
  const label = task.outlet.name || task.enterprise.name || task.outlet_id;
  return (
    <section class="taskview" data-state={task.state}>
      <a href="#/" class="link">← {t("back")}</a>
      <h2>
        <span class={`prio ${task.priority}`}>{task.priority}</span> {task.enterprise.name || task.enterprise_id}
      </h2>
      <p class="muted">
        {word(task.route)} · <strong data-testid="state">{word(task.state)}</strong> · {beijing(task.created_at)}
      </p>
      <div class="card alarm">
        <h3>{t("alarm")}</h3>
        {explainAlarm(task.evidence).map((line) => <p>{line}</p>)}
      </div>
      <div class="card">
        <p><b>{t("enterprise")}</b> {task.enterprise.name}</p>
        <p><b>{t("address")}</b> {task.enterprise.address}</p>
        <p><b>{t("outlet")}</b> {task.outlet.name || task.outlet_id}</p>
        {task.coordinates && (
          <p class="nav">
            <b>{t("navigate")}</b>{" "}
            {navLinks(task.coordinates, label).map((n) => (
              <a href={n.href} target="_blank" rel="noopener">{n.text}</a>
            ))}
          </p>
        )}
      </div>
      <div class="card">
        <h3>{t("team")}</h3>
        <ul class="plain team">
          {task.team.map((m) => {
            const here = task.presence.find((p) => p.person_id === m.person_id);
            return (
              <li key={m.slot_id} data-person={m.person_id}>
                {m.name || m.person_id} · {word(m.role)} · {m.status === "ACCEPTED" ? t("accepted") : t("offered")}
                {here && ` · ${t("checkedIn")} ${beijing(here.checked_in_at)} (${Math.round(here.distance_m)} m)`}
              </li>
            );
          })}
        </ul>
      </div>
      <div class="card">
        <h3>{t("sla")}</h3>
        <Clocks task={task} />
      </div>
      <History taskId={taskId} />
      {msg && <p class="ok" role="status">{msg}</p>}
      {err && <p class="error" role="alert">{err}</p>}
      <div class="actions">
        {offered && (
          <>
            <button class="primary" onClick={() => act({}, "accept", `${t("accept")} ${task.enterprise.name}`)}>{t("accept")}</button>
            <input placeholder={t("declineReason")} value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
            <button onClick={() => act({ reason }, "decline", `${t("decline")} ${task.enterprise.name}`)} disabled={!reason.trim()}>
              {t("decline")}
            </button>
          </>
        )}
        {mine?.status === "ACCEPTED" && task.state === "ASSIGNED" && (
          <button class="primary" onClick={() => act({ status: "EN_ROUTE" }, "status", `${t("enRoute")} ${task.enterprise.name}`)}>
            {t("enRoute")}
          </button>
        )}
      </div>
      {mine?.status === "ACCEPTED" && !checkedIn && ["EN_ROUTE", "ON_SITE", "SAMPLING"].includes(task.state) && (
        <CheckIn task={task} onDone={(m) => { setMsg(m); setTick((x) => x + 1); }} />
      )}
      {mine?.role === "MONITORING" && checkedIn && task.state === "ON_SITE" && (
        <div class="actions">
          <button class="primary" onClick={() => act({ status: "SAMPLING" }, "status", `${t("startSampling")} ${task.enterprise.name}`)}>
            {t("startSampling")}
          </button>
        </div>
      )}
      {mine && checkedIn && open && task.case_id && <OnSite task={task} me={me} role={mine.role} />}
      {mine?.status === "ACCEPTED" && task.state === "SAMPLING" && mine.role === "ENFORCEMENT" && (
        <div class="actions">
          <button onClick={() => act({ status: "COMPLETED" }, "status", `${t("complete")} ${task.enterprise.name}`)}>{t("complete")}</button>
        </div>
      )}
    </section>
  );
}
