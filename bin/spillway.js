#!/usr/bin/env node
// Entry for `npx spillway` / the package bin: the sources run directly on Node 24 (type stripping).
import '../src/cli/main.ts'
