// `npm run install-size`: what installing each package costs a user, beside prom-client.
// Packs this repository's packages, installs each into a fresh empty app (npm's cache first,
// the registry for what it lacks), and prints packages added, MB on disk and install scripts
// as a Markdown table (the README's figures come from it).
import { execSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { emptyApp, install, mb, measure, packAll, type InstallFigures } from './packaging.js';

interface Row {
  what: string;
  figures: InstallFigures;
}

const packs = emptyApp('mtcp-packs-');
const apps: string[] = [packs];
try {
  const tarballs = await packAll(packs);
  const rows: Row[] = [];
  const measureInstall = async (what: string, specs: string[]): Promise<InstallFigures> => {
    const app = emptyApp('mtcp-size-');
    apps.push(app);
    await install(app, specs);
    const figures = measure(app);
    rows.push({ what, figures });
    return figures;
  };
  await measureInstall('`metrics-exporter-tcp` (recorder, `/client`, `/piscina`, `/otel`, `/testing`)', [tarballs['metrics-exporter-tcp']]);
  // The tools' tarballs need the root's: it is not on the registry yet.
  await measureInstall('`metrics-exporter-tcp-observer` (with the above)', [tarballs['metrics-exporter-tcp'], tarballs['metrics-exporter-tcp-observer']]);
  await measureInstall('`metrics-exporter-tcp-relay` (with the above)', [tarballs['metrics-exporter-tcp'], tarballs['metrics-exporter-tcp-relay']]);
  await measureInstall('`prom-client`', ['prom-client']);
  const promVersion = (JSON.parse(readFileSync(join(apps.at(-1)!, 'node_modules', 'prom-client', 'package.json'), 'utf8')) as { version: string }).version;
  rows.at(-1)!.what = `\`prom-client\` ${promVersion}, for comparison`;

  const lines = [
    `Installed into an empty app with \`npm install\` (npm ${execSync('npm --version', { encoding: 'utf8' }).trim()}, Node ${process.version}; MB: the sizes of the files under node_modules, summed, in 10^6 bytes):`,
    '',
    '| package | packages added | MB on disk | install scripts |',
    '| --- | ---: | ---: | --- |',
    ...rows.map(({ what, figures: f }) => `| ${what} | ${f.packages} | ${mb(f.bytes)} | ${f.installScripts.length === 0 ? 'none' : f.installScripts.join(', ')} |`),
  ];
  console.log(lines.join('\n'));
} finally {
  for (const dir of apps) rmSync(dir, { recursive: true, force: true });
}
