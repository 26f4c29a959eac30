// The thread that checks basic auth passwords with bcrypt (tens of ms each, by design), so that
// the relay's main thread, which serves every scrape, never spends that time.
import { randomBytes } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import bcrypt from 'bcryptjs';
import type { BcryptReply, BcryptRequest } from './basic-auth.js';

/**
 * The hash of a random password at the users' highest cost: what an unknown user's password is
 * checked against, so that a wrong user takes as long as a wrong password (no user enumeration).
 */
const decoy = bcrypt.hashSync(randomBytes(18).toString('base64'), (workerData as { cost: number }).cost);
const port = parentPort!;
port.on('message', ({ id, password, hash }: BcryptRequest) => {
  // compareSync compares the hashes in constant time.
  const ok = bcrypt.compareSync(password, hash ?? decoy) && hash !== undefined;
  port.postMessage({ id, ok } satisfies BcryptReply);
});
