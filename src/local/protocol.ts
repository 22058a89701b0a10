// The messages between LocalDeliverer and its worker processes (plain data over the IPC channel).
import type { LocalArgs } from './env.js';
import type { ForwardRequest, LocalResult } from './types.js';

export interface WorkerRequest {
  readonly id: number;
  readonly args: LocalArgs;
  readonly messagePath: string;
  readonly path: string;
  readonly injector: ForwardRequest['injector'];
}

export interface WorkerReply {
  readonly id: number;
  readonly result: LocalResult;
}
