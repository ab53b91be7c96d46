// Layers: unit and workflow need no stack; integration and e2e talk to the real services (npm run stack -- up).
const transform = {
  '^.+\\.(t|j)sx?$': ['@swc/jest', { jsc: { target: 'es2022' }, module: { type: 'commonjs' } }],
};
// Some dependencies ship ESM only (p-limit under slonik); let swc turn them into CommonJS for jest.
const transformIgnorePatterns = [
  '/node_modules/(?!(p-limit|yocto-queue|jose|content-disposition|cookie|node-pg-migrate|@faker-js)/)',
];
const project = (name, extra = {}) => ({
  displayName: name,
  testEnvironment: 'node',
  transform,
  transformIgnorePatterns,
  testMatch: [`<rootDir>/test/${name}/**/*.test.ts`],
  ...extra,
});

/** @type {import('jest').Config} */
module.exports = {
  projects: [project('unit'), project('workflow'), project('integration'), project('e2e'), project('faults')],
};
