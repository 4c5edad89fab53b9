// Builds web/dist: assets/app-[hash].js and app-[hash].css (content-hashed, so the gateway
// serves them as immutable) and index.html naming them (served with a short TTL).
import { build } from "esbuild";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(here, "dist");
await rm(dist, { recursive: true, force: true });
await mkdir(path.join(dist, "assets"), { recursive: true });
const result = await build({
  entryPoints: { app: path.join(here, "src/main.ts"), style: path.join(here, "src/style.css") },
  bundle: true,
  minify: true,
  sourcemap: true,
  format: "esm",
  target: ["es2020"],
  outdir: path.join(dist, "assets"),
  entryNames: "[name]-[hash]",
  metafile: true,
  logLevel: "warning",
});
const outputs = Object.keys(result.metafile.outputs).map((p) => path.basename(p));
const js = outputs.find((f) => f.startsWith("app-") && f.endsWith(".js"));
const css = outputs.find((f) => f.startsWith("style-") && f.endsWith(".css"));
if (!js || !css) throw new Error(`unexpected build outputs: ${outputs.join(", ")}`);
const template = await readFile(path.join(here, "src/index.html"), "utf8");
await writeFile(
  path.join(dist, "index.html"),
  template.replace("%APP_JS%", `assets/${js}`).replace("%APP_CSS%", `assets/${css}`),
);
console.log(`web/dist: index.html, assets/${js}, assets/${css}`);
