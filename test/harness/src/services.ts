import { inject } from 'vitest'

/** Coordinates of the services the global setup started, as seen from any test. */
export interface HarnessServices {
  challtestsrv: { dnsServer: string, managementUrl: string }
  pebble: {
    directoryUrl: string
    managementUrl: string
    /** trust for Pebble's HTTPS listener */
    caBundle: string
    /** Pebble's own HTTPS identity, signed by caBundle: reuse it for an ACME proxy in front */
    tls: { cert: string, key: string }
    /** port Pebble's VA uses for HTTP-01: listen on it at a uniqueLoopbackAddress() */
    httpPort: number
    /** port Pebble's VA uses for TLS-ALPN-01 */
    tlsPort: number
  }
  redis: { url: string }
  s3: {
    endpoint: string
    region: string
    credentials: { accessKeyId: string, secretAccessKey: string }
    forcePathStyle: true
  }
}

declare module 'vitest' {
  export interface ProvidedContext {
    services: HarnessServices
  }
}

/** The shared services; only callable inside a test file run by vitest. */
export function services (): HarnessServices {
  return inject('services')
}
