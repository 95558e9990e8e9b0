import { describe as group, expect, it } from 'vitest'
import { describe, invalidOption } from './errors.js'
import { generatePrivateKey } from './keys.js'

group('describe()', () => {
  it('never echoes private key material into an error message', async () => {
    const pem = await generatePrivateKey('ec-p256')
    expect(describe(pem)).toBe('(private key material, not shown)')
    expect(() => invalidOption('caBundle', pem, 'PEM certificate text')).toThrow(expect.objectContaining({ message: expect.not.stringMatching(/PRIVATE KEY|MIG/) }))
  })
})
