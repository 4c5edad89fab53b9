// Opens one event's seat map in headless chromium and prints how long it took to become
// interactive, with its parts: node web/tests/measure.mjs BASE EVENT [RUNS]
import { chromium } from "playwright-core";
const [base, event, runs = "3"] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ["--no-sandbox"] });
for (let i = 0; i < Number(runs); i++) {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 860 } })).newPage();
  const started = Date.now();
  await page.goto(`${base}/app/#/events/${event}`);
  await page.waitForFunction(() => window.seatApp?.ready === true && window.seatApp.seats > 0, null, { timeout: 60000 });
  const t = await page.evaluate(() => ({ seats: window.seatApp.seats, ready: window.seatApp.mapReadyMs, ...window.seatApp.timings }));
  console.log(JSON.stringify({ run: i + 1, wallMs: Date.now() - started, ...t }));
  await page.context().close();
}
await browser.close();
