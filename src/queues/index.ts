// queues: named queue policies (control/queues) and the rules choosing a message's queue (control/queuerules).
export { DEFAULT_QUEUE, parseQueues, queuesFrom, type QueuePolicy } from './policy.js';
export {
  chooseQueue,
  domainMatches,
  parseRules,
  rulesFrom,
  type QueueChoice,
  type QueueFacts,
  type QueueRules,
} from './rules.js';
