// Times are shown in Beijing time (Asia/Shanghai) whatever the phone's zone: records, alarms and
// legal clocks are all counted in it.
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

/** "1:04:09" or "-0:12:30" (overdue), from milliseconds. */
export function countdown(ms: number): string {
  const sign = ms < 0 ? "-" : "";
  let s = Math.floor(Math.abs(ms) / 1000);
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  return `${sign}${h}:${String(m).padStart(2, "0")}:${String(s).padStart(2, "0")}`;
}
