/* Generated from specs/trip-status.schema.json by scripts/generate.mjs (json-schema-to-typescript): do not edit. */
export {};
