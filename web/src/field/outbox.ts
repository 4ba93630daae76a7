// Every action goes into an IndexedDB outbox first, with its request id, and is sent from
// there: at once when online, else when the network returns. A request id never changes, so a
// resend after a lost answer is deduplicated by casefile (and dispatch's check-in answers as
// the first did). Refusals are kept and shown until the person dismisses them.
import { openDB, type IDBPDatabase } from "idb";
import { ApiError, authFetch, failure, NetworkError, post } from "../shared/api";

export type Action = {
  request_id: string;
  path: string;
  body: Record<string, unknown>;
  label: string;
  task_id: string;
  created_at: string;
  // a photo/video/audio original, kept until sent (survives a reload)
  file?: Blob;
  file_name?: string;
};

export type Refusal = Action & { status: number; reason: string; detail: unknown; refused_at: string };

type Schema = {
  outbox: { key: string; value: Action };
  refused: { key: string; value: Refusal };
};

let dbp: Promise<IDBPDatabase<Schema>> | null = null;
function db(): Promise<IDBPDatabase<Schema>> {
  dbp ??= openDB<Schema>("liandong-field", 1, {
    upgrade(d) {
      d.createObjectStore("outbox", { keyPath: "request_id" });
      d.createObjectStore("refused", { keyPath: "request_id" });
    },
  });
  return dbp;
}

const listeners = new Set<() => void>();
export function onOutboxChange(f: () => void): () => void {
  listeners.add(f);
  return () => void listeners.delete(f);
}
const changed = () => listeners.forEach((f) => f());

export async function pending(): Promise<Action[]> {
  const all = await (await db()).getAll("outbox");
  return all.sort((a, b) => a.created_at.localeCompare(b.created_at));
}

export async function refusals(): Promise<Refusal[]> {
  return (await db()).getAll("refused");
}

export async function dismiss(requestId: string): Promise<void> {
  await (await db()).delete("refused", requestId);
  changed();
}

export function newRequestId(): string {
  return crypto.randomUUID();
}

export type Outcome = { sent: true; answer: unknown } | { sent: false };

/** Queue the action and try to send the queue; says whether this one went through now. */
export async function submit(a: Omit<Action, "created_at">): Promise<Outcome> {
  const action: Action = { ...a, created_at: new Date().toISOString() };
  await (await db()).put("outbox", action);
  changed();
  const answers = await flush();
  if (answers.has(action.request_id)) return { sent: true, answer: answers.get(action.request_id) };
  const refused = await (await db()).get("refused", action.request_id);
  if (refused) {
    // refused while the person is looking at the form: the form shows it, not the banner
    await dismiss(action.request_id);
    throw new ApiError(refused.status, refused.detail ?? refused.reason);
  }
  return { sent: false };
}

let flushing: Promise<Map<string, unknown>> | null = null;

/** Send what is queued, oldest first, one at a time; stops at the first network failure. */
export function flush(): Promise<Map<string, unknown>> {
  flushing ??= run().finally(() => (flushing = null));
  return flushing;
}

async function run(): Promise<Map<string, unknown>> {
  const answers = new Map<string, unknown>();
  const tried = new Set<string>();
  // actions queued while a pass runs are taken by the same pass
  for (;;) {
    const next = (await pending()).find((a) => !tried.has(a.request_id));
    if (!next) break;
    if (!(await send(next, answers))) break;
    tried.add(next.request_id);
  }
  changed();
  return answers;
}

// upload progress of queued files (request id -> fraction sent), for the outbox panel
const progress = new Map<string, number>();
export function progressOf(requestId: string): number | undefined {
  return progress.get(requestId);
}

const CHUNK = 256 * 1024; // small pieces: a dropped 2G link loses little

/** The original bytes through dispatch's resumable upload (create, PATCH pieces, complete);
 * casefile records the evidence with them. Asking to create again resumes the same upload. */
async function upload(a: Action): Promise<unknown> {
  const file = a.file!;
  const b = a.body;
  const created = await authFetch(`/v1/tasks/${a.task_id}/evidence/uploads`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      evidence_id: b.evidence_id,
      kind: b.kind,
      sha256: b.sha256,
      size: file.size,
      media_type: b.media_type,
      captured_at: b.captured_at,
      description: b.description,
      lat: b.lat,
      lon: b.lon,
    }),
  });
  if (!created.ok) throw await failure(created);
  const u = (await created.json()) as { upload_id: string; offset: number; completed: boolean };
  let offset = u.offset;
  while (!u.completed && offset < file.size) {
    progress.set(a.request_id, offset / file.size);
    changed();
    const r = await authFetch(`/v1/uploads/${u.upload_id}`, {
      method: "PATCH",
      headers: { "upload-offset": String(offset), "content-type": "application/offset+octet-stream" },
      body: file.slice(offset, offset + CHUNK),
    });
    const at = Number(r.headers.get("upload-offset"));
    if (r.status === 409 && Number.isFinite(at)) offset = at; // the server's offset wins
    else if (!r.ok) throw await failure(r);
    else offset = at;
  }
  progress.set(a.request_id, 1);
  changed();
  const done = await authFetch(`/v1/uploads/${u.upload_id}/complete`, { method: "POST" });
  if (!done.ok) throw await failure(done);
  return done.json();
}

/** false: the network or server is down, stop the pass. */
async function send(a: Action, answers: Map<string, unknown>): Promise<boolean> {
  try {
    const answer =
      a.file && a.path.endsWith("/evidence")
        ? await upload(a)
        : await post(a.path, { ...a.body, request_id: a.request_id });
    progress.delete(a.request_id);
    answers.set(a.request_id, answer);
    await (await db()).delete("outbox", a.request_id);
  } catch (e) {
    if (e instanceof NetworkError) return false;
    if (e instanceof ApiError && (e.status >= 500 || e.status === 401)) return false; // later
    progress.delete(a.request_id);
    const status = e instanceof ApiError ? e.status : 0;
    const t = (await db()).transaction(["outbox", "refused"], "readwrite");
    await t.objectStore("refused").put({
      ...a,
      status,
      reason: (e as Error).message,
      detail: e instanceof ApiError ? e.detail : null,
      refused_at: new Date().toISOString(),
    });
    await t.objectStore("outbox").delete(a.request_id);
    await t.done;
  }
  changed();
  return true;
}

addEventListener("online", () => void flush());
// the online event is not enough (a server that was down, a flaky network): retry now and then
setInterval(() => {
  if (navigator.onLine) void pending().then((p) => (p.length ? flush() : null));
}, 15_000);
