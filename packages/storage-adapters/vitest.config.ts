import { defineProject } from 'vitest/config'

export default defineProject({
  // resolve sibling packages to their TypeScript source, so tests never need a build
  ssr: { resolve: { conditions: ['source'] } },
  test: {
    name: 'storage-adapters',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
})
