// Times are shown in Beijing time (Asia/Shanghai) whatever the phone's zone: records, alarms and
// legal clocks are all counted in it.
import { t } from "./i18n";

const ZONE = "Asia/Shanghai";

function parts(d: Date, withSeconds: boolean): string {
  const f = new Intl.DateTimeFormat("en-CA", {
    timeZone: ZONE,
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: withSeconds ? "2-digit" : undefined,
    hourCycle: "h23",
  });
  const p = Object.fromEntries(f.formatToParts(d).map((x) => [x.type, x.value]));
  const hm = `${p.hour}:${p.minute}${withSeconds ? `:${p.second}` : ""}`;
  return `${p.year}-${p.month}-${p.day} ${hm}`;
}

/** "2026-03-01 14:05" in Beijing time; "" for no time. */
export function beijing(iso: string | null | undefined, withSeconds = false): string {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "" : parts(d, withSeconds);
}

const hms = (s: number): string => {
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `${h}:${String(m).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
};

/** Time left to a deadline, from milliseconds: "剩余 1:04:09" / "已超时 0:12:30" under a day,
 * "剩余 2 天 5 小时" / "已超时 280 天 11 小时" beyond (English: "1:04:09 left", "overdue 2 d 5 h").
 * Days past a day: hours like "-6731:19:56" are unreadable on a phone. */
export function countdown(ms: number): string {
  const s = Math.floor(Math.abs(ms) / 1000);
  const span =
    s < 86400
      ? hms(s)
      : t("daysHours")
          .replace("{d}", String(Math.floor(s / 86400)))
          .replace("{h}", String(Math.floor((s % 86400) / 3600)));
  return t(ms < 0 ? "overdueBy" : "timeLeft").replace("{t}", span);
}
