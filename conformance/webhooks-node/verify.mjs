// Verify recorded dirsync webhook deliveries with the npm `standardwebhooks`
// package, using the README's Node line as written:
//
//   import { Webhook } from "standardwebhooks";
//   const event = new Webhook(SECRET.replace(/^whsec_/, "")).verify(body, headers);
//
//   node verify.mjs DELIVERIES.json SECRET
//
// DELIVERIES.json: [{"headers": {lower-cased name: value}, "body_base64": raw body}].
// Each delivery is verified twice: with the body as the Buffer a raw-body
// middleware hands over, and as the UTF-8 string a text middleware hands over.
// The event returned must equal the body parsed. Prints one line per failure
// and a count; exits 0 when every delivery verified, 1 when one did not, 2 on
// bad usage. No delivery at all is a failure too.
import { readFileSync } from "node:fs";
import { isDeepStrictEqual } from "node:util";
import { Webhook } from "standardwebhooks";

const [file, SECRET] = process.argv.slice(2);
if (!file || !SECRET) {
  console.error("usage: node verify.mjs DELIVERIES.json SECRET");
  process.exit(2);
}

const deliveries = JSON.parse(readFileSync(file, "utf8"));
const failed = new Set();
for (const [i, delivery] of deliveries.entries()) {
  const headers = delivery.headers;
  const raw = Buffer.from(delivery.body_base64, "base64");
  for (const body of [raw, raw.toString("utf8")]) {
    const kind = typeof body === "string" ? "string" : "Buffer";
    try {
      const event = new Webhook(SECRET.replace(/^whsec_/, "")).verify(body, headers);
      if (!isDeepStrictEqual(event, JSON.parse(raw.toString("utf8")))) {
        throw new Error("the event returned is not the body");
      }
    } catch (err) {
      failed.add(i);
      console.log(`node standardwebhooks: delivery ${i} (${headers["webhook-id"]}, body as ${kind}): ${err.name}: ${err.message}`);
    }
  }
}
console.log(`node standardwebhooks: ${deliveries.length - failed.size} of ${deliveries.length} deliveries verified (Buffer and string body)`);
process.exit(failed.size === 0 && deliveries.length > 0 ? 0 : 1);
