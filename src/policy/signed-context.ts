import { randomBytes } from 'node:crypto'
import { resolveProject, type ProjectOptions } from '../config/project-config.js'
import { signatureSetting } from '../context/tenant-signature.js'
import { withClient } from '../database/admin.js'
import { databaseName, parseDatabaseUrl } from '../database/connection-url.js'
import { quoteIdent, quoteLiteral } from '../database/sql-identifiers.js'
import { TenancyError } from '../errors.js'

/** Where the signed context lives: a schema Prisma does not manage, so `migrate dev` sees no drift. */
export const SIGNED_SCHEMA = 'prisma_tenancy'
export const SIGNING_KEY_TABLE = `${SIGNED_SCHEMA}.signing_key`
export const SIGNED_TENANT_FUNCTION = `${SIGNED_SCHEMA}.current_tenant`

/**
 * What a signed policy compares the tenant column with. A scalar subquery, so the function (two
 * sha256 and a key lookup) runs once per statement even where a scan would evaluate a plain
 * expression per row.
 */
export const signedTenantExpression = `(SELECT ${SIGNED_TENANT_FUNCTION}())`

/**
 * The key table and the function, as statements of a migration (each ends its last line with the
 * only semicolon). The key is never in a migration: `prisma-tenancy signing-key set` stores it.
 * The table holds K xor ipad and K xor opad (K zero-padded to sha256's 64-byte block), so the
 * HMAC is two sha256 calls, which PostgreSQL has built in (no pgcrypto).
 */
/** HMAC-SHA256 under the stored key (the key table aliased k) of a text expression, as bytea. */
const hmacSql = (message: string) => `sha256(k.outer_key || sha256(k.inner_key || convert_to(${message}, 'UTF8')))`

/**
 * Signatures for the tenants in $1 (text[]), valid for ten minutes from the transaction's start,
 * computed in the database by a role that can read the key (the verifier's probes use it).
 */
export const signaturesSql = `SELECT t.id AS tenant, x.e || '.' || encode(${hmacSql("x.e || ':' || t.id")}, 'hex') AS signature
  FROM ${SIGNING_KEY_TABLE} AS k, (SELECT (extract(epoch FROM now())::bigint + 600)::text AS e) AS x, unnest($1::text[]) AS t(id)`

/**
 * A string literal with no semicolon in it (written as the escape \073 of an E'' string), for
 * PL/pgSQL bodies: runners that split scripts at semicolons then keep the statement whole.
 */
export function semicolonFreeLiteral(text: string): string {
  return `E'${text.replaceAll('\\', '\\\\').replaceAll("'", "''").replaceAll(';', '\\073')}'`
}

/**
 * The body of the verifying function: one query, whose plan PL/pgSQL keeps for the session (a SQL
 * function's body is planned again in every query that calls it: measured ~+200 µs per query on
 * PostgreSQL 15). What it costs is the call, not the HMAC: server CPU per statement on PostgreSQL 15,
 * over the unsigned policy, +7 µs for a SECURITY DEFINER PL/pgSQL function with a pinned search_path
 * that returns a constant, +10 µs once it reads the key table, +21 µs for this body (two sha256 take
 * 0.2 µs). Every expression costs its set-up again in each transaction, so the checks are few and
 * cannot raise an error: the expiry is the fixed 10 digits before the dot (Unix seconds until 2286),
 * compared as text in the "C" collation, and the HMAC is compared in hex, so a malformed value
 * answers NULL with no regex, cast or decode to run. The expiry is inside the signed message, so it
 * cannot be moved without the key.
 */
export function signedTenantFunctionBody(setting: string): string {
  const tenant = `NULLIF(current_setting(${quoteLiteral(setting)}, true), '')`
  const signature = `current_setting(${quoteLiteral(signatureSetting(setting))}, true)`
  return [
    'BEGIN',
    '  RETURN (',
    `    SELECT s.tenant FROM ${SIGNING_KEY_TABLE} AS k, (SELECT ${tenant} AS tenant, ${signature} AS sig) AS s`,
    `    WHERE left(s.sig, 11) COLLATE "C" > (extract(epoch FROM now())::bigint)::text || '.'`,
    `      AND encode(${hmacSql("left(s.sig, 10) || ':' || s.tenant")}, 'hex') = substr(s.sig, 12)`,
    '  );',
    'END',
  ].join('\n')
}

export function signedContextStatements(setting: string, appRole: string | null): string[][] {
  return [
    [
      `-- The signed tenant context: policies trust ${setting} only when ${signatureSetting(setting)} carries a valid HMAC of it.`,
      `CREATE SCHEMA IF NOT EXISTS ${SIGNED_SCHEMA};`,
      '-- One row: the HMAC key, padded and xored with ipad and opad. Readable by its owner (the migration role) only.',
      `CREATE TABLE IF NOT EXISTS ${SIGNING_KEY_TABLE} (`,
      '  only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),',
      '  inner_key bytea NOT NULL CHECK (length(inner_key) = 64),',
      '  outer_key bytea NOT NULL CHECK (length(outer_key) = 64),',
      '  created_at timestamptz NOT NULL DEFAULT now()',
      ');',
      `REVOKE ALL ON ${SIGNING_KEY_TABLE} FROM PUBLIC;`,
      ...(appRole === null ? [] : [`REVOKE ALL ON ${SIGNING_KEY_TABLE} FROM ${quoteIdent(appRole)};`]),
    ],
    [
      `-- The tenant, when ${signatureSetting(setting)} is '<expiry: 10 digits>.<hex hmac>' with hmac = HMAC-SHA256(key, '<expiry>:<tenant>')`,
      '-- and the expiry (Unix seconds) is after the start of the transaction, else NULL, which matches no row.',
      '-- SECURITY DEFINER to read the key, search_path pinned so that nothing of the caller can stand in for what it',
      '-- calls, STABLE because it reads settings. `prisma-tenancy verify` compares its body with this one.',
      `CREATE OR REPLACE FUNCTION ${SIGNED_TENANT_FUNCTION}() RETURNS text`,
      '  LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER',
      '  SET search_path = pg_catalog, pg_temp',
      `  AS ${semicolonFreeLiteral(signedTenantFunctionBody(setting))};`,
    ],
  ]
}

export interface SetSigningKeyOptions extends ProjectOptions {
  /** Replace an existing key. Signatures made with the old key stop matching at once. */
  rotate?: boolean | undefined
}

export interface SetSigningKeyResult {
  /** The key for the application (`tenancyAdapter(url, { signingKey })`), base64url. Shown once: only the padded forms are stored. */
  key: string
  rotated: boolean
}

/** HMAC's padded key forms: K zero-padded to 64 bytes, xored with 0x36 (inner) and 0x5c (outer). */
export function paddedKeys(key: Buffer): { inner: Buffer; outer: Buffer } {
  const block = Buffer.alloc(64)
  key.copy(block)
  return { inner: Buffer.from(block.map((byte) => byte ^ 0x36)), outer: Buffer.from(block.map((byte) => byte ^ 0x5c)) }
}

/**
 * Generates a key and stores it in the key table, as the connecting (migration) role. Refuses to
 * replace a key unless `rotate`: a running app would stop seeing any row.
 */
export async function setSigningKey(options: SetSigningKeyOptions = {}): Promise<SetSigningKeyResult> {
  const project = await resolveProject(options)
  const url = parseDatabaseUrl(project.databaseUrl)
  const key = randomBytes(32)
  const { inner, outer } = paddedKeys(key)
  return withClient(url, async (client) => {
    const table = (await client.query<{ exists: boolean }>('SELECT to_regclass($1) IS NOT NULL AS exists', [SIGNING_KEY_TABLE])).rows[0]?.exists === true
    if (!table) {
      throw new TenancyError(
        'CONFIG_INVALID',
        `${databaseName(url)} has no ${SIGNING_KEY_TABLE}. Run \`prisma-tenancy generate --signed\`, apply it with \`prisma-tenancy migrate deploy\`, then run this again.`,
      )
    }
    const upsert = `INSERT INTO ${SIGNING_KEY_TABLE} (inner_key, outer_key) VALUES ($1, $2)${options.rotate === true ? ' ON CONFLICT (only_row) DO UPDATE SET inner_key = excluded.inner_key, outer_key = excluded.outer_key, created_at = now()' : ' ON CONFLICT (only_row) DO NOTHING'}`
    const result = await client.query(upsert, [inner, outer])
    if (result.rowCount !== 1) {
      throw new TenancyError(
        'SIGNING_KEY_EXISTS',
        `${databaseName(url)} has a signing key already; replacing it would make the running app see no rows until it has the new key. Pass --rotate to replace it anyway.`,
      )
    }
    return { key: key.toString('base64url'), rotated: options.rotate === true }
  })
}
