'use strict';
// The entry of the sink's conversion threads (piscina). A thread inherits tsx's hooks when the sink runs
// under tsx, and has none under jest: TypeScript is loaded through tsx's require hook either way.
if (!require.extensions['.ts']) require('tsx/cjs/api').register();
module.exports = require('./convert-thread.ts').default;
