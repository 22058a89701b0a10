// queues: named queue policies (control/queues) and the rules choosing a message's queue (control/queuerules).
export {
  DEFAULT_QUEUE,
  isQueueName,
  parseQueues,
  queuesFrom,
  type BounceMode,
  type PolicyError,
  type QueuePolicies,
  type QueuePolicy,
} from './policy.js';
export {
  chooseQueue,
  domainMatches,
  parseRules,
  rulesFrom,
  type QueueChoice,
  type QueueFacts,
  type QueueRule,
  type QueueRules,
  type RuleKind,
} from './rules.js';
