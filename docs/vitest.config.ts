import { defineProject } from 'vitest/config'

export default defineProject({
  ssr: { resolve: { conditions: ['source'] } },
  test: { name: 'docs', include: ['test/**/*.test.ts'], testTimeout: 120_000, hookTimeout: 120_000 },
})
