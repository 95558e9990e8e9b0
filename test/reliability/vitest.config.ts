import { defineProject } from 'vitest/config'

export default defineProject({
  // resolve sibling packages to their TypeScript source, so tests never need a build
  ssr: { resolve: { conditions: ['source'] } },
  test: {
    name: 'reliability',
    include: ['src/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
})
