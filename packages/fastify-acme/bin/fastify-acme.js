#!/usr/bin/env node
// The `fastify-acme` command: the compiled CLI in dist/ (see src/cli).
import '../dist/cli/main.js'
