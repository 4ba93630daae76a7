// The field app's service worker, hand-written (served from /sw.js, scope /).
// The build fills in VERSION and SHELL (the field app's html, scripts and styles).
// - The app shell is precached, so the app opens without a network.
// - API calls, server-sent events, the docs and every non-GET request pass through untouched:
//   the outbox in IndexedDB handles offline actions, never this worker.
// - A new version waits until the person taps "update" (the page posts SKIP_WAITING), so an
//   officer is never reloaded in the middle of a form.
const VERSION = "__VERSION__";
const SHELL = __SHELL__;
const CACHE = `liandong-field-${VERSION}`;
const PASS = ["/v1/", "/healthz", "/openapi.json", "/docs", "/redoc", "/console/", "/sw.js"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const key of await caches.keys()) {
        if (key.startsWith("liandong-field-") && key !== CACHE) await caches.delete(key);
      }
      await self.clients.claim();
    })(),
  );
});

self.addEventListener("message", (event) => {
  if (event.data && event.data.type === "SKIP_WAITING") self.skipWaiting();
});

self.addEventListener("fetch", (event) => {
  const req = event.request;
  if (req.method !== "GET") return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
  if (PASS.some((p) => url.pathname.startsWith(p))) return;
  if (req.headers.get("accept")?.includes("text/event-stream")) return;
  if (req.mode === "navigate") {
    // network first for the page (fresh when online), the cached shell when not
    event.respondWith(
      fetch(req).catch(async () => (await caches.match("/index.html", { cacheName: CACHE })) || Response.error()),
    );
    return;
  }
  event.respondWith(
    caches.match(req, { cacheName: CACHE }).then((hit) => hit || fetch(req)),
  );
});
