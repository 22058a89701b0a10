// Shared plain-data types: outcomes, delivery results, typed errors, ASCII case rules, addresses.
export * from './outcome.js';
export * from './delivery.js';
export * from './ascii.js';
export * from './address.js';
export * from './date.js';
export * from './turn-batch.js';
export * from './signals.js';
