/* Generated from specs/server-frames.schema.json by scripts/generate.mjs (json-schema-to-typescript): do not edit. */
export {};
