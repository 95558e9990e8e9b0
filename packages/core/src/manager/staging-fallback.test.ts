import { describe, expect, it } from 'vitest'
import { AcmeError, ErrorCodes } from '../errors.js'
import { stagingUnusable } from './issuance.js'

describe('the staging check before a retry', () => {
  it('goes on to production when staging is down or refuses the account, and stops it when the setup is still broken', () => {
    const err = (code: string, status?: number) => new AcmeError(code as never, 'x', status ? { status } : {})
    for (const e of [err(ErrorCodes.CA_UNREACHABLE), err(ErrorCodes.CA_TLS), err(ErrorCodes.TIMEOUT), err(ErrorCodes.ACCOUNT, 400),
      err(ErrorCodes.EAB_REQUIRED, 403), err(ErrorCodes.RATE_LIMITED, 429), err(ErrorCodes.CA_PROBLEM, 503)]) {
      expect(stagingUnusable(e), e.code).toBe(true)
    }
    for (const e of [err(ErrorCodes.CHALLENGE_FAILED, 403), err(ErrorCodes.NO_CHALLENGE), err(ErrorCodes.DNS_PROVIDER), err(ErrorCodes.INVALID_IDENTIFIER),
      err(ErrorCodes.CA_PROBLEM, 400), new Error('plain')]) {
      expect(stagingUnusable(e), (e as AcmeError).code ?? e.message).toBe(false)
    }
  })
})
