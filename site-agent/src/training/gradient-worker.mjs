// Entry of a training worker thread: loads the TypeScript worker through tsx (no build step), as
// bin/radfed-agent.mjs does for the agent itself.
import { register } from 'tsx/esm/api';

register();
await import('./gradient-worker.ts');
