// RFC 6238 TOTP (HMAC-SHA1, 30-second steps, 6 digits) and RFC 4648 base32,
// so the browser test can answer the dashboard's code prompts itself.

import { createHmac } from 'node:crypto';

export const STEP_SECONDS = 30;

export function base32Decode(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const clean = text.toUpperCase().replace(/[\s=-]/g, '');
  let bits = 0;
  let value = 0;
  const out = [];
  for (const char of clean) {
    const index = alphabet.indexOf(char);
    if (index < 0) throw new Error(`not base32: ${char}`);
    value = (value << 5) | index;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** The code for one time step (RFC 4226 HOTP over the step counter). */
export function codeForStep(secret, step, digits = 6) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac('sha1', secret).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const binary = (mac.readUInt32BE(offset) & 0x7fffffff) % 10 ** digits;
  return String(binary).padStart(digits, '0');
}

export function currentStep(now = Date.now()) {
  return Math.floor(now / 1000 / STEP_SECONDS);
}

// RFC 6238 appendix B, SHA-1, T = 59 s: 94287082 (8 digits).
if (codeForStep(Buffer.from('12345678901234567890'), 1, 8) !== '94287082') {
  throw new Error('the TOTP implementation disagrees with RFC 6238');
}

/**
 * Codes for one account. The server takes the previous, current or next
 * step and never a step at or before the last one used, so each code comes
 * from a later step than the one before; when that would be more than one
 * step ahead, it waits for the clock.
 */
export class Authenticator {
  constructor(base32Secret) {
    this.secret = base32Decode(base32Secret);
    this.lastStep = -1;
  }

  async next() {
    for (;;) {
      const now = currentStep();
      const step = Math.max(now, this.lastStep + 1);
      if (step <= now + 1) {
        this.lastStep = step;
        return codeForStep(this.secret, step);
      }
      const wait = (now + 1) * STEP_SECONDS * 1000 - Date.now() + 1000;
      process.stderr.write(`waiting ${Math.ceil(wait / 1000)} s for the next TOTP step\n`);
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  /** A six-digit code that is valid for none of the steps the server accepts now. */
  wrongCode() {
    const now = currentStep();
    const valid = new Set([now - 1, now, now + 1, now + 2].map((step) => codeForStep(this.secret, step)));
    for (let n = 0; ; n += 1) {
      const candidate = String((123456 + n * 7919) % 1000000).padStart(6, '0');
      if (!valid.has(candidate)) return candidate;
    }
  }
}
