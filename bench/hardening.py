#!/usr/bin/env python3
"""Hardening figures (issue #7), measured through the real binary:

  - start-up with N literal keys: spawn -> initialize answered, and the peak RSS;
  - peak RSS of the server while one attempt meets an endless stream, a 1 GiB line,
    or a 1 GiB non-streamed body (the mock-upstream steps `endless` and `hugeline`).

Usage: bench/hardening.py BUILD_DIR   (BUILD_DIR holds keypool-mcp and tests/mock-upstream)
Bounded: every read has a timeout; loopback only; every process is ended.
"""
import json
import os
import select
import subprocess
import sys
import tempfile
import time


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


class Server:
    def __init__(self, binary, config_text, suffix=".yaml"):
        self.dir = tempfile.TemporaryDirectory()
        path = os.path.join(self.dir.name, "config" + suffix)
        with open(path, "w") as f:
            f.write(config_text)
        os.chmod(path, 0o600)
        self.started = time.monotonic()
        self.p = subprocess.Popen([binary, "--config", path, "--log-level", "warn"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env={**os.environ, "HOME": self.dir.name})
        self.buf = b""

    def send(self, msg):
        self.p.stdin.write((json.dumps(msg) + "\n").encode())
        self.p.stdin.flush()

    def reply(self, want_id, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                msg = json.loads(line)
                if msg.get("id") == want_id:
                    return msg
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no reply to id {want_id}")
            r, _, _ = select.select([self.p.stdout], [], [], left)
            if r:
                chunk = os.read(self.p.stdout.fileno(), 1 << 16)
                if not chunk:
                    raise EOFError("server closed stdout")
                self.buf += chunk

    def initialize(self):
        self.send({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                   "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                              "clientInfo": {"name": "bench", "version": "1"}}})
        self.reply(1)
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return time.monotonic() - self.started

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=10)


def keys_config(n, base_url):
    lines = ["providers:", "  openai:", "    type: openai", "    model: gpt-mock", f"    baseUrl: {base_url}",
             "    apiKey:"]
    lines += [f"      - sk-proj-load{i:08d}QxWvTsRpNmLkJhGfDsAz{i * 7919 % 1000000:06d}" for i in range(n)]
    return "\n".join(lines) + "\n"


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    binary = os.path.join(build, "keypool-mcp")
    mock_bin = os.path.join(build, "tests", "mock-upstream")
    mock = subprocess.Popen([mock_bin, "--exit-on-stdin-eof"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    port = json.loads(mock.stdout.readline())["port"]
    base = f"http://127.0.0.1:{port}"
    try:
        print("start-up with N keys (spawn -> initialize answered), peak RSS")
        for n in (1000, 4000, 16000):
            s = Server(binary, keys_config(n, base + "/v1"))
            t = s.initialize()
            print(f"  {n:6d} keys: {t * 1000:7.1f} ms, peak RSS {peak_rss_kib(s.p.pid) / 1024:6.1f} MiB")
            s.close()

        print("one attempt against a hostile upstream (key 1), then key 2 answers: peak RSS of the server")
        for name, step, stream in (("endless stream", "endless", True), ("1 GiB line, streamed", "hugeline:1073741824", True),
                                   ("1 GiB body, stream: false", "hugeline:1073741824", False)):
            subprocess.run(["curl", "-s", "-X", "POST", f"{base}/_mock/reset"], check=True, stdout=subprocess.DEVNULL)
            subprocess.run(["curl", "-s", "-X", "POST", f"{base}/_mock/script", "-d",
                            json.dumps({"key": "sk-bench-hostile-key-000001", "steps": [step]})], check=True,
                           stdout=subprocess.DEVNULL)
            config = ("providers:\n  openai:\n    type: openai\n    model: gpt-mock\n"
                      f"    baseUrl: {base}/v1\n    stream: {'true' if stream else 'false'}\n"
                      "    timeoutMs: 60000\n    deadlineMs: 90000\n"
                      "    apiKey: [sk-bench-hostile-key-000001, sk-bench-hostile-key-000002]\n")
            s = Server(binary, config)
            s.initialize()
            before = peak_rss_kib(s.p.pid)
            t0 = time.monotonic()
            s.send({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                    "params": {"name": "complete", "arguments": {"prompt": "hi", "max_tokens": 100}}})
            r = s.reply(2, timeout=120)
            took = time.monotonic() - t0
            sc = r["result"].get("structuredContent", {})
            outcomes = [a["outcome"] for a in sc.get("attempts", [])]
            first = sc.get("attempts", [{}])[0].get("message", "")
            print(f"  {name:26s}: {took:5.2f} s, peak RSS {before / 1024:5.1f} -> {peak_rss_kib(s.p.pid) / 1024:5.1f} MiB,"
                  f" attempts {outcomes}, first: {first[:70]}")
            s.close()
    finally:
        mock.stdin.close()
        mock.wait(timeout=10)


if __name__ == "__main__":
    main()
