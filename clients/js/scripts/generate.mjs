// Generates the TypeScript declarations of the wire formats from the server's JSON
// Schemas (`specs/*.schema.json`, themselves generated from the Rust types by
// `cargo run -p realtime-local --bin realtime-specs`) with json-schema-to-typescript.
//
//   node scripts/generate.mjs            # writes src/generated/*.ts
//   node scripts/generate.mjs <outDir>   # writes there (the drift test compares)
import { compile } from "json-schema-to-typescript";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const specs = join(here, "../../../specs");
const out = process.argv[2] ?? join(here, "../src/generated");

// spec file -> the name of its root type
const SCHEMAS = {
  "events.schema.json": "DomainEvent",
  "envelope.schema.json": "Envelope",
  "server-frames.schema.json": "ServerFrame",
  "trip-status.schema.json": "TripStatusMessage",
  "client-frames.schema.json": "ClientFrame",
};

await mkdir(out, { recursive: true });
for (const [file, name] of Object.entries(SCHEMAS)) {
  const schema = JSON.parse(await readFile(join(specs, file), "utf8"));
  // The root's title names the root type; ours are the Rust type names.
  schema.title = name;
  const ts = await compile(schema, name, {
    bannerComment: `/* Generated from specs/${file} by scripts/generate.mjs (json-schema-to-typescript): do not edit. */`,
    additionalProperties: false,
    strictIndexSignatures: true,
    unreachableDefinitions: true,
    format: true,
    style: { printWidth: 100 },
  });
  await writeFile(join(out, file.replace(".schema.json", ".ts")), ts);
}
