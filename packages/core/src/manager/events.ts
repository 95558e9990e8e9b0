import type { ErrorCode } from '../errors.js'

/** Who an event is about. */
export interface CertificateRef {
  /** the certificate's names; the first is its primary name */
  names: string[]
  /** issuer storage key, e.g. acme-v02.api.letsencrypt.org-directory or 'local' */
  issuer: string
}

/** Typed events of a CertificateManager (CertMagic's cert_obtaining / cert_obtained / cert_failed / ...). */
export interface ManagerEvents {
  /** the cluster-wide issuance lock for these names was acquired after waiting `waitMs` */
  locked: { names: string[], waitMs: number }
  /** an order is about to start (after the lock is held and storage re-checked) */
  obtaining: CertificateRef & { renewal: boolean, forced: boolean }
  /** a new certificate (not a renewal) was stored and is served */
  obtained: CertificateRef & { serial: string, notAfter: Date, durationMs: number }
  /** a renewal was stored and is served */
  renewed: CertificateRef & { serial: string, notAfter: Date, durationMs: number, replaced: string | null }
  /** an attempt failed (`issuer`: the last CA the order went to); `nextAttemptAt` is when any instance tries again (null: gave up after 30 days) */
  failed: CertificateRef & { renewal: boolean, error: Error & { code?: ErrorCode }, nextAttemptAt: Date | null }
  /** a certificate was revoked at the CA and its assets deleted */
  revoked: CertificateRef & { serial: string }
  /** the certificate served for these names changed (obtained, renewed, or loaded from storage after another instance renewed it) */
  updated: CertificateRef & { serial: string, notAfter: Date, source: 'order' | 'storage' }
}

export type ManagerEventName = keyof ManagerEvents
