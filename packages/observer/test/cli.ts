// Runs the observer's CLI as a user would, from its compiled entry point.
import { spawn } from 'node:child_process';

/** Runs `observe` with `args`; resolves with its exit code and what it printed. */
export function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [new URL('../src/cli.js', import.meta.url).pathname, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
}
