// One build, two apps: the field app (PWA) at / and the managers' console at /console/.
// Everything is bundled: nothing is loaded from a CDN at run time.
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

export default defineConfig({
  base: "/",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    rollupOptions: {
      input: { field: here("index.html"), console: here("console/index.html") },
    },
  },
});
