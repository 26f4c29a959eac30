// Packs this repository's packages and installs them into fresh apps the way a user would:
// shared by scripts/install-size.ts and test/consumers.test.ts.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, lstatSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file runs from dist/scripts/). */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The packages this repository publishes: the root and its workspaces. */
export const PACKAGES = ['metrics-exporter-tcp', 'metrics-exporter-tcp-observer', 'metrics-exporter-tcp-relay'] as const;
export type PackageName = (typeof PACKAGES)[number];

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The environment for a child npm or node: without the `npm_*` variables of an npm that runs
 * us (they would point the child at this repository's config and workspaces) and without the
 * test runner's marker.
 */
export function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^npm_/i.test(k) && k !== 'NODE_TEST_CONTEXT') env[k] = v;
  }
  return env;
}

/** Runs `command args` in `cwd` and collects its output; never rejects on a non-zero exit. */
export function run(command: string, args: readonly string[], cwd: string, timeoutMs = 120_000): Promise<Run> {
  const child = spawn(command, args, { cwd, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Like {@link run}, but rejects with the output when the exit code is not 0. */
export async function runOk(command: string, args: readonly string[], cwd: string, timeoutMs?: number): Promise<Run> {
  const r = await run(command, args, cwd, timeoutMs);
  if (r.code !== 0) throw new Error(`${command} ${args.join(' ')} (in ${cwd}) exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r;
}

/**
 * Packs every package (as `npm publish` would, from what the last build left in lib/ and
 * dist/; no script runs) into `dest`; returns each tarball's path.
 */
export async function packAll(dest: string): Promise<Record<PackageName, string>> {
  // The published workspaces by name (not --workspaces: test/runtimes is a workspace too, never published).
  const workspaces = PACKAGES.filter((name) => name !== 'metrics-exporter-tcp').flatMap((name) => ['--workspace', name]);
  const r = await runOk('npm', ['pack', '--ignore-scripts', '--json', ...workspaces, '--include-workspace-root', '--pack-destination', dest], ROOT);
  const packed = JSON.parse(r.stdout) as { name: PackageName; filename: string }[];
  const out = {} as Record<PackageName, string>;
  for (const p of packed) out[p.name] = join(dest, p.filename);
  for (const name of PACKAGES) if (out[name] === undefined) throw new Error(`npm pack made no tarball for ${name}`);
  return out;
}

/**
 * `name@version` as the root's devDependencies pin it, for installing into an app the same
 * version this repository builds and tests with (e.g. `@types/node`, `@opentelemetry/api`).
 */
export function pinnedSpec(name: string): string {
  const { devDependencies } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
  const version = devDependencies[name];
  if (version === undefined) throw new Error(`${name} is not a devDependency of the root package`);
  return `${name}@${version}`;
}

/** A new empty app (`package.json` only) in a temporary folder. */
export function emptyApp(prefix: string, manifest: Record<string, unknown> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ name: 'app', version: '1.0.0', private: true, ...manifest }, null, 2)}\n`);
  return dir;
}

/**
 * `npm install specs…` in `app`. With `offline`, what the npm cache holds is used first (after
 * `npm ci` it holds everything this repository locks), so a warm cache needs no network.
 */
export function install(app: string, specs: readonly string[], offline = true): Promise<Run> {
  return runOk('npm', ['install', ...(offline ? ['--prefer-offline'] : []), '--no-audit', '--no-fund', ...specs], app);
}

export interface InstallFigures {
  /** Packages in the app's node_modules (the installed ones and their dependencies). */
  packages: number;
  /** The sizes of every file under node_modules, summed. */
  bytes: number;
  /**
   * Packages with a script npm runs when installing them: preinstall, install, postinstall (or
   * a gyp build), and prepare for a package that does not come from a registry (a tarball).
   */
  installScripts: string[];
}

const INSTALL_SCRIPTS = ['preinstall', 'install', 'postinstall'];

/** What an install put into `app`, read from npm's own record of the tree. */
export function measure(app: string): InstallFigures {
  const lock = JSON.parse(readFileSync(join(app, 'node_modules', '.package-lock.json'), 'utf8')) as {
    packages: Record<string, { link?: boolean; hasInstallScript?: boolean; resolved?: string }>;
  };
  const entries = Object.entries(lock.packages).filter(([path, p]) => path.startsWith('node_modules/') && p.link !== true);
  const installScripts = entries
    .filter(([path, p]) => {
      const { scripts = {} } = JSON.parse(readFileSync(join(app, path, 'package.json'), 'utf8')) as { scripts?: Record<string, string> };
      const fromRegistry = p.resolved === undefined || /^https?:/.test(p.resolved);
      return p.hasInstallScript === true || INSTALL_SCRIPTS.some((s) => s in scripts) || (!fromRegistry && 'prepare' in scripts);
    })
    .map(([path]) => path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length));
  return { packages: entries.length, bytes: treeBytes(join(app, 'node_modules')), installScripts };
}

function treeBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += treeBytes(path);
    else total += lstatSync(path).size;
  }
  return total;
}

/** `bytes` in MB (10^6 bytes), one decimal. */
export function mb(bytes: number): string {
  return (bytes / 1e6).toFixed(1);
}
