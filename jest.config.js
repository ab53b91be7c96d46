// Layers: unit and workflow need no stack; integration and e2e talk to the real services (npm run stack -- up).
const transform = {
  '^.+\\.(t|j)sx?$': ['@swc/jest', { jsc: { target: 'es2022' }, module: { type: 'commonjs' } }],
};
// Some dependencies ship ESM only (p-limit under slonik); let swc turn them into CommonJS for jest.
const transformIgnorePatterns = [
  '/node_modules/(?!(p-limit|yocto-queue|jose|content-disposition|cookie|node-pg-migrate|@faker-js|music-metadata|file-type|strtok3|token-types|uint8array-extras|@tokenizer|@borewit|win-guid|content-type|media-typer)/)',
];
// music-metadata exports its Node entry only under the `import`/`module-sync` conditions, which jest's
// CommonJS resolver does not ask for: point it at that entry (swc turns it into CommonJS above).
const moduleNameMapper = { '^music-metadata$': '<rootDir>/node_modules/music-metadata/lib/index.js' };
const project = (name, extra = {}) => ({
  displayName: name,
  testEnvironment: 'node',
  transform,
  transformIgnorePatterns,
  moduleNameMapper,
  testMatch: [`<rootDir>/test/${name}/**/*.test.ts`],
  ...extra,
});

/** @type {import('jest').Config} */
module.exports = {
  projects: [project('unit'), project('workflow'), project('integration'), project('e2e'), project('faults')],
};
