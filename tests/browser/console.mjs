// Drives the wscan console in Debian's Chromium with playwright-core, for
// tests/e2e/console.rs (which starts the daemon, the listeners and this).
//
//   node console.mjs CONFIG.json
//
// CONFIG: {base, admin, read, ports, ports2, plugin, shots}: the daemon's
// URL, an admin and a read token, the ports of the first scan and of the
// second (fewer: the diff has findings that disappeared), a plugin
// component to upload (test plugin `tick`), and where screenshots go.
// Exits 0 when every step saw what it expected; else prints the step and
// leaves failure.png.

import { chromium } from "playwright-core";
import { readFileSync } from "node:fs";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const shot = (page, name) => page.screenshot({ path: `${config.shots}/${name}.png`, fullPage: true });
let step = "start";

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  // As root in a container, Chromium's own sandbox cannot start.
  args: ["--no-sandbox"],
});
// The daemon serves HTTPS with a certificate of the tests' own CA.
const page = await browser.newPage({ viewport: { width: 1280, height: 800 }, ignoreHTTPSErrors: true });
page.setDefaultTimeout(30_000);
const errors = [];
page.on("pageerror", (e) => errors.push(String(e)));

function check(condition, what) {
  if (!condition) throw new Error(`${step}: ${what}`);
}

async function login(token) {
  await page.locator("#token").fill(token);
  await page.getByRole("button", { name: "Log in" }).click();
}

async function startScan(ports) {
  await page.goto(`${config.base}/#/scans`);
  await page.locator("#targets").fill("127.0.0.1");
  await page.locator("#ports").fill(ports);
  await page.locator("input[name=plugin][value=port]").check();
  await page.locator("input[name=plugin][value=tls]").check();
  // A typed argument input, shown once its plugin is checked: a value
  // without a unit is refused in the form, before any request.
  const timeout = page.locator("#arg-port-banner-timeout");
  await timeout.fill("300");
  await page.getByRole("button", { name: "Start scan" }).click();
  const refused = await timeout.evaluate((i) => i.validationMessage);
  check(refused.includes("expected a duration"), `no message for a bad duration: ${refused}`);
  check(!/#\/scans\/\d+$/.test(page.url()), "a scan started with a bad argument");
  await timeout.fill("300ms");
  await page.getByRole("button", { name: "Start scan" }).click();
  await page.waitForURL(/#\/scans\/\d+$/);
  const id = Number(page.url().match(/(\d+)$/)[1]);
  // The new scan's own view, not the page before it.
  await page.locator("h2", { hasText: `Scan ${id} ` }).waitFor();
  return id;
}

try {
  step = "the console is served over HTTPS";
  check(config.base.startsWith("https://"), config.base);

  step = "a wrong token gets the login screen with a clear message";
  await page.goto(`${config.base}/`);
  await page.locator("#login").waitFor();
  check(await page.locator("#login-error").count() === 0, "an error before any token was given");
  await login("wscan_not-a-token");
  await page.locator("#login-error", { hasText: "not valid" }).waitFor();
  await shot(page, "01-login-refused");

  step = "an admin token logs in and sees the controls";
  await login(config.admin);
  await page.locator("#new-scan").waitFor();
  check((await page.locator("#who").textContent()).includes("admin"), "the role is not shown");
  check(!page.url().includes(config.admin), "the token is in the URL");

  step = "a scan started from the form reaches 100% and its findings appear live";
  const first = await startScan(config.ports);
  await page.locator("#scan-status", { hasText: "completed, 100%" }).waitFor({ timeout: 60_000 });
  const progress = await page.locator("#progress").evaluate((p) => [p.value, p.max]);
  check(progress[0] === progress[1], `progress at ${progress}`);
  await page.waitForFunction(() => document.querySelectorAll("#findings tr").length >= 4);
  await shot(page, "02-scan-complete");

  step = "findings filter by kind";
  await page.locator("#f-kind").selectOption("open-port");
  const kinds = await page.locator("#findings tr td:nth-child(2)").allTextContents();
  check(kinds.length === config.ports.split(",").length - 1, `${kinds.length} open ports shown: ${kinds}`);
  check(kinds.every((k) => k === "open-port"), `other kinds shown: ${kinds}`);
  await page.locator("#f-kind").selectOption("");

  step = "a certificate's detail shows its data";
  await page.locator("#findings tr", { hasText: "tls-certificate" }).first().click();
  const detail = await page.locator("#detail-data").textContent();
  check(detail.includes("www.wscan.test"), `no certificate name in ${detail.slice(0, 200)}`);
  await shot(page, "03-certificate-detail");

  step = "a scan exports as SARIF";
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("button", { name: "sarif" }).click(),
  ]);
  check(download.suggestedFilename() === `scan-${first}.sarif`, download.suggestedFilename());
  const sarif = JSON.parse(readFileSync(await download.path(), "utf8"));
  check(sarif.version === "2.1.0" && sarif.runs[0].results.length >= 4, "not the scan's SARIF");

  step = "a diff of two scans shows what disappeared";
  const second = await startScan(config.ports2);
  await page.locator("#scan-status", { hasText: "completed" }).waitFor({ timeout: 60_000 });
  await page.goto(`${config.base}/#/diff/${first}/${second}`);
  await page.locator("#diff-summary").waitFor();
  const summary = await page.locator("#diff-summary").textContent();
  check(/[1-9]\d* disappeared/.test(summary), `diff: ${summary}`);
  // Side by side: what disappeared has the first scan's finding and no
  // second; its detail shows both sides.
  const gone = page.locator("#diff tr[data-change=disappeared]").first();
  check((await gone.locator("td").nth(4).textContent()) === "—", "a disappeared finding has a second side");
  await gone.click();
  await page.locator("#diff-detail", { hasText: "Not found by this scan." }).waitFor();
  check((await page.locator("#diff-detail pre").count()) === 1, "not one side's data in the detail");
  await shot(page, "04-diff");
  await page.locator("#diff-filter input[value=disappeared]").uncheck();
  check(await gone.isHidden(), "unchecking disappeared leaves it shown");

  step = "an uploaded plugin is in use";
  await page.goto(`${config.base}/#/plugins`);
  await page.locator("#upload-name").fill("tick");
  await page.locator("#upload-file").setInputFiles(config.plugin);
  await page.getByRole("button", { name: "Upload" }).click();
  await page.locator("#upload-result", { hasText: "tick 1.0.0 is in use" }).waitFor();
  await page.locator("#plugins td", { hasText: /^tick$/ }).waitFor();
  await shot(page, "05-plugin-uploaded");

  step = "a read-only token sees no controls that would fail";
  await page.getByRole("button", { name: "Log out" }).click();
  await login(config.read);
  // Logged in again where it was (the plugins page).
  await page.locator("#plugins").waitFor();
  await page.goto(`${config.base}/#/scans`);
  await page.locator("#scans tbody tr").first().waitFor();
  check(await page.locator("#new-scan").count() === 0, "the start form is shown");
  check(await page.getByRole("button", { name: "Delete" }).count() === 0, "delete buttons are shown");
  await page.goto(`${config.base}/#/plugins`);
  await page.locator("#plugins tbody tr").first().waitFor();
  check(await page.locator("#upload").count() === 0, "the upload form is shown");
  await shot(page, "06-read-only");

  step = "readable on a narrow screen, usable from the keyboard";
  await page.setViewportSize({ width: 390, height: 800 });
  await page.goto(`${config.base}/#/scans`);
  await page.locator("#scans tbody tr").first().focus();
  await page.keyboard.press("Enter");
  await page.waitForURL(/#\/scans\/\d+$/);
  await page.locator("#scan-status", { hasText: "completed" }).waitFor();
  await shot(page, "07-narrow");

  check(errors.length === 0, `script errors: ${errors.join("; ")}`);
  console.log("console: every step passed");
  await browser.close();
} catch (e) {
  console.error(`console test failed at "${step}": ${e.message}`);
  await page.screenshot({ path: `${config.shots}/failure.png`, fullPage: true }).catch(() => {});
  await browser.close();
  process.exit(1);
}
