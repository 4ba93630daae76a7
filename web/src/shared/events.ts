// Server-sent events over fetch, so the bearer token goes in a header (EventSource cannot send
// one). Reconnects with Last-Event-ID after a drop, with a capped backoff.
import { accessToken } from "./session";

export type PushEvent = { id: number; event: string; data: Record<string, unknown> };

export function subscribe(
  path: string,
  onEvent: (e: PushEvent) => void,
  onState: (live: boolean) => void,
): () => void {
  let stopped = false;
  let last = Number(sessionStorage.getItem("liandong.lastEvent") || 0);
  const ctrl = new AbortController();

  async function once(): Promise<void> {
    const token = await accessToken();
    if (!token) throw new Error("signed out");
    const r = await fetch(path, {
      headers: { authorization: `Bearer ${token}`, "Last-Event-ID": String(last), accept: "text/event-stream" },
      signal: ctrl.signal,
    });
    if (r.status === 401) {
      await accessToken(true);
      throw new Error("unauthorised");
    }
    if (!r.ok || !r.body) throw new Error(`HTTP ${r.status}`);
    onState(true);
    const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value;
      let cut;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        let id = 0;
        let event = "message";
        const data: string[] = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("id:")) id = Number(line.slice(3).trim());
          else if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
        }
        if (!data.length) continue; // keep-alive comment
        if (id) {
          last = id;
          sessionStorage.setItem("liandong.lastEvent", String(id));
        }
        try {
          onEvent({ id, event, data: JSON.parse(data.join("\n")) });
        } catch {
          /* a malformed event is skipped, the stream goes on */
        }
      }
    }
  }

  (async () => {
    let wait = 1000;
    while (!stopped) {
      try {
        await once();
        wait = 1000;
      } catch {
        /* dropped: reconnect below */
      }
      if (stopped) return;
      onState(false);
      await new Promise((r) => setTimeout(r, wait));
      wait = Math.min(wait * 2, 30_000);
    }
  })();
  return () => {
    stopped = true;
    ctrl.abort();
  };
}
