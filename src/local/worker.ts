// The delivery worker process LocalDeliverer forks by default: qmail-local for each job, every program line spawned.
import { serveDeliveryWorker } from './serve.js';

serveDeliveryWorker();
