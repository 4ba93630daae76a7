// On site: the inspection record with signatures, evidence, samples and custody, lab results.
// Everything is sent through the outbox to the phone API, which records it in the case file
// acting for the signed-in person; casefile decides who may do what.
import { useEffect, useState } from "preact/hooks";
import { api, NetworkError } from "../shared/api";
import { lang, t, word } from "../shared/i18n";
import { locate } from "../shared/geo";
import { beijing } from "../shared/time";
import { cached, remember } from "./cache";
import { config, DEFAULT_PHOTO_MAX, SCALED_EDGE_PX } from "./config";
import { newRequestId, submit } from "./outbox";
import { SignaturePad } from "./signature";
import type { TaskDetail } from "./types";

type CaseDoc = {
  case_id?: string;
  state?: string;
  inspection?: { record_id: string; signatures?: { signer: string }[]; party_signed_by?: string };
  evidence?: { evidence_id: string; kind: string; sha256: string; description: string; captured_at: string; media_type?: string }[];
  samples?: {
    sample_id: string;
    point: string;
    seal_number: string;
    parameters?: string[];
    holder?: string;
    in_lab?: boolean;
    custody?: { seq: number; from_holder: string; to_holder: string; to_lab?: boolean }[];
    results?: { parameter: string; value: string; unit: string; confirmed_by?: string }[];
  }[];
  site_notes?: { at: string; text: string; by: string }[];
};

export async function sha256Hex(data: BufferSource): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", data);
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function position(): Promise<{ lat?: number; lon?: number; accuracy_m?: number }> {
  try {
    const f = await locate();
    return { lat: f.lat, lon: f.lon, accuracy_m: f.accuracy };
  } catch {
    return {};
  }
}

async function scaled(file: Blob): Promise<Blob> {
  const bmp = await createImageBitmap(file);
  const k = Math.min(1, SCALED_EDGE_PX / Math.max(bmp.width, bmp.height));
  const c = new OffscreenCanvas(Math.round(bmp.width * k), Math.round(bmp.height * k));
  c.getContext("2d")!.drawImage(bmp, 0, 0, c.width, c.height);
  return c.convertToBlob({ type: "image/jpeg", quality: 0.85 });
}

function useSubmit(task: TaskDetail, onSent: () => void) {
  const [msg, setMsg] = useState("");
  const [err, setErr] = useState("");
  async function send(sub: string, body: Record<string, unknown>, label: string, file?: Blob, fileName?: string) {
    setMsg("");
    setErr("");
    try {
      const r = await submit({
        request_id: newRequestId(),
        path: `/v1/tasks/${task.task_id}/${sub}`,
        body,
        label,
        task_id: task.task_id,
        file,
        file_name: fileName,
      });
      setMsg(r.sent ? t("done") : t("queued"));
      onSent();
      return true;
    } catch (e) {
      setErr((e as Error).message);
      return false;
    }
  }
  const banner = (
    <>
      {msg && <p class="ok" role="status">{msg}</p>}
      {err && <p class="error" role="alert">{err}</p>}
    </>
  );
  return { send, banner };
}

function Inspection({ task, me, onSent }: { task: TaskDetail; me: string; onSent: () => void }) {
  const officers = task.team.filter((m) => m.role === "ENFORCEMENT" && m.status === "ACCEPTED");
  const [present, setPresent] = useState(task.team.map((m) => m.name || m.person_id).join("、"));
  const [production, setProduction] = useState("");
  const [facility, setFacility] = useState("");
  const [equipment, setEquipment] = useState("");
  const [findings, setFindings] = useState("");
  const [sigs, setSigs] = useState<Record<string, string | null>>({});
  const [party, setParty] = useState("");
  const [partySig, setPartySig] = useState<string | null>(null);
  const [witness, setWitness] = useState("");
  const { send, banner } = useSubmit(task, onSent);
  const ready = officers.length >= 2 && officers.every((o) => sigs[o.person_id]) && ((party && partySig) || witness);
  async function go(e: Event) {
    e.preventDefault();
    const now = new Date().toISOString();
    await send(
      "inspection",
      {
        record_id: `rec-${newRequestId()}`,
        record: { present, production_status: production, facility_status: facility, equipment_status: equipment, findings },
        signatures: Object.fromEntries(officers.map((o) => [o.person_id, { image_png: sigs[o.person_id], signed_at: now }])),
        party_signed_by: party && partySig ? party : "",
        party_signature_png: party && partySig ? partySig : null,
        party_refusal_witness: party && partySig ? "" : witness,
      },
      `${t("inspection")} ${task.enterprise.name}`,
    );
  }
  return (
    <form class="card" onSubmit={go} data-form="inspection">
      <h3>{t("inspection")}</h3>
      <label>{t("present")}<textarea name="present" value={present} onInput={(e) => setPresent(e.currentTarget.value)} /></label>
      <label>{t("production")}<textarea name="production" value={production} onInput={(e) => setProduction(e.currentTarget.value)} /></label>
      <label>{t("facility")}<textarea name="facility" value={facility} onInput={(e) => setFacility(e.currentTarget.value)} /></label>
      <label>{t("equipment")}<textarea name="equipment" value={equipment} onInput={(e) => setEquipment(e.currentTarget.value)} /></label>
      <label>{t("findings")}<textarea name="findings" value={findings} onInput={(e) => setFindings(e.currentTarget.value)} /></label>
      {officers.map((o) => (
        <div data-signer={o.person_id}>
          <SignaturePad label={`${o.name || o.person_id}${o.person_id === me ? " ✓" : ""}`} onChange={(png) => setSigs((s) => ({ ...s, [o.person_id]: png }))} />
        </div>
      ))}
      <label>{t("partyRep")}<input name="party" value={party} onInput={(e) => setParty(e.currentTarget.value)} /></label>
      {party && (
        <div data-signer="party">
          <SignaturePad label={party} onChange={setPartySig} />
        </div>
      )}
      <label>{t("refusalWitness")}<input name="witness" value={witness} onInput={(e) => setWitness(e.currentTarget.value)} /></label>
      {banner}
      <button class="primary" type="submit" disabled={!ready}>{t("send")}</button>
    </form>
  );
}

function Evidence({ task, onSent }: { task: TaskDetail; onSent: () => void }) {
  const [desc, setDesc] = useState("");
  const [busy, setBusy] = useState(false);
  const [note, setNote] = useState("");
  const { send, banner } = useSubmit(task, onSent);
  async function picked(file: File) {
    setBusy(true);
    setNote("");
    try {
      const cap = config.me?.photo_max_bytes ?? DEFAULT_PHOTO_MAX;
      let blob: Blob = file;
      let extra = "";
      if (file.size > cap) {
        if (!file.type.startsWith("image/")) {
          setNote(`${t("tooLarge")} ${Math.round(cap / 1048576)} MB`);
          return;
        }
        // the original does not fit the cap: keep a scaled copy, say so in the record
        blob = await scaled(file);
        extra = lang() === "zh" ? `（原图 ${file.size} 字节超出上限，已缩放）` : ` (original ${file.size} bytes over the cap, scaled)`;
      }
      const sha = await sha256Hex(await blob.arrayBuffer());
      const kind = file.type.startsWith("video/") ? "VIDEO" : file.type.startsWith("audio/") ? "ELECTRONIC_DATA" : "PHOTO";
      const captured = new Date(file.lastModified || Date.now());
      const at = captured.getTime() > Date.now() ? new Date() : captured;
      await send(
        "evidence",
        {
          evidence_id: `ev-${sha.slice(0, 16)}`,
          kind,
          sha256: sha,
          media_type: blob.type || file.type || "application/octet-stream",
          size_bytes: blob.size,
          captured_at: at.toISOString(),
          description: (desc.trim() || file.name) + extra,
          ...(await position()),
        },
        `${t("evidence")} ${file.name}`,
        blob,
        file.name,
      );
      setDesc("");
    } finally {
      setBusy(false);
    }
  }
  return (
    <div class="card" data-form="evidence">
      <h3>{t("evidence")}</h3>
      <label>{t("description")}<input name="description" value={desc} onInput={(e) => setDesc(e.currentTarget.value)} /></label>
      <label class="filebtn">
        {t("addPhoto")}
        <input
          type="file"
          name="evidence-file"
          accept="image/*,video/*,audio/*"
          capture="environment"
          disabled={busy}
          onChange={(e) => {
            const f = e.currentTarget.files?.[0];
            if (f) void picked(f);
            e.currentTarget.value = "";
          }}
        />
      </label>
      {note && <p class="warn">{note}</p>}
      {banner}
    </div>
  );
}

async function scanBarcode(file: File): Promise<string | null> {
  const Detector = (window as unknown as { BarcodeDetector?: new () => { detect(s: ImageBitmap): Promise<{ rawValue: string }[]> } }).BarcodeDetector;
  if (!Detector) return null;
  const found = await new Detector().detect(await createImageBitmap(file));
  return found[0]?.rawValue ?? null;
}

function SampleForm({ task, me, onSent }: { task: TaskDetail; me: string; onSent: () => void }) {
  const officers = task.team.filter((m) => m.role === "ENFORCEMENT");
  const factor = String(task.evidence.factor ?? "");
  const [f, setF] = useState({ sample_id: "", point: task.outlet.name || "", container: "", preservative: "", seal_number: "", parameters: factor, holding_hours: "24", witnessed_by: officers[0]?.person_id ?? "" });
  const { send, banner } = useSubmit(task, onSent);
  const canScan = "BarcodeDetector" in window;
  const field = (k: keyof typeof f, label: string) => (
    <label>{label}<input name={k} value={f[k]} onInput={(e) => setF({ ...f, [k]: e.currentTarget.value })} required /></label>
  );
  async function go(e: Event) {
    e.preventDefault();
    const ok = await send(
      "samples",
      {
        ...f,
        parameters: f.parameters.split(/[,，\s]+/).filter(Boolean),
        holding_hours: Number(f.holding_hours),
        collected_by: me,
        collected_at: new Date().toISOString(),
        ...(await position()),
      },
      `${t("samples")} ${f.sample_id}`,
    );
    if (ok) setF({ ...f, sample_id: "", seal_number: "" });
  }
  return (
    <form class="card" onSubmit={go} data-form="sample">
      <h3>{t("samples")}</h3>
      <div class="row">
        {field("sample_id", t("sampleId"))}
        {canScan && (
          <label class="filebtn small">
            {t("scan")}
            <input type="file" accept="image/*" capture="environment" onChange={async (e) => {
              const file = e.currentTarget.files?.[0];
              const code = file ? await scanBarcode(file).catch(() => null) : null;
              if (code) setF((x) => ({ ...x, sample_id: code }));
            }} />
          </label>
        )}
      </div>
      {field("point", t("point"))}
      {field("container", t("container"))}
      {field("preservative", t("preservative"))}
      {field("seal_number", t("seal"))}
      {field("parameters", t("parameters"))}
      {field("holding_hours", t("holdingHours"))}
      <label>{t("witnessedBy")}
        <select name="witnessed_by" value={f.witnessed_by} onChange={(e) => setF({ ...f, witnessed_by: e.currentTarget.value })}>
          {officers.map((o) => <option value={o.person_id}>{o.name || o.person_id}</option>)}
        </select>
      </label>
      {banner}
      <button class="primary" type="submit">{t("send")}</button>
    </form>
  );
}

type Sample = NonNullable<CaseDoc["samples"]>[number];

function SampleCard({ task, s, me, role, onSent }: { task: TaskDetail; s: Sample; me: string; role: string; onSent: () => void }) {
  const [to, setTo] = useState("");
  const [intact, setIntact] = useState(true);
  const [res, setRes] = useState({ parameter: s.parameters?.[0] ?? "", value: "", unit: "mg/m3", method: "", lab_id: "", cma_no: "" });
  const [report, setReport] = useState("");
  const { send, banner } = useSubmit(task, onSent);
  const holding = (s.holder || s.custody?.at(-1)?.to_holder) === me || (!s.custody?.length && role === "MONITORING");
  return (
    <li class="card sample" data-sample={s.sample_id}>
      <p><b>{s.sample_id}</b> · {s.point} · {t("seal")} {s.seal_number}</p>
      <p class="muted">{s.in_lab ? t("inLab") : `${t("holder")}: ${s.holder ?? ""}`}</p>
      {(s.results ?? []).map((r) => (
        <p data-result={r.parameter}>
          {r.parameter}: {r.value} {r.unit}{" "}
          {r.confirmed_by ? `✓ ${t("confirmedBy")} ${r.confirmed_by}` : role === "MONITORING" && (
            <button type="button" onClick={() => send(`samples/${encodeURIComponent(s.sample_id)}/results/${encodeURIComponent(r.parameter)}/confirm`, {}, `${t("confirm")} ${s.sample_id}`)}>
              {t("confirm")}
            </button>
          )}
        </p>
      ))}
      {!s.in_lab && holding && (
        <form data-form="handoff" onSubmit={(e) => { e.preventDefault(); void send(`samples/${encodeURIComponent(s.sample_id)}/custody`, { to_holder: to, to_lab: true, seal_intact: intact, seal_number_observed: s.seal_number, at: new Date().toISOString() }, `${t("handOff")} ${s.sample_id}`); }}>
          <label>{t("toHolder")}<input name="to_holder" value={to} onInput={(e) => setTo(e.currentTarget.value)} required /></label>
          <label class="small"><input type="checkbox" checked={intact} onChange={(e) => setIntact(e.currentTarget.checked)} /> {t("sealIntact")}</label>
          <button type="submit">{t("handOff")}</button>
        </form>
      )}
      {s.in_lab && role === "MONITORING" && (
        <form data-form="result" onSubmit={(e) => { e.preventDefault(); void send(`samples/${encodeURIComponent(s.sample_id)}/results`, { ...res, report_sha256: report, analysed_at: new Date().toISOString() }, `${t("labResult")} ${s.sample_id}`); }}>
          <h4>{t("labResult")}</h4>
          {(["parameter", "value", "unit", "method", "lab_id", "cma_no"] as const).map((k) => (
            <label>{t(({ parameter: "parameters", value: "value", unit: "unit", method: "method", lab_id: "labId", cma_no: "cma" } as const)[k])}
              <input name={k} value={res[k]} onInput={(e) => setRes({ ...res, [k]: e.currentTarget.value })} required />
            </label>
          ))}
          <label>{t("labReport")}
            <input type="file" name="report" required onChange={async (e) => {
              const file = e.currentTarget.files?.[0];
              setReport(file ? await sha256Hex(await file.arrayBuffer()) : "");
            }} />
          </label>
          <button type="submit" disabled={!report}>{t("send")}</button>
        </form>
      )}
      {banner}
    </li>
  );
}

export function OnSite({ task, me, role }: { task: TaskDetail; me: string; role: string }) {
  const path = `/v1/tasks/${task.task_id}/case`;
  const [doc, setDoc] = useState<CaseDoc | null>(cached<CaseDoc>(path));
  const [tick, setTick] = useState(0);
  useEffect(() => {
    api<CaseDoc>(path)
      .then((d) => {
        remember(path, d);
        setDoc(d);
      })
      .catch((e) => {
        if (!(e instanceof NetworkError)) setDoc(null);
      });
  }, [task.task_id, tick, task.state]);
  // read again now and a moment later: a record can reach the case a little after its answer
  const refresh = () => {
    setTick((x) => x + 1);
    setTimeout(() => setTick((x) => x + 1), 1500);
  };
  return (
    <section class="onsite">
      <h2>{t("onSite")}</h2>
      {doc && (
        <div class="card casefile" data-case-state={doc.state}>
          <h3>{t("caseFile")} · {doc.state}</h3>
          {doc.inspection && <p data-inspection={doc.inspection.record_id}>✓ {t("inspection")} ({doc.inspection.signatures?.map((s) => s.signer).join("、")}{doc.inspection.party_signed_by ? `、${doc.inspection.party_signed_by}` : ""})</p>}
          <ul class="plain">
            {(doc.evidence ?? []).map((e) => (
              <li key={e.evidence_id} data-evidence={e.evidence_id}>{word(e.kind)} · {e.description} · {beijing(e.captured_at)} · {e.sha256.slice(0, 12)}…</li>
            ))}
          </ul>
        </div>
      )}
      {role === "ENFORCEMENT" && doc && !doc.inspection && <Inspection task={task} me={me} onSent={refresh} />}
      {role === "ENFORCEMENT" && <Evidence task={task} onSent={refresh} />}
      {role === "MONITORING" && <SampleForm task={task} me={me} onSent={refresh} />}
      <ul class="plain">
        {(doc?.samples ?? []).map((s) => <SampleCard key={s.sample_id} task={task} s={s} me={me} role={role} onSent={refresh} />)}
      </ul>
    </section>
  );
}
