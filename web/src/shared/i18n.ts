// One dictionary for both apps, Chinese first. The language is kept per device.
import { useEffect, useState } from "preact/hooks";

export type Lang = "zh" | "en";
type Entry = { zh: string; en: string };

const KEY = "liandong.lang";
let current: Lang = (localStorage.getItem(KEY) as Lang) || "zh";
const listeners = new Set<() => void>();

export function lang(): Lang {
  return current;
}

export function setLang(l: Lang): void {
  current = l;
  localStorage.setItem(KEY, l);
  document.documentElement.lang = l === "zh" ? "zh-CN" : "en";
  listeners.forEach((f) => f());
}

/** Re-render a component when the language changes. */
export function useLang(): Lang {
  const [l, set] = useState(current);
  useEffect(() => {
    const f = () => set(current);
    listeners.add(f);
    return () => void listeners.delete(f);
  }, []);
  return l;
}

export const dict = {
  appName: { zh: "联动 · 外勤", en: "Liandong field" },
  consoleName: { zh: "联动 · 管理", en: "Liandong console" },
  signIn: { zh: "登录", en: "Sign in" },
  signOut: { zh: "退出登录", en: "Sign out" },
  personId: { zh: "人员编号", en: "Person ID" },
  password: { zh: "密码", en: "Password" },
  signInFailed: { zh: "登录失败", en: "Sign-in failed" },
  // {name}: the OpenID Connect provider's name (LIANDONG_OIDC_NAME), "single sign-on" without
  oidcSignIn: { zh: "使用统一身份认证登录", en: "Sign in with {name}" },
  oidcDefaultName: { zh: "统一身份认证", en: "single sign-on" },
  orPassword: { zh: "或使用人员编号和密码", en: "or with your person ID and password" },
  signedInAs: { zh: "当前用户", en: "Signed in as" },
  inbox: { zh: "任务", en: "Tasks" },
  noTasks: { zh: "暂无任务", en: "No tasks" },
  showClosed: { zh: "显示已结束", en: "Show closed" },
  live: { zh: "实时", en: "live" },
  reconnecting: { zh: "重连中", en: "reconnecting" },
  offline: { zh: "离线", en: "offline" },
  outbox: { zh: "待发送", en: "Outbox" },
  refused: { zh: "被拒绝", en: "Refused" },
  dismiss: { zh: "知道了", en: "Dismiss" },
  updateAvailable: { zh: "有新版本可用", en: "Update available" },
  updateNow: { zh: "更新", en: "Update" },
  later: { zh: "稍后", en: "Later" },
  back: { zh: "返回", en: "Back" },
  newTask: { zh: "新任务", en: "New task" },
  // task
  alarm: { zh: "报警", en: "Alarm" },
  enterprise: { zh: "企业", en: "Enterprise" },
  address: { zh: "地址", en: "Address" },
  outlet: { zh: "排放口", en: "Outlet" },
  team: { zh: "队伍", en: "Team" },
  accepted: { zh: "已接受", en: "accepted" },
  offered: { zh: "待答复", en: "waiting" },
  checkedIn: { zh: "已签到", en: "checked in" },
  sla: { zh: "时限", en: "Deadlines" },
  // {t}: "1:04:09" under a day, else daysHours
  timeLeft: { zh: "剩余 {t}", en: "{t} left" },
  overdueBy: { zh: "已超时 {t}", en: "overdue {t}" },
  daysHours: { zh: "{d} 天 {h} 小时", en: "{d} d {h} h" },
  history: { zh: "现场历史", en: "Site history" },
  noHistory: { zh: "该企业无其他记录", en: "No earlier records for this enterprise" },
  accept: { zh: "接受", en: "Accept" },
  decline: { zh: "拒绝", en: "Decline" },
  declineReason: { zh: "拒绝原因", en: "Reason for declining" },
  enRoute: { zh: "出发", en: "En route" },
  checkIn: { zh: "现场签到", en: "Check in" },
  locate: { zh: "获取位置", en: "Get position" },
  sendCheckIn: { zh: "发送签到", en: "Send check-in" },
  complete: { zh: "完成任务", en: "Complete" },
  startSampling: { zh: "开始采样", en: "Start sampling" },
  navigate: { zh: "导航", en: "Navigate" },
  accuracy: { zh: "精度", en: "accuracy" },
  distance: { zh: "距排口", en: "from the outlet" },
  insideFence: { zh: "在围栏内", en: "inside the geofence" },
  outsideFence: { zh: "在围栏外", en: "outside the geofence" },
  fence: { zh: "围栏", en: "geofence" },
  note: { zh: "备注", en: "Note" },
  send: { zh: "提交", en: "Submit" },
  queued: { zh: "已离线保存，联网后发送", en: "Saved offline; sent when back online" },
  done: { zh: "已提交", en: "Submitted" },
  onSite: { zh: "现场工作", en: "On site" },
  caseFile: { zh: "案卷", en: "Case file" },
  // on site
  inspection: { zh: "现场检查笔录", en: "On-site inspection record" },
  present: { zh: "在场人员", en: "Present" },
  production: { zh: "生产状况", en: "Production status" },
  facility: { zh: "治理设施运行状况", en: "Treatment facilities" },
  equipment: { zh: "监测设备状况", en: "Monitoring equipment" },
  findings: { zh: "检查情况", en: "Findings" },
  signatureOf: { zh: "签名：", en: "Signature: " },
  clear: { zh: "清除", en: "Clear" },
  partyRep: { zh: "企业代表", en: "Enterprise representative" },
  refusalWitness: { zh: "拒签见证人", en: "Witness of refusal" },
  evidence: { zh: "证据", en: "Evidence" },
  addPhoto: { zh: "拍照 / 录像 / 录音", en: "Photo / video / audio" },
  description: { zh: "说明", en: "Description" },
  tooLarge: { zh: "文件过大，上限", en: "File too large; limit" },
  samples: { zh: "采样", en: "Samples" },
  sampleId: { zh: "样品编号", en: "Sample ID" },
  scan: { zh: "扫码", en: "Scan" },
  point: { zh: "采样点", en: "Sampling point" },
  container: { zh: "容器", en: "Container" },
  preservative: { zh: "保存剂", en: "Preservative" },
  seal: { zh: "封条号", en: "Seal number" },
  parameters: { zh: "监测项目", en: "Parameters" },
  holdingHours: { zh: "保存时限（小时）", en: "Holding time (hours)" },
  collectedBy: { zh: "采样人", en: "Collected by" },
  witnessedBy: { zh: "见证人", en: "Witnessed by" },
  handOff: { zh: "移交实验室", en: "Hand to the lab" },
  toHolder: { zh: "接收人/实验室", en: "Received by / lab" },
  sealIntact: { zh: "封条完好", en: "Seal intact" },
  labResult: { zh: "实验室结果", en: "Lab result" },
  labReport: { zh: "检测报告（文件）", en: "Lab report (file)" },
  value: { zh: "数值", en: "Value" },
  unit: { zh: "单位", en: "Unit" },
  method: { zh: "方法", en: "Method" },
  labId: { zh: "实验室", en: "Lab" },
  cma: { zh: "CMA 证书号", en: "CMA no." },
  confirm: { zh: "确认结果", en: "Confirm result" },
  confirmedBy: { zh: "确认人", en: "confirmed by" },
  inLab: { zh: "已在实验室", en: "in the lab" },
  holder: { zh: "持有人", en: "holder" },
  uploading: { zh: "上传中", en: "Uploading" },
  language: { zh: "English", en: "中文" },
} satisfies Record<string, Entry>;

export type Key = keyof typeof dict;

export function t(key: Key): string {
  return dict[key][current];
}

// Task and SLA vocabulary shared by both apps.
const words: Record<string, Entry> = {
  CREATED: { zh: "已创建", en: "created" },
  ASSIGNING: { zh: "派单中", en: "assigning" },
  ASSIGNED: { zh: "已派单", en: "assigned" },
  EN_ROUTE: { zh: "在途", en: "en route" },
  ON_SITE: { zh: "到达现场", en: "on site" },
  SAMPLING: { zh: "采样中", en: "sampling" },
  COMPLETED: { zh: "已完成", en: "completed" },
  CANCELLED: { zh: "已取消", en: "cancelled" },
  ACCEPT: { zh: "接单", en: "accept" },
  ARRIVE: { zh: "到场", en: "arrive" },
  FINISH: { zh: "完成", en: "finish" },
  ENFORCEMENT: { zh: "执法", en: "enforcement" },
  MONITORING: { zh: "监测", en: "monitoring" },
  OPERATIONS: { zh: "运维", en: "operations" },
  DUTY_MANAGER: { zh: "值班领导", en: "duty manager" },
  JOINT_INSPECTION: { zh: "联合检查", en: "joint inspection" },
  DESK_REVIEW: { zh: "书面核查", en: "desk review" },
  EXCEEDANCE: { zh: "超标", en: "exceedance" },
  PREWARNING: { zh: "预警", en: "pre-warning" },
  DEVICE_FAULT: { zh: "设备故障", en: "device fault" },
  OFFLINE: { zh: "离线", en: "offline" },
  PARAMETER_CHANGED: { zh: "参数变更", en: "parameter changed" },
  CONSTANT_VALUE: { zh: "数据恒值", en: "constant value" },
};

export function word(code: string): string {
  const w = words[code];
  return w ? w[current] : code;
}
