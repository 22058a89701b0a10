// The benchmark sections, run in this order. Add yours here (a BenchSection in its own file under bench/).
import { deliverySection } from './delivery.js';
import { directorySection } from './directory.js';
import { injectSection } from './inject.js';
import { pop3Section } from './pop3.js';
import { relaySection } from './relay.js';
import { smtpSection } from './smtp.js';
import type { BenchSection } from './types.js';
import { versusSection } from './versus.js';

export const SECTIONS: readonly BenchSection[] = [
  injectSection,
  smtpSection,
  deliverySection,
  relaySection,
  pop3Section,
  directorySection,
  versusSection,
];
