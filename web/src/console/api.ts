// Calls to dispatch's report API with the session's bearer token (same origin: no CORS).
import { accessToken } from "./session";

export class ApiError extends Error {
  constructor(public status: number, message: string) {
    super(message);
  }
}

async function headers(): Promise<Record<string, string>> {
  const t = await accessToken();
  return t ? { Authorization: `Bearer ${t}` } : {};
}

export async function get<T>(path: string, query: Record<string, string | undefined> = {}): Promise<T> {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v) q.set(k, v);
  const url = q.toString() ? `${path}?${q}` : path;
  const r = await fetch(url, { headers: await headers() });
  if (!r.ok) {
    let detail = r.statusText;
    try {
      const body = await r.json();
      detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    } catch {
      /* not JSON */
    }
    throw new ApiError(r.status, detail);
  }
  return (await r.json()) as T;
}

/** Downloads an export (the token must go in a header, so not a plain link). */
export async function download(path: string, query: Record<string, string | undefined>): Promise<void> {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v) q.set(k, v);
  const r = await fetch(q.toString() ? `${path}?${q}` : path, { headers: await headers() });
  if (!r.ok) {
    let detail = r.statusText;
    try {
      const body = await r.json();
      detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    } catch {
      /* not JSON */
    }
    throw new ApiError(r.status, detail);
  }
  const name = /filename="([^"]+)"/.exec(r.headers.get("content-disposition") ?? "")?.[1] ?? "export";
  const url = URL.createObjectURL(await r.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** Server-sent events read with fetch (EventSource cannot send the Authorization header);
 * reconnects after a pause when the stream ends or fails. Returns a function that stops it. */
export function stream(path: string, onEvent: (event: string, data: unknown) => void,
                       onState: (live: boolean) => void): () => void {
  const stop = new AbortController();
  (async () => {
    while (!stop.signal.aborted) {
      try {
        const r = await fetch(path, { headers: { ...(await headers()), Accept: "text/event-stream" }, signal: stop.signal });
        if (!r.ok || !r.body) throw new ApiError(r.status, r.statusText);
        onState(true);
        const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let cut: number;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            let event = "message";
            const data: string[] = [];
            for (const line of block.split("\n")) {
              if (line.startsWith("event:")) event = line.slice(6).trim();
              else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
            }
            if (data.length) onEvent(event, JSON.parse(data.join("\n")));
          }
        }
      } catch {
        /* reconnect below */
      }
      onState(false);
      if (!stop.signal.aborted) await new Promise((ok) => setTimeout(ok, 3000));
    }
  })();
  return () => stop.abort();
}
