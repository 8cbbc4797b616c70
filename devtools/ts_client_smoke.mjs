// The TypeScript MCP SDK v2 client (@modelcontextprotocol/client, pinned in package.json)
// against a gateway, in each negotiation mode: connect, list the tools (the client compiles
// every output schema with ajv), call a tool (its structuredContent is validated against
// the published output schema), a failing call, a missing resource, the prompts methods.
//
//   MCP_URL=<gateway>/ MCP_TOKEN=<access token> node devtools/ts_client_smoke.mjs
//
// Prints one line per mode, "RESULT <json>": what the client saw (errors as {code, message}).
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";

const url = new URL(process.env.MCP_URL);
const headers = { Authorization: `Bearer ${process.env.MCP_TOKEN}` };

async function outcome(promise) {
  try {
    return { ok: await promise };
  } catch (error) {
    return { error: { name: error.constructor?.name ?? null, code: error.code ?? null, message: String(error.message ?? error) } };
  }
}

for (const mode of ["legacy", "auto", { pin: "2026-07-28" }]) {
  const client = new Client({ name: "ts-v2-smoke", version: "1.0.0" }, { versionNegotiation: { mode } });
  const transport = new StreamableHTTPClientTransport(url, { requestInit: { headers } });
  const seen = { mode: typeof mode === "string" ? mode : `pin ${mode.pin}` };
  try {
    await client.connect(transport);
    seen.protocolVersion = client.getNegotiatedProtocolVersion?.() ?? transport.protocolVersion ?? null;
    seen.capabilities = client.getServerCapabilities() ?? null;
    const tools = (await client.listTools()).tools;
    seen.tools = tools.map((tool) => tool.name).sort();
    const call = await client.callTool({ name: "list_plans", arguments: { site_id: 14, per_page: 2 } });
    seen.call = { isError: call.isError ?? false, structuredContent: call.structuredContent };
    const failed = await client.callTool({ name: "get_plan", arguments: { site_id: 999999, plan_id: 1 } });
    seen.failure = { isError: failed.isError ?? false, structuredContent: failed.structuredContent };
    seen.missingResource = await outcome(client.readResource({ uri: "pelcro://exports/424242" }));
    seen.listPrompts = await outcome(client.listPrompts());
  } catch (error) {
    seen.fatal = { code: error.code ?? null, message: String(error.stack ?? error) };
  } finally {
    await client.close().catch(() => {});
  }
  console.log(`RESULT ${JSON.stringify(seen)}`);
}
