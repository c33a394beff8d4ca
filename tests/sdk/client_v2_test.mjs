// The v2 MCP TypeScript SDK client (@modelcontextprotocol/client, pinned in package.json)
// against the built keypool-mcp binary, in the MCP 2026-07-28 ("modern") era.
//
//   node client_v2_test.mjs <keypool-mcp> <mock-upstream>
//
// For each negotiation mode the SDK offers a 2026-07-28 client:
//   - modern: versionNegotiation { pin: '2026-07-28' } (what the Inspector's
//     `--protocol-era modern` does): the server/discover probe must offer 2026-07-28;
//   - auto: versionNegotiation 'auto': probe, modern if the server says so, else initialize;
//   - auto with a newer revision offered first (supportedProtocolVersions 2027-01-01,
//     2026-07-28, 2025-11-25): the server's -32022 lists what it supports and the SDK
//     retries the probe with 2026-07-28;
//   - legacy (the v2 default): the plain initialize handshake, as a 2025 client.
// it spawns the server over stdio with the mock upstream (key 1 answers 429 once),
// connects, checks the era, the discover result and the instructions, lists the tools
// (the SDK checks resultType, ttlMs and cacheScope), calls key_status and complete (a
// failover from the rate-limited key), and in modern mode checks that a request for an
// unknown revision comes back as the SDK's UnsupportedProtocolVersionError. Every message
// must parse (the SDK reports anything else through onerror) and no canary key may be
// seen on stdout or stderr. Exit 0 when all passed, 1 otherwise, 77 if not installed.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

let Client;
let StdioClientTransport;
let UnsupportedProtocolVersionError;
try {
  ({ Client, UnsupportedProtocolVersionError } = await import('@modelcontextprotocol/client'));
  ({ StdioClientTransport } = await import('@modelcontextprotocol/client/stdio'));
} catch (err) {
  console.log(`SKIPPED: sdk_client_v2_test: @modelcontextprotocol/client is not installed (run \`npm ci\` in tests/sdk): ${err.message}`);
  process.exit(77);
}

const CANARY_1 = 'sk-canary-Ka7Qz2XwLp9Rt4VbNcAA1111';
const CANARY_2 = 'sk-canary-Mb3Wy8UvJq5Ps1TdHeBB2222';
const CANARIES = [CANARY_1, CANARY_2];
// Registration order: the order tools/list gives on every call (a fixed order, for caches).
const TOOL_ORDER = ['complete', 'key_status', 'check_keys', 'list_models'];
const MODERN = '2026-07-28';
const STEP_TIMEOUT_MS = 10000;

const MODES = [
  { name: 'modern (pin 2026-07-28)', options: { versionNegotiation: { mode: { pin: MODERN } } }, era: 'modern' },
  { name: 'auto', options: { versionNegotiation: { mode: 'auto' } }, era: 'modern' },
  {
    name: 'auto, offering 2027-01-01 first (-32022 corrects it)',
    options: { versionNegotiation: { mode: 'auto' }, supportedProtocolVersions: ['2027-01-01', MODERN, '2025-11-25'] },
    era: 'modern',
  },
  { name: 'legacy (the v2 default)', options: {}, era: 'legacy' },
];

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

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
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

/** Starts mock-upstream; resolves with { child, port } once it printed {"port": N}. */
function startMock() {
  return withTimeout(new Promise((resolve, reject) => {
    const child = spawn(mockPath, [], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`mock-upstream exited with ${code}`)));
    createInterface({ input: child.stdout }).once('line', (line) => {
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

async function script(port, key, steps) {
  const res = await fetch(`http://127.0.0.1:${port}/_mock/script`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ key, steps }),
    signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
  });
  assert(res.ok, `POST /_mock/script: ${res.status} ${await res.text()}`);
}

function configYaml(port) {
  return ['providers:', '  openai:', '    type: openai', `    baseUrl: http://127.0.0.1:${port}/v1`,
    '    model: gpt-mock', '    apiKey:', `      - "${CANARY_1}"`, `      - key: "${CANARY_2}"`,
    '        name: personal', '    failover:', '      backoffMs: 1', ''].join('\n');
}

/** One mode: a fresh keypool-mcp (and, in auto/pin mode, the SDK's probe sibling). */
async function runMode(mode, port, dir) {
  const configPath = join(dir, 'config.yaml');
  writeFileSync(configPath, configYaml(port));
  const transport = new StdioClientTransport({
    command: binary,
    args: ['--config', configPath, '--log-level', 'debug'],
    env: { HOME: dir, XDG_CONFIG_HOME: join(dir, '.config') },
    stderr: 'pipe',
  });
  const session = { messages: [], errors: [], stderr: '' };
  transport.stderr.on('data', (chunk) => { session.stderr += chunk.toString(); });
  transport.onmessage = (message) => { session.messages.push(JSON.stringify(message)); };
  transport.onerror = (error) => { session.errors.push(String(error?.message ?? error)); };
  const client = new Client({ name: 'kpm-sdk-v2-test', version: '0.0.1' }, mode.options);
  const label = (what) => `${mode.name}: ${what}`;
  let connected = false;
  try {
    await check(label(`connect negotiates the ${mode.era} era`), async () => {
      await script(port, CANARY_1, ['429:retry-after=2']);
      await withTimeout(client.connect(transport), STEP_TIMEOUT_MS, 'connect');
      connected = true;
      assert(client.getProtocolEra() === mode.era, `era ${client.getProtocolEra()}`);
      const version = client.getNegotiatedProtocolVersion();
      assert(mode.era === 'modern' ? version === MODERN : version === '2025-11-25', `version ${version}`);
      assert(client.getServerVersion()?.name === 'keypool-mcp', `serverInfo ${JSON.stringify(client.getServerVersion())}`);
      assert((client.getInstructions() ?? '').includes('key_status'), `instructions ${client.getInstructions()}`);
      assert(client.getServerCapabilities()?.tools, `capabilities ${JSON.stringify(client.getServerCapabilities())}`);
      if (mode.era === 'modern') {
        const d = client.getDiscoverResult();
        assert(JSON.stringify(d?.supportedVersions) === JSON.stringify([MODERN]), `discover ${JSON.stringify(d)}`);
        assert(Number.isInteger(d.ttlMs) && d.ttlMs >= 0 && ['public', 'private'].includes(d.cacheScope),
          `discover cache hint ${JSON.stringify(d)}`);
      }
    });
    if (!connected) return;

    await check(label('listTools gives the four tools in a fixed order'), async () => {
      const { tools } = await client.listTools(undefined, { timeout: STEP_TIMEOUT_MS });
      const names = tools.map((t) => t.name);
      assert(JSON.stringify(names) === JSON.stringify(TOOL_ORDER), `tool names: ${names}`);
      for (const t of tools) {
        assert(t.inputSchema?.type === 'object' && t.outputSchema?.type === 'object', `${t.name} schemas`);
        assert(typeof t.annotations?.readOnlyHint === 'boolean', `${t.name} annotations`);
      }
    });

    await check(label('callTool key_status'), async () => {
      const result = await client.callTool({ name: 'key_status', arguments: {} }, { timeout: STEP_TIMEOUT_MS });
      assert(!result.isError, `isError: ${JSON.stringify(result)}`);
      const keys = result.structuredContent?.providers?.[0]?.keys ?? [];
      const labels = keys.map((k) => `${k.label}=${k.state}`).sort();
      assert(JSON.stringify(labels) === JSON.stringify(['openai#1=ready', 'personal=ready']), `keys: ${labels}`);
    });

    await check(label('callTool complete fails over from the rate-limited key'), async () => {
      const result = await client.callTool({ name: 'complete', arguments: { prompt: 'hi' } }, { timeout: STEP_TIMEOUT_MS });
      assert(!result.isError, `isError: ${JSON.stringify(result)}`);
      const text = result.content?.[0]?.text ?? '';
      assert(text === 'Hello from the mock upstream.', `text: ${JSON.stringify(text)}`);
      const outcomes = (result.structuredContent?.attempts ?? []).map((a) => a.outcome);
      assert(JSON.stringify(outcomes) === JSON.stringify(['rate_limited', 'ok']), `attempts: ${outcomes}`);
      assert(String(result.structuredContent.key).includes('personal'), `answered by ${result.structuredContent.key}`);
    });

    if (mode.era === 'modern') {
      await check(label('a request for an unknown revision is UnsupportedProtocolVersionError (-32022)'), async () => {
        let error;
        try {
          await client.listTools({ _meta: { 'io.modelcontextprotocol/protocolVersion': '2099-01-01' } },
            { timeout: STEP_TIMEOUT_MS, cacheMode: 'refresh' });
        } catch (err) {
          error = err;
        }
        assert(error instanceof UnsupportedProtocolVersionError, `got ${error?.constructor?.name}: ${error?.message}`);
        assert(error.code === -32022 && error.requested === '2099-01-01', `error ${JSON.stringify(error.data)}`);
        assert(error.supported.includes(MODERN) && error.supported.includes('2025-11-25'), `supported ${error.supported}`);
      });
    }

    await check(label('close, clean transcript'), async () => {
      await client.close();
      assert(session.errors.length === 0, `transport/protocol errors: ${session.errors.join('; ')}`);
      const results = session.messages.filter((m) => m.includes('"result"'));
      assert(results.length > 0, 'no results recorded');
      for (const m of results) {
        const hasType = m.includes('"resultType":"complete"');
        assert(mode.era === 'modern' ? hasType : !hasType, `resultType on a ${mode.era} reply: ${m.slice(0, 200)}`);
      }
      const out = findSecret(session.messages.join('\n'));
      assert(out === null, `key material on stdout: ${out}`);
      const err = findSecret(session.stderr);
      assert(err === null, `key material on stderr: ${err}`);
    });
  } finally {
    await client.close().catch(() => {});
  }
}

async function main() {
  if (!binary || !existsSync(binary)) {
    console.log(`sdk_client_v2_test: keypool-mcp binary not found: ${binary}`);
    process.exit(1);
  }
  if (!mockPath || !existsSync(mockPath)) {
    console.log(`sdk_client_v2_test: mock-upstream binary not found: ${mockPath}`);
    process.exit(1);
  }
  const mock = await startMock();
  try {
    for (const mode of MODES) {
      const dir = mkdtempSync(join(tmpdir(), 'kpm-sdk-v2-'));
      try {
        await runMode(mode, mock.port, dir);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  } finally {
    mock.child.kill('SIGKILL');
  }
  console.log(`sdk_client_v2_test: ${passed} passed, ${failed} failed`);
  process.exit(failed === 0 && passed > 0 ? 0 : 1);
}

main().catch((err) => {
  console.log(`sdk_client_v2_test: crashed: ${err?.stack ?? err}`);
  process.exit(1);
});
