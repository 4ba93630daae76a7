// Managers' console: overview (live), response times with ranking, task timelines, map,
// cases with legal clocks, and a printable monthly report. Routes live in the URL fragment.
import { render } from "preact";
import { useEffect, useMemo, useState } from "preact/hooks";
import { ApiError, download, get, stream } from "./api";
import { Chart, COUNTY_NAMES } from "./charts";
import { lang, setLang, t } from "./i18n";
import { useLang } from "../shared/i18n";
import { SignIn } from "../shared/signin";
import { onSessionChange, ROLE, signedIn, signOut, who } from "./session";
import "./console.css";

// ---- shapes of dispatch's report API (services/dispatch/entrypoints/reports_api.py) --------
type Stage = { stage: string; count: number; p50_s: number | null; p90_s: number | null; max_s: number | null };
type Group = { group: string; tasks: number; open_tasks: number; stages: Stage[]; sla_breaches: Record<string, number> };
type Rank = {
  rank: number; county: string; tasks: number; open_tasks: number; response_p50_s: number | null;
  response_p90_s: number | null; total_p50_s: number | null; sla_breaches: number; breach_rate: number;
};
type OpenTask = { task_id: string; county: string; priority: string; route: string; state: string; raised_at: string; age_s: number };
type Report = {
  by: string; since: string; until: string; generated_at: string; groups: Group[]; slowest_open: OpenTask[];
  bucket: string; series: Group[]; ranking: Rank[];
};
type Period = { since: string; alarms: number; alarms_by_kind: Record<string, number> };
type Overview = {
  generated_at: string; today: Period; week: Period; open_tasks: number; open_by_state: Record<string, number>;
  open_breached: Record<string, number>; week_breaches: Record<string, number>; slowest_counties: Rank[];
};
type Timeline = {
  task_id: string; county: string; route: string; priority: string; state: string; enterprise_id: string;
  outlet_id: string; raised_at: string; alert: Record<string, unknown>; case_id: string; case_state: string;
  items: { at: string; kind: string; actor: string; note: string }[]; stages: Record<string, number | null>;
};
type MapView = { datum: string; outlets: { id: string; name: string; county: string; lat: number; lon: number; open_tasks: number; worst_state: string }[] };

const STAGES = ["dispatch", "acceptance", "travel", "response", "on site", "sampling", "on site to done", "total"];
const TASK_STATES = ["CREATED", "ASSIGNING", "ASSIGNED", "EN_ROUTE", "ON_SITE", "SAMPLING"];
const STATE_COLOURS: Record<string, string> = {
  CREATED: "#d4380d", ASSIGNING: "#d4380d", ASSIGNED: "#d48806", EN_ROUTE: "#d48806",
  ON_SITE: "#1d39c4", SAMPLING: "#1d39c4", "": "#8c8c8c",
};

// ---- formatting ------------------------------------------------------------------------------
const TZ = "Asia/Shanghai";
function minutes(s: number | null | undefined): string {
  return s == null ? "–" : (s / 60).toFixed(1);
}
function when(iso: string): string {
  return new Intl.DateTimeFormat(lang() === "en" ? "en-GB" : "zh-CN", {
    timeZone: TZ, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
  }).format(new Date(iso));
}
function dayOf(iso: string): string {
  return new Intl.DateTimeFormat("en-CA", { timeZone: TZ }).format(new Date(iso));
}
function countyName(code: string): string {
  const n = COUNTY_NAMES[code];
  return n ? `${lang() === "en" ? n.en : n.zh} ${code}` : code;
}
function groupName(by: string, g: string): string {
  if (by === "county") return countyName(g);
  if (g === "all") return t().all;
  return g;
}
function stageName(s: string): string {
  return t().stageNames[s] ?? s;
}
function stateName(s: string): string {
  return t().states[s] ?? s;
}
function kindName(k: string): string {
  return t().kinds[k] ?? k;
}
function cstMidnight(day: string): string {
  return `${day}T00:00:00+08:00`;
}
function addDays(day: string, n: number): string {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

// ---- routing ---------------------------------------------------------------------------------
function useRoute(): string[] {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  const path = hash.replace(/^#\/?/, "").split("?")[0];
  return path ? path.split("/").map(decodeURIComponent) : ["overview"];
}
function hashQuery(): URLSearchParams {
  return new URLSearchParams(location.hash.split("?")[1] ?? "");
}

function useData<T>(path: string | null, query: Record<string, string | undefined>, deps: unknown[]) {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<ApiError | Error | null>(null);
  useEffect(() => {
    if (!path) return;
    let live = true;
    setError(null);
    get<T>(path, query).then((d) => live && setData(d), (e) => live && setError(e));
    return () => {
      live = false;
    };
  }, [path, ...deps]);
  return { data, error };
}

function Problem({ error }: { error: Error }) {
  const status = error instanceof ApiError ? error.status : 0;
  return (
    <p class="problem" role="alert">
      {status === 403 ? t().forbidden : t().loadFailed}: {error.message}
    </p>
  );
}

// ---- overview --------------------------------------------------------------------------------
function OverviewPage() {
  const [view, setView] = useState<Overview | null>(null);
  const [live, setLive] = useState(false);
  useEffect(
    () => stream("/v1/reports/overview/stream", (event, data) => event === "overview" && setView(data as Overview), setLive),
    [],
  );
  const kinds = view ? [...new Set([...Object.keys(view.week.alarms_by_kind), ...Object.keys(view.today.alarms_by_kind)])].sort() : [];
  const kindOption = useMemo(() => ({
    tooltip: {}, legend: { top: 0 }, grid: { left: 40, right: 10, top: 30, bottom: 50 },
    xAxis: { type: "category", data: kinds.map(kindName), axisLabel: { interval: 0, rotate: kinds.length > 4 ? 30 : 0 } },
    yAxis: { type: "value", minInterval: 1 },
    series: [
      { name: t().today, type: "bar", data: kinds.map((k) => view?.today.alarms_by_kind[k] ?? 0), label: { show: true, position: "top" } },
      { name: t().week, type: "bar", data: kinds.map((k) => view?.week.alarms_by_kind[k] ?? 0), label: { show: true, position: "top" } },
    ],
  }), [view]);
  const stageOption = useMemo(() => ({
    tooltip: {}, grid: { left: 40, right: 10, top: 20, bottom: 30 },
    xAxis: { type: "category", data: TASK_STATES.map(stateName) },
    yAxis: { type: "value", minInterval: 1 },
    series: [{
      type: "bar", data: TASK_STATES.map((s) => ({ value: view?.open_by_state[s] ?? 0, itemStyle: { color: STATE_COLOURS[s] } })),
      label: { show: true, position: "top" },
    }],
  }), [view]);
  const breached = view ? Object.values(view.open_breached).reduce((a, b) => a + b, 0) : 0;
  return (
    <section>
      <p class={live ? "live on" : "live"} data-live={live ? "on" : "off"}>
        <span class="dot" /> {live ? t().live : t().offline}
        {view && <> · {t().updated} {when(view.generated_at)}</>}
      </p>
      {view && (
        <>
          <div class="cards">
            <Card label={t().alarmsToday} value={view.today.alarms} id="alarms-today" />
            <Card label={t().alarmsWeek} value={view.week.alarms} id="alarms-week" />
            <Card label={t().openTasks} value={view.open_tasks} id="open-tasks" />
            <Card label={t().breachedOpen} value={breached} id="open-breached" warn={breached > 0} />
          </div>
          <div class="two">
            <figure><figcaption>{t().alarmsByKind}</figcaption><Chart id="alarms-by-kind" option={kindOption} /></figure>
            <figure><figcaption>{t().openByStage}</figcaption><Chart id="open-by-stage" option={stageOption} /></figure>
          </div>
          <div class="two">
            <figure>
              <figcaption>{t().slowestCounties}</figcaption>
              <RankingTable rows={view.slowest_counties} id="slowest-counties" slowestFirst />
            </figure>
            <figure>
              <figcaption>{t().weekBreaches}</figcaption>
              <table class="grid" data-table="week-breaches">
                <tbody>
                  {Object.entries(view.week_breaches).map(([clock, n]) => (
                    <tr><th>{t().clocks[clock] ?? clock}</th><td class="num">{n}</td></tr>
                  ))}
                </tbody>
              </table>
            </figure>
          </div>
        </>
      )}
    </section>
  );
}

function Card(props: { label: string; value: number; id: string; warn?: boolean }) {
  return (
    <div class={props.warn ? "card warn" : "card"} data-card={props.id}>
      <div class="label">{props.label}</div>
      <div class="value">{props.value}</div>
    </div>
  );
}

// The full ranking numbers from the fastest county (rank 1); the overview's list of the slowest
// numbers from the slowest, as it reads top to bottom.
function RankingTable({ rows, id, slowestFirst = false }: { rows: Rank[]; id: string; slowestFirst?: boolean }) {
  if (!rows.length) return <p class="empty">{t().noData}</p>;
  return (
    <div class="scroll">
      <table class="grid" data-table={id}>
        <thead>
          <tr>
            <th>{t().rank}<br />({slowestFirst ? t().slowestIsOne : t().fastestIsOne})</th><th>{t().county}</th><th class="num">{t().tasks}</th><th class="num">{t().open}</th>
            <th class="num">{t().responseP50}<br />({t().minutes})</th><th class="num">{t().responseP90}<br />({t().minutes})</th>
            <th class="num">{t().totalP50}<br />({t().minutes})</th><th class="num">{t().breaches}</th><th class="num">{t().breachRate}</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r, i) => (
            <tr data-county={r.county}>
              <td>{slowestFirst ? i + 1 : r.rank}</td><td>{countyName(r.county)}</td><td class="num">{r.tasks}</td><td class="num">{r.open_tasks}</td>
              <td class="num">{minutes(r.response_p50_s)}</td><td class="num">{minutes(r.response_p90_s)}</td>
              <td class="num">{minutes(r.total_p50_s)}</td><td class="num">{r.sla_breaches}</td>
              <td class="num">{(r.breach_rate * 100).toFixed(0)}%</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

// ---- response times --------------------------------------------------------------------------
function ResponsePage() {
  const q = hashQuery();
  const today = dayOf(new Date().toISOString());
  const [since, setSince] = useState(q.get("since") ?? addDays(today, -29));
  const [until, setUntil] = useState(q.get("until") ?? today);
  const [by, setBy] = useState(q.get("by") ?? "county");
  const [bucket, setBucket] = useState(q.get("bucket") ?? "day");
  const [stage, setStage] = useState("response");
  const query = { since: cstMidnight(since), until: cstMidnight(addDays(until, 1)), by, bucket };
  // the chart shows one stage: only that one is computed per bucket
  const { data, error } = useData<Report>("/v1/reports/response-times", { ...query, series_stage: stage },
    [since, until, by, bucket, stage]);
  const seriesOption = useMemo(() => {
    const rows = data?.series ?? [];
    const pick = (g: Group, k: "p50_s" | "p90_s" | "max_s") => {
      const s = g.stages.find((x) => x.stage === stage);
      return s && s[k] != null ? +(s[k]! / 60).toFixed(1) : null;
    };
    return {
      tooltip: { trigger: "axis" }, legend: { top: 0 }, grid: { left: 50, right: 20, top: 30, bottom: 30 },
      xAxis: { type: "category", data: rows.map((g) => g.group) },
      yAxis: { type: "value", name: t().minutes },
      series: [
        { name: t().p50, type: "line", data: rows.map((g) => pick(g, "p50_s")), connectNulls: true, label: { show: true } },
        { name: t().p90, type: "line", data: rows.map((g) => pick(g, "p90_s")), connectNulls: true },
        { name: t().max, type: "line", data: rows.map((g) => pick(g, "max_s")), connectNulls: true, lineStyle: { type: "dashed" } },
      ],
    };
  }, [data, stage]);
  const exportQuery = { ...query };
  return (
    <section>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label>{t().since} <input type="date" name="since" value={since} onChange={(e) => setSince(e.currentTarget.value)} /></label>
        <label>{t().until} <input type="date" name="until" value={until} onChange={(e) => setUntil(e.currentTarget.value)} /></label>
        <label>{t().by} <select name="by" value={by} onChange={(e) => setBy(e.currentTarget.value)}>
          {["county", "priority", "route", "all"].map((b) => <option value={b}>{(t() as unknown as Record<string, string>)[b]}</option>)}
        </select></label>
        <label>{t().bucket} <select name="bucket" value={bucket} onChange={(e) => setBucket(e.currentTarget.value)}>
          <option value="day">{t().day}</option><option value="week">{t().weekBucket}</option><option value="month">{t().month}</option>
        </select></label>
      </form>
      {error && <Problem error={error} />}
      {data && (
        <>
          <h2>{t().ranking} <Exports name="ranking" query={exportQuery} /></h2>
          <RankingTable rows={data.ranking} id="ranking" />
          <h2>{t().responseTimes} ({t().minutes}) <Exports name="response-times" query={exportQuery} /></h2>
          <StageTable groups={data.groups} by={data.by} />
          <h2>
            {t().overTime}{" "}
            <select name="stage" value={stage} onChange={(e) => setStage(e.currentTarget.value)}>
              {STAGES.map((s) => <option value={s}>{stageName(s)}</option>)}
            </select>{" "}
            <Exports name="series" query={exportQuery} />
          </h2>
          <Chart id="series" option={seriesOption} height={300} />
          <h2>{t().slowestOpen} <Exports name="tasks" query={exportQuery} /></h2>
          <OpenTable rows={data.slowest_open} />
        </>
      )}
    </section>
  );
}

function Exports({ name, query }: { name: string; query: Record<string, string> }) {
  return (
    <span class="exports no-print">
      {["csv", "xlsx"].map((fmt) => (
        <button type="button" data-export={`${name}.${fmt}`} onClick={() => download(`/v1/reports/export/${name}.${fmt}`, query)}>
          {fmt.toUpperCase()}
        </button>
      ))}
    </span>
  );
}

function StageTable({ groups, by }: { groups: Group[]; by: string }) {
  if (!groups.length) return <p class="empty">{t().noData}</p>;
  return (
    <div class="scroll">
      <table class="grid" data-table="stages">
        <thead>
          <tr>
            <th rowSpan={2}>{(t() as unknown as Record<string, string>)[by] ?? by}</th>
            <th rowSpan={2} class="num">{t().tasks}</th>
            {STAGES.map((s) => <th colSpan={3} class="stage">{stageName(s)}</th>)}
          </tr>
          <tr>{STAGES.map(() => <><th class="num">{t().p50}</th><th class="num">{t().p90}</th><th class="num">{t().max}</th></>)}</tr>
        </thead>
        <tbody>
          {groups.map((g) => (
            <tr data-group={g.group}>
              <td>{groupName(by, g.group)}</td>
              <td class="num">{g.tasks}</td>
              {STAGES.map((name) => {
                const s = g.stages.find((x) => x.stage === name);
                return <>
                  <td class="num" data-stage={name} data-q="p50">{minutes(s?.p50_s)}</td>
                  <td class="num" data-stage={name} data-q="p90">{minutes(s?.p90_s)}</td>
                  <td class="num" data-stage={name} data-q="max">{minutes(s?.max_s)}</td>
                </>;
              })}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function OpenTable({ rows }: { rows: OpenTask[] }) {
  if (!rows.length) return <p class="empty">{t().noData}</p>;
  return (
    <div class="scroll">
      <table class="grid" data-table="slowest-open">
        <thead><tr><th>{t().raised}</th><th>{t().county}</th><th>{t().priority}</th><th>{t().state}</th><th class="num">{t().age} ({t().minutes})</th><th /></tr></thead>
        <tbody>
          {rows.map((r) => (
            <tr>
              <td>{when(r.raised_at)}</td><td>{countyName(r.county)}</td><td>{r.priority}</td><td>{stateName(r.state)}</td>
              <td class="num">{minutes(r.age_s)}</td>
              <td><a href={`#/task/${r.task_id}`} data-task={r.task_id}>{t().timeline}</a></td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

// ---- one task --------------------------------------------------------------------------------
function TaskPage({ id }: { id: string }) {
  const { data, error } = useData<Timeline>(`/v1/reports/tasks/${encodeURIComponent(id)}/timeline`, {}, [id]);
  if (error) return <Problem error={error} />;
  if (!data) return null;
  return (
    <section>
      <h2>{t().timeline}</h2>
      <dl class="facts">
        <dt>{t().county}</dt><dd>{countyName(data.county)}</dd>
        <dt>{t().route}</dt><dd>{data.route} · {data.priority}</dd>
        <dt>{t().state}</dt><dd>{stateName(data.state)}</dd>
        <dt>{t().alert}</dt><dd>{kindName(String(data.alert.kind ?? ""))}: {String(data.alert.explanation ?? "")}</dd>
        <dt>{t().case}</dt>
        <dd>{data.case_id ? <a href={`#/case/${data.case_id}`}>{data.case_id}</a> : "–"} {data.case_state && `· ${data.case_state}`}</dd>
      </dl>
      <h3>{t().stages} ({t().minutes})</h3>
      <table class="grid" data-table="task-stages">
        <tbody>{STAGES.map((s) => <tr><th>{stageName(s)}</th><td class="num">{minutes(data.stages[s])}</td></tr>)}</tbody>
      </table>
      <ol class="timeline" data-table="timeline">
        {data.items.map((i) => (
          <li data-kind={i.kind}>
            <time>{when(i.at)}</time> <b>{stateName(i.kind)}</b> {i.actor && <span class="actor">{i.actor}</span>} <span class="note">{i.note}</span>
          </li>
        ))}
      </ol>
    </section>
  );
}

// ---- map -------------------------------------------------------------------------------------
function MapPage() {
  const { data, error } = useData<MapView>("/v1/reports/map", {}, []);
  const option = useMemo(() => ({
    tooltip: { trigger: "item", formatter: (p: { data?: { name: string; value: number[]; state: string } }) =>
      p.data ? `${p.data.name}<br/>${t().open}: ${p.data.value[2]} ${p.data.state ? stateName(p.data.state) : ""}` : "" },
    geo: {
      map: "liandong-counties", roam: true, label: { show: true }, itemStyle: { areaColor: "#f0f5ff", borderColor: "#597ef7" },
    },
    series: [{
      type: "scatter", coordinateSystem: "geo", symbolSize: (v: number[]) => 10 + 4 * v[2],
      data: (data?.outlets ?? []).map((o) => ({
        name: o.name, value: [o.lon, o.lat, o.open_tasks], state: o.worst_state,
        itemStyle: { color: STATE_COLOURS[o.worst_state] ?? "#8c8c8c" },
      })),
    }],
  }), [data]);
  if (error) return <Problem error={error} />;
  return (
    <section>
      <Chart id="map" option={option} height={560} />
      <p class="note">{t().datum}: {data?.datum} · {t().approximate}</p>
      <ul class="legend">
        {["CREATED", "ASSIGNED", "ON_SITE", ""].map((s) => (
          <li><span class="swatch" style={{ background: STATE_COLOURS[s] }} />{s ? stateName(s) : t().noData}</li>
        ))}
      </ul>
    </section>
  );
}

// ---- cases with legal clocks ------------------------------------------------------------------
type CaseClock = { name: string; due_at: string | null; due_date: string; state: string; remaining_s: number };
type CaseRow = { case_id: string; county: string; state: string; enterprise_id: string; task_id: string; overdue: boolean; clocks: CaseClock[] };
type CaseDetail = CaseRow & {
  records: { kind: string; at: string; actor: string; summary: string }[];
  audit: { ok: boolean; checked: number; problem: string; detail: string };
  bundle_command: string;
  bundle_url: string;
};

/** The case's signed bundle, exported by casefile for this manager (the token goes in a
 * header, so a button that fetches it rather than a plain link). */
function BundleDownload({ url }: { url: string }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Error | null>(null);
  const start = async () => {
    setBusy(true);
    setError(null);
    try {
      await download(url, {});
    } catch (e) {
      setError(e as Error);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="bundle no-print" data-bundle>
      <button type="button" data-bundle-download disabled={busy} onClick={start}>
        {busy ? t().bundleBusy : t().bundleDownload}
      </button>
      <p class="note">{t().bundleHint}</p>
      {error && <Problem error={error} />}
    </div>
  );
}

function CasesPage() {
  const [days, setDays] = useState(hashQuery().get("days") ?? "7");
  const { data, error } = useData<{ cases: CaseRow[] }>("/v1/reports/cases", { due_within_days: days }, [days]);
  return (
    <section>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label><input type="number" min="1" max="365" name="days" value={days} onInput={(e) => setDays(e.currentTarget.value)} /> {t().dueWithin}</label>
      </form>
      {error && <Problem error={error} />}
      {data && (data.cases.length ? (
        <div class="scroll">
          <table class="grid" data-table="cases">
            <thead><tr><th>{t().case}</th><th>{t().county}</th><th>{t().state}</th><th>{t().clock}</th><th>{t().dueAt}</th><th /></tr></thead>
            <tbody>
              {data.cases.map((c) => {
                const next = c.clocks[0];
                return (
                  <tr class={c.overdue ? "overdue" : ""} data-case={c.case_id}>
                    <td><a href={`#/case/${c.case_id}`}>{c.case_id}</a></td><td>{countyName(c.county)}</td><td>{c.state}</td>
                    <td>{next ? next.name : "–"}</td>
                    <td>{c.overdue ? <b>{t().overdue}</b> : null} {next?.due_date ?? ""}</td>
                    <td>{c.task_id && <a href={`#/task/${c.task_id}`}>{t().timeline}</a>}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      ) : <p class="empty">{t().noData}</p>)}
    </section>
  );
}

function CasePage({ id }: { id: string }) {
  const { data, error } = useData<CaseDetail>(`/v1/reports/cases/${encodeURIComponent(id)}`, {}, [id]);
  if (error) return <Problem error={error} />;
  if (!data) return null;
  return (
    <section>
      <h2>{t().case} {data.case_id}</h2>
      <p class={data.audit.ok ? "audit ok" : "audit bad"} data-audit={data.audit.ok ? "ok" : "bad"}>
        {t().audit}: {data.audit.ok ? t().auditOk : t().auditBad} ({data.audit.checked}) {data.audit.problem} {data.audit.detail}
      </p>
      <h3>{t().bundle}</h3>
      <BundleDownload url={data.bundle_url} />
      <h3>{t().clock}</h3>
      <table class="grid" data-table="clocks">
        <tbody>{data.clocks.map((c) => <tr><th>{c.name}</th><td>{c.state}</td><td>{c.due_date}</td></tr>)}</tbody>
      </table>
      <h3>{t().records}</h3>
      <ol class="timeline" data-table="records">
        {data.records.map((r) => <li><time>{when(r.at)}</time> <b>{r.kind}</b> <span class="actor">{r.actor}</span> <span class="note">{r.summary}</span></li>)}
      </ol>
    </section>
  );
}

// ---- printable monthly report ----------------------------------------------------------------
function ReportPage() {
  const month = hashQuery().get("month") ?? dayOf(new Date().toISOString()).slice(0, 7);
  const first = `${month}-01`;
  const [y, m] = month.split("-").map(Number);
  const next = `${m === 12 ? y + 1 : y}-${String(m === 12 ? 1 : m + 1).padStart(2, "0")}-01`;
  const query = { since: cstMidnight(first), until: cstMidnight(next), by: "county", bucket: "week" };
  const { data, error } = useData<Report>("/v1/reports/response-times", query, [month]);
  const me = who();
  return (
    <section class="report">
      <h1 class="print-title">{t().monthlyReport} · {month}</h1>
      <p class="note">{t().jurisdiction}: {(me.jurisdiction ?? []).map(countyName).join(", ")} · {data && `${t().generated} ${when(data.generated_at)}`}</p>
      <button type="button" class="no-print" onClick={() => print()}>{t().print}</button>
      {error && <Problem error={error} />}
      {data && (
        <>
          <h2>{t().ranking}</h2>
          <RankingTable rows={data.ranking} id="report-ranking" />
          <h2>{t().responseTimes} ({t().minutes})</h2>
          <StageTable groups={data.groups} by="county" />
          <h2>{t().overTime} · {t().weekBucket}</h2>
          <StageTable groups={data.series} by="week" />
        </>
      )}
    </section>
  );
}

// ---- shell -----------------------------------------------------------------------------------
function App() {
  const route = useRoute();
  const l = useLang(); // the sign-in form and the header switch share the language
  const [signed, setSigned] = useState(signedIn());
  useEffect(() => onSessionChange(() => setSigned(signedIn())), []);
  const nav: [string, string][] = [
    ["overview", t().overview], ["response", t().responseTimes], ["map", t().map], ["cases", t().cases], ["report", t().report],
  ];
  const page = route[0];
  return (
    <>
      <header class="no-print">
        <h1>{t().title}</h1>
        <nav>{nav.map(([k, label]) => <a href={`#/${k}`} class={page === k ? "here" : ""}>{label}</a>)}</nav>
        <span class="who">{who().name ?? who().person_id} {(who().jurisdiction ?? []).join(",")}</span>
        <button type="button" data-lang onClick={() => setLang(lang() === "zh" ? "en" : "zh")}>
          {lang() === "zh" ? "English" : "中文"}
        </button>
        {signed && <button type="button" onClick={() => void signOut()}>{t().signOut}</button>}
      </header>
      <main key={l}>
        {!signed ? <SignIn title={t().title} role={ROLE} />
          : page === "response" ? <ResponsePage />
          : page === "task" ? <TaskPage id={route[1] ?? ""} />
          : page === "map" ? <MapPage />
          : page === "cases" ? <CasesPage />
          : page === "case" ? <CasePage id={route[1] ?? ""} />
          : page === "report" ? <ReportPage />
          : <OverviewPage />}
      </main>
    </>
  );
}

setLang(lang());
render(<App />, document.getElementById("app")!);
