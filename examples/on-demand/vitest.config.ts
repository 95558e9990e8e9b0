import { defineProject } from 'vitest/config'

export default defineProject({
  ssr: { resolve: { conditions: ['source'] } },
  test: { name: 'example-on-demand', include: ['src/**/*.test.ts'], testTimeout: 60_000, hookTimeout: 60_000 },
})
