/** Polls `cond` every 5 ms until it holds; throws after `ms`, naming `what`. */
export async function waitFor(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  for (const end = Date.now() + ms; !cond(); await new Promise((r) => setTimeout(r, 5))) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
  }
}

/** Polls the async `cond` every 20 ms until it holds; throws after `ms`, naming `what`. */
export async function waitUntil(what: string, cond: () => Promise<boolean>, ms = 5000): Promise<void> {
  for (const end = Date.now() + ms; !(await cond()); await new Promise((r) => setTimeout(r, 20))) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
  }
}
