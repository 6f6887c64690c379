// The package as an application gets it: `npm pack` makes a tarball that a fresh project
// installs, imports and type-checks (`tsc --noEmit` on examples/, whose `@ts-expect-error`
// lines fail if the events lose their types); and nothing committed drifts from its
// sources: the declarations from specs/*.schema.json, dist/ from src/.

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const pkg = fileURLToPath(new URL("..", import.meta.url));
const tsc = join(pkg, "node_modules/typescript/bin/tsc");
const run = (cmd, args, cwd) => execFileSync(cmd, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });

function files(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...files(p));
    else out.push(p);
  }
  return out;
}

function assertSameTree(committed, fresh, what) {
  const list = (d) => files(d).map((f) => relative(d, f)).sort();
  assert.deepEqual(list(committed), list(fresh), `${what}: files differ (run \`npm run build\` in clients/js)`);
  for (const f of list(fresh)) {
    assert.equal(
      readFileSync(join(committed, f), "utf8"),
      readFileSync(join(fresh, f), "utf8"),
      `${what}: ${f} is stale (run \`npm run build\` in clients/js and commit it)`,
    );
  }
}

test("the declarations are what the generator makes of specs/*.schema.json", () => {
  const out = mkdtempSync(join(tmpdir(), "realtime-gen-"));
  try {
    run(process.execPath, [join(pkg, "scripts/generate.mjs"), out], pkg);
    assertSameTree(join(pkg, "src/generated"), out, "src/generated");
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test("dist/ is what tsc makes of src/", () => {
  const out = mkdtempSync(join(tmpdir(), "realtime-dist-"));
  try {
    run(process.execPath, [tsc, "-p", pkg, "--outDir", out], pkg);
    assertSameTree(join(pkg, "dist"), out, "dist");
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test("npm pack makes a tarball a fresh project installs, imports and type-checks", () => {
  const work = mkdtempSync(join(tmpdir(), "realtime-pack-"));
  try {
    const packed = JSON.parse(run("npm", ["pack", "--json", "--pack-destination", work], pkg))[0];
    const inside = packed.files.map((f) => f.path);
    for (const f of ["package.json", "dist/index.js", "dist/index.d.ts", "dist/generated/events.d.ts"]) {
      assert.ok(inside.includes(f), `${f} is not in the tarball: ${inside}`);
    }
    assert.ok(!inside.some((f) => f.startsWith("test/") || f.startsWith("node_modules/")), `${inside}`);

    const app = join(work, "app");
    cpSync(join(pkg, "examples"), app, { recursive: true });
    writeFileSync(
      join(app, "package.json"),
      JSON.stringify({ name: "app", private: true, type: "module", dependencies: { "@realtime-events/client": `file:../${packed.filename}` } }),
    );
    writeFileSync(
      join(app, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", lib: ["ES2022", "DOM"], types: [], strict: true, noEmit: true },
        include: ["*.ts"],
      }),
    );
    // No runtime dependencies: the install needs no registry.
    run("npm", ["install", "--offline", "--no-audit", "--no-fund", "--ignore-scripts"], app);
    const installed = JSON.parse(readFileSync(join(app, "node_modules/@realtime-events/client/package.json"), "utf8"));
    assert.deepEqual(installed.dependencies ?? {}, {}, "no runtime dependencies");
    try {
      run(process.execPath, [tsc, "-p", app], app);
    } catch (e) {
      assert.fail(`tsc --noEmit failed on examples/:\n${e.stdout}${e.stderr}`);
    }
    const probe = "import('@realtime-events/client').then(m => console.log(Object.keys(m).sort().join(',')))";
    const exported = run(process.execPath, ["--input-type=module", "-e", probe], app).trim().split(",");
    for (const name of ["RealtimeClient", "ChannelOrder", "followTripStatus", "isEvent", "typeMatches"]) {
      assert.ok(exported.includes(name), `${name} is not exported: ${exported}`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test("the README's client examples are the tested code, verbatim", () => {
  const readme = readFileSync(join(pkg, "../../README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## Clients"), readme.indexOf("\n## ", readme.indexOf("## Clients") + 1));
  const block = (lang) => {
    const m = new RegExp("```" + lang + "\\n([\\s\\S]*?)```").exec(section);
    assert.ok(m, `no \`\`\`${lang} block in the README's Clients section`);
    return m[1];
  };
  assert.ok(readFileSync(join(pkg, "examples/chat.ts"), "utf8").includes(block("ts")), "README ts block ≠ examples/chat.ts");
  // The Rust one is the crate doc's doctest, without its hidden (`# `) lines.
  const lib = readFileSync(join(pkg, "../rust/src/lib.rs"), "utf8").split("\n");
  const start = lib.findIndex((l) => l.startsWith("//! ```no_run"));
  const end = lib.findIndex((l, i) => i > start && l.startsWith("//! ```"));
  const doctest = lib
    .slice(start + 1, end)
    .map((l) => l.replace(/^\/\/! ?/, ""))
    .filter((l) => !(l === "#" || l.startsWith("# ")))
    .join("\n")
    .replace(/^\n+|\n+$/g, "");
  assert.equal(block("rust").replace(/\n+$/, ""), doctest, "README rust block ≠ clients/rust/src/lib.rs's doctest");
});
