/* Generated from specs/envelope.schema.json by scripts/generate.mjs (json-schema-to-typescript): do not edit. */
export {};
