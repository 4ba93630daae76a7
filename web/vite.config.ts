// One build, two apps: the field app (PWA) at / and the managers' console at /console/.
// Everything is bundled: nothing is loaded from a CDN at run time.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { defineConfig, type Plugin } from "vite";

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

// Writes /sw.js from web/sw/sw.js with the field app's shell (its html and every chunk and
// stylesheet the field entry reaches) and a version derived from their names.
function fieldServiceWorker(): Plugin {
  return {
    name: "liandong-field-sw",
    apply: "build",
    generateBundle(_options, bundle) {
      const shell = new Set<string>(["/", "/index.html", "/manifest.webmanifest", "/icon.svg"]);
      const visit = (name: string) => {
        const item = bundle[name];
        if (!item || shell.has(`/${name}`)) return;
        shell.add(`/${name}`);
        if (item.type === "chunk") {
          item.imports.forEach(visit);
          item.viteMetadata?.importedCss.forEach((c) => shell.add(`/${c}`));
          item.viteMetadata?.importedAssets.forEach((a) => shell.add(`/${a}`));
        }
      };
      for (const [name, item] of Object.entries(bundle)) {
        if (item.type === "chunk" && item.isEntry && item.facadeModuleId?.endsWith("/index.html") && !item.facadeModuleId.includes("/console/")) visit(name);
      }
      const list = [...shell].sort();
      const version = createHash("sha256").update(list.join("\n")).digest("hex").slice(0, 12);
      const source = readFileSync(here("sw/sw.js"), "utf8")
        .replace("__VERSION__", version)
        .replace("__SHELL__", JSON.stringify(list));
      this.emitFile({ type: "asset", fileName: "sw.js", source });
    },
  };
}

export default defineConfig({
  base: "/",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  plugins: [fieldServiceWorker()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    rollupOptions: {
      input: { field: here("index.html"), console: here("console/index.html") },
    },
  },
});
