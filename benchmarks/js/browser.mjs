#!/usr/bin/env node
// Drives benchmarks/js/page.html in headless Chromium (Debian's, through the
// playwright-core that examples/web installs) for benchmarks/embedding.py. Reads
// {base, pages: [{query, request}], examplePage} as JSON on stdin; each page opens in a fresh
// browser context (no cache, no compiled wasm kept), reports its cold start and then its
// timings; an untimed page warms the browser first. Prints {chromium, pages: [...], example: {...}} as JSON.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const playwright = pathToFileURL(path.join(ROOT, 'examples', 'web', 'node_modules', 'playwright-core', 'index.mjs'));
const { chromium } = await import(playwright.href);
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const TIMEOUT_MS = 120_000;

async function benchPage(browser, base, { query, request }) {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(`${base}benchmarks/js/page.html?${query}`, { timeout: TIMEOUT_MS });
    await page.waitForFunction(() => window.benchReady || /^error/.test(document.getElementById('status').textContent), null, { timeout: TIMEOUT_MS });
    const head = await page.evaluate(() => {
      const b = window.benchReady;
      return b ? { cold: b.cold, firstToken: b.firstToken, isolated: b.isolated, threads: b.threads, version: b.version } : null;
    });
    if (!head) throw new Error(`page failed: ${await page.textContent('#status')} ${errors.join('; ')}`);
    const timings = request ? await page.evaluate((r) => window.benchReady.run(r), request) : {};
    return { ...head, ...timings };
  } finally {
    await context.close();
  }
}

/** The example page itself (examples/web): navigation to ready (its default models open). */
async function examplePage(browser, base) {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(`${base}examples/web/`, { timeout: TIMEOUT_MS });
    await page.waitForFunction(() => document.body.dataset.ready, null, { timeout: TIMEOUT_MS });
    return await page.evaluate(() => ({ ready: document.body.dataset.ready, seconds: performance.now() / 1000 }));
  } finally {
    await context.close();
  }
}

const input = JSON.parse(readFileSync(0, 'utf-8'));
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: FLAGS, timeout: TIMEOUT_MS });
try {
  // One untimed page first, so every timed page meets the same warm browser (its first
  // renderer process started, the files in the OS cache) whatever its place in the order.
  await benchPage(browser, input.base, { ...input.pages[0], request: null });
  const pages = [];
  for (const spec of input.pages) pages.push(await benchPage(browser, input.base, spec));
  const example = input.examplePage ? await examplePage(browser, input.base) : null;
  process.stdout.write(`${JSON.stringify({ chromium: browser.version(), pages, example })}\n`);
} finally {
  await browser.close();
}
