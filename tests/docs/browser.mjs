// Drives GET /docs in Debian's Chromium (puppeteer-core) and prints what it
// saw as one JSON object on stdout; tests/docs/test_docs_browser.py starts
// the server, makes the user and the token, and asserts on it.
//
//   node tests/docs/browser.mjs BASE_URL [TOKEN USER_ID]
//
// With only BASE_URL it loads the page and lists the operations. With a
// token and a user id it also authorizes through the page's "Authorize"
// dialog and runs GET /v1/users/{id} with "Try it out" -> "Execute",
// reporting the status and body the page shows. Every step is bounded in
// time; a step that fails is reported in "error" with what was seen so far.
// GLASGOW_DOCS_SCREENSHOT=FILE.png saves what the page shows at the end.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import puppeteer from "puppeteer-core";

const [base, token, userId] = process.argv.slice(2);
if (!base) {
    console.error("usage: browser.mjs BASE_URL [TOKEN USER_ID]");
    process.exit(2);
}
const origin = new URL(base).origin;
const STEP_MS = 20000;

const out = {
    operations: [],
    csp_violations: [],
    console_errors: [],
    foreign_requests: [],
    failed_requests: [],
    spec_requests: 0,
};

const profile = mkdtempSync(join(tmpdir(), "glasgow-docs-chromium-"));
const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    userDataDir: profile,
    // a closed network: no background connections, no component updates
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage"],
    timeout: STEP_MS,
});
let step = "start";
try {
    const page = await browser.newPage();
    page.setDefaultTimeout(STEP_MS);
    page.on("console", (m) => {
        if (m.type() === "error") out.console_errors.push(m.text());
    });
    page.on("request", (r) => {
        const u = r.url();
        if (!u.startsWith(origin + "/") && !u.startsWith("data:")) out.foreign_requests.push(u);
        if (u === origin + "/openapi.json") out.spec_requests++;
    });
    page.on("requestfailed", (r) => out.failed_requests.push(r.url() + " " +
                                                            (r.failure() || {}).errorText));
    // the browser reports every CSP violation as an event on the document
    await page.evaluateOnNewDocument(() => {
        window.__csp = [];
        document.addEventListener("securitypolicyviolation", (e) => {
            window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline") +
                              (e.sourceFile ? " at " + e.sourceFile + ":" + e.lineNumber : ""));
        });
    });

    step = "load /docs";
    const resp = await page.goto(base + "/docs", { waitUntil: "load" });
    out.page_status = resp.status();
    out.page_csp = resp.headers()["content-security-policy"] || null;
    await page.waitForSelector(".opblock .opblock-summary-method");
    out.title = await page.$eval(".info .title", (e) => e.textContent.trim());
    out.operations = await page.$$eval(".opblock", (blocks) => blocks.map((b) => {
        const m = b.querySelector(".opblock-summary-method").textContent.trim();
        const p = b.querySelector(".opblock-summary-path").getAttribute("data-path");
        return m + " " + p;
    }));

    if (token) {
        step = "authorize";
        await page.click(".auth-wrapper .authorize");
        await page.waitForSelector(".auth-container input");
        await page.type(".auth-container input", token);
        await page.click(".auth-btn-wrapper .modal-btn.authorize");
        await page.waitForSelector(".auth-btn-wrapper .modal-btn.btn-done, .auth-container .btn-done");
        out.authorized = await page.$$eval(".auth-container", (cs) => cs.some(
            (c) => /Authorized/.test(c.textContent)));
        await page.click(".btn-done");
        await page.waitForSelector(".auth-container", { hidden: true });

        step = "expand GET /v1/users/{id}";
        const op = "#operations-users-get_v1_users__id";
        await page.click(op + " .opblock-summary-control");
        await page.waitForSelector(op + " .try-out__btn");
        out.locked = await page.$eval(op + " .authorization__btn",
                                      (b) => b.classList.contains("locked") ||
                                             /unlock|locked/i.test(b.getAttribute("aria-label") || ""));
        step = "try it out";
        await page.click(op + " .try-out__btn");
        await page.waitForSelector(op + " .parameters input");
        await page.type(op + " .parameters input", userId);
        step = "execute";
        await page.click(op + " .execute");
        await page.waitForSelector(op + " .live-responses-table .response .response-col_status");
        out.call_status = await page.$eval(op + " .live-responses-table .response .response-col_status",
                                           (e) => e.textContent.trim());
        // the body is rendered (highlighted) after the status
        const bodySel = op + " .live-responses-table .response-col_description pre";
        await page.waitForSelector(bodySel);
        out.call_body = await page.$eval(bodySel, (e) => e.textContent);
        out.call_curl = await page.$eval(op + " .curl-command", (e) => e.textContent)
            .catch(() => null);
        out.call_url = await page.$eval(op + " .request-url", (e) => e.textContent.trim())
            .catch(() => null);
    }
    if (process.env.GLASGOW_DOCS_SCREENSHOT) {
        // for a person to look at: GLASGOW_DOCS_SCREENSHOT=/tmp/docs.png
        await page.screenshot({ path: process.env.GLASGOW_DOCS_SCREENSHOT, fullPage: false });
    }
    step = "done";
    out.csp_violations = await page.evaluate(() => window.__csp);
} catch (e) {
    out.error = step + ": " + (e && e.message ? e.message : String(e));
} finally {
    await browser.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(out) + "\n");
