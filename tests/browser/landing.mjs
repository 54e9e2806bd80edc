// Loads the landing page and the statistics page of a running telemetry-server in Debian's headless
// Chromium and checks what only a browser can tell: no console error, no failed request, no
// accessibility violation (axe-core, WCAG 2.1 A/AA) in the light and the dark scheme, no sideways
// scrolling on a phone or at 200% zoom, charts drawn. Saves what a visitor first sees at 1280x800
// and 390x844 CSS pixels, and the statistics page whole at 1280 pixels wide.
//
// Usage: node landing.mjs BASE_URL SCREENSHOT_DIR
// Environment: CHROMIUM (default /usr/bin/chromium).

import { createRequire } from "node:module";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

const [baseUrl, screenshotDir] = process.argv.slice(2);
if (!baseUrl || !screenshotDir) {
  console.error("usage: node landing.mjs BASE_URL SCREENSHOT_DIR");
  process.exit(2);
}

const failures = [];
const fail = (message) => failures.push(message);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  // Playwright gives every launch a fresh, temporary profile directory.
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});

/** Opens `path` in a new context and records every problem the page causes. */
async function open(path, contextOptions, expectedStatus = 200) {
  const context = await browser.newContext(contextOptions);
  const page = await context.newPage();
  const problems = [];
  page.on("console", (message) => {
    if (message.type() === "error" || message.type() === "warning") {
      problems.push(`console ${message.type()}: ${message.text()}`);
    }
  });
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("requestfailed", (request) =>
    problems.push(`request failed: ${request.url()} (${request.failure()?.errorText})`),
  );
  page.on("response", (response) => {
    const isDocument = response.url() === new URL(path, baseUrl).href;
    if (!isDocument && response.status() >= 400) {
      problems.push(`HTTP ${response.status()} for ${response.url()}`);
    }
  });
  const response = await page.goto(new URL(path, baseUrl).href, { waitUntil: "load" });
  if (response.status() !== expectedStatus) {
    problems.push(`${path} answered ${response.status()}, expected ${expectedStatus}`);
  }
  // A 404 document makes Chromium log one console error about itself; that one is expected.
  const filtered =
    expectedStatus === 404
      ? problems.filter((p) => !p.includes("status of 404"))
      : problems;
  return { context, page, problems: filtered };
}

async function checkAccessibility(page, label) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(() =>
    // eslint-disable-next-line no-undef
    axe.run(document, {
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] },
    }),
  );
  for (const violation of result.violations) {
    const where = violation.nodes.slice(0, 3).map((node) => node.target.join(" ")).join("; ");
    fail(`${label}: axe ${violation.id} (${violation.impact}): ${violation.help} at ${where}`);
  }
}

async function checkNoSidewaysScroll(page, label) {
  const overflow = await page.evaluate(
    () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
  );
  if (overflow > 0) {
    fail(`${label}: the page scrolls sideways by ${overflow}px`);
  }
}

async function checkStyled(page, label) {
  const styled = await page.evaluate(() => {
    const hero = document.querySelector(".hero");
    return hero !== null && getComputedStyle(hero).backgroundImage.includes("gradient");
  });
  if (!styled) {
    fail(`${label}: the stylesheet was not applied`);
  }
}

mkdirSync(screenshotDir, { recursive: true });

for (const [width, height, name] of [
  [1280, 800, "landing-1280.png"],
  [390, 844, "landing-390.png"],
]) {
  const label = `${width}px light`;
  const { context, page, problems } = await open("/", {
    viewport: { width, height },
    colorScheme: "light",
  });
  problems.forEach((p) => fail(`${label}: ${p}`));
  await checkStyled(page, label);
  await checkNoSidewaysScroll(page, label);
  await checkAccessibility(page, label);
  await page.screenshot({ path: join(screenshotDir, name) });
  await context.close();
}

{
  const label = "1280px dark, all tables open";
  const { context, page, problems } = await open("/", {
    viewport: { width: 1280, height: 900 },
    colorScheme: "dark",
  });
  problems.forEach((p) => fail(`${label}: ${p}`));
  const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  const rgb = /^rgb\((\d+), (\d+), (\d+)\)$/.exec(background);
  if (!rgb || Number(rgb[1]) + Number(rgb[2]) + Number(rgb[3]) > 3 * 96) {
    fail(`${label}: the dark scheme was not applied (background ${background})`);
  }
  await page.evaluate(() => document.querySelectorAll("details").forEach((d) => (d.open = true)));
  await checkAccessibility(page, label);
  await context.close();
}

{
  // 200% zoom of a 1280px window: the layout sees 640 CSS pixels.
  const label = "200% zoom";
  const { context, page, problems } = await open("/", {
    viewport: { width: 640, height: 450 },
    deviceScaleFactor: 2,
  });
  problems.forEach((p) => fail(`${label}: ${p}`));
  await page.evaluate(() => document.querySelectorAll("details").forEach((d) => (d.open = true)));
  await checkNoSidewaysScroll(page, label);
  await context.close();
}

{
  const label = "390px, all tables open";
  const { context, page, problems } = await open("/", { viewport: { width: 390, height: 844 } });
  problems.forEach((p) => fail(`${label}: ${p}`));
  await page.evaluate(() => document.querySelectorAll("details").forEach((d) => (d.open = true)));
  await checkNoSidewaysScroll(page, label);
  await context.close();
}

{
  const label = "404 page";
  const { context, page, problems } = await open("/no-such-page", { viewport: { width: 1280, height: 900 } }, 404);
  problems.forEach((p) => fail(`${label}: ${p}`));
  await checkStyled(page, label);
  await checkAccessibility(page, label);
  await context.close();
}

// The statistics page: the service behind BASE_URL has statistics computed from generated history.
async function checkCharts(page, label) {
  const charts = await page.evaluate(() =>
    [...document.querySelectorAll("svg.chart")].map((svg) => {
      const box = svg.getBoundingClientRect();
      const marks = svg.querySelectorAll("path.line, rect").length;
      return { width: box.width, height: box.height, marks, title: svg.querySelector("title")?.textContent };
    }),
  );
  if (charts.length < 5) {
    fail(`${label}: expected at least 5 charts, found ${charts.length}`);
  }
  for (const chart of charts) {
    if (chart.width < 200 || chart.height < 40 || chart.marks === 0) {
      fail(`${label}: chart "${chart.title}" not drawn (${chart.width}x${chart.height}, ${chart.marks} marks)`);
    }
  }
  const tables = await page.evaluate(() => document.querySelectorAll("figure table").length);
  if (tables !== charts.length) {
    fail(`${label}: ${charts.length} charts but ${tables} tables of numbers`);
  }
}

for (const [width, height, name, fullPage] of [
  [1280, 800, "stats-1280.png", true],
  [390, 844, "stats-390.png", false],
]) {
  const label = `stats ${width}px light`;
  const { context, page, problems } = await open("/stats", {
    viewport: { width, height },
    colorScheme: "light",
  });
  problems.forEach((p) => fail(`${label}: ${p}`));
  await checkStyled(page, label);
  await checkCharts(page, label);
  await checkNoSidewaysScroll(page, label);
  await checkAccessibility(page, label);
  if (!fullPage) {
    // On a phone, show the first chart rather than the introduction.
    await page.evaluate(() => document.querySelector("#active").scrollIntoView({ behavior: "instant" }));
  }
  await page.screenshot({ path: join(screenshotDir, name), fullPage });
  await context.close();
}

{
  const label = "stats 1280px dark, all tables open";
  const { context, page, problems } = await open("/stats", {
    viewport: { width: 1280, height: 900 },
    colorScheme: "dark",
  });
  problems.forEach((p) => fail(`${label}: ${p}`));
  await page.evaluate(() => document.querySelector("#releases").scrollIntoView({ behavior: "instant" }));
  await page.screenshot({ path: join(screenshotDir, "stats-dark-1280.png") });
  await page.evaluate(() => document.querySelectorAll("details").forEach((d) => (d.open = true)));
  await checkAccessibility(page, label);
  await context.close();
}

for (const [width, height, scale, label] of [
  [640, 450, 2, "stats 200% zoom"],
  [390, 844, 1, "stats 390px, all tables open"],
]) {
  const { context, page, problems } = await open("/stats", {
    viewport: { width, height },
    deviceScaleFactor: scale,
  });
  problems.forEach((p) => fail(`${label}: ${p}`));
  await page.evaluate(() => document.querySelectorAll("details").forEach((d) => (d.open = true)));
  await checkNoSidewaysScroll(page, label);
  await context.close();
}

await browser.close();

if (failures.length > 0) {
  console.error(`${failures.length} problem(s):`);
  failures.forEach((f) => console.error(`- ${f}`));
  process.exit(1);
}
console.log("landing and statistics pages: no console error, no failed request, no accessibility violation");
