import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    projects: ['packages/*', 'test/harness', 'test/reliability', 'examples/*', 'docs'],
    // One Pebble, challtestsrv, Redis and S3 server for the whole run (see test/harness).
    globalSetup: ['./test/harness/src/global-setup.ts'],
  },
})
