// The official MCP TypeScript SDK client against the built keypool-mcp binary.
//
//   node client_test.mjs <keypool-mcp> [<mock-upstream>]
//
// Part 1 (always): spawn the server over stdio with a canary-key config, connect
// (initialize + initialized), listTools (the SDK validates the schemas), callTool
// key_status (the SDK validates structuredContent against outputSchema), ping, close.
// Part 2 (when mock-upstream is given and exists): a real failover through the mock:
// key 1 answers 429 with Retry-After, `complete` succeeds on key 2, then check_keys.
// Every message must parse (the SDK reports anything else through onerror), and no
// canary key may appear on stdout or stderr. Exit 0 when all passed, 1 otherwise.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

// Imported dynamically so a missing `npm ci` is reported as such (exit 77: ctest's
// SKIP_RETURN_CODE if the test sets it, a failure otherwise), not as a stack trace.
let Client;
let StdioClientTransport;
try {
  ({ Client } = await import('@modelcontextprotocol/sdk/client/index.js'));
  ({ StdioClientTransport } = await import('@modelcontextprotocol/sdk/client/stdio.js'));
} catch (err) {
  console.log(`SKIPPED: sdk_client_test: @modelcontextprotocol/sdk is not installed (run \`npm ci\` in tests/sdk): ${err.message}`);
  process.exit(77);
}

const CANARY_1 = 'sk-canary-Ka7Qz2XwLp9Rt4VbNcAA1111';
const CANARY_2 = 'sk-canary-Mb3Wy8UvJq5Ps1TdHeBB2222';
const CANARY_3 = 'sk-canary-Pc5Xz1RsTk8Lm2QwJfCC3333';
const CANARIES = [CANARY_1, CANARY_2, CANARY_3];
const UNSET_VAR = 'KPM_TEST_UNSET_VAR';
const TOOL_NAMES = ['check_keys', 'complete', 'key_status', 'list_models'];
const STEP_TIMEOUT_MS = 10000;

const [binary, mockPath] = process.argv.slice(2);
let passed = 0;
let failed = 0;

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

/** The whole key and its middle 12 characters must never be seen (SPEC §4). */
function findSecret(text) {
  for (const key of CANARIES) {
    const middle = key.slice((key.length - 12) / 2, (key.length - 12) / 2 + 12);
    for (const needle of [key, middle]) if (text.includes(needle)) return needle;
  }
  return null;
}

async function check(name, fn) {
  try {
    await withTimeout(fn(), STEP_TIMEOUT_MS * 2, name);
    passed++;
    console.log(`ok   ${name}`);
  } catch (err) {
    failed++;
    console.log(`FAIL ${name}: ${err?.stack ?? err}`);
  }
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function yamlConfig(baseUrl, model, keys) {
  const lines = ['providers:', '  openai:', '    type: openai', `    baseUrl: ${baseUrl}`, `    model: ${model}`,
    '    apiKey:'];
  for (const k of keys) {
    if (typeof k === 'string') lines.push(`      - "${k}"`);
    else lines.push(`      - key: "${k.key}"`, `        name: ${k.name}`);
  }
  lines.push('    failover:', '      backoffMs: 1');
  return lines.join('\n') + '\n';
}

/** Starts keypool-mcp through the SDK; records every message and stderr. */
async function connect(configText, dir) {
  const configPath = join(dir, 'config.yaml');
  writeFileSync(configPath, configText);
  const transport = new StdioClientTransport({
    command: binary,
    args: ['--config', configPath, '--log-level', 'debug'],
    env: { HOME: dir, XDG_CONFIG_HOME: join(dir, '.config') },
    stderr: 'pipe',
  });
  const session = { transport, messages: [], errors: [], stderr: '' };
  transport.stderr.on('data', (chunk) => { session.stderr += chunk.toString(); });
  // Set before connect: the SDK chains its own handlers after these.
  transport.onmessage = (message) => { session.messages.push(JSON.stringify(message)); };
  transport.onerror = (error) => { session.errors.push(String(error?.message ?? error)); };
  const client = new Client({ name: 'kpm-sdk-client-test', version: '0.0.1' });
  await withTimeout(client.connect(transport), STEP_TIMEOUT_MS, 'connect');
  session.client = client;
  return session;
}

function checkTranscript(session) {
  assert(session.errors.length === 0, `transport/protocol errors: ${session.errors.join('; ')}`);
  const out = findSecret(session.messages.join('\n'));
  assert(out === null, `key material on stdout: ${out}`);
  const err = findSecret(session.stderr);
  assert(err === null, `key material on stderr: ${err}`);
}

function keysOf(result) {
  const sc = result.structuredContent;
  assert(sc && Array.isArray(sc.providers), `structuredContent.providers missing: ${JSON.stringify(result)}`);
  assert(sc.providers.length === 1, `expected one provider, got ${sc.providers.length}`);
  const p = sc.providers[0];
  assert(p.name === 'openai' && p.type === 'openai', `provider name/type: ${JSON.stringify(p)}`);
  assert(Array.isArray(p.keys) && p.keys.length === 3, `expected 3 keys: ${JSON.stringify(p.keys)}`);
  for (const k of p.keys) {
    assert(typeof k.label === 'string' && typeof k.fingerprint === 'string', `key shape: ${JSON.stringify(k)}`);
    assert(['ready', 'cooling_down', 'disabled'].includes(k.state), `key state: ${JSON.stringify(k)}`);
    assert(k.fingerprint.length > 0, `empty fingerprint: ${JSON.stringify(k)}`);
  }
  return Object.fromEntries(p.keys.map((k) => [k.label, k]));
}

async function partStdio() {
  const dir = mkdtempSync(join(tmpdir(), 'kpm-sdk-'));
  let session;
  try {
    await check('connect (initialize + notifications/initialized)', async () => {
      session = await connect(
        yamlConfig('http://127.0.0.1:9/v1', 'gpt-test',
          [CANARY_1, { key: CANARY_2, name: 'personal' }, `$${UNSET_VAR}`]),
        dir);
    });
    if (!session) return;
    const { client } = session;

    await check('listTools returns the four tools with valid schemas', async () => {
      const { tools } = await client.listTools(undefined, { timeout: STEP_TIMEOUT_MS });
      const names = tools.map((t) => t.name).sort();
      assert(JSON.stringify(names) === JSON.stringify(TOOL_NAMES), `tool names: ${names}`);
      for (const t of tools) {
        assert(t.inputSchema?.type === 'object', `${t.name} inputSchema`);
        assert(t.outputSchema?.type === 'object', `${t.name} outputSchema`);
      }
    });

    await check('callTool key_status gives labels, fingerprints and states', async () => {
      const result = await client.callTool({ name: 'key_status', arguments: {} }, undefined,
        { timeout: STEP_TIMEOUT_MS });
      assert(!result.isError, `isError: ${JSON.stringify(result)}`);
      const keys = keysOf(result);
      assert(keys['openai#1']?.state === 'ready', `openai#1: ${JSON.stringify(keys['openai#1'])}`);
      assert(keys['openai#1'].fingerprint.endsWith('\u20261111'), `fingerprint ${keys['openai#1'].fingerprint}`);
      assert(keys.personal?.state === 'ready', `personal: ${JSON.stringify(keys.personal)}`);
      assert(keys.personal.fingerprint.endsWith('\u20262222'), `fingerprint ${keys.personal.fingerprint}`);
      assert(keys['openai#3']?.state === 'disabled', `openai#3: ${JSON.stringify(keys['openai#3'])}`);
      assert((keys['openai#3'].reason ?? '').includes(UNSET_VAR), `reason: ${keys['openai#3'].reason}`);
      assert(result.content?.[0]?.type === 'text', 'text content');
    });

    await check('ping', async () => {
      await client.ping({ timeout: STEP_TIMEOUT_MS });
    });

    await check('close, clean transcript', async () => {
      await client.close();
      checkTranscript(session);
    });
  } finally {
    if (session) await session.client?.close().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Starts mock-upstream; resolves with { child, port } once it printed {"port": N}. */
function startMock() {
  return withTimeout(new Promise((resolve, reject) => {
    const child = spawn(mockPath, [], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`mock-upstream exited with ${code}`)));
    const lines = createInterface({ input: child.stdout });
    lines.once('line', (line) => {
      try {
        const { port } = JSON.parse(line);
        assert(Number.isInteger(port) && port > 0, `bad port line: ${line}`);
        resolve({ child, port });
      } catch (err) {
        reject(new Error(`mock-upstream first line is not {"port": N}: ${line} (${err})`));
      }
    });
    child.stderr.resume();
  }), STEP_TIMEOUT_MS, 'mock-upstream start');
}

async function partMock() {
  if (!mockPath || !existsSync(mockPath)) {
    console.log(`SKIPPED: failover through mock-upstream (no mock-upstream binary${mockPath ? ` at ${mockPath}` : ''})`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'kpm-sdk-mock-'));
  let mock;
  let session;
  try {
    await check('mock-upstream starts and takes a script', async () => {
      mock = await startMock();
      const res = await fetch(`http://127.0.0.1:${mock.port}/_mock/script`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ key: CANARY_1, steps: ['429:retry-after=2'] }),
        signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
      });
      assert(res.ok, `POST /_mock/script: ${res.status} ${await res.text()}`);
      session = await connect(
        yamlConfig(`http://127.0.0.1:${mock.port}/v1`, 'gpt-mock',
          [CANARY_1, { key: CANARY_2, name: 'personal' }, CANARY_3]),
        dir);
    });
    if (!session) return;
    const { client } = session;

    await check('complete fails over from a rate-limited key and answers', async () => {
      const result = await client.callTool({ name: 'complete', arguments: { prompt: 'hi' } }, undefined,
        { timeout: STEP_TIMEOUT_MS });
      assert(!result.isError, `isError: ${JSON.stringify(result)}`);
      const text = result.content?.[0]?.text ?? '';
      assert(text.length > 0, `no text: ${JSON.stringify(result)}`);
      const sc = result.structuredContent;
      assert(sc?.text === text, `structuredContent.text ${JSON.stringify(sc?.text)} != ${JSON.stringify(text)}`);
      const outcomes = (sc.attempts ?? []).map((a) => a.outcome);
      assert(JSON.stringify(outcomes) === JSON.stringify(['rate_limited', 'ok']), `attempts: ${JSON.stringify(sc.attempts)}`);
      assert(String(sc.key).includes('personal'), `answered by ${sc.key}`);
    });

    await check('check_keys returns the key_status shape', async () => {
      const result = await client.callTool({ name: 'check_keys', arguments: {} }, undefined,
        { timeout: STEP_TIMEOUT_MS });
      assert(!result.isError, `isError: ${JSON.stringify(result)}`);
      const keys = keysOf(result);
      assert(keys.personal && keys['openai#1'] && keys['openai#3'], `labels: ${Object.keys(keys)}`);
    });

    await check('close, clean transcript (mock)', async () => {
      await client.close();
      checkTranscript(session);
    });
  } finally {
    if (session) await session.client?.close().catch(() => {});
    mock?.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main() {
  if (!binary || !existsSync(binary)) {
    console.log(`sdk_client_test: keypool-mcp binary not found: ${binary}`);
    process.exit(1);
  }
  await partStdio();
  await partMock();
  console.log(`sdk_client_test: ${passed} passed, ${failed} failed`);
  process.exit(failed === 0 && passed > 0 ? 0 : 1);
}

main().catch((err) => {
  console.log(`sdk_client_test: crashed: ${err?.stack ?? err}`);
  process.exit(1);
});
