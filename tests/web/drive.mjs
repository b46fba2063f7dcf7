// Drives the browser page (examples/web) in headless Chromium with playwright-core, for
// tests/test_web_page.py. Reads {url, tasks, screenshot} as JSON on stdin, runs each task in
// the page, prints the results as JSON. Tasks:
//   {kind: "generate", model, prompt, maxNewTokens, temperature, topK, topP, seed}  (page API)
//   {kind: "classify", model, text}                                                (page API)
//   {kind: "ui-generate", model, prompt, temperature, seed, maxNewTokens, topK, topP} (the form)
//   {kind: "ui-type", text}                                         (the language box, typed)

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', 'web');
const { chromium } = await import(pathToFileURL(path.join(WEB, 'node_modules', 'playwright-core', 'index.mjs')).href);
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const TIMEOUT_MS = 120_000;

async function setField(page, id, value) {
  if (value !== undefined && value !== null) await page.fill(`#${id}`, String(value));
}

async function uiGenerate(page, task) {
  if (task.model) await page.selectOption('#lm-model', task.model);
  await setField(page, 'prompt', task.prompt);
  for (const [id, key] of [['temperature', 'temperature'], ['top-k', 'topK'], ['top-p', 'topP'], ['seed', 'seed'], ['max-new-tokens', 'maxNewTokens']]) {
    await setField(page, id, task[key]);
  }
  await page.click('#generate');
  await page.waitForFunction(() => /^(done|error)/.test(document.getElementById('gen-status').textContent), null, { timeout: TIMEOUT_MS });
  return { output: await page.textContent('#output'), status: await page.textContent('#gen-status') };
}

async function uiType(page, task) {
  await page.fill('#language-text', '');
  await page.type('#language-text', task.text);
  const read = () => page.evaluate(() => document.getElementById('clf-status').textContent);
  const expected = `${Array.from(task.text).length} characters read`;
  for (let i = 0; i < 600 && (await read()) !== expected; i += 1) await page.waitForTimeout(100);
  const bars = await page.$$eval('.bar', (nodes) => nodes.map((n) => [n.dataset.label, n.querySelector('.value').textContent]));
  return { verdict: await page.textContent('#language-name'), status: await read(), bars };
}

async function runTask(page, task) {
  if (task.kind === 'generate') return page.evaluate(({ model, ...options }) => window.rnnedge.generateText(model, options), task);
  if (task.kind === 'classify') return page.evaluate(({ model, text }) => window.rnnedge.classifyText(model, text), task);
  if (task.kind === 'ui-generate') return uiGenerate(page, task);
  if (task.kind === 'ui-type') return uiType(page, task);
  throw new Error(`unknown task kind ${task.kind}`);
}

const request = JSON.parse(readFileSync(0, 'utf-8'));
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: FLAGS, timeout: TIMEOUT_MS });
try {
  const page = await browser.newPage({ viewport: { width: 1180, height: 680 } });
  const console_ = [];
  page.on('console', (message) => console_.push(`${message.type()}: ${message.text()}`));
  page.on('pageerror', (error) => console_.push(`pageerror: ${error.message}`));
  await page.goto(request.url, { timeout: TIMEOUT_MS });
  await page.waitForFunction(() => document.body.dataset.ready, null, { timeout: TIMEOUT_MS });
  const ready = await page.evaluate(() => document.body.dataset.ready);
  const results = [];
  if (ready === 'true') for (const task of request.tasks) results.push(await runTask(page, task));
  if (request.screenshot) await page.screenshot({ path: request.screenshot, fullPage: true });
  const userAgent = await page.evaluate(() => navigator.userAgent);
  const engine = await page.textContent('#engine');
  process.stdout.write(JSON.stringify({ ready, results, console: console_, userAgent, engine, chromium: browser.version() }));
} finally {
  await browser.close();
}
