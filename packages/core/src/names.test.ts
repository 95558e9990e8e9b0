import { describe, expect, it } from 'vitest'
import { nameMatches, normalizeName, normalizeNames } from './names.js'

describe('normalizeName', () => {
  it.each([
    ['Example.COM', 'example.com'],
    ['example.com.', 'example.com'],
    ['  www.example.com ', 'www.example.com'],
    ['bücher.example', 'xn--bcher-kva.example'],
    ['*.Example.com', '*.example.com'],
    ['*.bücher.example', '*.xn--bcher-kva.example'],
    ['localhost', 'localhost'],
    ['10.0.0.1', '10.0.0.1'],
    ['::1', '::1'],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['[2001:db8::1]', '2001:db8::1'],
  ])('%s -> %s', (input, expected) => {
    expect(normalizeName(input)).toBe(expected)
  })

  it.each([
    [''],
    ['a..b'],
    ['-a.example'],
    ['a_b.example'],
    ['foo.*.example'],
    ['*example.com'],
    ['x'.repeat(64) + '.example'],
    [`${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(60)}.${'e'.repeat(60)}.example`],
    [42],
    [null],
    // URL host parsing reads these as other names or IP addresses
    ['192.168.001.010'],
    ['10.0.0.012'],
    ['0x7f.1'],
    ['3232235777'],
    ['ex%41mple.com'],
  ])('refuses %j with ERR_ACME_INVALID_IDENTIFIER naming it', (input) => {
    expect(() => normalizeName(input)).toThrow(expect.objectContaining({ code: 'ERR_ACME_INVALID_IDENTIFIER' }))
  })

  it('names the value in the message', () => {
    expect(() => normalizeName('a_b.example')).toThrow(/"a_b\.example"/)
  })
})

describe('normalizeNames', () => {
  it('keeps order and refuses duplicates after normalisation', () => {
    expect(normalizeNames(['B.example', 'a.example'])).toEqual(['b.example', 'a.example'])
    expect(() => normalizeNames(['a.example', 'A.EXAMPLE.'])).toThrow(/listed twice/)
    expect(() => normalizeNames([])).toThrow(expect.objectContaining({ code: 'ERR_ACME_INVALID_IDENTIFIER' }))
    expect(() => normalizeNames(Array.from({ length: 101 }, (_, i) => `n${i}.example`))).toThrow(/at most 100/)
  })
})

describe('nameMatches', () => {
  it.each([
    ['example.com', 'example.com', true],
    ['*.example.com', 'foo.example.com', true],
    ['*.example.com', 'example.com', false],
    ['*.example.com', 'a.b.example.com', false],
    ['example.com', 'foo.example.com', false],
  ])('%s covers %s: %s', (cert, sni, expected) => {
    expect(nameMatches(cert, sni)).toBe(expected)
  })
})
