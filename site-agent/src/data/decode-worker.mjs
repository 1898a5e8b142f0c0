// Entry of the decoder thread: loads the TypeScript worker through tsx (no build step).
import { register } from 'tsx/esm/api';

register();
await import('./decode-worker.ts');
