import { defineConfig } from 'vite';

// Everything is bundled into dist/ (committed): no CDN, no external fonts, works offline.
export default defineConfig({
  build: { outDir: 'dist', emptyOutDir: true, assetsInlineLimit: 0, chunkSizeWarningLimit: 1024 },
});
