// Injected into the CommonJS bundles (build.mjs): what `import.meta.url` stands for there.
export const importMetaUrl = require('node:url').pathToFileURL(__filename).href;
