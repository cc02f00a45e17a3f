// Jest in native ESM mode (NestJS 12 is ESM-only): ts-jest with useESM; `.js` import suffixes map to the .ts files.
const common = {
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }] },
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  testEnvironment: 'node',
};

export default {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/src/**/*.spec.ts'] },
    { ...common, displayName: 'e2e', testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'] },
  ],
  // e2e suites each start their own nats-server and gateways; two workers fit a 2-core machine.
  maxWorkers: 2,
  // e2e cases restart servers and wait on real I/O; none should come near this.
  testTimeout: 60_000,
  globalSetup: '<rootDir>/test/global-setup.mjs',
};
