import { setSigningKey, type SetSigningKeyOptions } from '../../policy/signed-context.js'
import type { CliIo } from '../output.js'
import { exitCodes } from '../output.js'

export interface SigningKeyCommandOptions extends SetSigningKeyOptions {
  json?: boolean | undefined
}

/**
 * `signing-key set`: the key goes to stdout (alone, or in the JSON document), so it can be piped
 * into a secret store; what to do with it goes to stderr. It is printed this once: the database
 * keeps only its padded forms.
 */
export async function signingKeySetCommand(options: SigningKeyCommandOptions, io: CliIo): Promise<number> {
  const result = await setSigningKey(options)
  io.stdout(options.json === true ? JSON.stringify(result) : result.key)
  io.stderr(
    `${result.rotated ? 'Rotated' : 'Stored'} the signing key. It is shown only this once: put it in the app's environment (e.g. PRISMA_TENANCY_SIGNING_KEY) and pass it as tenancyAdapter(url, { signingKey }).${result.rotated ? ' Until the app has the new key, its queries see no rows.' : ''}`,
  )
  return exitCodes.ok
}
