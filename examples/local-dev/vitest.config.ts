import { defineProject } from 'vitest/config'

export default defineProject({
  ssr: { resolve: { conditions: ['source'] } },
  test: { name: 'example-local-dev', include: ['src/**/*.test.ts'], testTimeout: 60_000, hookTimeout: 60_000 },
})
