import { isTenancyError, type TenancyError } from '../../src/index.js'

/** The TenancyError `attempt` fails with; any other outcome fails the test. */
export async function refusal(attempt: () => unknown): Promise<TenancyError> {
  try {
    await attempt()
  } catch (error) {
    if (isTenancyError(error)) return error
    throw error
  }
  throw new Error('expected a TenancyError, but the operation succeeded')
}
