// The TypeScript MCP SDK v2 client (@modelcontextprotocol/client) as a subscriber's app on the
// Open server: it runs the OAuth flow itself (discovery, DCR, PKCE, the code exchange), with
// the person's part (publication, sign-in, consent) done by whoever reads its stdout; then it
// lists the subscriber's subscriptions, cancels the first active one at the period's end and
// lists them again.
//
//   MCP_URL=<gateway>/open MCP_MODE=legacy|2026-07-28 REDIRECT_URI=<loopback callback> \
//     node devtools/ts_open_client.mjs
//
// Prints "AUTHORIZE <url>" when the person must sign in, then waits for one stdin line
// "CALLBACK <query of the redirect>" (code, state, iss); prints "RESULT <json>" at the end.
import readline from "node:readline";
import { Client, StreamableHTTPClientTransport, UnauthorizedError } from "@modelcontextprotocol/client";

const url = new URL(process.env.MCP_URL);
const mode = process.env.MCP_MODE === "legacy" ? "legacy" : { pin: process.env.MCP_MODE };
const redirectUrl = process.env.REDIRECT_URI;
const stored = {};
const provider = {
  get redirectUrl() { return redirectUrl; },
  get clientMetadata() {
    return {
      client_name: `typescript-sdk-v2-${process.env.MCP_MODE}`,
      redirect_uris: [redirectUrl],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  },
  clientInformation() { return stored.client; },
  saveClientInformation(information) { stored.client = information; },
  tokens() { return stored.tokens; },
  saveTokens(tokens) { stored.tokens = tokens; },
  redirectToAuthorization(authorizationUrl) { console.log(`AUTHORIZE ${authorizationUrl.href}`); },
  saveCodeVerifier(verifier) { stored.verifier = verifier; },
  codeVerifier() { return stored.verifier; },
};

const input = readline.createInterface({ input: process.stdin });
const nextLine = () => new Promise((resolve) => input.once("line", resolve));

function newClient() {
  const client = new Client({ name: "ts-v2-open", version: "1.0.0" }, { versionNegotiation: { mode } });
  const transport = new StreamableHTTPClientTransport(url, { authProvider: provider });
  return { client, transport };
}

const seen = { mode: process.env.MCP_MODE };
let { client, transport } = newClient();
try {
  try {
    await client.connect(transport);
    seen.tools = (await client.listTools()).tools.map((tool) => tool.name).sort();
  } catch (error) {
    if (!(error instanceof UnauthorizedError)) throw error;
    const line = await nextLine();
    await transport.finishAuth(new URLSearchParams(line.replace(/^CALLBACK /, "")));
    await client.close().catch(() => {});
    ({ client, transport } = newClient());
    await client.connect(transport);
    seen.tools = (await client.listTools()).tools.map((tool) => tool.name).sort();
  }
  seen.protocolVersion = client.getNegotiatedProtocolVersion?.() ?? transport.protocolVersion ?? null;
  seen.scope = stored.tokens?.scope ?? null;
  const before = await client.callTool({ name: "list_my_subscriptions", arguments: {} });
  seen.before = { isError: before.isError ?? false, structuredContent: before.structuredContent };
  const target = before.structuredContent.subscriptions.find(
    (subscription) => subscription.status === "active" && !subscription.cancel_at_period_end,
  );
  const canceled = await client.callTool({
    name: "cancel_my_subscription",
    arguments: { subscription_id: target.id, mode: "last_period_end", reason: "Trying another publication" },
  });
  seen.canceled = { isError: canceled.isError ?? false, structuredContent: canceled.structuredContent };
  const after = await client.callTool({ name: "list_my_subscriptions", arguments: {} });
  seen.after = { isError: after.isError ?? false, structuredContent: after.structuredContent };
} catch (error) {
  seen.fatal = { code: error.code ?? null, message: String(error.stack ?? error) };
} finally {
  await client.close().catch(() => {});
  input.close();
}
console.log(`RESULT ${JSON.stringify(seen)}`);
