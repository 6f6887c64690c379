// Starts a local stack for the tests: the `realtime-local` binary at REALTIME_LOCAL_BIN
// (the Rust harness `infra/local/tests/js_client.rs` passes the one cargo built), or
// `cargo run -p realtime-local` from the workspace. Each stack has its own port and data
// directory, and stops with the test.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../..", import.meta.url));

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Starts a stack; resolves with `{ http, ws, stop() }` once it serves. */
export async function startStack(extraArgs = []) {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), "realtime-js-"));
  const args = ["--addr", `127.0.0.1:${port}`, "--data-dir", dataDir, ...extraArgs];
  const bin = process.env.REALTIME_LOCAL_BIN;
  const child = bin
    ? spawn(bin, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"] })
    : spawn("cargo", ["run", "-q", "-p", "realtime-local", "--", ...args], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  const up = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the stack did not start in 300 s:\n${log}`)), 300_000);
    child.stdout.on("data", (d) => {
      log += d;
      if (log.includes("is up on")) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.stderr.on("data", (d) => (log = (log + d).slice(-20_000)));
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the stack exited (${code}):\n${log}`));
    });
  });
  await up;
  const http = `http://127.0.0.1:${port}`;
  return {
    http,
    ws: `ws://127.0.0.1:${port}/ws`,
    async stop() {
      child.kill("SIGINT");
      await new Promise((resolve) => (child.exitCode != null ? resolve() : child.once("exit", resolve)));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A JSON HTTP call: resolves with `{ status, body }`. */
export async function api(base, method, path, token, body) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${base}${path}`, { method, headers, body: body == null ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/** A development token (`POST /api/dev/token`). */
export async function devToken(base, sub, roles = []) {
  const { status, body } = await api(base, "POST", "/api/dev/token", null, { sub, roles });
  if (status !== 200) throw new Error(`dev token: ${status} ${JSON.stringify(body)}`);
  return body.token;
}

/** Resolves when `cond()` holds (polled), or rejects after `ms`. */
export async function until(cond, ms = 10_000, what = "condition") {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
