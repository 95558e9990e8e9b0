export { createLocalIssuer } from './issuer.js'
export type { LocalIssuer, LocalIssuerOptions } from './issuer.js'
