/** How the parent configures one app process (JSON in RELIABILITY_APP). */
export interface AppConfig {
  /** a label for events and log file names */
  id: string
  /** loopback address the app binds: HTTPS on `httpsPort`, the HTTP-01 listener on `httpPort` */
  address: string
  /** Pebble's HTTP-01 port */
  httpPort: number
  /** default 0 (a free port, reported in the 'listening' event) */
  httpsPort?: number
  directoryUrl: string
  caBundle: string
  /** ACME_STORAGE-style URL: file:///dir, redis://host:port?namespace=x, s3://bucket/prefix?endpoint=.. */
  storageUrl: string
  /** each name is one certificate */
  names: string[]
  /** pino at debug level writes here */
  logFile: string
  lockTtlMs?: number
  email?: string
  eab?: { kid: string, hmacKey: string }
  /** on-demand TLS: allow() admits names ending with this suffix and denies every other one */
  onDemandSuffix?: string
  /** encryption at rest: base64 of a 32-byte key (id 'k1') */
  encryptionKey?: string
}

/** What an app process sends to its parent over IPC. */
export interface AppMessage {
  event: string
  /** the app's clock, ms since the epoch */
  at: number
  id?: number
  [field: string]: unknown
}
