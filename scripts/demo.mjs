// The demo: the server against the bundled mock upstream, showing a failover.
// Usage: node scripts/demo.mjs <keypool-mcp> <mock-upstream>
import { execFileSync, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const req = createRequire(path.join(root, 'tests/sdk/package.json'));
const { Client } = await import(req.resolve('@modelcontextprotocol/sdk/client/index.js'));
const { StdioClientTransport } = await import(req.resolve('@modelcontextprotocol/sdk/client/stdio.js'));

const [serverBin, mockBin] = process.argv.slice(2).map((p) => path.resolve(p));
const bold = (s) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const dim = (s) => (process.stdout.isTTY ? `\x1b[2m${s}\x1b[0m` : s);
const say = (s = '') => console.log(s);

// 1. The mock upstream on an ephemeral loopback port.
const mock = spawn(mockBin, ['--port', '0'], { stdio: ['pipe', 'pipe', 'ignore'] });
const port = await new Promise((resolve, reject) => {
  const rl = readline.createInterface({ input: mock.stdout });
  rl.once('line', (line) => resolve(JSON.parse(line).port));
  mock.once('exit', (code) => reject(new Error(`mock-upstream exited with ${code}`)));
  setTimeout(() => reject(new Error('mock-upstream did not start')), 10000);
});
const base = `http://127.0.0.1:${port}`;
const control = async (p, body) => {
  const r = await fetch(base + p, body ? { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {});
  return r.json();
};

// 2. Three keys: the first is rate limited (Retry-After: 30), the second revoked, the third good.
const keys = {
  personal: 'sk-demo-personal-0000000000000000a1b2',
  old: 'sk-demo-oldteam-00000000000000000c3d4',
  reseller: 'sk-demo-reseller-0000000000000000e5f6',
};
await control('/_mock/script', { key: keys.personal, steps: ['429:retry-after=30'] });
await control('/_mock/default', { key: keys.old, step: '401' });

const dir = mkdtempSync(path.join(tmpdir(), 'keypool-demo-'));
const config = path.join(dir, 'config.yaml');
writeFileSync(config, `# three keys for one provider; key state shared by every server process on one file
state: { type: sqlite, path: ${path.join(dir, 'state.db')} }
providers:
  openai:
    type: openai
    baseUrl: ${base}/v1
    model: gpt-4o-mini
    apiKey:
      - { key: ${keys.personal}, name: personal }
      - { key: ${keys.old}, name: old-team }
      - { key: ${keys.reseller}, name: reseller }
`);

say(bold('keypool-mcp demo'));
say(`mock upstream on ${base}; config ${config}:`);
say(dim('  personal  -> will answer 429 Retry-After: 30'));
say(dim('  old-team  -> revoked: answers 401'));
say(dim('  reseller  -> good'));
say();

// 3. The server, spoken to by the official MCP TypeScript SDK over stdio.
const transport = new StdioClientTransport({ command: serverBin, args: ['--config', config], stderr: 'pipe' });
const logLines = [];
transport.stderr.on('data', (d) => {
  for (const l of d.toString().split('\n')) if (l.trim()) logLines.push(l);
});
const client = new Client({ name: 'keypool-demo', version: '1.0.0' });
await client.connect(transport);
say(`${bold('initialize')} -> ${client.getServerVersion().name} ${client.getServerVersion().version}`);
const tools = await client.listTools();
say(`${bold('tools/list')} -> ${tools.tools.map((t) => t.name).join(', ')}`);

const showCall = (title, res) => {
  say();
  say(bold(title));
  if (res.isError) say(`  error: ${res.content[0].text}`);
  else say(`  answer: ${JSON.stringify(res.structuredContent.text)} (key ${res.structuredContent.key})`);
  for (const a of res.structuredContent.attempts) {
    say(`  attempt: ${a.key.padEnd(24)} ${a.outcome.padEnd(14)} ${dim(a.message ?? '')}`);
  }
};

let res = await client.callTool({ name: 'complete', arguments: { prompt: 'Say hello.' } });
showCall('complete #1', res);
say();
say(bold('server log (stderr): each key switch'));
for (const l of logLines.filter((l) => l.includes('→') || l.includes('->'))) say(`  ${l}`);

const status = await client.callTool({ name: 'key_status', arguments: {} });
say();
say(bold('key_status'));
for (const l of status.content[0].text.trimEnd().split('\n')) say(`  ${l}`);

const before = (await control('/_mock/requests')).length;
res = await client.callTool({ name: 'complete', arguments: { prompt: 'And again.' } });
showCall('complete #2', res);
const seen = (await control('/_mock/requests')).slice(before).map((r) => r.key_fingerprint);
say(`  the upstream saw ${seen.length} request(s) for call #2: ${seen.join(', ')}`);
const straight = res.structuredContent.attempts.length === 1 && res.structuredContent.key.startsWith('reseller');
say(straight ? bold('  -> the second call went straight to the good key: no round trip spent on known-bad keys.')
             : bold('  -> UNEXPECTED: the second call did not go straight to the good key'));

await client.close();

// 4. Another agent session spawns its own server: it shares the first one's key state.
const transport2 = new StdioClientTransport({ command: serverBin, args: ['--config', config], stderr: 'pipe' });
const client2 = new Client({ name: 'keypool-demo-2', version: '1.0.0' });
await client2.connect(transport2);
const before2 = (await control('/_mock/requests')).length;
const res2 = await client2.callTool({ name: 'complete', arguments: { prompt: 'Hello from a second agent.' } });
showCall('complete from a second server process (another agent session)', res2);
const seen2 = (await control('/_mock/requests')).slice(before2).map((r) => r.key_fingerprint);
say(`  the upstream saw ${seen2.length} request(s): ${seen2.join(', ')}`);
const shared = res2.structuredContent.attempts.length === 1 && res2.structuredContent.key.startsWith('reseller');
say(shared ? bold('  -> a new process knew key 1 is cooling and key 2 revoked: shared state, no rediscovery.')
           : bold('  -> UNEXPECTED: the second process tried known-bad keys'));
await client2.close();

say();
say(bold('keypool-mcp status') + dim(' (a third process, reading the shared state)'));
const table = execFileSync(serverBin, ['status', '--config', config], { encoding: 'utf8' });
for (const l of table.trimEnd().split('\n')) say(`  ${l}`);

mock.kill('SIGTERM');
process.exit(straight && shared && !res.isError && !res2.isError ? 0 : 1);
