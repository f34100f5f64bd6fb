import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

import { InvalidArgument } from './errors.js';

/** What a token may do: `predict` (Predict, PredictStream, GetModelInfo), `ingest`, `read` (stats, status, rounds, model info), `admin` (everything). */
export const ROLES = ['predict', 'ingest', 'read', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** One caller: a name for metrics and logs, its roles, and the sha256 of its token. */
export interface TokenEntry {
  name: string;
  roles: ReadonlySet<Role>;
  sha256: Buffer;
  /** After this the token is refused. */
  expires?: Date;
}

const TOKEN_LINE = /^(\S+)\s+(\S+)\s+sha256:([0-9a-f]{64})(?:\s+expires=(\S+))?$/;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** A new random token (32 bytes, base64url) and its line for a tokens file. */
export function newToken(name: string, roles: readonly Role[], expires?: Date): { token: string; line: string } {
  checkName(name, 'name');
  if (expires !== undefined && Number.isNaN(expires.getTime())) {
    throw new InvalidArgument('expires', 'expected a date');
  }
  const token = `ns_${randomBytes(32).toString('base64url')}`;
  const until = expires === undefined ? '' : ` expires=${expires.toISOString()}`;
  return { token, line: `${name} ${[...new Set(roles)].join(',')} sha256:${hashToken(token).toString('hex')}${until}` };
}

export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/**
 * The callers a service accepts, read from a tokens file: one `<name> <role,role…> sha256:<hex>`
 * per line (`nsctl token create` writes them), `#` comments and blank lines skipped. Only hashes
 * are kept; a presented token is hashed and compared with every entry in constant time.
 */
export class TokenTable {
  private constructor(readonly entries: readonly TokenEntry[]) {}

  /** Parses a tokens file's text; `source` names it in errors (e.g. the file's path). */
  static parse(text: string, source: string): TokenTable {
    const entries: TokenEntry[] = [];
    const names = new Set<string>();
    text.split('\n').forEach((raw, index) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      const where = `${source}:${index + 1}`;
      const match = TOKEN_LINE.exec(line);
      if (match === null) {
        throw new InvalidArgument(
          where,
          'expected "<name> <role,role,…> sha256:<64 hex digits> [expires=<ISO date>]" (a line `nsctl token create` prints)',
        );
      }
      const [, name = '', roleList = '', hex = '', until] = match;
      const expires = until === undefined ? undefined : new Date(until);
      if (expires !== undefined && Number.isNaN(expires.getTime())) {
        throw new InvalidArgument(
          `${where} expires`,
          `expected an ISO date, e.g. 2027-01-31T00:00:00Z, got "${until}"`,
        );
      }
      checkName(name, `${where} name`);
      if (names.has(name)) throw new InvalidArgument(`${where} name`, `"${name}" is given twice`);
      names.add(name);
      const roles = roleList.split(',').map((role) => {
        if (!(ROLES as readonly string[]).includes(role)) {
          throw new InvalidArgument(`${where} roles`, `expected roles from ${ROLES.join(', ')}, got "${role}"`);
        }
        return role as Role;
      });
      entries.push({ name, roles: new Set(roles), sha256: Buffer.from(hex, 'hex'), ...(expires ? { expires } : {}) });
    });
    if (entries.length === 0) throw new InvalidArgument(source, 'expected at least one token line, found none');
    return new TokenTable(entries);
  }

  /** The entry whose token this is, or undefined. Every entry is compared (no early exit). */
  authenticate(token: string): TokenEntry | undefined {
    const presented = hashToken(token);
    let found: TokenEntry | undefined;
    for (const entry of this.entries) {
      if (timingSafeEqual(presented, entry.sha256) && found === undefined) found = entry;
    }
    return found;
  }
}

function checkName(name: string, field: string): void {
  if (!NAME.test(name)) throw new InvalidArgument(field, `expected letters, digits, . _ - (up to 64), got "${name}"`);
}
