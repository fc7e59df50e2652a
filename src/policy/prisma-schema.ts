import { once } from 'node:events'
import { createRequire } from 'node:module'
import { Worker } from 'node:worker_threads'
import type * as SchemaWasm from '@prisma/prisma-schema-wasm'
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

// Required on first use: the parser's WebAssembly, once compiled, stays with the process (~10 MB).
const require = createRequire(import.meta.url)
const parserModule = '@prisma/prisma-schema-wasm'

function parserInput(files: SchemaFile[]): string {
  return JSON.stringify({ prismaSchema: files.map((file) => [file.path, file.content]) })
}

function parseError(cause: unknown): TenancyError {
  const raw = cause instanceof Error ? cause.message : String(cause)
  let message = raw
  try {
    message = (JSON.parse(raw) as { message?: string }).message ?? raw
  } catch {
    // Not JSON: keep the engine's text as it is.
  }
  return new TenancyError('SCHEMA_INVALID', `Prisma could not parse the schema:\n${message.replace(ansi, '')}\nFix the schema (\`prisma validate\` shows the same errors), then run the command again.`, {
    cause,
  })
}

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
    output = (require(parserModule) as typeof SchemaWasm).get_datamodel(parserInput(files))
  } catch (cause) {
    throw parseError(cause)
  }
  return JSON.parse(output) as Datamodel
}

// CommonJS evaluated as it is (eval), so the same worker runs from src/ (vitest, tsx) and from dist/.
const workerSource = `const { parentPort, workerData } = require('node:worker_threads')
try {
  parentPort.postMessage({ output: require(workerData.parser).get_datamodel(workerData.input) })
} catch (error) {
  parentPort.postMessage({ error: error instanceof Error ? error.message : String(error) })
}`

/**
 * parseDatamodel in a worker thread that ends with the parse, so the parser's
 * compiled WebAssembly leaves with it instead of staying in this process: the
 * tenant lifecycle (tenant export above all) keeps its memory for the rows.
 * Compiles the parser on every call (~0.2 s).
 */
export async function parseDatamodelInWorker(files: SchemaFile[]): Promise<Datamodel> {
  const worker = new Worker(workerSource, { eval: true, workerData: { parser: require.resolve(parserModule), input: parserInput(files) } })
  try {
    const [reply] = (await once(worker, 'message')) as [{ output?: string; error?: string }]
    if (reply.output === undefined) throw parseError(new Error(reply.error))
    return JSON.parse(reply.output) as Datamodel
  } finally {
    await worker.terminate()
  }
}
