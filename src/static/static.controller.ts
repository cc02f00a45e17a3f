/**
 * Serves what `scripts/build-client.mjs` writes to `dist/public/`: the browser SDK as one ES module
 * (`GET /sdk/hookstream.js`, importable from any origin) and the live console (`GET /console`).
 */
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Controller, Get, Res } from '@nestjs/common';
import type { Response } from 'express';
import { ApiError } from '../common/api-error.js';

/**
 * The package root: the nearest directory up from this file with hookstream's package.json. This file runs
 * from `dist/static/` when built and from `src/static/` under ts-jest; both sit two levels down.
 */
function packageRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (let dir = here; ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'hookstream') return dir;
      } catch {
        // not ours: keep looking
      }
    }
    if (dirname(dir) === dir) return join(here, '..', '..');
  }
}

export const PUBLIC_DIR = join(packageRoot(), 'dist', 'public');

const JS = 'text/javascript; charset=utf-8';
const CSS = 'text/css; charset=utf-8';
const HTML = 'text/html; charset=utf-8';
const MAP = 'application/json; charset=utf-8';

// The console loads nothing from other origins; this says so to the browser too.
const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

@Controller()
export class StaticController {
  @Get('sdk/hookstream.js')
  sdk(@Res() res: Response): Promise<void> {
    return send(res, 'sdk/hookstream.js', JS, { crossOrigin: true });
  }

  @Get('sdk/hookstream.js.map')
  sdkMap(@Res() res: Response): Promise<void> {
    return send(res, 'sdk/hookstream.js.map', MAP, { crossOrigin: true });
  }

  @Get('console')
  page(@Res() res: Response): Promise<void> {
    return send(res, 'console/index.html', HTML, { csp: true });
  }

  @Get('console/console.js')
  script(@Res() res: Response): Promise<void> {
    return send(res, 'console/console.js', JS);
  }

  @Get('console/console.js.map')
  scriptMap(@Res() res: Response): Promise<void> {
    return send(res, 'console/console.js.map', MAP);
  }

  @Get('console/console.css')
  style(@Res() res: Response): Promise<void> {
    return send(res, 'console/console.css', CSS);
  }
}

async function send(
  res: Response,
  file: string,
  contentType: string,
  opts: { crossOrigin?: boolean; csp?: boolean } = {},
): Promise<void> {
  let body: Buffer;
  try {
    body = await readFile(join(PUBLIC_DIR, file));
  } catch {
    throw new ApiError(
      503,
      'unavailable',
      `${file} has not been built: run \`npm run build\` (it writes the SDK and the console to dist/public/)`,
    );
  }
  res.setHeader('Content-Type', contentType);
  // Rebuilt files are picked up at once; revalidation is cheap on loopback and small files.
  res.setHeader('Cache-Control', 'no-cache');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  if (opts.crossOrigin) {
    // Any page may `import` the SDK from the gateway (module scripts are fetched with CORS).
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Cross-Origin-Resource-Policy', 'cross-origin');
  }
  if (opts.csp) {
    res.setHeader('Content-Security-Policy', CONSOLE_CSP);
    res.setHeader('Referrer-Policy', 'no-referrer');
  }
  res.status(200).end(body);
}
