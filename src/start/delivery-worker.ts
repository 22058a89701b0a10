// A delivery worker process (forked by LocalDeliverer as the mailbox's uid): qmail-local with vdeliver in-process.
import { serveDeliveryWorker, VdeliverHook } from '../local/index.js';
import { openLookup, queueReply } from './vdeliver-link.js';

serveDeliveryWorker(new VdeliverHook(openLookup, queueReply).run);
