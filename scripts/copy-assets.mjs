// Part of `npm run build`: tsc emits only JavaScript, and the admin view's page, script and
// style are files of their own that dist/ must carry next to the module that serves them.
import { cpSync } from 'node:fs'

cpSync(new URL('../lib/admin/assets/', import.meta.url), new URL('../dist/lib/admin/assets/', import.meta.url), { recursive: true })
