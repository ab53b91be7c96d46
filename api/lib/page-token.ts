import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { ValidationError } from '../../lib/errors';

/**
 * Page tokens are sealed with an HMAC before they leave the API, so a store only ever reads back a token
 * it wrote: anything else is the caller's 400, never a store error (Temporal answers a token it cannot
 * read with UNKNOWN, which its client retries for seconds). The key comes from CADENZA_API_PAGE_TOKEN_KEY
 * (set the same on every API process of a deployment); without it, each process makes its own, and a
 * token outlives neither a restart nor a hop to another process.
 */
const MAC_BYTES = 16;

export class PageTokens {
  private readonly key: Buffer;

  constructor(key: string | undefined) {
    this.key = key ? Buffer.from(key, 'utf8') : randomBytes(32);
  }

  private mac(raw: Uint8Array): Buffer {
    return createHmac('sha256', this.key).update(raw).digest().subarray(0, MAC_BYTES);
  }

  seal(raw: Uint8Array): string {
    return Buffer.concat([this.mac(raw), raw]).toString('base64url');
  }

  /** The store's token inside a sealed one; 400 naming `field` for anything this API did not give out. */
  open(token: string, field = 'querystring.pageToken'): Buffer {
    const bytes = Buffer.from(token, 'base64url');
    const raw = bytes.subarray(MAC_BYTES);
    const mac = bytes.subarray(0, MAC_BYTES);
    if (bytes.length <= MAC_BYTES || !timingSafeEqual(mac, this.mac(raw)))
      throw new ValidationError('pageToken is not a token this API gave out; start from the first page.', [
        { field, message: 'not a page token of this list' },
      ]);
    return raw;
  }
}
