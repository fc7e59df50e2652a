import { get_datamodel } from '@prisma/prisma-schema-wasm'
import { TenancyError } from '../errors.js'
import type { SchemaFile } from '../migrate/schema-engine.js'

/** The part of Prisma's DMMF the policy generator reads. */
export interface DmmfField {
  name: string
  dbName?: string | null
  kind: 'scalar' | 'object' | 'enum' | 'unsupported'
  type: string
  isList: boolean
  isRequired: boolean
  isId?: boolean
  nativeType?: [string, string[]] | null
  default?: unknown
  relationFromFields?: string[]
  relationToFields?: string[]
  relationName?: string
}

export interface DmmfModel {
  name: string
  dbName: string | null
  schema: string | null
  fields: DmmfField[]
  documentation?: string
}

export interface DmmfIndex {
  model: string
  type: 'id' | 'unique' | 'normal' | 'fulltext'
  fields: { name: string }[]
}

export interface Datamodel {
  models: DmmfModel[]
  indexes: DmmfIndex[]
}

// The engine formats its errors for a terminal; the message goes into ours as plain text.
// eslint-disable-next-line no-control-regex
const ansi = /\u001b\[[0-9;]*m/g

/**
 * Parses the schema with Prisma's own parser (the WebAssembly build of
 * prisma-fmt), so names, @map/@@map, compound ids and relations mean exactly
 * what they mean to Prisma. get_datamodel gives the DMMF's datamodel alone:
 * get_dmmf also builds the client's query schema (40 times the JSON for the
 * example schema, and the WebAssembly memory it takes stays with the process).
 */
export function parseDatamodel(files: SchemaFile[]): Datamodel {
  let output: string
  try {
    output = get_datamodel(JSON.stringify({ prismaSchema: files.map((file) => [file.path, file.content]) }))
  } catch (cause) {
    const raw = cause instanceof Error ? cause.message : String(cause)
    let message = raw
    try {
      message = (JSON.parse(raw) as { message?: string }).message ?? raw
    } catch {
      // Not JSON: keep the engine's text as it is.
    }
    throw new TenancyError('SCHEMA_INVALID', `Prisma could not parse the schema:\n${message.replace(ansi, '')}\nFix the schema (\`prisma validate\` shows the same errors), then run the command again.`, {
      cause,
    })
  }
  return JSON.parse(output) as Datamodel
}
