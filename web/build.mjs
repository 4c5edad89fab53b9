// Builds web/dist: assets/app-[hash].js, gate-[hash].js and style-[hash].css (content-hashed,
// so the gateway serves them as immutable), index.html (the buyer's app) and gate.html (the gate
// scanner) naming them (served with a short TTL).
import { build } from "esbuild";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(here, "dist");
await rm(dist, { recursive: true, force: true });
await mkdir(path.join(dist, "assets"), { recursive: true });
const result = await build({
  entryPoints: {
    app: path.join(here, "src/main.ts"),
    gate: path.join(here, "src/gate.ts"),
    style: path.join(here, "src/style.css"),
  },
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
const gate = outputs.find((f) => f.startsWith("gate-") && f.endsWith(".js"));
const css = outputs.find((f) => f.startsWith("style-") && f.endsWith(".css"));
if (!js || !gate || !css) throw new Error(`unexpected build outputs: ${outputs.join(", ")}`);
const template = await readFile(path.join(here, "src/index.html"), "utf8");
await writeFile(
  path.join(dist, "index.html"),
  template.replace("%APP_JS%", `assets/${js}`).replace("%APP_CSS%", `assets/${css}`),
);
const gateTemplate = await readFile(path.join(here, "src/gate.html"), "utf8");
await writeFile(
  path.join(dist, "gate.html"),
  gateTemplate.replace("%GATE_JS%", `assets/${gate}`).replace("%GATE_CSS%", `assets/${css}`),
);
console.log(`web/dist: index.html, gate.html, assets/${js}, assets/${gate}, assets/${css}`);
