import { describe, expect, it } from 'vitest'
import { problemError } from './client.js'

describe('problemError: a CA problem document as an AcmeError', () => {
  const res = (status: number, data: unknown) => ({ status, headers: {}, data })

  it('names the identifier of each subproblem (the details Boulder sends leave it out)', () => {
    const err = problemError(res(400, {
      type: 'urn:ietf:params:acme:error:rejectedIdentifier',
      detail: 'Error creating new order :: Cannot issue for 2 identifiers',
      subproblems: [
        { type: 'urn:ietf:params:acme:error:rejectedIdentifier', detail: 'Domain name contains an invalid character', identifier: { type: 'dns', value: 'a_b.example.com' } },
        { type: 'urn:ietf:params:acme:error:rejectedIdentifier', detail: 'The ACME server refuses to issue for this name', identifier: { type: 'dns', value: 'blocked.example' } },
      ],
    }), 'POST', 'https://ca.example/new-order')
    expect(err.message).toBe('POST https://ca.example/new-order failed: 400 rejectedIdentifier: Error creating new order :: Cannot issue for 2 identifiers; ' +
      'a_b.example.com: Domain name contains an invalid character; blocked.example: The ACME server refuses to issue for this name')
  })

  it('gives the page a userActionRequired problem points to', () => {
    const err = problemError(res(403, {
      type: 'urn:ietf:params:acme:error:userActionRequired', detail: 'Terms of service have changed', instance: 'https://ca.example/agree?v=2',
    }), 'POST', 'https://ca.example/new-order')
    expect(err.message).toBe('POST https://ca.example/new-order failed: 403 userActionRequired: Terms of service have changed (see https://ca.example/agree?v=2)')
  })
})
