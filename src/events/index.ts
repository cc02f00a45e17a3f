export * from './subject.js';
export * from './pattern.js';
export * from './cursor.js';
export * from './envelope.js';
