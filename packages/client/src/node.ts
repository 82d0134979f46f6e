/** @spillway/client/node: what only Node can do — the durable on-disk queue. */
export { FileQueue, type FileQueueOptions } from './file-queue.ts'
