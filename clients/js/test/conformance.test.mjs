// The shared conformance scenario (clients/conformance/ordering.json): what the
// application gets for the frames a channel receives. The Rust client runs the same
// file (clients/rust/tests/conformance.rs), so the two clients cannot drift apart.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ChannelOrder } from "../dist/index.js";

const doc = JSON.parse(readFileSync(new URL("../../conformance/ordering.json", import.meta.url), "utf8"));

/** What the application got, as the scenario writes it. */
function label(f) {
  if (f.type === "resync") return `resync:${f.reason}`;
  return f.seq == null ? `event:low:${f.event.id}` : `event:${f.seq}`;
}

test("the scenario file has scenarios", () => assert.ok(doc.scenarios.length >= 10));

for (const s of doc.scenarios) {
  test(`conformance: ${s.name}`, () => {
    const order = new ChannelOrder({ channel: s.channel, ...s.options });
    s.steps.forEach((step, i) => {
      const where = `${s.name}, step ${i} (at ${step.at} ms)`;
      if ("subscribing" in step) assert.deepEqual(order.subscribing(step.at), step.subscribing, where);
      else if ("frame" in step) assert.deepEqual(order.accept(step.frame, step.at).map(label), step.deliver, where);
      else if ("tick" in step) assert.deepEqual(order.tick(step.at), step.tick, where);
      else if ("deadline" in step) assert.equal(order.deadline(), step.deadline, where);
      else if ("resumeFailed" in step) order.resumeFailed(step.at);
      else if ("subscribeFailed" in step) order.subscribeFailed(step.at);
      else assert.fail(`${where}: unknown step ${JSON.stringify(step)}`);
    });
  });
}
