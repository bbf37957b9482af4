// Runs every graphql-http server audit against the URL given and prints one JSON line
// per audit: {"name", "status": "ok" | "warn" | "error", "reason"}. The security tests
// run this against real node and hub processes and fail on any warning or error.
import { serverAudits } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs http://127.0.0.1:PORT/graphql');
  process.exit(2);
}
for (const audit of serverAudits({ url, fetchFn: fetch })) {
  const result = await audit.fn();
  console.log(JSON.stringify({ name: audit.name, status: result.status, reason: result.reason ?? null }));
}
