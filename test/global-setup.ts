import { tenancyGlobalSetup } from '../src/testing/index.js'

export default tenancyGlobalSetup()
