// Jest in native ESM mode (NestJS 12 is ESM-only): ts-jest with useESM; `.js` import suffixes map to the .ts files.
const tsJest = (tsconfig) => ['ts-jest', { useESM: true, tsconfig }];
const common = {
  extensionsToTreatAsEsm: ['.ts'],
  // The SDK compiles with its own (DOM) settings wherever it is imported; everything else with the server's.
  transform: {
    '/packages/client/src/.+\\.ts$': tsJest('packages/client/tsconfig.json'),
    '^.+\\.ts$': tsJest('tsconfig.json'),
  },
  moduleNameMapper: {
    // Tests import the SDK by its package name, from source, as tsconfig.json's `paths` does.
    '^@hookstream/client$': '<rootDir>/packages/client/src/index.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  testEnvironment: 'node',
};

export default {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/src/**/*.spec.ts'] },
    // The browser code's unit specs: the SDK's, in its workspace package, and the console's pure modules.
    {
      ...common,
      displayName: 'client',
      testMatch: ['<rootDir>/packages/client/src/**/*.spec.ts', '<rootDir>/web/**/*.spec.ts'],
    },
    { ...common, displayName: 'e2e', testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'] },
  ],
  // e2e suites each start their own nats-server and gateways; two workers fit a 2-core machine.
  maxWorkers: 2,
  // e2e cases restart servers and wait on real I/O; none should come near this.
  testTimeout: 60_000,
  globalSetup: '<rootDir>/test/global-setup.mjs',
};
